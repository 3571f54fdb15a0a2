//! The one error both APIs answer with: what went wrong, its status and its headers. Each API
//! words it in its own envelope ([`Envelope`]); nothing internal reaches the caller.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, Method, StatusCode};

use crate::validation::ValidationErrors;
use crate::{QueueError, StoreError};

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route for {0}")]
    NoRoute(String),
    /// A path value outside its closed set (ingest's `{eventType}`).
    #[error("unknown event type {0:?}")]
    UnknownCategory(String),
    #[error("method {method} not allowed; allowed: {allowed}")]
    MethodNotAllowed {
        method: Method,
        allowed: &'static str,
    },
    #[error("no API key")]
    MissingKey,
    #[error("API key not recognised")]
    UnknownKey,
    #[error("API key used on another workspace's path")]
    ForeignWorkspace,
    #[error("subscription not found")]
    NotFound,
    /// Another resource (a connection…) that is not there, or is another workspace's.
    #[error("{0} not found")]
    Missing(&'static str),
    /// A provider's delivery that does not prove it comes from the connection's provider:
    /// the header or field that failed, and how. Never what was sent.
    #[error("not authenticated: {field}: {reason}")]
    NotAuthenticated {
        field: &'static str,
        reason: &'static str,
    },
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(String),
    #[error("body of {size} bytes exceeds the limit of {limit}")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("empty body")]
    EmptyBody,
    /// The body broke off or was framed wrongly (a malformed chunked encoding, say).
    #[error("unreadable body: {0}")]
    UnreadableBody(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("validation failed with {} fault(s)", .0.count())]
    Invalid(ValidationErrors),
    #[error("workspace already has the maximum number of subscriptions")]
    LimitReached,
    /// The workspace holds as many of `what` (plural) as it may.
    #[error("workspace already has the maximum of {max} {what}")]
    AtLimit { what: &'static str, max: usize },
    #[error("subscription changed concurrently")]
    Conflict,
    /// A replay or recovery of a paused subscription: it must be enabled first.
    #[error("subscription is paused")]
    Paused,
    /// A replay of a delivery while one of its attempts is being made.
    #[error("an attempt of the delivery is in flight")]
    InFlight,
    /// Work of which a workspace runs one at a time is running (an export): `field` names what
    /// the rule is about, `message` what to do.
    #[error("busy: {field}: {message}")]
    Busy {
        field: &'static str,
        message: String,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

impl ApiError {
    /// The one status mapping of both APIs.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoRoute(_)
            | ApiError::UnknownCategory(_)
            | ApiError::NotFound
            | ApiError::Missing(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::MissingKey | ApiError::NotAuthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::UnknownKey | ApiError::ForeignWorkspace => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTooLarge { .. } | ApiError::Store(StoreError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::EmptyBody
            | ApiError::UnreadableBody(_)
            | ApiError::MalformedJson(_)
            | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::LimitReached
            | ApiError::AtLimit { .. }
            | ApiError::Conflict
            | ApiError::Paused
            | ApiError::InFlight
            | ApiError::Busy { .. } => StatusCode::CONFLICT,
            ApiError::Store(_) | ApiError::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// How the request log line sums it up.
    pub fn outcome(&self) -> &'static str {
        if self.status().is_server_error() {
            "unavailable"
        } else {
            "rejected"
        }
    }

    fn headers(&self) -> Option<(header::HeaderName, HeaderValue)> {
        match self {
            ApiError::MethodNotAllowed { allowed, .. } => {
                Some((header::ALLOW, HeaderValue::from_static(allowed)))
            }
            // Ours and passing: the same request again is the right move.
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => {
                Some((header::RETRY_AFTER, HeaderValue::from_static("1")))
            }
            _ => None,
        }
    }
}

/// How one API words an [`ApiError`] for its callers: its own JSON shape and messages.
pub trait Envelope: Send + Sync + 'static {
    /// The API's name in its request log lines.
    const NAME: &'static str;

    /// The JSON body of the answer to `err`.
    fn error_body(err: &ApiError, request_id: &str) -> Vec<u8>;
}

/// Status and headers; the body is the API's envelope, written by its request layer
/// ([`crate::http::api_layer`]), which has the request id and knows the API.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        if let Some((name, value)) = self.headers() {
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(Failure(Arc::new(self)));
        response
    }
}

/// An [`ApiError`] on its way from a handler or extractor to the request layer.
#[derive(Clone)]
pub(crate) struct Failure(pub(crate) Arc<ApiError>);
