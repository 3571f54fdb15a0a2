//! Accepting an event, whichever way it came in (the ingest route, the publish API, a
//! provider connection): stored once per dedup id, and its fan-out handed on in that same
//! write.
//!
//! One store call, new or duplicate. The store's outbox carries the fan-out (the events
//! table's stream on DynamoDB, the events queue in the same transaction locally), so a 2xx
//! means the event is stored and on its way, and a 5xx means nothing was stored: there is no
//! event that is stored but not yet queued.

use std::time::Duration;

use crate::error::StoreError;
use crate::ids::EventId;
use crate::ports::{EventStore, Inserted};
use crate::Event;

/// What accepting an event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    /// The stored event's id: this one's if new, the original's if a duplicate.
    pub event_id: EventId,
    pub duplicate: bool,
}

/// Stores `event` unless its dedup id is taken within `dedup_window`; the store queues its
/// fan-out (held until its `deliver_at`) with it.
pub async fn accept<E, Err>(
    events: &E,
    event: &Event,
    dedup_window: Duration,
) -> Result<Intake, Err>
where
    E: EventStore,
    Err: From<StoreError>,
{
    let expires_at = event.received_at.timestamp() + dedup_window.as_secs() as i64;
    Ok(match events.insert_if_absent(event, expires_at).await? {
        Inserted::New => Intake {
            event_id: event.id.clone(),
            duplicate: false,
        },
        Inserted::Existing(event_id) => Intake {
            event_id,
            duplicate: true,
        },
    })
}
