//! `POST …/receive/connections/{connection_id}`: a provider's own webhook. No API key (the
//! provider cannot send one): the connection's secret authenticates the delivery, which then
//! becomes an event of the connection's workspace and is accepted like an ingested one.
//!
//! A router of its own, with the ports only this route needs, so the Lambda and local mode
//! merge it beside the generic route.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::from_fn;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use hookline_shared::connection::mapping::ProviderEvent;
use hookline_shared::connection::verify::Refused;
use hookline_shared::connection::INGEST_PATH_PREFIX;
use hookline_shared::http::{api_layer, ApiError, JsonBody, RequestId};
use hookline_shared::intake::accept;
use hookline_shared::validation::ValidationErrors;
use hookline_shared::{Connection, ConnectionId, ConnectionKind, ConnectionStore, EventStore};
use hookline_shared::{Defined, EventTypeStore, WorkspaceId};
use serde_json::Value;

use crate::{accepted_response_from, Accepted, IngestEnvelope, MAX_BODY_BYTES};

/// Where providers post; the front door routes paths under it.
pub const ROUTE_PREFIX: &str = INGEST_PATH_PREFIX;
const ROUTE: &str = "/api/v2/analytics/webhook/receive/connections/{connection_id}";
const NOT_FOUND: ApiError = ApiError::Missing("Connection");

/// What the route needs; built once per cold start (or once by local mode).
pub struct Connections<C, E, T> {
    pub connections: C,
    pub events: E,
    /// Where a provider's own event types are registered, so they can be subscribed to.
    pub types: T,
    /// How long a message id keeps a provider's retries out.
    pub dedup_window: Duration,
    /// Types this process registered already (or found registered): one store read each.
    pub registered: Mutex<HashSet<(WorkspaceId, String)>>,
}

impl<C, E, T> Connections<C, E, T> {
    pub fn new(connections: C, events: E, types: T, dedup_window: Duration) -> Self {
        Self {
            connections,
            events,
            types,
            dedup_window,
            registered: Mutex::default(),
        }
    }
}

/// The connections route, answering in ingest's envelope.
pub fn router<C, E, T>(deps: Connections<C, E, T>) -> Router
where
    C: ConnectionStore + 'static,
    E: EventStore + 'static,
    T: EventTypeStore + 'static,
{
    Router::new()
        .route(ROUTE, post(receive::<C, E, T>).fallback(not_post))
        .layer(from_fn(api_layer::<IngestEnvelope>))
        .with_state(Arc::new(deps))
}

async fn not_post(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        allowed: "POST",
    }
}

/// The connection, the proof, the event it becomes; then the seed envelope, saying which type
/// the provider's event became.
async fn receive<C, E, T>(
    State(deps): State<Arc<Connections<C, E, T>>>,
    Path(connection_id): Path<String>,
    request_id: RequestId,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError>
where
    C: ConnectionStore + 'static,
    E: EventStore + 'static,
    T: EventTypeStore + 'static,
{
    // A malformed id reads exactly like an unknown one.
    let id = ConnectionId::parse(&connection_id).ok_or(NOT_FOUND)?;
    let connection = deps
        .connections
        .find_connection(&id)
        .await?
        .ok_or(NOT_FOUND)?;
    tracing::Span::current().record("workspace_id", connection.workspace_id.as_str());
    let body = JsonBody::read(req, MAX_BODY_BYTES).await?;
    let now = Utc::now();
    let (delivered, event_field) = match connection.kind {
        ConnectionKind::Svix => (svix_event(&connection, &headers, &body, now)?, "type"),
        ConnectionKind::SecretInBody => (in_body_event(&connection, &body)?, "event"),
    };
    let event = connection
        .event_from(delivered, event_field, now)
        .map_err(ApiError::Invalid)?;
    register_type(&deps, &connection, &event, now).await?;
    let intake = accept::<_, ApiError>(&deps.events, &event, deps.dedup_window).await?;
    tracing::Span::current().record("event_id", intake.event_id.as_str());
    let accepted = Accepted {
        workspace_id: event.workspace_id.clone(),
        event_id: intake.event_id,
        dedup_id: event.dedup_id.clone(),
        duplicate: intake.duplicate,
        should_process: event.should_process,
    };
    Ok(accepted_response_from(
        &accepted,
        request_id.as_str(),
        &connection.provider_name(),
        Some(&event.event_type),
    ))
}

/// Registers the provider's own event type in the workspace the first time it is seen, before
/// the event is stored: a subscriber can name it at once. A full workspace keeps the event
/// all the same; it is only not listed.
async fn register_type<C, E, T: EventTypeStore>(
    deps: &Connections<C, E, T>,
    connection: &hookline_shared::Connection,
    event: &hookline_shared::Event,
    now: chrono::DateTime<Utc>,
) -> Result<(), ApiError> {
    let key = (event.workspace_id.clone(), event.event_type.clone());
    let seen = |deps: &Connections<C, E, T>| {
        deps.registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
    };
    if seen(deps) {
        return Ok(());
    }
    let Some(custom) = connection.registration(event, now) else {
        return Ok(());
    };
    if deps
        .types
        .get_event_type(&custom.workspace_id, &custom.name)
        .await?
        .is_none()
    {
        match deps.types.create_event_type(&custom).await? {
            Defined::Created | Defined::NameTaken => {}
            Defined::LimitReached => {
                tracing::warn!(event_type = %custom.name, "workspace full of event types; provider type not registered");
                return Ok(());
            }
        }
    }
    deps.registered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key);
    Ok(())
}

fn refused(Refused { field, reason }: Refused) -> ApiError {
    ApiError::NotAuthenticated { field, reason }
}

/// A Svix delivery `{type, timestamp, payload}`: verified before its body is even parsed.
fn svix_event(
    connection: &Connection,
    headers: &HeaderMap,
    body: &JsonBody,
    now: chrono::DateTime<Utc>,
) -> Result<ProviderEvent, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let message = connection
        .verify_svix(header, &body.0, now)
        .map_err(refused)?;
    let mut value = body.value()?;
    let Some(name) = value.get("type").and_then(Value::as_str).map(str::to_owned) else {
        return Err(ApiError::Invalid(ValidationErrors::field(
            "type",
            "Required: the provider's event type, as a string",
        )));
    };
    let sent_at = value.get("timestamp").cloned();
    // Svix senders wrap their data in `payload` (seed 004) or `data`; else the body is it.
    let payload = match ["payload", "data"]
        .into_iter()
        .find(|key| value.get(*key).is_some_and(Value::is_object))
    {
        Some(key) => value[key].take(),
        None => value,
    };
    Ok(ProviderEvent {
        name,
        payload,
        sent_at,
        dedup_id: message.dedup_id(connection),
    })
}

/// Seed 003's envelope `{id_space, event, secret, payload}`: the secret checked first; only
/// the payload is kept, so the secret is never stored or delivered.
fn in_body_event(connection: &Connection, body: &JsonBody) -> Result<ProviderEvent, ApiError> {
    let value = body.value()?;
    let message = connection.verify_secret_in_body(&value).map_err(refused)?;
    let mut errors = ValidationErrors::default();
    if message.event.is_empty() {
        errors.add(
            "event".into(),
            "Required: the provider's event name, as a string".into(),
        );
    }
    if !message.payload.is_object() {
        errors.add("payload".into(), "Required: an object".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let dedup_id = message.dedup_id(connection);
    Ok(ProviderEvent {
        name: message.event,
        payload: message.payload,
        sent_at: None,
        dedup_id,
    })
}
