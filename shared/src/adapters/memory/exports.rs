//! In-memory export jobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

use super::Metered;
use crate::error::StoreError;
use crate::export::{ExportJob, ExportJobStore, Opened};
use crate::ids::{ExportJobId, WorkspaceId};

/// Jobs by (workspace, id). Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryExports(Arc<Metered<BTreeMap<(WorkspaceId, ExportJobId), ExportJob>>>);

metered_store!(MemoryExports);

impl ExportJobStore for MemoryExports {
    async fn create_job(&self, job: &ExportJob) -> Result<Opened, StoreError> {
        let now = Utc::now();
        self.0.call(|jobs| {
            let workspace = job.workspace_id.clone();
            let holder = jobs
                .iter()
                .find(|((ws, _), held)| *ws == workspace && held.holds_workspace(now));
            if let Some(((_, id), _)) = holder {
                return Ok(Opened::Busy(id.clone()));
            }
            jobs.insert((workspace, job.id.clone()), job.clone());
            Ok(Opened::Opened)
        })
    }

    async fn get_job(
        &self,
        workspace: &WorkspaceId,
        id: &ExportJobId,
    ) -> Result<Option<ExportJob>, StoreError> {
        self.0
            .call(|jobs| Ok(jobs.get(&(workspace.clone(), id.clone())).cloned()))
    }

    async fn replace_job(
        &self,
        current: &ExportJob,
        updated: &ExportJob,
    ) -> Result<bool, StoreError> {
        self.0.call(|jobs| {
            let key = (current.workspace_id.clone(), current.id.clone());
            match jobs.get_mut(&key) {
                Some(stored) if stored.version == current.version => {
                    *stored = updated.clone();
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}
