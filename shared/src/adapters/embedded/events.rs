//! Embedded adapter for accepted events, deduplicated per workspace, with their fan-out
//! queued in the same transaction.

use chrono::Utc;
use rusqlite::{params, OptionalExtension};

use super::queue::insert_message;
use super::{corrupt, parse_time, EmbeddedDb, EmbeddedQueue};
use crate::adapters::event_layout::{kind_from_layout, layout};
use crate::adapters::{ensure_event_fits, now_epoch_seconds};
use crate::error::StoreError;
use crate::expiry::is_live;
use crate::ids::{EventId, WorkspaceId};
use crate::ports::{EventStore, Inserted};
use crate::{Event, QueueMessage, RawJson};

/// The events of an [`EmbeddedDb`], with `outbox` (a queue of the same database) as their
/// outbox: an event and its fan-out message are written in one transaction, so a stored event
/// is always queued, and an acknowledged one both, durably.
#[derive(Clone)]
pub struct EmbeddedEvents {
    outbox: EmbeddedQueue,
}

impl EmbeddedEvents {
    pub fn new(outbox: EmbeddedQueue) -> Self {
        Self { outbox }
    }

    fn db(&self) -> &EmbeddedDb {
        self.outbox.db()
    }
}

impl EventStore for EmbeddedEvents {
    async fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> Result<Inserted, StoreError> {
        ensure_event_fits(event.payload.as_json(), &event.dedup_id)?;
        let event = event.clone();
        let outbox = self.outbox.name().to_owned();
        let inserted = self
            .db()
            .call(move |c| {
                let tx = c.savepoint()?;
                let existing: Option<(String, i64)> = tx
                    .prepare_cached(
                        "SELECT event_id, expires_at FROM events WHERE workspace_id = ?1 AND dedup_id = ?2",
                    )?
                    .query_row(params![event.workspace_id.as_str(), event.dedup_id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((event_id, old_expiry)) = existing {
                    if is_live(old_expiry, now_epoch_seconds()) {
                        let event_id = EventId::try_from(event_id).map_err(corrupt("event id"))?;
                        return Ok(Inserted::Existing(event_id));
                    }
                }
                let stored = layout(&event);
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO events (workspace_id, dedup_id, event_id, category, event_type,
                        timestamp, received_at, should_process, payload, expires_at, meta)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    event.workspace_id.as_str(),
                    event.dedup_id,
                    event.id.as_str(),
                    stored.category,
                    stored.event_type,
                    event.timestamp.to_rfc3339(),
                    event.received_at.to_rfc3339(),
                    event.should_process,
                    event.payload.as_json(),
                    expires_at,
                    stored.meta,
                ])?;
                let (message, delay) = QueueMessage::fan_out(&event, Utc::now());
                insert_message(&tx, &outbox, &message.to_body(), delay)?;
                tx.commit()?;
                Ok::<_, StoreError>(Inserted::New)
            })
            .await?;
        if inserted == Inserted::New {
            self.outbox.notify_sent();
        }
        Ok(inserted)
    }

    async fn get_event_by_dedup(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        self.db()
            .select_event(workspace, "dedup_id", dedup_id.to_owned())
            .await
    }
}

#[cfg(feature = "test-support")]
impl crate::test_support::EventLookup for EmbeddedEvents {
    async fn get_event(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        self.db()
            .select_event(workspace, "event_id", event_id.to_string())
            .await
    }
}

type EventRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    String,
    Option<String>,
);

impl EmbeddedDb {
    /// One unexpired event of the workspace whose `column` (a fixed column name) equals `key`.
    async fn select_event(
        &self,
        workspace: &WorkspaceId,
        column: &'static str,
        key: String,
    ) -> Result<Option<Event>, StoreError> {
        let ws = workspace.clone();
        let row: Option<EventRow> = self
            .call(move |c| {
                // `expires_at >= now` is `expiry::is_live`.
                let sql = format!(
                    "SELECT event_id, dedup_id, category, event_type, timestamp, received_at, should_process, payload, meta
                     FROM events WHERE {column} = ?1 AND workspace_id = ?2 AND expires_at >= ?3"
                );
                c.query_row(&sql, params![key, ws.as_str(), now_epoch_seconds()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
                })
                .optional()
            })
            .await?;
        let Some((
            id,
            dedup_id,
            category,
            event_type,
            timestamp,
            received_at,
            should_process,
            payload,
            meta,
        )) = row
        else {
            return Ok(None);
        };
        let kind = kind_from_layout(&category, event_type, meta.as_deref())?;
        Ok(Some(Event {
            id: EventId::try_from(id).map_err(corrupt("event id"))?,
            workspace_id: workspace.clone(),
            dedup_id,
            event_type: kind.event_type,
            source: kind.source,
            affect: kind.affect,
            deliver_at: kind.deliver_at,
            timestamp: parse_time(&timestamp)?,
            received_at: parse_time(&received_at)?,
            should_process,
            payload: RawJson::from_json(payload)
                .map_err(|e| StoreError::Corrupt(format!("payload: {e}")))?,
        }))
    }
}
