//! Batches: events of a batched subscription gathered into one signed POST.
//!
//! A batch is kept as a delivery record of its own (`Delivery::is_batch`), so claiming,
//! retrying, pausing, parking and resuming treat the batch as one unit exactly as they treat a
//! single delivery. Each event still has its own delivery record (its envelope `id`, its log),
//! which names the batch it joined; the batch lists its members in order.

use serde::{Deserialize, Serialize};

use crate::delivery::{Delivery, DeliveryId, DeliveryState};
use crate::ids::{prefixed_id, EventId};
use crate::RawJson;

prefixed_id!(BatchId, "bat_");

/// Bytes a member's envelope adds to a batch body beyond its payload: ids, type, timestamps,
/// workspace and source, generously.
pub const ENVELOPE_OVERHEAD_BYTES: usize = 1_024;

impl BatchId {
    /// The public id of the batch kept under delivery record `record` (same digits): the
    /// `webhook-id` and `id` its receiver sees, stable across its retries.
    pub fn of(record: &DeliveryId) -> Self {
        let hex = &record.as_str()[DeliveryId::PREFIX.len()..];
        Self(format!("{}{hex}", Self::PREFIX))
    }
}

/// One event of a batch, with what is needed to read it and to log it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMember {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_dedup_id: String,
    pub event_type: String,
}

impl BatchMember {
    pub fn of(delivery: &Delivery) -> Self {
        Self {
            delivery_id: delivery.id.clone(),
            event_id: delivery.event_id.clone(),
            event_dedup_id: delivery.event_dedup_id.clone(),
            event_type: delivery.event_type.clone(),
        }
    }
}

impl BatchMember {
    /// This member's own delivery, as the batch record `batch` sends it: its envelope `id`
    /// and log are the member's, its attempts the batch's.
    pub fn delivery_in(&self, batch: &Delivery) -> Delivery {
        Delivery {
            id: self.delivery_id.clone(),
            event_id: self.event_id.clone(),
            event_dedup_id: self.event_dedup_id.clone(),
            event_type: self.event_type.clone(),
            batch: Some(batch.id.clone()),
            is_batch: false,
            ..batch.clone()
        }
    }
}

/// What gathering one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gathered {
    /// The event joined batch `batch` as its `position`th member (1-based). `opened`: it was the
    /// first, so the batch's wait starts now. `sealed`: batches closed by this call (the one
    /// it filled, or the full one it could not join) whose sending is due now.
    Joined {
        batch: DeliveryId,
        position: u32,
        opened: bool,
        sealed: Vec<DeliveryId>,
    },
    /// A fan-out that ran before already put the event in `batch` (or delivered it alone).
    Already { batch: Option<DeliveryId> },
}

/// The room rule every store applies when an event asks to join the gathering batch, in the
/// same atomic write: one more member of `size` bytes fits beside `members` holding `bytes`.
/// An empty batch takes any one event, however large, so no event is refused.
pub fn has_room(
    members: u32,
    bytes: usize,
    size: usize,
    max_events: u32,
    max_bytes: usize,
) -> bool {
    members == 0 || (members < max_events && bytes + size <= max_bytes)
}

/// How many bytes `payload_len` adds to a batch body.
pub fn member_size(payload_len: usize) -> usize {
    payload_len + ENVELOPE_OVERHEAD_BYTES
}

impl Delivery {
    /// A new batch record opened by its first member, gathering until it is sealed.
    pub fn open_batch(first: &Delivery, now: chrono::DateTime<chrono::Utc>) -> Self {
        let hex = uuid::Uuid::now_v7().simple().to_string();
        Self {
            id: DeliveryId::parse(&format!("{}{hex}", DeliveryId::PREFIX))
                .expect("a UUID's simple form is 32 hex digits"),
            state: DeliveryState::Gathering,
            attempts: 0,
            completed: 0,
            batch: None,
            is_batch: true,
            created_at: now,
            updated_at: now,
            ..first.clone()
        }
    }

    /// This event's delivery as a member of batch `batch`.
    pub fn in_batch(mut self, batch: &DeliveryId) -> Self {
        self.batch = Some(batch.clone());
        self
    }
}

/// The body of a batch: `{"type": "batch", "id": "bat_…", "events": [envelope…]}`.
pub fn batch_body(id: &BatchId, envelopes: &[RawJson]) -> Result<RawJson, serde_json::Error> {
    let events: Vec<&serde_json::value::RawValue> = envelopes
        .iter()
        .map(RawJson::as_raw)
        .collect::<Result<_, _>>()?;
    RawJson::to_json(&serde_json::json!({"type": "batch", "id": id, "events": events}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_id_shares_its_record_digits_and_parses() {
        let record = DeliveryId::parse("msg_0123456789abcdef0123456789abcdef").unwrap();
        let id = BatchId::of(&record);
        assert_eq!(id.as_str(), "bat_0123456789abcdef0123456789abcdef");
        assert_eq!(BatchId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn room_counts_events_and_bytes_but_never_refuses_an_empty_batch() {
        assert!(has_room(0, 0, 5_000_000, 10, 1_000_000));
        assert!(has_room(9, 100, 100, 10, 1_000_000));
        assert!(!has_room(10, 100, 100, 10, 1_000_000));
        assert!(!has_room(3, 999_000, 2_000, 10, 1_000_000));
    }
}
