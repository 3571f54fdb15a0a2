//! What an export is stored, written and mailed through; each port has a deployed adapter
//! (DynamoDB, S3, SES) and a local one (SQLite, files under the data dir, the outbox or SMTP).

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::export::{ExportEmail, ExportJob};
use crate::ids::{ExportJobId, WorkspaceId};

/// What opening an export came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Opened,
    /// The workspace's one running export is this job; nothing was written.
    Busy(ExportJobId),
}

/// Export jobs by (workspace, id), and each workspace's one running export.
pub trait ExportJobStore: Send + Sync {
    /// Stores a new job unless another job holds its workspace
    /// ([`ExportJob::holds_workspace`]); checked in the same atomic write.
    fn create_job(
        &self,
        job: &ExportJob,
    ) -> impl Future<Output = Result<Opened, StoreError>> + Send;
    fn get_job(
        &self,
        workspace: &WorkspaceId,
        id: &ExportJobId,
    ) -> impl Future<Output = Result<Option<ExportJob>, StoreError>> + Send;
    /// Replaces `current` with `updated` (its next version); `Ok(false)` when `current` is no
    /// longer what is stored. A finished `updated` lets go of its workspace; an unfinished one
    /// holds it until [`ExportJob::holds_workspace_until`].
    fn replace_job(
        &self,
        current: &ExportJob,
        updated: &ExportJob,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A write to where the files go failed.
#[derive(Debug, thiserror::Error)]
#[error("export file: {0}")]
pub struct SinkError(pub String);

/// Where a finished file can be fetched, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Where export files are written: S3, or the local data dir.
pub trait ExportSink: Send + Sync {
    type Upload: ExportUpload;
    /// Starts job's file.
    fn start(
        &self,
        job: &ExportJob,
    ) -> impl Future<Output = Result<Self::Upload, SinkError>> + Send;
}

/// One file being written, a part at a time (every part but the last at least
/// [`MIN_PART_BYTES`], as S3's multipart upload wants).
pub trait ExportUpload: Send {
    fn write_part(&mut self, part: Vec<u8>) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Completes the file and signs its link.
    fn finish(self) -> impl Future<Output = Result<Download, SinkError>> + Send;
    /// Drops what was written.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// S3's smallest part but the last; the worker sends parts of [`PART_BYTES`].
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
/// The part size the worker fills before it sends: above S3's minimum, small enough that the
/// worker's memory stays flat.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Sending an email failed.
#[derive(Debug, thiserror::Error)]
#[error("email: {0}")]
pub struct MailError(pub String);

/// Sends the export's emails: SES, or local mode's outbox or SMTP server.
pub trait Mailer: Send + Sync {
    fn send(&self, email: &ExportEmail) -> impl Future<Output = Result<(), MailError>> + Send;
}
