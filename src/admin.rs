//! Admin operations: create workspaces and API keys on whichever store is configured.

use chrono::Utc;
use hookline_shared::{ApiKey, StoreError, Workspace, WorkspaceId, WorkspaceStore};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("workspace name must be 1 to 128 characters")]
    InvalidName,
    #[error("{0:?} is not a workspace id (expected ws_ followed by 32 hex characters)")]
    InvalidWorkspaceId(String),
    #[error("workspace {0} does not exist")]
    UnknownWorkspace(WorkspaceId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A workspace just created, with its first API key in plain text (shown once).
#[derive(Debug, Clone)]
pub struct CreatedWorkspace {
    pub workspace: Workspace,
    pub api_key: ApiKey,
}

impl CreatedWorkspace {
    pub fn to_json(&self) -> Value {
        json!({
            "workspace_id": self.workspace.id,
            "name": self.workspace.name,
            "api_key": self.api_key.expose(),
        })
    }
}

pub async fn create_workspace<S: WorkspaceStore>(
    store: &S,
    name: &str,
) -> Result<CreatedWorkspace, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AdminError::InvalidName);
    }
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        name: name.to_owned(),
        created_at: Utc::now(),
    };
    store.create_workspace(&workspace).await?;
    let api_key = ApiKey::generate();
    store.add_api_key(&workspace.id, &api_key.hash()).await?;
    Ok(CreatedWorkspace { workspace, api_key })
}

/// Adds a key to an existing workspace and returns it in plain text (shown once).
pub async fn create_key<S: WorkspaceStore>(
    store: &S,
    workspace: &str,
) -> Result<(WorkspaceId, ApiKey), AdminError> {
    let id = WorkspaceId::parse(workspace)
        .ok_or_else(|| AdminError::InvalidWorkspaceId(workspace.to_owned()))?;
    if store.get_workspace(&id).await?.is_none() {
        return Err(AdminError::UnknownWorkspace(id));
    }
    let api_key = ApiKey::generate();
    store.add_api_key(&id, &api_key.hash()).await?;
    Ok((id, api_key))
}
