//! What travels on the queues: references, so a message stays small whatever the payload.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::DeliveryId;
use crate::ids::{EventId, SubscriptionId, WorkspaceId};
use crate::redelivery::Recovery;
use crate::Event;

/// SQS refuses longer message delays; longer waits are chained.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

/// What travels on the events queue: a reference, so the message stays small whatever the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    EventAccepted {
        workspace_id: WorkspaceId,
        event_id: EventId,
        dedup_id: String,
        /// Epoch seconds before which the event is not fanned out (its `deliver_at`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<i64>,
    },
    /// Attempt number `attempt` of one delivery, not before `not_before` (epoch seconds):
    /// SQS caps a message delay at 15 minutes, so longer waits are chained.
    Deliver {
        workspace_id: WorkspaceId,
        delivery_id: DeliveryId,
        /// Whose attempt this is, so the worker can admit it before claiming anything.
        /// Absent from messages queued before it was carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subscription_id: Option<SubscriptionId>,
        attempt: u32,
        not_before: i64,
        /// Queued by a resume, beside the recheck the parked delivery already has: if the
        /// subscription is paused again, this copy only parks, so one recheck stays queued.
        #[serde(default, skip_serializing_if = "is_false")]
        resumed: bool,
        /// The send slot (epoch microseconds) already reserved for this attempt of a
        /// rate-limited subscription, which requeued it to wait for the slot: not reserved again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot_micros: Option<i64>,
    },
    /// A paused subscription was enabled again: queue the attempts its parked deliveries wait
    /// to make, a page at a time, from the first delivery id after `after`.
    Resume {
        workspace_id: WorkspaceId,
        subscription_id: SubscriptionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<DeliveryId>,
    },
    /// A batch's wait is over, or it filled: seal it and make its first attempt. Sent once
    /// when the batch opens (delayed by its wait) and once when it fills; whichever comes
    /// second finds the attempt made and does nothing.
    FlushBatch {
        workspace_id: WorkspaceId,
        subscription_id: SubscriptionId,
        batch: DeliveryId,
        /// Epoch seconds before which the flush is not made: a wait longer than one message
        /// delay is chained, as attempts are.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_before: Option<i64>,
    },
    /// The rest of a recovery's window, older than what was queued already.
    Recover(Recovery),
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl QueueMessage {
    /// The fan-out of a newly accepted event, and how long the queue holds it back: until its
    /// `deliver_at` if that is later than its arrival, a queue delay at a time.
    pub fn fan_out(event: &Event, now: DateTime<Utc>) -> (Self, Duration) {
        let not_before = event.not_before();
        let delay = not_before
            .and_then(|at| (at - now).to_std().ok())
            .unwrap_or_default()
            .min(MAX_QUEUE_DELAY);
        let message = QueueMessage::EventAccepted {
            workspace_id: event.workspace_id.clone(),
            event_id: event.id.clone(),
            dedup_id: event.dedup_id.clone(),
            not_before: not_before.map(|at| at.timestamp()),
        };
        (message, delay)
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("queue messages always serialize")
    }

    pub fn from_body(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_message_round_trips() {
        let msg = QueueMessage::EventAccepted {
            workspace_id: WorkspaceId::generate(),
            event_id: EventId::generate(),
            dedup_id: "abc".into(),
            not_before: None,
        };
        assert!(!msg.to_body().contains("not_before"), "{}", msg.to_body());
        assert_eq!(QueueMessage::from_body(&msg.to_body()).unwrap(), msg);
        let resume = QueueMessage::Resume {
            workspace_id: WorkspaceId::generate(),
            subscription_id: SubscriptionId::generate(),
            after: None,
        };
        assert!(!resume.to_body().contains("after"), "{}", resume.to_body());
        assert_eq!(QueueMessage::from_body(&resume.to_body()).unwrap(), resume);
        let subscription = SubscriptionId::generate();
        let deliver = |slot_micros| QueueMessage::Deliver {
            workspace_id: WorkspaceId::generate(),
            delivery_id: DeliveryId::for_pair(&EventId::generate(), &subscription),
            subscription_id: Some(subscription.clone()),
            attempt: 1,
            not_before: 0,
            resumed: false,
            slot_micros,
        };
        let unpaced = deliver(None);
        assert!(!unpaced.to_body().contains("slot"), "{}", unpaced.to_body());
        let paced = deliver(Some(1_700_000_000_123_456));
        assert_eq!(QueueMessage::from_body(&paced.to_body()).unwrap(), paced);
    }
}
