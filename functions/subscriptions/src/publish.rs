//! `POST …/events`: a workspace publishes an event of its own; it is deduplicated by its
//! idempotency key and then fans out, is signed, retried and logged like an ingested one.
//!
//! A router of its own, with the ports only publishing needs (the events table), so
//! the Lambda and local mode merge it beside the rest of the notify API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use hookline_shared::custom_types::{CustomTypes, EventTypeName};
use hookline_shared::http::{
    api_layer, authenticated, json, ApiError, ApiState, Caller, JsonBody, Keyring,
};
use hookline_shared::intake::accept;
use hookline_shared::publication::{Publication, TypeRules};
use hookline_shared::validation::ValidationErrors;
use hookline_shared::{EventStore, EventTypeStore, WorkspaceStore};
use serde_json::json;

use crate::NotifyEnvelope;

/// Largest publish request: an ingest body's limit, since generic types carry the same bodies.
pub const MAX_PUBLISH_BYTES: usize = 256 * 1024;
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What publishing needs; built once per cold start (or once by local mode).
pub struct Publishing<W, E, T> {
    pub keyring: Keyring<W>,
    /// Accepted events; storing one queues its fan-out.
    pub events: E,
    /// The workspaces' own event types, their schemas compiled once per warm process.
    pub types: CustomTypes<T>,
    /// How long an idempotency key keeps repeats out.
    pub dedup_window: Duration,
}

impl<W: WorkspaceStore, E, T> Publishing<W, E, T> {
    pub fn new(workspaces: W, events: E, types: T, dedup_window: Duration) -> Self {
        Self {
            keyring: Keyring::new(workspaces),
            events,
            types: CustomTypes::new(types),
            dedup_window,
        }
    }
}

impl<W, E, T> ApiState for Publishing<W, E, T>
where
    W: WorkspaceStore + 'static,
    E: Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    type Workspaces = W;
    const MAX_BODY_BYTES: usize = MAX_PUBLISH_BYTES;

    fn keyring(&self) -> &Keyring<W> {
        &self.keyring
    }
}

/// The publish route, answering in the notify API's envelope.
pub fn router<W, E, T>(deps: Publishing<W, E, T>) -> Router
where
    W: WorkspaceStore + 'static,
    E: EventStore + 'static,
    T: EventTypeStore + 'static,
{
    Router::new()
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/events",
            authenticated(post(publish::<W, E, T>), "POST"),
        )
        .layer(from_fn(api_layer::<NotifyEnvelope>))
        .with_state(Arc::new(deps))
}

/// 202 with the new event's id, or 200 with the original's for a repeated idempotency key.
async fn publish<W, E, T>(
    State(deps): State<Arc<Publishing<W, E, T>>>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    E: EventStore + 'static,
    T: EventTypeStore + 'static,
{
    let now = Utc::now();
    let header_key = match headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        Some(Ok(key)) => Some(key),
        Some(Err(_)) => {
            return Err(ApiError::Invalid(ValidationErrors::field(
                "Idempotency-Key",
                "Must be visible ASCII",
            )))
        }
        None => None,
    };
    let publication =
        Publication::parse(body.value()?, header_key, now).map_err(ApiError::Invalid)?;
    // A workspace's own type (looked up only if no built-in has the name): its schema,
    // compiled once, or any object if it has none.
    let built_in = TypeRules::built_in(&publication.event_type);
    let custom = match (&built_in, EventTypeName::parse(&publication.event_type)) {
        (None, Some(name)) => deps.types.get_event_type(&caller.workspace, &name).await?,
        _ => None,
    };
    let compiled = match &custom {
        Some(custom) => deps.types.validator(custom)?,
        None => None,
    };
    let rules = match (built_in, &custom, &compiled) {
        (Some(rules), _, _) => rules,
        (None, Some(_), Some(validator)) => TypeRules::Schema(validator),
        (None, Some(_), None) => TypeRules::Any,
        (None, None, _) => {
            return Err(ApiError::Invalid(ValidationErrors::field(
                "event_type",
                format!(
                    "Unknown event type {:?}; see GET /notify/api/v1/event_types",
                    publication.event_type
                ),
            )))
        }
    };
    let event = publication
        .into_event(caller.workspace, rules, now)
        .map_err(ApiError::Invalid)?;
    let intake = accept::<_, ApiError>(&deps.events, &event, deps.dedup_window).await?;
    tracing::Span::current().record("event_id", intake.event_id.as_str());
    let status = if intake.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json(
        status,
        &json!({"event_id": intake.event_id, "event_type": event.event_type, "duplicate": intake.duplicate}),
    ))
}
