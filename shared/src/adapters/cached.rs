//! A workspace store that keeps records once read, for workers that read them per attempt.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::StoreError;
use crate::ids::{ApiKeyHash, WorkspaceId};
use crate::ports::WorkspaceStore;
use crate::Workspace;

/// Bounds memory; when full the cache is simply emptied.
const MAX_ENTRIES: usize = 10_000;

/// Workspace records never change after creation (no port renames or removes one), so a warm
/// delivery worker reads each once instead of once per attempt. Key lookups pass through.
pub struct CachedWorkspaces<W> {
    inner: W,
    records: Mutex<HashMap<WorkspaceId, Workspace>>,
}

impl<W> CachedWorkspaces<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, id: &WorkspaceId) -> Option<Workspace> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.get(id).cloned()
    }
}

impl<W: WorkspaceStore> WorkspaceStore for CachedWorkspaces<W> {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        self.inner.create_workspace(workspace).await
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        if let Some(hit) = self.cached(id) {
            return Ok(Some(hit));
        }
        let found = self.inner.get_workspace(id).await?;
        if let Some(workspace) = &found {
            let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
            if records.len() >= MAX_ENTRIES {
                records.clear();
            }
            records.insert(id.clone(), workspace.clone());
        }
        Ok(found)
    }

    async fn add_api_key(
        &self,
        workspace: &WorkspaceId,
        key: &ApiKeyHash,
    ) -> Result<(), StoreError> {
        self.inner.add_api_key(workspace, key).await
    }

    async fn workspace_for_key(&self, key: &ApiKeyHash) -> Result<Option<WorkspaceId>, StoreError> {
        self.inner.workspace_for_key(key).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// One workspace; counts the reads that reach it.
    struct Counting {
        workspace: Workspace,
        reads: AtomicUsize,
    }

    impl WorkspaceStore for Counting {
        async fn create_workspace(&self, _: &Workspace) -> Result<(), StoreError> {
            Ok(())
        }

        async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Ok((id == &self.workspace.id).then(|| self.workspace.clone()))
        }

        async fn add_api_key(&self, _: &WorkspaceId, _: &ApiKeyHash) -> Result<(), StoreError> {
            Ok(())
        }

        async fn workspace_for_key(
            &self,
            _: &ApiKeyHash,
        ) -> Result<Option<WorkspaceId>, StoreError> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn a_found_workspace_is_read_once_and_a_missing_one_every_time() {
        let workspace = Workspace {
            id: WorkspaceId::generate(),
            name: "acme".into(),
            created_at: chrono::Utc::now(),
        };
        let cached = CachedWorkspaces::new(Counting {
            workspace: workspace.clone(),
            reads: AtomicUsize::new(0),
        });
        for _ in 0..3 {
            let found = cached.get_workspace(&workspace.id).await.unwrap();
            assert_eq!(found, Some(workspace.clone()));
        }
        assert_eq!(cached.inner.reads.load(Ordering::Relaxed), 1);
        let unknown = WorkspaceId::generate();
        for _ in 0..2 {
            assert_eq!(cached.get_workspace(&unknown).await.unwrap(), None);
        }
        assert_eq!(cached.inner.reads.load(Ordering::Relaxed), 3);
    }
}
