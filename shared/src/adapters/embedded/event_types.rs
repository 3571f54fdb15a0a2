//! Embedded adapter for custom event types.

use rusqlite::{params, OptionalExtension};

use super::EmbeddedDb;
use crate::adapters::{event_type_doc, event_type_from_doc};
use crate::custom_types::{room_for_another, CustomEventType, EventTypeName};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{Defined, EventTypeStore};

/// One row per type, keyed like the DynamoDB items: (workspace, name).
impl EventTypeStore for EmbeddedDb {
    async fn create_event_type(&self, custom: &CustomEventType) -> Result<Defined, StoreError> {
        let custom = custom.clone();
        self.call(move |c| {
            let ws = custom.workspace_id.as_str();
            // On the one writer thread: the name check, the count and the insert see no other
            // write in between.
            let tx = c.savepoint()?;
            let taken = tx
                .prepare("SELECT 1 FROM event_types WHERE workspace_id = ?1 AND name = ?2")?
                .exists(params![ws, custom.name.as_str()])?;
            if taken {
                return Ok(Defined::NameTaken);
            }
            let held: i64 = tx.query_row(
                "SELECT COUNT(*) FROM event_types WHERE workspace_id = ?1",
                [ws],
                |r| r.get(0),
            )?;
            if !room_for_another(usize::try_from(held).unwrap_or(usize::MAX)) {
                return Ok(Defined::LimitReached);
            }
            tx.execute(
                "INSERT INTO event_types (workspace_id, name, doc) VALUES (?1, ?2, ?3)",
                params![ws, custom.name.as_str(), event_type_doc(&custom)],
            )?;
            tx.commit()?;
            Ok(Defined::Created)
        })
        .await
    }

    async fn get_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<Option<CustomEventType>, StoreError> {
        let (ws, name) = (workspace.clone(), name.clone());
        let doc: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT doc FROM event_types WHERE workspace_id = ?1 AND name = ?2",
                    params![ws.as_str(), name.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        doc.map(|d| event_type_from_doc(&d)).transpose()
    }

    async fn list_event_types(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<CustomEventType>, StoreError> {
        let ws = workspace.clone();
        let rows: Vec<String> = self
            .call(move |c| {
                // BINARY collation: byte order, as DynamoDB sorts its sort keys.
                let mut stmt =
                    c.prepare("SELECT doc FROM event_types WHERE workspace_id = ?1 ORDER BY name")?;
                let rows = stmt.query_map([ws.as_str()], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()
            })
            .await?;
        rows.iter().map(|doc| event_type_from_doc(doc)).collect()
    }

    async fn delete_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<bool, StoreError> {
        let (ws, name) = (workspace.clone(), name.clone());
        self.call(move |c| {
            let deleted = c.execute(
                "DELETE FROM event_types WHERE workspace_id = ?1 AND name = ?2",
                params![ws.as_str(), name.as_str()],
            )?;
            Ok(deleted > 0)
        })
        .await
    }
}
