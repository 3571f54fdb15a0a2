//! Accepting an event, whichever way it came in (the ingest route, the publish API, a
//! provider connection): stored once per dedup id, then queued for fan-out.
//!
//! The caller is answered only after both: a 2xx means the event is stored and on its way. A
//! request that fails after storing gets a 5xx; its retry finds the event stored but not yet
//! queued and queues it, so nothing accepted is ever stranded.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{QueueError, StoreError};
use crate::ids::{EventId, WorkspaceId};
use crate::ports::{EventStore, Inserted, Queue};
use crate::queue_message::{QueueMessage, MAX_QUEUE_DELAY};
use crate::Event;

/// What accepting an event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    /// The stored event's id: this one's if new, the original's if a duplicate.
    pub event_id: EventId,
    pub duplicate: bool,
}

/// Stores `event` unless its dedup id is taken within `dedup_window`, and queues its fan-out
/// (held until its `deliver_at`). One store call for a duplicate.
pub async fn accept<E, Q, Err>(
    events: &E,
    queue: &Q,
    event: &Event,
    dedup_window: Duration,
) -> Result<Intake, Err>
where
    E: EventStore,
    Q: Queue,
    Err: From<StoreError> + From<QueueError>,
{
    let expires_at = event.received_at.timestamp() + dedup_window.as_secs() as i64;
    let (event_id, duplicate) = match events.insert_if_absent(event, expires_at).await? {
        Inserted::New => (event.id.clone(), false),
        Inserted::Existing(existing) if existing.queued => (existing.event_id, true),
        // Stored earlier but never queued (that request got a 5xx): this retry queues it.
        Inserted::Existing(existing) => (existing.event_id, false),
    };
    if !duplicate {
        let not_before = event.deliver_at.filter(|at| *at > event.received_at);
        enqueue::<E, Q, Err>(
            events,
            queue,
            &event.workspace_id,
            &event_id,
            &event.dedup_id,
            not_before,
        )
        .await?;
    }
    Ok(Intake {
        event_id,
        duplicate,
    })
}

async fn enqueue<E, Q, Err>(
    events: &E,
    queue: &Q,
    workspace_id: &WorkspaceId,
    event_id: &EventId,
    dedup_id: &str,
    not_before: Option<DateTime<Utc>>,
) -> Result<(), Err>
where
    E: EventStore,
    Q: Queue,
    Err: From<StoreError> + From<QueueError>,
{
    let message = QueueMessage::EventAccepted {
        workspace_id: workspace_id.clone(),
        event_id: event_id.clone(),
        dedup_id: dedup_id.to_owned(),
        not_before: not_before.map(|at| at.timestamp()),
    };
    let delay = not_before
        .and_then(|at| (at - Utc::now()).to_std().ok())
        .unwrap_or_default()
        .min(MAX_QUEUE_DELAY);
    queue.send(&message.to_body(), delay).await?;
    // The event is queued either way; a failed mark only means a retry may queue it twice,
    // which delivery absorbs by delivery id.
    if let Err(err) = events.mark_queued(workspace_id, dedup_id).await {
        tracing::warn!(%workspace_id, %event_id, error = %err, "event queued but not marked queued");
    }
    Ok(())
}
