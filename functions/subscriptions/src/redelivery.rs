//! `POST …/logs/{log_id}/replay` and `POST …/subscription/{subscription_id}/recover`: failed
//! (or any) deliveries sent again as new attempts of their own, with the same `webhook-id`.
//!
//! A router of its own, like publishing, with the ports only these need: the logs that name
//! the deliveries, the deliveries reopened, and the deliveries queue their attempts go on.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawPathParams, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use hookline_shared::delivery::Reopened;
use hookline_shared::http::{
    api_layer, authenticated, json, ApiError, ApiState, Caller, JsonBody, Keyring,
};
use hookline_shared::redelivery::{redeliver, Recovery};
use hookline_shared::{
    DeliveryStore, LogStore, Queue, QueueMessage, Subscription, SubscriptionStore, WorkspaceId,
    WorkspaceStore,
};
use serde_json::json;

use crate::{NotifyEnvelope, SubscriptionParam, MAX_BODY_BYTES};

/// What replay and recovery need; built once per cold start (or once by local mode).
pub struct Redelivery<W, S, L, D, Q> {
    pub keyring: Keyring<W>,
    pub subscriptions: S,
    pub logs: L,
    pub deliveries: D,
    /// The deliveries queue: reopened attempts, and the rest of a long recovery, go here.
    pub queue: Q,
    /// How long logs are kept: the longest window a recovery may name.
    pub log_retention: Duration,
}

impl<W: WorkspaceStore, S, L, D, Q> Redelivery<W, S, L, D, Q> {
    pub fn new(
        workspaces: W,
        subscriptions: S,
        logs: L,
        deliveries: D,
        queue: Q,
        log_retention: Duration,
    ) -> Self {
        Self {
            keyring: Keyring::new(workspaces),
            subscriptions,
            logs,
            deliveries,
            queue,
            log_retention,
        }
    }
}

impl<W, S, L, D, Q> ApiState for Redelivery<W, S, L, D, Q>
where
    W: WorkspaceStore + 'static,
    S: Send + Sync + 'static,
    L: Send + Sync + 'static,
    D: Send + Sync + 'static,
    Q: Send + Sync + 'static,
{
    type Workspaces = W;
    const MAX_BODY_BYTES: usize = MAX_BODY_BYTES;

    fn keyring(&self) -> &Keyring<W> {
        &self.keyring
    }
}

/// What each handler is given: the ports, shared by every request.
type Deps<W, S, L, D, Q> = State<Arc<Redelivery<W, S, L, D, Q>>>;

/// The replay and recover routes, answering in the notify API's envelope.
pub fn router<W, S, L, D, Q>(deps: Redelivery<W, S, L, D, Q>) -> Router
where
    W: WorkspaceStore + 'static,
    S: SubscriptionStore + 'static,
    L: LogStore + 'static,
    D: DeliveryStore + 'static,
    Q: Queue + 'static,
{
    Router::new()
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/logs/{log_id}/replay",
            authenticated(post(replay::<W, S, L, D, Q>), "POST"),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/subscription/{subscription_id}/recover",
            authenticated(post(recover::<W, S, L, D, Q>), "POST"),
        )
        .layer(from_fn(api_layer::<NotifyEnvelope>))
        .with_state(Arc::new(deps))
}

/// Log ids are 32 lowercase hex digits (a UUID v7); anything else names no log.
fn is_log_id(raw: &str) -> bool {
    raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Refuses a paused subscription: its work waits, parked, until it is enabled.
fn enabled(subscription: Subscription) -> Result<Subscription, ApiError> {
    if subscription.is_enabled {
        Ok(subscription)
    } else {
        Err(ApiError::Paused)
    }
}

/// 202: the log's delivery is reopened and its next attempt queued now.
async fn replay<W, S, L, D, Q>(
    State(deps): Deps<W, S, L, D, Q>,
    caller: Caller,
    params: RawPathParams,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    S: SubscriptionStore + 'static,
    L: LogStore + 'static,
    D: DeliveryStore + 'static,
    Q: Queue + 'static,
{
    const NO_LOG: ApiError = ApiError::Missing("Delivery log");
    let workspace = &caller.workspace;
    let log_id = params
        .iter()
        .find(|(name, _)| *name == "log_id")
        .map(|(_, value)| value)
        .filter(|raw| is_log_id(raw))
        .ok_or(NO_LOG)?;
    // Looked up in the caller's workspace alone: another workspace's log reads as unknown.
    let log = deps.logs.get_log(workspace, log_id).await?.ok_or(NO_LOG)?;
    let subscription = deps
        .subscriptions
        .get_subscription(workspace, &log.subscription_id)
        .await?
        .ok_or(ApiError::Missing("The subscription of that delivery log"))?;
    let subscription = enabled(subscription)?;
    let reopened = redeliver::<_, _, ApiError>(
        &deps.deliveries,
        &deps.queue,
        workspace,
        &subscription.id,
        &log.delivery_id,
        None,
    )
    .await?;
    let attempt = match reopened {
        Reopened::Queued { attempt, .. } => attempt,
        Reopened::InFlight => return Err(ApiError::InFlight),
        Reopened::Missing | Reopened::Superseded => {
            return Err(ApiError::Missing("The delivery of that log"))
        }
    };
    tracing::info!(delivery_id = %log.delivery_id, attempt, "delivery replayed");
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({
            "log_id": log.id,
            "delivery_id": log.delivery_id,
            "subscription_id": subscription.id,
            "attempt": attempt,
            "message": "Queued: the event is sent again now, with the same webhook-id",
        }),
    ))
}

/// 202 `{job_id, queued}`: the window's first page queued on the request path, the rest (if
/// any) by the delivery worker from a queue message; `queued` counts the first page.
async fn recover<W, S, L, D, Q>(
    State(deps): Deps<W, S, L, D, Q>,
    caller: Caller,
    id: SubscriptionParam,
    body: JsonBody,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    S: SubscriptionStore + 'static,
    L: LogStore + 'static,
    D: DeliveryStore + 'static,
    Q: Queue + 'static,
{
    let workspace: &WorkspaceId = &caller.workspace;
    let subscription = enabled(id.find(&deps.subscriptions, workspace).await?)?;
    let recovery = Recovery::parse(
        &body.value()?,
        workspace.clone(),
        subscription.id.clone(),
        Utc::now(),
        deps.log_retention,
    )
    .map_err(ApiError::Invalid)?;
    let (queued, rest) = recovery
        .step::<_, _, _, ApiError>(&deps.logs, &deps.deliveries, &deps.queue)
        .await?;
    let complete = rest.is_none();
    if let Some(rest) = rest {
        let message = QueueMessage::Recover(rest);
        deps.queue.send(&message.to_body(), Duration::ZERO).await?;
    }
    tracing::info!(job_id = %recovery.job_id, queued, complete, "recovery started");
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({
            "job_id": recovery.job_id,
            "queued": queued,
            "complete": complete,
            "since": recovery.since,
            "until": recovery.until,
        }),
    ))
}
