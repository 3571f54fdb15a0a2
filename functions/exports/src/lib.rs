//! Export worker: runs one export job per queue message, off the request path. It claims the
//! job under a lease, pages through the logs, streams the rows part by part to the sink (S3, or
//! local mode's data dir), emails the link, and marks the job done; or, when it cannot, gives
//! the job back for another try or fails it saying why, in its state and in one email.
//!
//! Its own Lambda rather than a module of the delivery worker: an export runs for minutes
//! (the delivery function is cut off at 60 s and its queues' visibility is sized for that),
//! wants one job per invocation, and alone needs the S3 and SES clients.

mod sqs;

use std::time::{Duration, Instant};

use chrono::Utc;
use hookline_shared::export::job::MAX_ATTEMPTS;
use hookline_shared::export::pages::{LogPages, PAGE_SIZE};
use hookline_shared::export::ports::PART_BYTES;
use hookline_shared::export::rows::RowWriter;
use hookline_shared::export::{
    Download, ExportEmail, ExportJob, ExportJobStore, ExportMessage, ExportSink, ExportUpload,
    JobClaim, MailError, Mailer, SinkError,
};
use hookline_shared::{ExportJobId, LogStore, StoreError, WorkspaceId};
use tracing::Instrument as _;

pub use sqs::handle_sqs;

/// Everything the worker needs; built once per cold start (or once by local mode).
pub struct ExportWorker<J, L, S, M> {
    pub jobs: J,
    pub logs: L,
    pub sink: S,
    pub mailer: M,
    /// How long a claim holds a job; renewed while the job runs.
    pub lease: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Mail(#[from] MailError),
    /// Another worker claimed the job meanwhile (this one's lease had lapsed).
    #[error("lease lost")]
    LeaseLost,
}

impl ExportError {
    /// What the job's owner is told: which step failed, nothing internal.
    fn reason(&self) -> &'static str {
        match self {
            ExportError::Store(_) | ExportError::LeaseLost => {
                "The delivery logs could not be read; request the export again"
            }
            ExportError::Sink(_) => {
                "The export file could not be written; request the export again"
            }
            ExportError::Mail(_) => {
                "The email with the link could not be sent; request the export again"
            }
        }
    }
}

/// What handling one message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Done {
        rows: u64,
        bytes: u64,
    },
    Failed,
    /// Given back after a failure; the message comes back and the next claim tries again.
    Retrying,
    /// Finished already, claimed by another worker, or no such job.
    Skipped,
}

/// What a queue does with a message once it was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Ack,
    /// Left for the queue to hand out again after its visibility timeout.
    Retry,
}

impl<J, L, S, M> ExportWorker<J, L, S, M>
where
    J: ExportJobStore,
    L: LogStore,
    S: ExportSink,
    M: Mailer,
{
    /// Handles queue message `message_id` and says what its queue should do with it.
    pub async fn process(&self, message_id: &str, body: &str) -> Disposition {
        let span = tracing::info_span!(
            "export",
            message_id,
            workspace_id = tracing::field::Empty,
            job_id = tracing::field::Empty
        );
        async {
            let message = match ExportMessage::from_body(body) {
                Ok(message) => message,
                Err(err) => {
                    tracing::error!(error = %err, "unreadable export message acknowledged");
                    return Disposition::Ack;
                }
            };
            let span = tracing::Span::current();
            span.record(
                "workspace_id",
                tracing::field::display(&message.workspace_id),
            );
            span.record("job_id", tracing::field::display(&message.job_id));
            match self.run(&message.workspace_id, &message.job_id).await {
                Ok(Handled::Retrying) => Disposition::Retry,
                Ok(handled) => {
                    tracing::info!(?handled, "export handled");
                    Disposition::Ack
                }
                Err(err) => {
                    tracing::error!(error = %err, "export will be retried");
                    Disposition::Retry
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Runs job `id` of `workspace` if it is there to claim.
    pub async fn run(
        &self,
        workspace: &WorkspaceId,
        id: &ExportJobId,
    ) -> Result<Handled, ExportError> {
        let Some(job) = self.jobs.get_job(workspace, id).await? else {
            tracing::warn!("no such export job; message acknowledged");
            return Ok(Handled::Skipped);
        };
        let running = match job.claim(Utc::now(), self.lease) {
            JobClaim::Unavailable => return Ok(Handled::Skipped),
            JobClaim::Exhausted(failed) => {
                if self.jobs.replace_job(&job, &failed).await? {
                    self.tell_failure(&failed).await;
                }
                return Ok(Handled::Failed);
            }
            JobClaim::Claimed(running) => running,
        };
        if !self.jobs.replace_job(&job, &running).await? {
            return Ok(Handled::Skipped);
        }
        let mut current = running;
        match self.export(&mut current).await {
            Ok(handled) => Ok(handled),
            Err(ExportError::LeaseLost) => Ok(Handled::Skipped),
            Err(err) if current.attempts < MAX_ATTEMPTS => {
                tracing::warn!(error = %err, attempt = current.attempts, "export given back for another try");
                let released = current.released(Utc::now());
                self.jobs.replace_job(&current, &released).await?;
                Ok(Handled::Retrying)
            }
            Err(err) => {
                tracing::error!(error = %err, "export failed");
                let failed = current.failed(err.reason());
                if self.jobs.replace_job(&current, &failed).await? {
                    self.tell_failure(&failed).await;
                }
                Ok(Handled::Failed)
            }
        }
    }

    /// Writes the file, emails its link and marks the job done; `current` follows every
    /// change stored meanwhile.
    async fn export(&self, current: &mut ExportJob) -> Result<Handled, ExportError> {
        let mut upload = self.sink.start(current).await?;
        match self.write_rows(current, &mut upload).await {
            Ok(writer) => {
                let (rows, bytes) = writer;
                let Download { url, expires_at } = upload.finish().await?;
                let done = current.done(rows, bytes, url, expires_at);
                // The email first: a job marked done has sent its link.
                self.mailer.send(&ExportEmail::ready(&done)).await?;
                if !self.jobs.replace_job(current, &done).await? {
                    return Err(ExportError::LeaseLost);
                }
                *current = done;
                Ok(Handled::Done { rows, bytes })
            }
            Err(err) => {
                upload.abort().await;
                Err(err)
            }
        }
    }

    /// Every matching log into `upload`, a part at a time; the lease is renewed as it goes.
    async fn write_rows(
        &self,
        current: &mut ExportJob,
        upload: &mut S::Upload,
    ) -> Result<(u64, u64), ExportError> {
        let request = current.request.clone();
        let mut writer = RowWriter::new(request.format);
        let mut pages = LogPages::new(
            &self.logs,
            &current.workspace_id,
            &request.log_query(),
            PAGE_SIZE,
        );
        let mut renewed = Instant::now();
        while let Some(page) = pages.next_page().await? {
            for log in page.iter().filter(|log| request.matches(log)) {
                writer.write(log);
            }
            if writer.pending() >= PART_BYTES {
                upload.write_part(writer.drain()).await?;
            }
            if renewed.elapsed() >= self.lease / 3 {
                let (rows, bytes) = (writer.rows(), writer.bytes());
                let next = current.renewed(Utc::now(), self.lease, rows, bytes);
                if !self.jobs.replace_job(current, &next).await? {
                    return Err(ExportError::LeaseLost);
                }
                *current = next;
                renewed = Instant::now();
            }
        }
        let (rows, bytes) = (writer.rows(), writer.bytes());
        let last = writer.drain();
        if !last.is_empty() {
            upload.write_part(last).await?;
        }
        Ok((rows, bytes))
    }

    /// The one email of a failed job; a failure to send it is logged (the job's state says why).
    async fn tell_failure(&self, failed: &ExportJob) {
        if let Err(err) = self.mailer.send(&ExportEmail::failed(failed)).await {
            tracing::error!(error = %err, "failure email not sent");
        }
    }
}
