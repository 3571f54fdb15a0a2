//! Embedded adapter for provider connections: one row per connection, keyed by its id (what a
//! provider's delivery names) and indexed by workspace (what the notify API lists).

use rusqlite::{params, OptionalExtension};

use super::EmbeddedDb;
use crate::adapters::{connection_doc, connection_from_doc};
use crate::connection::{room_for_another, Connection};
use crate::error::StoreError;
use crate::ids::{ConnectionId, WorkspaceId};
use crate::ports::{ConnectionStore, Created};

impl ConnectionStore for EmbeddedDb {
    async fn create_connection(&self, connection: &Connection) -> Result<Created, StoreError> {
        let connection = connection.clone();
        self.call(move |c| {
            // Immediate: the count and the insert happen under one write lock.
            let tx = c.savepoint()?;
            let held: i64 = tx.query_row(
                "SELECT COUNT(*) FROM connections WHERE workspace_id = ?1",
                [connection.workspace_id.as_str()],
                |r| r.get(0),
            )?;
            if !room_for_another(usize::try_from(held).unwrap_or(usize::MAX)) {
                return Ok(Created::LimitReached);
            }
            tx.execute(
                "INSERT INTO connections (id, workspace_id, doc) VALUES (?1, ?2, ?3)",
                params![
                    connection.id.as_str(),
                    connection.workspace_id.as_str(),
                    connection_doc(&connection)
                ],
            )?;
            tx.commit()?;
            Ok(Created::Created)
        })
        .await
    }

    async fn get_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let doc: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT doc FROM connections WHERE id = ?1 AND workspace_id = ?2",
                    params![id.as_str(), ws.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        doc.as_deref().map(connection_from_doc).transpose()
    }

    async fn list_connections(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<Connection>, StoreError> {
        let ws = workspace.clone();
        let docs: Vec<String> = self
            .call(move |c| {
                let mut statement =
                    c.prepare("SELECT doc FROM connections WHERE workspace_id = ?1 ORDER BY id")?;
                let rows = statement.query_map([ws.as_str()], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            })
            .await?;
        docs.iter().map(|doc| connection_from_doc(doc)).collect()
    }

    async fn delete_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> Result<bool, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let deleted = self
            .call(move |c| {
                c.execute(
                    "DELETE FROM connections WHERE id = ?1 AND workspace_id = ?2",
                    params![id.as_str(), ws.as_str()],
                )
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn find_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let id = id.clone();
        let doc: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT doc FROM connections WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        doc.as_deref().map(connection_from_doc).transpose()
    }
}
