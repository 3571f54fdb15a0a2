//! Ingest API: authenticates, validates, dedups and stores generic events (the store hands
//! them on to fan-out); and
//! [`connections`], the route providers' own webhooks arrive on.

pub mod connections;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{SecondsFormat, Utc};
use hookline_shared::http::{
    api_layer, no_route, ApiError, ApiState, Caller, Envelope, JsonBody, Keyring, Outcome,
    RequestId,
};
use hookline_shared::intake::{accept, Intake};
use hookline_shared::validation::{validate_body, Rejection, ValidationErrors};
use hookline_shared::{
    Category, Event, EventId, EventStore, StoreError, WorkspaceId, WorkspaceStore,
};
use serde::Serialize;

/// The generic ingest route; the category is the one path segment after it.
pub const ROUTE_PREFIX: &str = "/api/v2/analytics/webhook/receive/generic/";
const ROUTE: &str = "/api/v2/analytics/webhook/receive/generic/{category}";
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything the route needs; built once per cold start (or once by local mode).
pub struct Ingest<W, E> {
    /// The API keys callers present, and the workspaces they resolve to.
    pub keyring: Keyring<W>,
    pub events: E,
    /// How long a dedup id keeps repeats out.
    pub dedup_window: Duration,
}

impl<W: WorkspaceStore, E> Ingest<W, E> {
    pub fn new(workspaces: W, events: E, dedup_window: Duration) -> Self {
        Self {
            keyring: Keyring::new(workspaces),
            events,
            dedup_window,
        }
    }
}

/// An accepted request: a new event or a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub workspace_id: WorkspaceId,
    pub event_id: EventId,
    pub dedup_id: String,
    pub duplicate: bool,
    pub should_process: bool,
}

impl<W, E> ApiState for Ingest<W, E>
where
    W: WorkspaceStore + 'static,
    E: Send + Sync + 'static,
{
    type Workspaces = W;
    const MAX_BODY_BYTES: usize = MAX_BODY_BYTES;

    fn keyring(&self) -> &Keyring<W> {
        &self.keyring
    }
}

/// The ingest API: `POST {ROUTE_PREFIX}{eventType}`. The Lambda and local mode serve this
/// same router.
pub fn router<W, E>(deps: Ingest<W, E>) -> Router
where
    W: WorkspaceStore + 'static,
    E: EventStore + 'static,
{
    Router::new()
        .route(ROUTE, post(receive_event::<W, E>).fallback(not_post))
        .fallback(no_route)
        .layer(from_fn(api_layer::<IngestEnvelope>))
        .with_state(Arc::new(deps))
}

/// `POST …/generic/{eventType}`: the category, the caller, the body; then the event is
/// accepted and the seed envelope answers.
async fn receive_event<W, E>(
    State(deps): State<Arc<Ingest<W, E>>>,
    EventCategory(category): EventCategory,
    caller: Caller,
    request_id: RequestId,
    body: JsonBody,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    E: EventStore + 'static,
{
    let accepted = ingest(&deps, category, caller.workspace, &body.0).await?;
    tracing::Span::current().record("event_id", accepted.event_id.as_str());
    Ok(accepted_response(&accepted, request_id.as_str()))
}

/// Any other method on the route, once the category is known to exist: 405 naming POST.
async fn not_post(_: EventCategory, method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        allowed: "POST",
    }
}

/// The `{eventType}` path segment, one of the generic categories (else 404 naming them).
pub struct EventCategory(pub Category);

impl<S: Send + Sync> FromRequestParts<S> for EventCategory {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(segment) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NoRoute(parts.uri.path().to_owned()))?;
        Category::parse(&segment)
            .map(EventCategory)
            .ok_or(ApiError::UnknownCategory(segment))
    }
}

/// The ingest contract, minus HTTP: validate, store once per dedup id (one store call).
pub async fn ingest<W, E>(
    deps: &Ingest<W, E>,
    category: Category,
    workspace_id: WorkspaceId,
    body: &[u8],
) -> Result<Accepted, ApiError>
where
    E: EventStore,
{
    let now = Utc::now();
    let valid = validate_body(category, body, now).map_err(|rejection| match rejection {
        Rejection::Malformed(detail) => ApiError::MalformedJson(detail),
        Rejection::Invalid(errors) => ApiError::Invalid(errors),
    })?;
    let event = Event::generic(
        EventId::generate(),
        workspace_id,
        valid.dedup_id,
        category,
        &valid.event_type,
        valid.timestamp,
        now,
        valid.payload,
    );
    let intake: Intake = accept::<_, ApiError>(&deps.events, &event, deps.dedup_window).await?;
    Ok(Accepted {
        workspace_id: event.workspace_id,
        event_id: intake.event_id,
        dedup_id: event.dedup_id,
        duplicate: intake.duplicate,
        should_process: event.should_process,
    })
}

/// The answer envelope of seed 001, for success and failure alike.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeOut<'a> {
    #[serde(rename = "_metadata")]
    metadata: MetadataOut<'a>,
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<ConnectionOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_data: Option<AdditionalDataOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a ValidationErrors>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetadataOut<'a> {
    request_id: &'a str,
    timestamp: String,
    usage: u32,
    message: &'a str,
}

impl<'a> MetadataOut<'a> {
    fn new(request_id: &'a str, message: &'a str) -> Self {
        let timestamp = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        Self {
            request_id,
            timestamp,
            usage: 0,
            message,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionOut<'a> {
    provider_name: &'a str,
    should_process: bool,
    connection_method: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdditionalDataOut<'a> {
    event_id: &'a EventId,
    dedup_id: &'a str,
    duplicate: bool,
    /// The type a provider's event became; the generic route's answer has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<&'a str>,
}

fn accepted_response(accepted: &Accepted, request_id: &str) -> Response {
    accepted_response_from(accepted, request_id, "GENERIC", None)
}

/// The seed envelope for an event from `provider_name`; `event_type` is said when the caller
/// could not know it (a provider connection's event).
pub(crate) fn accepted_response_from(
    accepted: &Accepted,
    request_id: &str,
    provider_name: &str,
    event_type: Option<&str>,
) -> Response {
    let message = if accepted.duplicate {
        "Duplicate event; already received"
    } else {
        "Event received"
    };
    let envelope = EnvelopeOut {
        metadata: MetadataOut::new(request_id, message),
        received: true,
        connection: Some(ConnectionOut {
            provider_name,
            should_process: accepted.should_process,
            connection_method: "WEBHOOK",
        }),
        additional_data: Some(AdditionalDataOut {
            event_id: &accepted.event_id,
            dedup_id: &accepted.dedup_id,
            duplicate: accepted.duplicate,
            event_type,
        }),
        errors: None,
    };
    let outcome = Outcome(if accepted.duplicate {
        "duplicate"
    } else {
        "accepted"
    });
    let mut response = (StatusCode::OK, json_bytes(&envelope)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(outcome);
    response
}

/// Ingest's words for an [`ApiError`]: the seed envelope with `received: false` and the faults
/// in Zod's `flatten()` shape.
pub struct IngestEnvelope;

impl Envelope for IngestEnvelope {
    const NAME: &'static str = "ingest";

    fn error_body(err: &ApiError, request_id: &str) -> Vec<u8> {
        let (message, errors) = caller_view(err);
        let envelope = EnvelopeOut {
            metadata: MetadataOut::new(request_id, &message),
            received: false,
            connection: None,
            additional_data: None,
            errors: Some(&errors),
        };
        json_bytes(&envelope)
    }
}

/// What the caller is told: a summary and the faults.
fn caller_view(err: &ApiError) -> (String, ValidationErrors) {
    let valid = Category::valid_values();
    let form = |message: String| (message.clone(), ValidationErrors::form(message));
    match err {
        ApiError::NoRoute(path) => form(format!(
            "No route for {path}; POST to {ROUTE_PREFIX}{{eventType}} with eventType one of {valid}"
        )),
        ApiError::UnknownCategory(given) => (
            "Unknown event type".into(),
            ValidationErrors::field(
                "eventType",
                format!("Unknown event type {given:?}; expected one of {valid}"),
            ),
        ),
        ApiError::MethodNotAllowed { method, .. } => {
            form(format!("Method {method} is not allowed; use POST"))
        }
        ApiError::MissingKey => {
            let message = "Missing API key: send it in the api_key or X-API-KEY header, or the api_key query parameter".to_owned();
            (message.clone(), ValidationErrors::field("api_key", message))
        }
        ApiError::UnknownKey => {
            let message = "API key not recognised".to_owned();
            (message.clone(), ValidationErrors::field("api_key", message))
        }
        ApiError::UnsupportedMediaType(given) => {
            let message = format!("Content-Type {given:?} is not supported; send application/json");
            (
                message.clone(),
                ValidationErrors::field("content-type", message),
            )
        }
        ApiError::BodyTooLarge { size, limit } => form(format!(
            "Body of at least {size} bytes exceeds the limit of {limit} bytes (256 KiB)"
        )),
        ApiError::EmptyBody => form("Request body is empty; expected a JSON object".to_owned()),
        ApiError::UnreadableBody(detail) => form(format!(
            "The request body could not be read ({detail}); send it again, complete"
        )),
        ApiError::MalformedJson(detail) => form(format!("Malformed JSON: {detail}")),
        ApiError::Invalid(errors) => ("Validation failed".into(), errors.clone()),
        ApiError::Store(StoreError::TooLarge { limit, .. }) => form(format!(
            "The normalized event exceeds the storage limit of {limit} bytes; send a smaller body"
        )),
        ApiError::Store(_) | ApiError::Queue(_) => {
            form("Temporarily unable to accept events; retry the same request".to_owned())
        }
        ApiError::Missing(what) => {
            let message = format!("{what} not found; the ingest URL names no connection");
            (
                message.clone(),
                ValidationErrors::field("connection_id", message),
            )
        }
        ApiError::NotAuthenticated { field, reason } => (
            format!("Not authenticated: {field}"),
            ValidationErrors::field(*field, *reason),
        ),
        // Not answers of this API; worded plainly should one ever reach it.
        ApiError::ForeignWorkspace
        | ApiError::NotFound
        | ApiError::LimitReached
        | ApiError::AtLimit { .. }
        | ApiError::Conflict
        | ApiError::Paused
        | ApiError::InFlight
        | ApiError::Busy { .. } => form(err.to_string()),
    }
}

/// Room for a success envelope, so writing one never regrows its buffer.
const ENVELOPE_CAPACITY: usize = 512;

fn json_bytes(body: &EnvelopeOut<'_>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(ENVELOPE_CAPACITY);
    serde_json::to_writer(&mut bytes, body).expect("envelopes always serialize");
    bytes
}
