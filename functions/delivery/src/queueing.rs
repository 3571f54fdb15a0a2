//! Putting attempts on the deliveries queue, with waits longer than one message delay chained.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hookline_shared::delivery::DeliveryId;
use hookline_shared::delivery_control::Slot;
use hookline_shared::queue_message::MAX_QUEUE_DELAY;
use hookline_shared::{Queue as _, QueueMessage, SubscriptionId, WorkspaceId};

use crate::{Ports, Worker, WorkerError};

/// One queued attempt, as its `Deliver` message carries it.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    /// Absent only from messages queued before it was carried; those are not admitted.
    pub subscription: Option<SubscriptionId>,
    pub attempt: u32,
    /// Epoch seconds before which the attempt is not made.
    pub not_before: i64,
    /// Queued by a resume rather than by the schedule or a recheck.
    pub resumed: bool,
    /// The send slot reserved before the attempt was requeued to wait for it.
    pub slot: Option<Slot>,
}

impl<P: Ports> Worker<P> {
    /// Queues attempt `attempt`, not to be made until `wait` after `now`. The message delay is
    /// capped at SQS's 15 minutes; an attempt that arrives early re-queues itself.
    pub(crate) async fn requeue(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        subscription: &SubscriptionId,
        attempt: u32,
        now: DateTime<Utc>,
        wait: Duration,
    ) -> Result<(), WorkerError> {
        let queued = Queued {
            subscription: Some(subscription.clone()),
            attempt,
            not_before: later(now, wait),
            resumed: false,
            slot: None,
        };
        self.queue_attempt(workspace, id, queued, wait).await
    }

    pub(crate) async fn queue_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        queued: Queued,
        wait: Duration,
    ) -> Result<(), WorkerError> {
        let message = QueueMessage::Deliver {
            workspace_id: workspace.clone(),
            delivery_id: id.clone(),
            subscription_id: queued.subscription,
            attempt: queued.attempt,
            not_before: queued.not_before,
            resumed: queued.resumed,
            slot_micros: queued.slot.map(|slot| slot.0),
        };
        self.ports
            .queue()
            .send(&message.to_body(), wait.min(MAX_QUEUE_DELAY))
            .await?;
        Ok(())
    }
}

fn later(now: DateTime<Utc>, after: Duration) -> i64 {
    (now + chrono::Duration::from_std(after).unwrap_or_default()).timestamp()
}
