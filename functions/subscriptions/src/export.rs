//! `POST …/logs/export` and `GET …/logs/export/{job_id}`: a log export is queued as a job and
//! its state read back. The work runs off the request path, in the exports worker.
//!
//! A router of its own, with the ports only exports need (the jobs store and exports queue),
//! so the Lambda and local mode merge it beside the rest of the notify API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawPathParams, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use hookline_shared::export::{ExportJob, ExportJobStore, ExportMessage, ExportRequest, Opened};
use hookline_shared::http::{
    api_layer, authenticated, json, ApiError, ApiState, Caller, JsonBody, Keyring,
};
use hookline_shared::{ExportJobId, Queue, WorkspaceStore};
use serde_json::json;

use crate::{NotifyEnvelope, MAX_BODY_BYTES};

/// What the export routes need; built once per cold start (or once by local mode).
pub struct ExportsApi<W, J, Q> {
    pub keyring: Keyring<W>,
    pub jobs: J,
    /// Where jobs wait for the exports worker.
    pub queue: Q,
}

impl<W: WorkspaceStore, J, Q> ExportsApi<W, J, Q> {
    pub fn new(workspaces: W, jobs: J, queue: Q) -> Self {
        Self {
            keyring: Keyring::new(workspaces),
            jobs,
            queue,
        }
    }
}

impl<W, J, Q> ApiState for ExportsApi<W, J, Q>
where
    W: WorkspaceStore + 'static,
    J: Send + Sync + 'static,
    Q: Send + Sync + 'static,
{
    type Workspaces = W;
    const MAX_BODY_BYTES: usize = MAX_BODY_BYTES;

    fn keyring(&self) -> &Keyring<W> {
        &self.keyring
    }
}

/// The export routes, answering in the notify API's envelope.
pub fn router<W, J, Q>(deps: ExportsApi<W, J, Q>) -> Router
where
    W: WorkspaceStore + 'static,
    J: ExportJobStore + 'static,
    Q: Queue + 'static,
{
    Router::new()
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/logs/export",
            authenticated(post(create_export::<W, J, Q>), "POST"),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/logs/export/{job_id}",
            authenticated(get(get_export::<W, J, Q>), "GET"),
        )
        .layer(from_fn(api_layer::<NotifyEnvelope>))
        .with_state(Arc::new(deps))
}

async fn create_export<W, J, Q>(
    State(api): State<Arc<ExportsApi<W, J, Q>>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    J: ExportJobStore + 'static,
    Q: Queue + 'static,
{
    let request = ExportRequest::parse(&body.value()?).map_err(ApiError::Invalid)?;
    let job = ExportJob::new(caller.workspace.clone(), request, Utc::now());
    if let Opened::Busy(running) = api.jobs.create_job(&job).await? {
        return Err(ApiError::Busy {
            field: "workspace_id",
            message: format!(
                "Export {running} of this workspace is still running; wait for it to finish (GET …/logs/export/{running})"
            ),
        });
    }
    let message = ExportMessage {
        workspace_id: job.workspace_id.clone(),
        job_id: job.id.clone(),
    };
    if let Err(err) = api.queue.send(&message.to_body(), Duration::ZERO).await {
        // Never leave a job that no worker will ever see holding the workspace.
        let failed = job.failed("The export could not be queued; request it again");
        if let Err(store) = api.jobs.replace_job(&job, &failed).await {
            tracing::error!(error = %store, "unqueued export job not marked failed");
        }
        return Err(err.into());
    }
    let body = json!({
        "job_id": job.id,
        "message": format!("Export queued; a link to the file will be emailed to {}", job.request.email),
    });
    Ok(json(StatusCode::ACCEPTED, &body))
}

async fn get_export<W, J, Q>(
    State(api): State<Arc<ExportsApi<W, J, Q>>>,
    caller: Caller,
    params: RawPathParams,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    J: ExportJobStore + 'static,
    Q: Queue + 'static,
{
    // A malformed id, an unknown one and another workspace's all read the same.
    let id = params
        .iter()
        .find(|(name, _)| *name == "job_id")
        .and_then(|(_, raw)| ExportJobId::parse(raw))
        .ok_or(ApiError::Missing("export job"))?;
    let job = api
        .jobs
        .get_job(&caller.workspace, &id)
        .await?
        .ok_or(ApiError::Missing("export job"))?;
    Ok(json(StatusCode::OK, &job.view()))
}
