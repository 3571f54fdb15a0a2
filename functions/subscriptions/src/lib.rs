//! Notify API handler: subscription CRUD, signing secrets and the event-type catalog.

mod logs;
mod order;
mod shapes;
mod test_send;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::Utc;
use hookline_shared::keys::KeyCache;
use hookline_shared::request::{request_id, REQUEST_ID_HEADER};
use hookline_shared::validation::{schema_errors, ValidationErrors};
use hookline_shared::webhook::WebhookSender;
use hookline_shared::{
    catalog, request, Created, LogStore, NewSubscription, Queue, QueueMessage, StoreError,
    Subscription, SubscriptionId, SubscriptionStore, SubscriptionType, WorkspaceId, WorkspaceStore,
    MAX_SUBSCRIPTIONS_PER_WORKSPACE,
};
use jsonschema::Validator;
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt as _, Response};
use serde_json::{json, Value};

pub use order::{OrderBy, ORDER_BY_VALUES};
use shapes::{CreateIn, PatchIn, SecretOut, SubscriptionOut};

/// Every route lives under this prefix.
pub const API_PREFIX: &str = "/notify/api/v1/";
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest accepted `webhook_url`.
pub const MAX_URL_LEN: usize = 2048;
const MAX_ACTOR_LEN: usize = 256;

/// Everything the handler needs; built once per cold start (or once by local mode).
pub struct Notify<W, S, D, Q> {
    pub workspaces: W,
    pub subscriptions: S,
    /// Read for the logs API.
    pub deliveries: D,
    /// The deliveries queue: enabling a subscription asks the worker to resume its parked work.
    pub resumes: Q,
    /// Test-send goes through the same client, signer and SSRF guard as deliveries.
    pub sender: WebhookSender,
    pub keys: KeyCache,
    /// Accept plain-http webhook URLs (local development only).
    pub allow_http: bool,
}

impl<W, S, D, Q> Notify<W, S, D, Q> {
    pub fn new(
        workspaces: W,
        subscriptions: S,
        deliveries: D,
        resumes: Q,
        sender: WebhookSender,
        allow_http: bool,
    ) -> Self {
        Self {
            workspaces,
            subscriptions,
            deliveries,
            resumes,
            sender,
            keys: KeyCache::default(),
            allow_http,
        }
    }
}

/// Why a request failed. [`NotifyError::status`] and [`error_response`] are the only places
/// that turn these into HTTP.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no route for {0}")]
    NoRoute(String),
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
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(String),
    #[error("body of {0} bytes exceeds the limit")]
    BodyTooLarge(usize),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("validation failed with {} fault(s)", .0.count())]
    Invalid(ValidationErrors),
    #[error("workspace already has the maximum number of subscriptions")]
    LimitReached,
    #[error("subscription changed concurrently")]
    Conflict,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl NotifyError {
    pub fn status(&self) -> StatusCode {
        match self {
            NotifyError::NoRoute(_) | NotifyError::NotFound => StatusCode::NOT_FOUND,
            NotifyError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            NotifyError::MissingKey => StatusCode::UNAUTHORIZED,
            NotifyError::UnknownKey | NotifyError::ForeignWorkspace => StatusCode::FORBIDDEN,
            NotifyError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            NotifyError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            NotifyError::MalformedJson(_) | NotifyError::Invalid(_) => StatusCode::BAD_REQUEST,
            NotifyError::LimitReached | NotifyError::Conflict => StatusCode::CONFLICT,
            NotifyError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `(code, message, fieldErrors)` as the caller sees them; nothing internal leaks.
    fn caller_view(&self) -> (&'static str, String, ValidationErrors) {
        let none = ValidationErrors::default;
        match self {
            NotifyError::NoRoute(path) => ("not_found", format!("No route for {path}"), none()),
            NotifyError::MethodNotAllowed { method, allowed } => {
                ("method_not_allowed", format!("Method {method} is not allowed here; use {allowed}"), none())
            }
            NotifyError::MissingKey => (
                "unauthorized",
                "Missing API key: send it in the X-API-KEY header".into(),
                ValidationErrors::field("X-API-KEY", "Required"),
            ),
            NotifyError::UnknownKey => (
                "forbidden",
                "API key not recognised".into(),
                ValidationErrors::field("X-API-KEY", "Not a valid API key"),
            ),
            NotifyError::ForeignWorkspace => (
                "forbidden",
                "This API key does not grant access to that workspace".into(),
                ValidationErrors::field("workspace_id", "Not the workspace of this API key"),
            ),
            NotifyError::NotFound => ("not_found", "Subscription not found".into(), none()),
            NotifyError::UnsupportedMediaType(given) => (
                "unsupported_media_type",
                format!("Content-Type {given:?} is not supported; send application/json"),
                none(),
            ),
            NotifyError::BodyTooLarge(size) => (
                "payload_too_large",
                format!("Body of at least {size} bytes exceeds the limit of {MAX_BODY_BYTES} bytes"),
                none(),
            ),
            NotifyError::MalformedJson(detail) => ("invalid_json", format!("Malformed JSON: {detail}"), none()),
            NotifyError::Invalid(errors) => ("validation_error", "Validation failed".into(), errors.clone()),
            NotifyError::LimitReached => (
                "limit_exceeded",
                format!("A workspace holds at most {MAX_SUBSCRIPTIONS_PER_WORKSPACE} subscriptions; delete one first"),
                none(),
            ),
            NotifyError::Conflict => (
                "conflict",
                "The subscription was changed by another request; read it again and retry".into(),
                none(),
            ),
            NotifyError::Store(_) => ("unavailable", "Temporarily unavailable; retry the request".into(), none()),
        }
    }
}

/// A successful answer: a status and an optional JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
}

impl Reply {
    fn json(status: StatusCode, body: impl serde::Serialize) -> Self {
        Self {
            status,
            body: Some(serde_json::to_value(body).expect("replies always serialize")),
        }
    }
}

/// The routes of the notify API, parsed from the path after [`API_PREFIX`].
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    EventTypes,
    Subscriptions {
        workspace: &'a str,
    },
    Subscription {
        workspace: &'a str,
        id: &'a str,
    },
    Secret {
        workspace: &'a str,
        id: &'a str,
    },
    RotateSecret {
        workspace: &'a str,
        id: &'a str,
    },
    Logs {
        workspace: &'a str,
        subscription: Option<&'a str>,
    },
    TestSend {
        workspace: &'a str,
    },
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Self> {
        let rest = &path[path.find(API_PREFIX)? + API_PREFIX.len()..];
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        Some(match segments.as_slice() {
            ["event_types"] => Route::EventTypes,
            ["workspaces", ws, "subscription"] => Route::Subscriptions { workspace: ws },
            ["workspaces", ws, "subscription", id] => Route::Subscription { workspace: ws, id },
            ["workspaces", ws, "subscription", id, "secret"] => Route::Secret { workspace: ws, id },
            ["workspaces", ws, "subscription", id, "secret", "rotate"] => {
                Route::RotateSecret { workspace: ws, id }
            }
            ["workspaces", ws, "logs"] => Route::Logs {
                workspace: ws,
                subscription: None,
            },
            ["workspaces", ws, "logs", id] => Route::Logs {
                workspace: ws,
                subscription: Some(id),
            },
            ["workspaces", ws, "test"] => Route::TestSend { workspace: ws },
            _ => return None,
        })
    }

    fn workspace(&self) -> Option<&'a str> {
        match self {
            Route::EventTypes => None,
            Route::Subscriptions { workspace }
            | Route::Subscription { workspace, .. }
            | Route::Secret { workspace, .. }
            | Route::RotateSecret { workspace, .. }
            | Route::Logs { workspace, .. }
            | Route::TestSend { workspace } => Some(workspace),
        }
    }
}

/// The Lambda entry point and local mode's: never returns `Err`, every outcome is a response.
pub async fn handle_notify<W, S, D, Q>(
    deps: &Notify<W, S, D, Q>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    W: WorkspaceStore,
    S: SubscriptionStore,
    D: LogStore,
    Q: Queue,
{
    let started = Instant::now();
    let request_id = request_id(req.lambda_context_ref().map(|ctx| ctx.request_id.as_str()));
    let result = serve(deps, &req).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let (method, path) = (req.method().as_str(), req.uri().path());
    let response = match result {
        Ok(reply) => {
            tracing::info!(
                request_id,
                method,
                path,
                status = reply.status.as_u16(),
                duration_ms,
                "notify"
            );
            reply_response(reply, &request_id)
        }
        Err(err) => {
            let status = err.status().as_u16();
            if err.status().is_server_error() {
                tracing::error!(request_id, method, path, status, duration_ms, error = %err, "notify");
            } else {
                tracing::info!(request_id, method, path, status, duration_ms, reason = %err, "notify");
            }
            error_response(&err, &request_id)
        }
    };
    Ok(response)
}

/// Authenticates, authorizes and dispatches one request.
pub async fn serve<W, S, D, Q>(
    deps: &Notify<W, S, D, Q>,
    req: &Request,
) -> Result<Reply, NotifyError>
where
    W: WorkspaceStore,
    S: SubscriptionStore,
    D: LogStore,
    Q: Queue,
{
    let path = req.uri().path();
    let route = Route::parse(path).ok_or_else(|| NotifyError::NoRoute(path.to_owned()))?;
    let key = request::api_key(req.headers(), req.uri().query()).ok_or(NotifyError::MissingKey)?;
    let workspace = deps
        .keys
        .resolve(&deps.workspaces, &key)
        .await?
        .ok_or(NotifyError::UnknownKey)?;
    // Compared as text before anything is looked up, so a foreign path learns nothing.
    if route.workspace().is_some_and(|ws| ws != workspace.as_str()) {
        return Err(NotifyError::ForeignWorkspace);
    }
    let method = req.method();
    let store = &deps.subscriptions;
    match (route, method.clone()) {
        (Route::EventTypes, Method::GET) => Ok(list_event_types()),
        (Route::Subscriptions { .. }, Method::GET) => {
            list_subscriptions(store, &workspace, req.uri().query()).await
        }
        (Route::Subscriptions { .. }, Method::POST) => {
            create_subscription(store, &workspace, json_body(req)?, deps.allow_http).await
        }
        (Route::Subscription { id, .. }, Method::GET) => {
            let subscription = find(store, &workspace, id).await?;
            Ok(Reply::json(
                StatusCode::OK,
                SubscriptionOut::new(&subscription, false),
            ))
        }
        (Route::Subscription { id, .. }, Method::PATCH) => {
            let body = json_body(req)?;
            update_subscription(store, &deps.resumes, &workspace, id, body, deps.allow_http).await
        }
        (Route::Subscription { id, .. }, Method::DELETE) => {
            delete_subscription(store, &workspace, id).await
        }
        (Route::Secret { id, .. }, Method::GET) => {
            let subscription = find(store, &workspace, id).await?;
            Ok(Reply::json(StatusCode::OK, SecretOut::new(&subscription)))
        }
        (Route::RotateSecret { id, .. }, Method::POST) => {
            rotate_secret(store, &workspace, id).await
        }
        (Route::Logs { subscription, .. }, Method::GET) => {
            let query = req.uri().query();
            let page = logs::list_logs(&deps.deliveries, &workspace, subscription, query).await?;
            Ok(Reply::json(StatusCode::OK, page))
        }
        (Route::TestSend { .. }, Method::POST) => {
            let body = json_body(req)?;
            let outcome = test_send::send_test(
                &deps.workspaces,
                store,
                &deps.sender,
                &workspace,
                body,
                deps.allow_http,
            )
            .await?;
            Ok(Reply::json(StatusCode::OK, outcome))
        }
        (route, method) => Err(NotifyError::MethodNotAllowed {
            method,
            allowed: allowed_methods(&route),
        }),
    }
}

fn allowed_methods(route: &Route<'_>) -> &'static str {
    match route {
        Route::EventTypes | Route::Secret { .. } | Route::Logs { .. } => "GET",
        Route::TestSend { .. } => "POST",
        Route::Subscriptions { .. } => "GET, POST",
        Route::Subscription { .. } => "GET, PATCH, DELETE",
        Route::RotateSecret { .. } => "POST",
    }
}

fn list_event_types() -> Reply {
    let types: Vec<Value> = catalog::all()
        .iter()
        .map(|info| json!({"event_type": info.name, "description": info.description}))
        .collect();
    Reply::json(StatusCode::OK, types)
}

async fn list_subscriptions<S: SubscriptionStore>(
    store: &S,
    workspace: &WorkspaceId,
    query: Option<&str>,
) -> Result<Reply, NotifyError> {
    let mut errors = ValidationErrors::default();
    let order = match request::query_param(query, "order_by") {
        None => OrderBy::default(),
        Some(raw) => OrderBy::parse(&raw).unwrap_or_else(|| {
            let allowed = ORDER_BY_VALUES.join(", ");
            errors.add(
                "order_by".into(),
                format!("Unknown order_by {raw:?}; allowed: {allowed}"),
            );
            OrderBy::default()
        }),
    };
    let kind = match request::query_param(query, "type") {
        None => None,
        Some(raw) => SubscriptionType::parse(&raw).or_else(|| {
            errors.add(
                "type".into(),
                format!("Unknown type {raw:?}; allowed: SEASALT, ZAPIER"),
            );
            None
        }),
    };
    if !errors.is_empty() {
        return Err(NotifyError::Invalid(errors));
    }
    let mut subscriptions = store.list_subscriptions(workspace).await?;
    subscriptions.retain(|s| kind.is_none_or(|k| s.kind == k));
    order.sort(&mut subscriptions);
    let out: Vec<SubscriptionOut<'_>> = subscriptions
        .iter()
        .map(|s| SubscriptionOut::new(s, false))
        .collect();
    Ok(Reply::json(StatusCode::OK, json!({ "subscriptions": out })))
}

/// `body` checked against `schema` and the URL rules, every fault at once, then typed.
fn validated<T: serde::de::DeserializeOwned>(
    schema: &Validator,
    body: Value,
    allow_http: bool,
) -> Result<T, NotifyError> {
    let mut errors = schema_errors(schema, &body);
    check_semantics(&body, allow_http, &mut errors);
    if !errors.is_empty() {
        return Err(NotifyError::Invalid(errors));
    }
    serde_json::from_value(body).map_err(|e| NotifyError::MalformedJson(e.to_string()))
}

async fn create_subscription<S: SubscriptionStore>(
    store: &S,
    workspace: &WorkspaceId,
    body: Value,
    allow_http: bool,
) -> Result<Reply, NotifyError> {
    let input: CreateIn = validated(&CREATE_SCHEMA, body, allow_http)?;
    let new = NewSubscription {
        webhook_url: input.webhook_url,
        event_types: dedup_preserving_order(input.event_types),
        is_enabled: input.is_enabled,
        kind: input.kind.unwrap_or_default(),
        created_by: input.created_by,
    };
    let subscription = Subscription::new(workspace.clone(), new, Utc::now());
    if store.create_subscription(&subscription).await? == Created::LimitReached {
        return Err(NotifyError::LimitReached);
    }
    Ok(Reply::json(
        StatusCode::CREATED,
        SubscriptionOut::new(&subscription, true),
    ))
}

async fn update_subscription<S: SubscriptionStore, Q: Queue>(
    store: &S,
    resumes: &Q,
    workspace: &WorkspaceId,
    id: &str,
    body: Value,
    allow_http: bool,
) -> Result<Reply, NotifyError> {
    let current = find(store, workspace, id).await?;
    let patch: PatchIn = validated(&PATCH_SCHEMA, body, allow_http)?;
    let enabling = patch.is_enabled == Some(true);
    let mut updated = current.clone();
    if let Some(url) = patch.webhook_url {
        updated.webhook_url = url;
    }
    if let Some(types) = patch.event_types {
        updated.event_types = dedup_preserving_order(types);
    }
    if let Some(enabled) = patch.is_enabled {
        updated.is_enabled = enabled;
        if enabled {
            updated.paused_reason = None;
            updated.paused_at = None;
        }
    }
    if let Some(kind) = patch.kind {
        updated.kind = kind;
    }
    updated.updated_by = Some(patch.updated_by);
    updated.updated_at = Utc::now();
    updated.version = current.version + 1;
    if !store.replace_subscription(&current, &updated).await? {
        return Err(NotifyError::Conflict);
    }
    if enabling {
        // The change is saved either way: parked work a resume does not reach waits for its
        // recheck. Sent on every enabling PATCH, so sending the same one again also resumes.
        let resume = QueueMessage::Resume {
            workspace_id: workspace.clone(),
            subscription_id: updated.id.clone(),
            after: None,
        };
        if let Err(err) = resumes.send(&resume.to_body(), Duration::ZERO).await {
            tracing::error!(%workspace, subscription_id = %updated.id, error = %err, "resume not queued; parked deliveries wait for their recheck");
        }
    }
    Ok(Reply::json(
        StatusCode::OK,
        SubscriptionOut::new(&updated, false),
    ))
}

async fn delete_subscription<S: SubscriptionStore>(
    store: &S,
    workspace: &WorkspaceId,
    id: &str,
) -> Result<Reply, NotifyError> {
    let current = find(store, workspace, id).await?;
    if !store.delete_subscription(&current).await? {
        return Err(NotifyError::Conflict);
    }
    Ok(Reply {
        status: StatusCode::NO_CONTENT,
        body: None,
    })
}

async fn rotate_secret<S: SubscriptionStore>(
    store: &S,
    workspace: &WorkspaceId,
    id: &str,
) -> Result<Reply, NotifyError> {
    let current = find(store, workspace, id).await?;
    let rotated = current.with_rotated_secret(Utc::now());
    if !store.replace_subscription(&current, &rotated).await? {
        return Err(NotifyError::Conflict);
    }
    Ok(Reply::json(StatusCode::OK, SecretOut::new(&rotated)))
}

/// A subscription of this workspace, or `NotFound` for ids that are malformed, unknown or
/// another workspace's (the store is keyed by workspace, so those are indistinguishable).
async fn find<S: SubscriptionStore>(
    store: &S,
    workspace: &WorkspaceId,
    id: &str,
) -> Result<Subscription, NotifyError> {
    let id = SubscriptionId::parse(id).ok_or(NotifyError::NotFound)?;
    store
        .get_subscription(workspace, &id)
        .await?
        .ok_or(NotifyError::NotFound)
}

fn json_body(req: &Request) -> Result<Value, NotifyError> {
    let body = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(NotifyError::BodyTooLarge(body.len()));
    }
    request::require_json(req.headers()).map_err(NotifyError::UnsupportedMediaType)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(NotifyError::MalformedJson(
            "the body is empty; expected a JSON object".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| NotifyError::MalformedJson(e.to_string()))
}

/// Rules a schema cannot state: URL shape and scheme, catalog membership.
pub(crate) fn check_semantics(body: &Value, allow_http: bool, errors: &mut ValidationErrors) {
    if let Some(url) = body.get("webhook_url").and_then(Value::as_str) {
        if !errors.field_errors.contains_key("webhook_url") {
            if let Err(problem) = check_webhook_url(url, allow_http) {
                errors.add("webhook_url".into(), problem);
            }
        }
    }
    if let Some(types) = body.get("event_types").and_then(Value::as_array) {
        let unknown: Vec<&str> = types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| !catalog::contains(t))
            .collect();
        if !unknown.is_empty() {
            errors.add(
                "event_types".into(),
                format!(
                    "Unknown event types: {}; see GET /notify/api/v1/event_types",
                    unknown.join(", ")
                ),
            );
        }
    }
}

/// An absolute `https` URL with a host and no credentials (`http` only when allowed).
pub fn check_webhook_url(raw: &str, allow_http: bool) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("Not an absolute URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err("Must use https".into()),
        other => return Err(format!("Unsupported scheme {other:?}; must use https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("Must include a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Must not embed credentials".into());
    }
    Ok(())
}

fn dedup_preserving_order(types: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    types
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

fn actor() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_ACTOR_LEN})
}

fn subscription_properties() -> Value {
    json!({
        "webhook_url": {"type": "string", "minLength": 1, "maxLength": MAX_URL_LEN},
        "event_types": {"type": "array", "minItems": 1, "maxItems": catalog::all().len(),
            "items": {"type": "string", "minLength": 1, "maxLength": 128}},
        "is_enabled": {"type": "boolean"},
        "type": {"type": "string", "enum": ["SEASALT", "ZAPIER"]},
    })
}

pub(crate) fn compile(schema: &Value) -> Validator {
    jsonschema::draft202012::options()
        .build(schema)
        .expect("built-in schemas compile")
}

static CREATE_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    let mut properties = subscription_properties();
    properties["created_by"] = actor();
    compile(&json!({"type": "object", "additionalProperties": false,
        "required": ["webhook_url", "event_types", "is_enabled"], "properties": properties}))
});

static PATCH_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    let mut properties = subscription_properties();
    properties["updated_by"] = actor();
    compile(&json!({"type": "object", "additionalProperties": false,
        "required": ["updated_by"], "properties": properties}))
});

fn reply_response(reply: Reply, request_id: &str) -> Response<Body> {
    let body = match &reply.body {
        Some(value) => Body::Text(value.to_string()),
        None => Body::Empty,
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    decorate(&mut response, request_id, reply.body.is_some());
    response
}

/// The one place a [`NotifyError`] becomes an HTTP response.
pub fn error_response(err: &NotifyError, request_id: &str) -> Response<Body> {
    let (code, message, errors) = err.caller_view();
    let body = json!({"code": code, "message": message, "fieldErrors": errors.field_errors});
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = err.status();
    decorate(&mut response, request_id, true);
    match err {
        NotifyError::MethodNotAllowed { allowed, .. } => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        NotifyError::Store(_) => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

fn decorate(response: &mut Response<Body>, request_id: &str, has_body: bool) {
    let headers = response.headers_mut();
    if has_body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_with_and_without_a_stage_prefix() {
        let ws = "ws_00000000000000000000000000000001";
        assert_eq!(
            Route::parse("/notify/api/v1/event_types"),
            Some(Route::EventTypes)
        );
        assert_eq!(
            Route::parse(&format!(
                "/prod/notify/api/v1/workspaces/{ws}/subscription/"
            )),
            Some(Route::Subscriptions { workspace: ws })
        );
        assert_eq!(
            Route::parse(&format!(
                "/notify/api/v1/workspaces/{ws}/subscription/x/secret/rotate"
            )),
            Some(Route::RotateSecret {
                workspace: ws,
                id: "x"
            })
        );
        assert_eq!(Route::parse("/notify/api/v1/workspaces"), None);
        assert_eq!(
            Route::parse("/notify/api/v1/workspaces/a/subscription/b/c"),
            None
        );
    }

    #[test]
    fn webhook_urls_must_be_absolute_https_without_credentials() {
        assert!(check_webhook_url("https://api.example.com/webhook", false).is_ok());
        assert_eq!(
            check_webhook_url("http://api.example.com", false),
            Err("Must use https".into())
        );
        assert!(check_webhook_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_webhook_url("/relative", false)
            .unwrap_err()
            .starts_with("Not an absolute URL"));
        assert!(check_webhook_url("ftp://x.io", true)
            .unwrap_err()
            .contains("ftp"));
        assert!(check_webhook_url("https://user:pw@x.io", false)
            .unwrap_err()
            .contains("credentials"));
    }

    #[test]
    fn repeated_event_types_are_folded_in_order() {
        let folded = dedup_preserving_order(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(folded, ["b", "a"]);
    }
}
