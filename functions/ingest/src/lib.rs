//! Ingest handler: authenticates, validates, dedups, stores and queues generic events.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use hookline_shared::keys::KeyCache;
use hookline_shared::request::{request_id, REQUEST_ID_HEADER};
use hookline_shared::validation::{validate_body, Rejection, ValidationErrors};
use hookline_shared::{
    Category, Event, EventId, EventStore, Inserted, Queue, QueueError, QueueMessage, StoreError,
    WorkspaceId, WorkspaceStore,
};
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt as _, Response};
use serde::Serialize;

/// The generic ingest route; the category is the one path segment after it.
pub const ROUTE_PREFIX: &str = "/api/v2/analytics/webhook/receive/generic/";
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything the handler needs; built once per cold start (or once by local mode).
pub struct Ingest<W, E, Q> {
    pub workspaces: W,
    pub events: E,
    pub queue: Q,
    pub keys: KeyCache,
    /// How long a dedup id keeps repeats out.
    pub dedup_window: Duration,
}

impl<W, E, Q> Ingest<W, E, Q> {
    pub fn new(workspaces: W, events: E, queue: Q, dedup_window: Duration) -> Self {
        Self {
            workspaces,
            events,
            queue,
            keys: KeyCache::default(),
            dedup_window,
        }
    }
}

/// Why a request was not accepted. [`IngestError::status`] and [`error_response`] are the only
/// places that turn these into HTTP.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("unknown event type {0:?}")]
    UnknownCategory(String),
    #[error("method {0} not allowed")]
    MethodNotAllowed(Method),
    #[error("no API key")]
    MissingKey,
    #[error("API key not recognised")]
    UnknownKey,
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(String),
    #[error("body of {0} bytes exceeds the limit")]
    BodyTooLarge(usize),
    #[error("empty body")]
    EmptyBody,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("validation failed with {} fault(s)", .0.count())]
    Invalid(ValidationErrors),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::NoRoute(_) | IngestError::UnknownCategory(_) => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::MissingKey => StatusCode::UNAUTHORIZED,
            IngestError::UnknownKey => StatusCode::FORBIDDEN,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::BodyTooLarge(_) | IngestError::Store(StoreError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::EmptyBody | IngestError::MalformedJson(_) | IngestError::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            IngestError::Store(_) | IngestError::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the caller is told: a summary and the faults in Zod's `flatten()` shape.
    fn caller_view(&self) -> (String, ValidationErrors) {
        let valid = Category::valid_values();
        match self {
            IngestError::NoRoute(path) => {
                let message = format!("No route for {path}; POST to {ROUTE_PREFIX}{{eventType}} with eventType one of {valid}");
                (message.clone(), ValidationErrors::form(message))
            }
            IngestError::UnknownCategory(given) => (
                "Unknown event type".into(),
                ValidationErrors::field(
                    "eventType",
                    format!("Unknown event type {given:?}; expected one of {valid}"),
                ),
            ),
            IngestError::MethodNotAllowed(method) => {
                let message = format!("Method {method} is not allowed; use POST");
                (message.clone(), ValidationErrors::form(message))
            }
            IngestError::MissingKey => {
                let message = "Missing API key: send it in the api_key or X-API-KEY header, or the api_key query parameter".to_owned();
                (message.clone(), ValidationErrors::field("api_key", message))
            }
            IngestError::UnknownKey => {
                let message = "API key not recognised".to_owned();
                (message.clone(), ValidationErrors::field("api_key", message))
            }
            IngestError::UnsupportedMediaType(given) => {
                let message =
                    format!("Content-Type {given:?} is not supported; send application/json");
                (
                    message.clone(),
                    ValidationErrors::field("content-type", message),
                )
            }
            IngestError::BodyTooLarge(size) => {
                let message = format!(
                    "Body of at least {size} bytes exceeds the limit of {MAX_BODY_BYTES} bytes (256 KiB)"
                );
                (message.clone(), ValidationErrors::form(message))
            }
            IngestError::EmptyBody => {
                let message = "Request body is empty; expected a JSON object".to_owned();
                (message.clone(), ValidationErrors::form(message))
            }
            IngestError::MalformedJson(detail) => {
                let message = format!("Malformed JSON: {detail}");
                (message.clone(), ValidationErrors::form(message))
            }
            IngestError::Invalid(errors) => ("Validation failed".into(), errors.clone()),
            IngestError::Store(StoreError::TooLarge { limit, .. }) => {
                let message = format!("The normalized event exceeds the storage limit of {limit} bytes; send a smaller body");
                (message.clone(), ValidationErrors::form(message))
            }
            IngestError::Store(_) | IngestError::Queue(_) => {
                let message =
                    "Temporarily unable to accept events; retry the same request".to_owned();
                (message.clone(), ValidationErrors::form(message))
            }
        }
    }

    fn outcome(&self) -> &'static str {
        match self.status() {
            s if s.is_server_error() => "unavailable",
            _ => "rejected",
        }
    }
}

/// An accepted request: a new event, a duplicate, or an earlier event queued only now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub workspace_id: WorkspaceId,
    pub event_id: EventId,
    pub dedup_id: String,
    pub duplicate: bool,
    pub should_process: bool,
}

/// The Lambda entry point and local mode's: never returns `Err`, every outcome is a response.
pub async fn handle_ingest<W, E, Q>(
    deps: &Ingest<W, E, Q>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    W: WorkspaceStore,
    E: EventStore,
    Q: Queue,
{
    let started = Instant::now();
    let request_id = request_id(req.lambda_context_ref().map(|ctx| ctx.request_id.as_str()));
    let result = ingest(deps, &req).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let response = match &result {
        Ok(accepted) => {
            tracing::info!(
                request_id, workspace_id = %accepted.workspace_id, event_id = %accepted.event_id,
                outcome = if accepted.duplicate { "duplicate" } else { "accepted" }, status = 200, duration_ms, "ingest"
            );
            accepted_response(accepted, &request_id)
        }
        Err(err) => {
            let status = err.status().as_u16();
            if err.status().is_server_error() {
                tracing::error!(request_id, outcome = err.outcome(), status, duration_ms, error = %err, "ingest");
            } else {
                tracing::info!(request_id, outcome = err.outcome(), status, duration_ms, reason = %err, "ingest");
            }
            error_response(err, &request_id)
        }
    };
    Ok(response)
}

/// The ingest contract, minus HTTP rendering.
pub async fn ingest<W, E, Q>(deps: &Ingest<W, E, Q>, req: &Request) -> Result<Accepted, IngestError>
where
    W: WorkspaceStore,
    E: EventStore,
    Q: Queue,
{
    let category = route(req)?;
    if req.method() != Method::POST {
        return Err(IngestError::MethodNotAllowed(req.method().clone()));
    }
    let key = hookline_shared::request::api_key(req.headers(), req.uri().query())
        .ok_or(IngestError::MissingKey)?;
    let workspace_id = deps
        .keys
        .resolve(&deps.workspaces, &key)
        .await?
        .ok_or(IngestError::UnknownKey)?;
    let body = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(IngestError::BodyTooLarge(body.len()));
    }
    hookline_shared::request::require_json(req.headers())
        .map_err(IngestError::UnsupportedMediaType)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::EmptyBody);
    }
    let now = Utc::now();
    let valid = validate_body(category, body, now).map_err(|rejection| match rejection {
        Rejection::Malformed(detail) => IngestError::MalformedJson(detail),
        Rejection::Invalid(errors) => IngestError::Invalid(errors),
    })?;
    let dedup_id = valid.dedup_id;
    let event = Event {
        id: EventId::generate(),
        workspace_id,
        dedup_id,
        category,
        should_process: category.should_process(&valid.event_type),
        event_type: valid.event_type,
        timestamp: valid.timestamp,
        received_at: now,
        payload: valid.payload,
    };
    let expires_at = now.timestamp() + deps.dedup_window.as_secs() as i64;
    let (event_id, duplicate) = match deps.events.insert_if_absent(&event, expires_at).await? {
        Inserted::New => (event.id.clone(), false),
        Inserted::Existing(existing) if existing.queued => (existing.event_id, true),
        // Stored earlier but never queued (that request got a 5xx): this retry queues it.
        Inserted::Existing(existing) => (existing.event_id, false),
    };
    if !duplicate {
        enqueue(deps, &event.workspace_id, &event_id, &event.dedup_id).await?;
    }
    Ok(Accepted {
        workspace_id: event.workspace_id,
        event_id,
        dedup_id: event.dedup_id,
        duplicate,
        should_process: event.should_process,
    })
}

async fn enqueue<W, E, Q>(
    deps: &Ingest<W, E, Q>,
    workspace_id: &WorkspaceId,
    event_id: &EventId,
    dedup_id: &str,
) -> Result<(), IngestError>
where
    E: EventStore,
    Q: Queue,
{
    let message = QueueMessage::EventAccepted {
        workspace_id: workspace_id.clone(),
        event_id: event_id.clone(),
        dedup_id: dedup_id.to_owned(),
    };
    deps.queue.send(&message.to_body(), Duration::ZERO).await?;
    // The event is queued either way; a failed mark only means a retry may queue it twice,
    // which delivery absorbs by delivery id.
    if let Err(err) = deps.events.mark_queued(workspace_id, dedup_id).await {
        tracing::warn!(%workspace_id, %event_id, error = %err, "event queued but not marked queued");
    }
    Ok(())
}

fn route(req: &Request) -> Result<Category, IngestError> {
    let path = req.uri().path();
    // Usually the path starts with the route; behind an API Gateway stage it follows the stage.
    let segment = path
        .strip_prefix(ROUTE_PREFIX)
        .or_else(|| {
            path.find(ROUTE_PREFIX)
                .map(|at| &path[at + ROUTE_PREFIX.len()..])
        })
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(|| IngestError::NoRoute(path.to_owned()))?;
    Category::parse(segment).ok_or_else(|| IngestError::UnknownCategory(segment.to_owned()))
}

/// The answer envelope of seed 001, for success and failure alike.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeOut<'a> {
    #[serde(rename = "_metadata")]
    metadata: MetadataOut<'a>,
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<ConnectionOut>,
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
struct ConnectionOut {
    provider_name: &'static str,
    should_process: bool,
    connection_method: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdditionalDataOut<'a> {
    event_id: &'a EventId,
    dedup_id: &'a str,
    duplicate: bool,
}

fn accepted_response(accepted: &Accepted, request_id: &str) -> Response<Body> {
    let message = if accepted.duplicate {
        "Duplicate event; already received"
    } else {
        "Event received"
    };
    let envelope = EnvelopeOut {
        metadata: MetadataOut::new(request_id, message),
        received: true,
        connection: Some(ConnectionOut {
            provider_name: "GENERIC",
            should_process: accepted.should_process,
            connection_method: "WEBHOOK",
        }),
        additional_data: Some(AdditionalDataOut {
            event_id: &accepted.event_id,
            dedup_id: &accepted.dedup_id,
            duplicate: accepted.duplicate,
        }),
        errors: None,
    };
    json_response(StatusCode::OK, &envelope, request_id)
}

/// The one place an [`IngestError`] becomes an HTTP response.
pub fn error_response(err: &IngestError, request_id: &str) -> Response<Body> {
    let (message, errors) = err.caller_view();
    let envelope = EnvelopeOut {
        metadata: MetadataOut::new(request_id, &message),
        received: false,
        connection: None,
        additional_data: None,
        errors: Some(&errors),
    };
    let mut response = json_response(err.status(), &envelope, request_id);
    match err {
        IngestError::MethodNotAllowed(_) => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        IngestError::Store(StoreError::Unavailable(_)) | IngestError::Queue(_) => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// Room for a success envelope, so writing one never regrows its buffer.
const ENVELOPE_CAPACITY: usize = 512;

fn json_response(status: StatusCode, body: &EnvelopeOut<'_>, request_id: &str) -> Response<Body> {
    let mut bytes = Vec::with_capacity(ENVELOPE_CAPACITY);
    serde_json::to_writer(&mut bytes, body).expect("envelopes always serialize");
    let text = String::from_utf8(bytes).expect("serde_json writes UTF-8");
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}
