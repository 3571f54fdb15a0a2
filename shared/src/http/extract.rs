//! What every route extracts the same way: the request id, the caller's workspace, a JSON body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use http::request::Parts;
use serde_json::Value;

use super::error::ApiError;
use super::request::{api_key, require_json};
use crate::keys::KeyCache;
use crate::validation::json_limits;
use crate::{WorkspaceId, WorkspaceStore};

/// The name of the path parameter that scopes a route to one workspace.
pub const WORKSPACE_PARAM: &str = "workspace_id";

/// What an API's state offers the shared extractors.
pub trait ApiState: Send + Sync + 'static {
    type Workspaces: WorkspaceStore;
    /// Largest request body the API accepts.
    const MAX_BODY_BYTES: usize;

    fn keyring(&self) -> &Keyring<Self::Workspaces>;
}

/// The API keys an API accepts: the workspaces they resolve to, through a short-lived cache.
pub struct Keyring<W> {
    pub workspaces: W,
    pub cache: KeyCache,
}

impl<W: WorkspaceStore> Keyring<W> {
    pub fn new(workspaces: W) -> Self {
        Self {
            workspaces,
            cache: KeyCache::default(),
        }
    }

    /// The workspace `key` belongs to, or `UnknownKey`.
    pub async fn resolve(&self, key: &crate::ApiKey) -> Result<WorkspaceId, ApiError> {
        self.cache
            .resolve(&self.workspaces, key)
            .await?
            .ok_or(ApiError::UnknownKey)
    }
}

/// The id the request is logged and answered under (set by [`super::api_layer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(super::request::request_id(None))))
    }
}

/// The workspace of the request's API key. On a route with a `{workspace_id}` that workspace
/// must be the key's: compared as text before anything is looked up, so a foreign path learns
/// nothing.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace: WorkspaceId,
}

impl<A: ApiState> FromRequestParts<Arc<A>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<A>) -> Result<Self, ApiError> {
        let key = api_key(&parts.headers, parts.uri.query()).ok_or(ApiError::MissingKey)?;
        let workspace = api.keyring().resolve(&key).await?;
        tracing::Span::current().record("workspace_id", workspace.as_str());
        let on_path = match RawPathParams::from_request_parts(parts, api).await {
            Ok(params) => params
                .iter()
                .find(|(name, _)| *name == WORKSPACE_PARAM)
                .map(|(_, value)| value == workspace.as_str()),
            // A path workspace that is not even text is nobody's.
            Err(axum::extract::rejection::RawPathParamsRejection::InvalidUtf8InPathParam(_)) => {
                Some(false)
            }
            Err(_) => None,
        };
        if on_path == Some(false) {
            return Err(ApiError::ForeignWorkspace);
        }
        Ok(Caller { workspace })
    }
}

/// A request body within the API's size limit, sent as JSON (or without a content type) and
/// not blank. Ingest validates the bytes as they are; [`JsonBody::value`] parses them.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Bytes);

impl JsonBody {
    /// The body parsed, once it keeps the [JSON limits](json_limits) every body keeps (so a
    /// breach is named by its path, and serde_json's own depth limit is never what answers).
    pub fn value(&self) -> Result<Value, ApiError> {
        json_limits::check(&self.0).map_err(|violation| ApiError::Invalid(violation.into()))?;
        serde_json::from_slice(&self.0).map_err(|e| ApiError::MalformedJson(e.to_string()))
    }
}

impl<A: ApiState> FromRequest<Arc<A>> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &Arc<A>) -> Result<Self, ApiError> {
        JsonBody::read(req, A::MAX_BODY_BYTES).await
    }
}

impl JsonBody {
    /// The body of `req` under `limit`, for a route whose state has no [`ApiState`] (one
    /// that takes no API key).
    pub async fn read(req: Request, limit: usize) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        // A declared size over the limit is refused unread; otherwise no more than one byte
        // past the limit is ever buffered, whatever the sender streams.
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if let Some(size) = declared.filter(|&size| size > limit) {
            return Err(ApiError::BodyTooLarge { size, limit });
        }
        let bytes = axum::body::to_bytes(body, limit + 1)
            .await
            .map_err(|err| read_failure(err, limit))?;
        if bytes.len() > limit {
            return Err(ApiError::BodyTooLarge {
                size: bytes.len(),
                limit,
            });
        }
        require_json(&parts.headers).map_err(ApiError::UnsupportedMediaType)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::EmptyBody);
        }
        Ok(JsonBody(bytes))
    }
}

/// Why a body could not be read: past the limit, or broken off or badly framed by the sender.
fn read_failure(err: axum::Error, limit: usize) -> ApiError {
    let err = err.into_inner();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    while let Some(at) = cause {
        if at.is::<http_body_util::LengthLimitError>() {
            return ApiError::BodyTooLarge {
                size: limit + 1,
                limit,
            };
        }
        cause = at.source();
    }
    ApiError::UnreadableBody(err.to_string())
}
