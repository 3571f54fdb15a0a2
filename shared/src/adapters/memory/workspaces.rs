//! In-memory workspaces and the API keys that resolve to them.

use std::collections::HashMap;
use std::sync::Arc;

use super::Metered;
use crate::error::StoreError;
use crate::ids::{ApiKeyHash, WorkspaceId};
use crate::ports::WorkspaceStore;
use crate::Workspace;

#[derive(Debug, Default)]
struct State {
    workspaces: HashMap<WorkspaceId, Workspace>,
    keys: HashMap<ApiKeyHash, WorkspaceId>,
}

/// Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryWorkspaces(Arc<Metered<State>>);

metered_store!(MemoryWorkspaces);

fn exists(what: &str) -> StoreError {
    StoreError::Unavailable(format!("{what} already exists"))
}

impl WorkspaceStore for MemoryWorkspaces {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        self.0.call(|s| {
            if s.workspaces.contains_key(&workspace.id) {
                return Err(exists("workspace"));
            }
            s.workspaces.insert(workspace.id.clone(), workspace.clone());
            Ok(())
        })
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        self.0.call(|s| Ok(s.workspaces.get(id).cloned()))
    }

    async fn add_api_key(
        &self,
        workspace: &WorkspaceId,
        key: &ApiKeyHash,
    ) -> Result<(), StoreError> {
        self.0.call(|s| {
            if s.keys.contains_key(key) {
                return Err(exists("API key"));
            }
            s.keys.insert(key.clone(), workspace.clone());
            Ok(())
        })
    }

    async fn workspace_for_key(&self, key: &ApiKeyHash) -> Result<Option<WorkspaceId>, StoreError> {
        self.0.call(|s| Ok(s.keys.get(key).cloned()))
    }
}
