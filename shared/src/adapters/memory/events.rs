//! In-memory accepted events, deduplicated per workspace.

use std::collections::HashMap;
use std::sync::Arc;

use super::Metered;
use crate::adapters::{ensure_event_fits, now_epoch_seconds};
use crate::error::StoreError;
use crate::expiry::is_live;
use crate::ids::{EventId, WorkspaceId};
use crate::ports::{EventStore, ExistingEvent, Inserted};
use crate::Event;

#[derive(Debug)]
struct Stored {
    event: Event,
    queued: bool,
    expires_at: i64,
}

/// Events by (workspace, dedup id).
/// Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryEvents(Arc<Metered<HashMap<(WorkspaceId, String), Stored>>>);

metered_store!(MemoryEvents);

impl MemoryEvents {
    /// A scan: only tests read events by id.
    fn live(&self, workspace: &WorkspaceId, hit: impl Fn(&Event) -> bool) -> Option<Event> {
        let now = now_epoch_seconds();
        self.0.call(|rows| {
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
        self.0.call(|rows| {
            let key = (event.workspace_id.clone(), event.dedup_id.clone());
            if let Some(row) = rows.get(&key).filter(|r| is_live(r.expires_at, now)) {
                return Ok(Inserted::Existing(ExistingEvent {
                    event_id: row.event.id.clone(),
                    queued: row.queued,
                }));
            }
            let stored = Stored {
                event: event.clone(),
                queued: false,
                expires_at,
            };
            rows.insert(key, stored);
            Ok(Inserted::New)
        })
    }

    async fn mark_queued(&self, workspace: &WorkspaceId, dedup_id: &str) -> Result<(), StoreError> {
        self.0.call(|rows| {
            let row = rows
                .get_mut(&(workspace.clone(), dedup_id.to_owned()))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("no event with dedup id {dedup_id} to mark queued"))
                })?;
            row.queued = true;
            Ok(())
        })
    }

    async fn get_event_by_dedup(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        let now = now_epoch_seconds();
        self.0.call(|rows| {
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
