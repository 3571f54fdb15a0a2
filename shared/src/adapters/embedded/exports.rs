//! Embedded adapter for export jobs, and the download tokens of local mode's files.
//!
//! A job row carries `holds_until` (epoch ms, from [`ExportJob::holds_workspace_until`]), so
//! "does another job hold this workspace" is one indexed read inside the same write.

use rusqlite::{params, OptionalExtension as _};

use super::EmbeddedDb;
use crate::error::StoreError;
use crate::export::{ExportJob, ExportJobStore, Opened};
use crate::ids::{ExportJobId, WorkspaceId};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS export_jobs (
    workspace_id TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    holds_until INTEGER, expires_at INTEGER NOT NULL, PRIMARY KEY (workspace_id, id));
CREATE INDEX IF NOT EXISTS export_jobs_holding ON export_jobs (workspace_id, holds_until);
CREATE TABLE IF NOT EXISTS export_downloads (
    token_hash TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, job_id TEXT NOT NULL,
    path TEXT NOT NULL, content_type TEXT NOT NULL, expires_at INTEGER NOT NULL);
";

fn holds_until(job: &ExportJob) -> Option<i64> {
    job.holds_workspace_until().map(|t| t.timestamp_millis())
}

fn doc(job: &ExportJob) -> String {
    serde_json::to_string(job).expect("jobs serialize")
}

impl ExportJobStore for EmbeddedDb {
    async fn create_job(&self, job: &ExportJob) -> Result<Opened, StoreError> {
        let job = job.clone();
        self.call(move |c| {
            let now = chrono::Utc::now().timestamp_millis();
            let holder: Option<String> = c
                .query_row(
                    "SELECT id FROM export_jobs WHERE workspace_id = ?1 AND holds_until > ?2 LIMIT 1",
                    params![job.workspace_id.as_str(), now],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(holder) = holder {
                let id = ExportJobId::parse(&holder)
                    .ok_or_else(|| StoreError::Corrupt(format!("export job id {holder:?}")))?;
                return Ok(Opened::Busy(id));
            }
            c.execute(
                "INSERT INTO export_jobs (workspace_id, id, version, doc, holds_until, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    job.workspace_id.as_str(),
                    job.id.as_str(),
                    job.version as i64,
                    doc(&job),
                    holds_until(&job),
                    job.record_expires_at()
                ],
            )?;
            Ok(Opened::Opened)
        })
        .await
    }

    async fn get_job(
        &self,
        workspace: &WorkspaceId,
        id: &ExportJobId,
    ) -> Result<Option<ExportJob>, StoreError> {
        let (workspace, id) = (workspace.clone(), id.clone());
        let doc: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT doc FROM export_jobs WHERE workspace_id = ?1 AND id = ?2 AND expires_at >= ?3",
                    params![workspace.as_str(), id.as_str(), chrono::Utc::now().timestamp()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        doc.map(|doc| {
            serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(format!("export job: {e}")))
        })
        .transpose()
    }

    async fn replace_job(
        &self,
        current: &ExportJob,
        updated: &ExportJob,
    ) -> Result<bool, StoreError> {
        let (version, updated) = (current.version, updated.clone());
        self.call(move |c| {
            let changed = c.execute(
                "UPDATE export_jobs SET version = ?1, doc = ?2, holds_until = ?3
                 WHERE workspace_id = ?4 AND id = ?5 AND version = ?6",
                params![
                    updated.version as i64,
                    doc(&updated),
                    holds_until(&updated),
                    updated.workspace_id.as_str(),
                    updated.id.as_str(),
                    version as i64
                ],
            )?;
            Ok(changed == 1)
        })
        .await
    }
}

/// A local export file and who may fetch it until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDownload {
    pub workspace_id: WorkspaceId,
    pub job_id: ExportJobId,
    pub path: String,
    pub content_type: String,
    /// Epoch seconds.
    pub expires_at: i64,
}

impl EmbeddedDb {
    /// Files `download` under the hash of its link's token (the token itself is never stored).
    pub async fn add_download(
        &self,
        token_hash: &str,
        download: &StoredDownload,
    ) -> Result<(), StoreError> {
        let (hash, d) = (token_hash.to_owned(), download.clone());
        self.call(move |c| {
            c.execute(
                "INSERT INTO export_downloads (token_hash, workspace_id, job_id, path, content_type, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, d.workspace_id.as_str(), d.job_id.as_str(), d.path, d.content_type, d.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The download filed under `token_hash`, expired or not.
    pub async fn find_download(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredDownload>, StoreError> {
        let hash = token_hash.to_owned();
        let row: Option<(String, String, String, String, i64)> = self
            .call(move |c| {
                c.query_row(
                    "SELECT workspace_id, job_id, path, content_type, expires_at
                     FROM export_downloads WHERE token_hash = ?1",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
            })
            .await?;
        row.map(|(workspace, job, path, content_type, expires_at)| {
            Ok(StoredDownload {
                workspace_id: WorkspaceId::parse(&workspace)
                    .ok_or_else(|| StoreError::Corrupt(format!("workspace id {workspace:?}")))?,
                job_id: ExportJobId::parse(&job)
                    .ok_or_else(|| StoreError::Corrupt(format!("export job id {job:?}")))?,
                path,
                content_type,
                expires_at,
            })
        })
        .transpose()
    }
}
