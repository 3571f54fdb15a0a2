//! API key resolution with a short-lived cache, so a warm Lambda skips the lookup.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::ids::{ApiKey, ApiKeyHash, WorkspaceId};
use crate::ports::WorkspaceStore;

/// Bounds memory; when full the cache is simply emptied.
const MAX_ENTRIES: usize = 10_000;

/// Caches only successful lookups: an unknown key is looked up again every time, so a key
/// created a moment ago works at once. A revoked key keeps working for at most `ttl`.
pub struct KeyCache {
    ttl: Duration,
    /// By the key's SHA-256, so a hit costs one digest and no allocation.
    entries: Mutex<HashMap<[u8; 32], (WorkspaceId, Instant)>>,
}

impl KeyCache {
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub async fn resolve<S: WorkspaceStore>(
        &self,
        store: &S,
        key: &ApiKey,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        let digest = key.digest();
        if let Some(hit) = self.cached(&digest) {
            return Ok(Some(hit));
        }
        let found = store
            .workspace_for_key(&ApiKeyHash::of_digest(&digest))
            .await?;
        if let Some(workspace) = &found {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(digest, (workspace.clone(), Instant::now()));
        }
        Ok(found)
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<WorkspaceId> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(digest)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(ws, _)| ws.clone())
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TTL)
    }
}
