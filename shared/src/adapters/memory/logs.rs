//! In-memory delivery logs, one per attempt.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Metered;
use crate::adapters::now_epoch_seconds;
use crate::delivery::{log_key_range, DeliveryLog};
use crate::error::StoreError;
use crate::expiry::is_live;
use crate::ids::WorkspaceId;
use crate::ports::{LogQuery, LogStore};

/// Logs by (workspace, sort key), as the logs table keys them.
/// Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryLogs(Arc<Metered<BTreeMap<(WorkspaceId, String), DeliveryLog>>>);

metered_store!(MemoryLogs);

impl LogStore for MemoryLogs {
    async fn append_log(&self, log: &DeliveryLog) -> Result<(), StoreError> {
        self.0.call(|logs| {
            logs.insert((log.workspace_id.clone(), log.sort_key()), log.clone());
            Ok(())
        })
    }

    async fn get_log(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<DeliveryLog>, StoreError> {
        let now = now_epoch_seconds();
        self.0.call(|logs| {
            Ok(logs
                .iter()
                .find(|((ws, _), log)| ws == workspace && log.id == id)
                .map(|(_, log)| log)
                .filter(|log| is_live(log.expires_at, now))
                .cloned())
        })
    }

    async fn query_logs(
        &self,
        workspace: &WorkspaceId,
        query: &LogQuery,
        max: usize,
    ) -> Result<Vec<DeliveryLog>, StoreError> {
        let (lower, upper) = log_key_range(query.from, query.to);
        let now = now_epoch_seconds();
        self.0.call(|logs| {
            let range = (workspace.clone(), lower)..=(workspace.clone(), upper);
            Ok(logs
                .range(range)
                .rev()
                .map(|(_, log)| log)
                .filter(|log| is_live(log.expires_at, now))
                .filter(|log| {
                    let wanted = query.subscription.as_ref();
                    wanted.is_none_or(|s| &log.subscription_id == s)
                })
                .take(max)
                .cloned()
                .collect())
        })
    }
}
