//! In-memory accepted events, deduplicated per workspace.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;

use super::{CallMeter, MemoryQueue, Metered};
use crate::adapters::{ensure_event_fits, now_epoch_seconds};
use crate::error::StoreError;
use crate::expiry::is_live;
use crate::ids::{EventId, WorkspaceId};
use crate::ports::{EventStore, Inserted};
use crate::{Event, QueueMessage};

#[derive(Debug)]
struct Stored {
    event: Event,
    expires_at: i64,
}

/// Events by (workspace, dedup id), with `outbox` the queue each new event's fan-out is put
/// on in the same call. Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryEvents {
    rows: Arc<Metered<HashMap<(WorkspaceId, String), Stored>>>,
    outbox: MemoryQueue,
}

impl Default for MemoryEvents {
    fn default() -> Self {
        Self::metered(CallMeter::new())
    }
}

impl MemoryEvents {
    /// Events with an outbox of their own (see [`MemoryEvents::outbox`]).
    pub fn metered(meter: Arc<CallMeter>) -> Self {
        Self {
            rows: Arc::new(Metered::new(meter)),
            outbox: MemoryQueue::default(),
        }
    }

    /// The same events, their fan-out put on `queue` from now on.
    pub fn with_outbox(mut self, queue: MemoryQueue) -> Self {
        self.outbox = queue;
        self
    }

    /// Where new events' fan-out messages go.
    pub fn outbox(&self) -> &MemoryQueue {
        &self.outbox
    }

    /// A scan: only tests read events by id.
    fn live(&self, workspace: &WorkspaceId, hit: impl Fn(&Event) -> bool) -> Option<Event> {
        let now = now_epoch_seconds();
        self.rows.call(|rows| {
            rows.iter()
                .find(|((ws, _), row)| {
                    ws == workspace && is_live(row.expires_at, now) && hit(&row.event)
                })
                .map(|(_, row)| row.event.clone())
        })
    }
}

impl EventStore for MemoryEvents {
    async fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> Result<Inserted, StoreError> {
        ensure_event_fits(event.payload.as_json(), &event.dedup_id)?;
        let now = now_epoch_seconds();
        self.rows.call(|rows| {
            let key = (event.workspace_id.clone(), event.dedup_id.clone());
            if let Some(row) = rows.get(&key).filter(|r| is_live(r.expires_at, now)) {
                return Ok(Inserted::Existing(row.event.id.clone()));
            }
            let stored = Stored {
                event: event.clone(),
                expires_at,
            };
            rows.insert(key, stored);
            // Under the rows' lock: the event and its message appear together.
            let (message, delay) = QueueMessage::fan_out(event, Utc::now());
            self.outbox.push(&message.to_body(), delay);
            Ok(Inserted::New)
        })
    }

    async fn get_event_by_dedup(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        let now = now_epoch_seconds();
        self.rows.call(|rows| {
            Ok(rows
                .get(&(workspace.clone(), dedup_id.to_owned()))
                .filter(|row| is_live(row.expires_at, now))
                .map(|row| row.event.clone()))
        })
    }
}

impl crate::test_support::EventLookup for MemoryEvents {
    async fn get_event(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        Ok(self.live(workspace, |e| &e.id == event_id))
    }
}
