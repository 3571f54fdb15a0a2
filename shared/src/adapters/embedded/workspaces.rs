//! Embedded adapter for workspaces and the API keys that resolve to them.

use chrono::Utc;
use rusqlite::{params, OptionalExtension};

use super::{corrupt, parse_time, EmbeddedDb};
use crate::error::StoreError;
use crate::ids::{ApiKeyHash, WorkspaceId};
use crate::ports::WorkspaceStore;
use crate::Workspace;

impl WorkspaceStore for EmbeddedDb {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let ws = workspace.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![ws.id.as_str(), ws.name, ws.created_at.to_rfc3339()],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        let key = id.clone();
        let row: Option<(String, String)> = self
            .call(move |c| {
                c.query_row(
                    "SELECT name, created_at FROM workspaces WHERE id = ?1",
                    [key.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        let Some((name, created_at)) = row else {
            return Ok(None);
        };
        Ok(Some(Workspace {
            id: id.clone(),
            name,
            created_at: parse_time(&created_at)?,
        }))
    }

    async fn add_api_key(
        &self,
        workspace: &WorkspaceId,
        key: &ApiKeyHash,
    ) -> Result<(), StoreError> {
        let (ws, key) = (workspace.clone(), key.clone());
        self.call(move |c| {
            c.execute(
                "INSERT INTO api_keys (key_hash, workspace_id, created_at) VALUES (?1, ?2, ?3)",
                params![key.as_str(), ws.as_str(), Utc::now().to_rfc3339()],
            )?;
            Ok(())
        })
        .await
    }

    async fn workspace_for_key(&self, key: &ApiKeyHash) -> Result<Option<WorkspaceId>, StoreError> {
        let key = key.clone();
        let raw: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT workspace_id FROM api_keys WHERE key_hash = ?1",
                    [key.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        raw.map(|r| WorkspaceId::try_from(r).map_err(corrupt("workspace id")))
            .transpose()
    }
}
