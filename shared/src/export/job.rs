//! An export job and its states. A job is queued, then running under a lease its worker renews,
//! then done or failed. A worker that dies lets its lease lapse: the job's message comes back
//! and the next worker claims it again, until [`MAX_ATTEMPTS`]; the claim after that fails it,
//! so no job stays "running" for ever.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::export::ExportRequest;
use crate::ids::{ExportJobId, WorkspaceId};

/// Claims of one job before the next claim fails it instead.
pub const MAX_ATTEMPTS: u32 = 3;
/// A queued job no worker picked up within this long no longer holds its workspace's one
/// running export (its message was lost to the dead-letter queue).
pub const QUEUED_HOLD: Duration = Duration::from_secs(3600);
/// How long a job's record is kept: as long as its file.
pub const JOB_RETENTION: Duration = Duration::from_secs(7 * 86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Queued,
    Running,
    Done,
    Failed,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Queued => "queued",
            ExportStatus::Running => "running",
            ExportStatus::Done => "done",
            ExportStatus::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, ExportStatus::Done | ExportStatus::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: ExportJobId,
    pub workspace_id: WorkspaceId,
    pub request: ExportRequest,
    pub status: ExportStatus,
    pub rows: u64,
    pub bytes: u64,
    pub download_url: Option<String>,
    /// When the link (and the file) stop working.
    pub expires_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// A running job's worker holds it until then, and renews it while it works.
    pub lease_until: Option<DateTime<Utc>>,
    /// Claims so far.
    pub attempts: u32,
    /// Bumped by every change; a store replaces a job only at the version it was read at.
    pub version: u64,
}

/// What claiming a job came to.
#[derive(Debug, Clone, PartialEq)]
pub enum JobClaim {
    /// Ours to run until the lease ends: the job to store in place of the one read.
    Claimed(ExportJob),
    /// Claimed too often: the job to store, failed, whose owner is told.
    Exhausted(ExportJob),
    /// Finished, or another worker's lease is live.
    Unavailable,
}

impl ExportJob {
    pub fn new(workspace_id: WorkspaceId, request: ExportRequest, now: DateTime<Utc>) -> Self {
        Self {
            id: ExportJobId::generate(),
            workspace_id,
            request,
            status: ExportStatus::Queued,
            rows: 0,
            bytes: 0,
            download_url: None,
            expires_at: None,
            error: None,
            created_at: now,
            lease_until: None,
            attempts: 0,
            version: 0,
        }
    }

    /// Until when this job holds its workspace's one running export; `None` once it does not.
    pub fn holds_workspace_until(&self) -> Option<DateTime<Utc>> {
        match self.status {
            ExportStatus::Queued => Some(self.created_at + QUEUED_HOLD),
            ExportStatus::Running => self.lease_until,
            ExportStatus::Done | ExportStatus::Failed => None,
        }
    }

    /// Whether it holds its workspace's one running export at `now`.
    pub fn holds_workspace(&self, now: DateTime<Utc>) -> bool {
        self.holds_workspace_until()
            .is_some_and(|until| until > now)
    }

    /// Epoch seconds after which the record may be deleted.
    pub fn record_expires_at(&self) -> i64 {
        (self.created_at + JOB_RETENTION).timestamp()
    }

    /// A worker's claim at `now` for `lease`.
    pub fn claim(&self, now: DateTime<Utc>, lease: Duration) -> JobClaim {
        let claimable = match self.status {
            ExportStatus::Queued => true,
            ExportStatus::Running => self.lease_until.is_none_or(|until| until <= now),
            ExportStatus::Done | ExportStatus::Failed => false,
        };
        if !claimable {
            return JobClaim::Unavailable;
        }
        if self.attempts >= MAX_ATTEMPTS {
            let reason = format!(
                "The export stopped {} times before it finished; request it again, perhaps for a shorter date range",
                self.attempts
            );
            return JobClaim::Exhausted(self.failed(reason));
        }
        let mut claimed = self.next();
        claimed.status = ExportStatus::Running;
        claimed.attempts += 1;
        claimed.lease_until = Some(now + lease);
        JobClaim::Claimed(claimed)
    }

    /// The running job with its lease renewed and its progress so far.
    pub fn renewed(&self, now: DateTime<Utc>, lease: Duration, rows: u64, bytes: u64) -> Self {
        let mut renewed = self.next();
        renewed.lease_until = Some(now + lease);
        (renewed.rows, renewed.bytes) = (rows, bytes);
        renewed
    }

    /// The running job given back after a failure another worker may get past: claimable at once.
    pub fn released(&self, now: DateTime<Utc>) -> Self {
        let mut released = self.next();
        released.lease_until = Some(now);
        released
    }

    pub fn done(&self, rows: u64, bytes: u64, url: String, expires_at: DateTime<Utc>) -> Self {
        let mut done = self.next();
        done.status = ExportStatus::Done;
        (done.rows, done.bytes) = (rows, bytes);
        done.download_url = Some(url);
        done.expires_at = Some(expires_at);
        done.lease_until = None;
        done
    }

    pub fn failed(&self, reason: impl Into<String>) -> Self {
        let mut failed = self.next();
        failed.status = ExportStatus::Failed;
        failed.error = Some(reason.into());
        failed.lease_until = None;
        failed
    }

    fn next(&self) -> Self {
        Self {
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// `GET …/logs/export/{job_id}`'s answer.
    pub fn view(&self) -> Value {
        let mut out = json!({
            "job_id": self.id,
            "status": self.status.as_str(),
            "rows": self.rows,
            "bytes": self.bytes,
        });
        if let Some(url) = &self.download_url {
            out["download_url"] = json!(url);
        }
        if let Some(at) = self.expires_at {
            out["expires_at"] = json!(at.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        if let Some(error) = &self.error {
            out["error"] = json!(error);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(now: DateTime<Utc>) -> ExportJob {
        let request = ExportRequest::parse(&json!({"email": "a@b.io"})).unwrap();
        ExportJob::new(WorkspaceId::generate(), request, now)
    }

    const LEASE: Duration = Duration::from_secs(60);

    #[test]
    fn a_live_lease_keeps_other_workers_out_and_a_lapsed_one_lets_them_in() {
        let now = Utc::now();
        let JobClaim::Claimed(running) = job(now).claim(now, LEASE) else {
            panic!("a queued job is claimable")
        };
        assert_eq!(
            (running.status, running.attempts),
            (ExportStatus::Running, 1)
        );
        assert_eq!(running.claim(now, LEASE), JobClaim::Unavailable);
        let later = now + LEASE;
        let JobClaim::Claimed(again) = running.claim(later, LEASE) else {
            panic!("a lapsed lease is claimable")
        };
        assert_eq!(again.attempts, 2);
        assert!(again.version > running.version);
    }

    #[test]
    fn the_claim_after_the_last_attempt_fails_the_job_saying_why() {
        let now = Utc::now();
        let mut current = job(now);
        for _ in 0..MAX_ATTEMPTS {
            let JobClaim::Claimed(next) = current.claim(now, LEASE) else {
                panic!("claimable")
            };
            current = next.released(now);
        }
        let JobClaim::Exhausted(failed) = current.claim(now, LEASE) else {
            panic!("exhausted")
        };
        assert_eq!(failed.status, ExportStatus::Failed);
        assert!(failed.error.unwrap().contains("stopped 3 times"));
    }

    #[test]
    fn only_an_unfinished_job_holds_its_workspace() {
        let now = Utc::now();
        let queued = job(now);
        assert!(queued.holds_workspace(now));
        assert!(!queued.holds_workspace(now + QUEUED_HOLD));
        let done = queued.done(3, 10, "https://x".into(), now);
        assert!(!done.holds_workspace(now));
        assert_eq!(done.view()["status"], "done");
        assert_eq!(done.view()["download_url"], "https://x");
        assert_eq!(queued.failed("no").view()["error"], "no");
    }
}
