//! Domain types: workspaces, ingest categories, accepted events and queue messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::ids::{EventId, WorkspaceId};

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// The `{eventType}` path segment of the generic ingest route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Emails,
    Calls,
    Crm,
    Social,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Emails,
        Category::Calls,
        Category::Crm,
        Category::Social,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Emails => "emails",
            Category::Calls => "calls",
            Category::Crm => "crm",
            Category::Social => "social",
        }
    }

    /// The body `eventType` values this category accepts.
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            Category::Emails => &[
                "sent",
                "reply",
                "opened",
                "clicked",
                "bounced",
                "unsubscribed",
            ],
            Category::Calls => &["transcript", "scheduled", "completed", "missed"],
            Category::Crm => &[
                "opportunity_created",
                "deal_won",
                "deal_lost",
                "meeting_booked",
            ],
            Category::Social => &[
                "connection_sent",
                "connection_accepted",
                "message_sent",
                "message_received",
            ],
        }
    }

    /// Whether analytics processes this sub-type; the rest are stored but not processed.
    pub fn should_process(self, event_type: &str) -> bool {
        match self {
            Category::Emails => matches!(event_type, "sent" | "reply"),
            Category::Calls => event_type == "transcript",
            Category::Crm | Category::Social => true,
        }
    }

    pub fn valid_values() -> String {
        Self::ALL.map(Category::as_str).join(", ")
    }
}

/// One accepted input event, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    pub dedup_id: String,
    pub category: Category,
    /// The body's `eventType`, e.g. `sent`.
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub should_process: bool,
    pub payload: RawJson,
}

/// JSON text kept as written (an accepted event's normalized body, a delivered envelope): stored,
/// read back and sent as it is, so no stage after validation pays to parse or rebuild it.
/// Every constructor either checks the text or builds it from checked JSON.
#[derive(Debug, Clone)]
pub struct RawJson(String);

impl RawJson {
    /// Serializes `value`.
    pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self)
    }

    /// Checks that `text` is one JSON value (stores hand back what they were given).
    pub fn from_json(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<&RawValue>(&text)?;
        Ok(Self(text))
    }

    /// Text the caller assembled from checked JSON fragments; tests parse what it builds.
    pub(crate) fn assembled(text: String) -> Self {
        debug_assert!(
            serde_json::from_str::<&RawValue>(&text).is_ok(),
            "assembled JSON is valid: {text}"
        );
        Self(text)
    }

    pub fn from_value(value: &Value) -> Self {
        Self::to_json(value).expect("a Value always serializes")
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The text as a `RawValue`, to embed in other JSON (one scan, no parse into values).
    /// Every constructor keeps the text valid, so an error here is a bug, reported not panicked.
    pub fn as_raw(&self) -> Result<&RawValue, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The text as a `Value`; `None` only for text a `Value` cannot hold (a number beyond `f64`
    /// or an unpaired surrogate escape, which JSON's grammar allows and ingest keeps).
    pub fn to_value(&self) -> Option<Value> {
        serde_json::from_str(&self.0).ok()
    }
}

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_raw()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self(Box::<str>::from(raw).into_string()))
    }
}

/// Equal when they hold the same JSON value, whatever the key order or spacing.
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
            || matches!((self.to_value(), other.to_value()), (Some(a), Some(b)) if a == b)
    }
}

impl Event {
    /// The catalog name, `{category}.{eventType}` (e.g. `emails.sent`).
    pub fn full_type(&self) -> String {
        format!("{}.{}", self.category.as_str(), self.event_type)
    }
}

/// What travels on the events queue: a reference, so the message stays small whatever the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    EventAccepted {
        workspace_id: WorkspaceId,
        event_id: EventId,
        dedup_id: String,
    },
    /// Attempt number `attempt` of one delivery, not before `not_before` (epoch seconds):
    /// SQS caps a message delay at 15 minutes, so longer waits are chained.
    Deliver {
        workspace_id: WorkspaceId,
        delivery_id: crate::delivery::DeliveryId,
        attempt: u32,
        not_before: i64,
        /// Queued by a resume, beside the recheck the parked delivery already has: if the
        /// subscription is paused again, this copy only parks, so one recheck stays queued.
        #[serde(default, skip_serializing_if = "is_false")]
        resumed: bool,
    },
    /// A paused subscription was enabled again: queue the attempts its parked deliveries wait
    /// to make, a page at a time, from the first delivery id after `after`.
    Resume {
        workspace_id: WorkspaceId,
        subscription_id: crate::ids::SubscriptionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<crate::delivery::DeliveryId>,
    },
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl QueueMessage {
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
    fn should_process_follows_the_spec_table() {
        assert!(Category::Emails.should_process("sent"));
        assert!(Category::Emails.should_process("reply"));
        assert!(!Category::Emails.should_process("opened"));
        assert!(Category::Calls.should_process("transcript"));
        assert!(!Category::Calls.should_process("missed"));
        assert!(Category::Crm.should_process("deal_lost"));
        assert!(Category::Social.should_process("connection_sent"));
    }

    #[test]
    fn queue_message_round_trips() {
        let msg = QueueMessage::EventAccepted {
            workspace_id: WorkspaceId::generate(),
            event_id: EventId::generate(),
            dedup_id: "abc".into(),
        };
        assert_eq!(QueueMessage::from_body(&msg.to_body()).unwrap(), msg);
        let resume = QueueMessage::Resume {
            workspace_id: WorkspaceId::generate(),
            subscription_id: crate::ids::SubscriptionId::generate(),
            after: None,
        };
        assert!(!resume.to_body().contains("after"), "{}", resume.to_body());
        assert_eq!(QueueMessage::from_body(&resume.to_body()).unwrap(), resume);
    }
}
