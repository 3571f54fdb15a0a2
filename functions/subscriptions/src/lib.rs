//! Notify API: subscriptions, their signing secrets, event types (the catalog and each
//! workspace's own), delivery logs and test sends, one file per resource, each with its own
//! router, merged here.

pub mod connections;
mod event_types;
pub mod export;
mod found;
mod logs;
mod order;
pub mod publish;
pub mod redelivery;
mod secrets;
mod subscriptions;
mod test_send;

use std::sync::Arc;

use axum::middleware::from_fn;
use axum::routing::any;
use axum::Router;
use hookline_shared::custom_types::CustomTypes;
use hookline_shared::http::{api_layer, no_route, ApiError, ApiState, Envelope, Keyring};
use hookline_shared::validation::ValidationErrors;
use hookline_shared::webhook::WebhookSender;
use hookline_shared::{
    EventTypeStore, LogStore, Queue, SubscriptionStore, WorkspaceStore,
    MAX_EVENT_TYPES_PER_WORKSPACE, MAX_SUBSCRIPTIONS_PER_WORKSPACE,
};
use serde_json::json;

pub use connections::ConnectionsApi;
pub use export::ExportsApi;
pub use found::{Found, SubscriptionParam};
pub use order::{OrderBy, ORDER_BY_VALUES};
pub use publish::Publishing;
pub use redelivery::Redelivery;

/// Every route lives under this prefix.
pub const API_PREFIX: &str = "/notify/api/v1/";
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the routes need; built once per cold start (or once by local mode).
pub struct Notify<W, S, T, D, Q> {
    /// The API keys callers present, and the workspaces they resolve to.
    pub keyring: Keyring<W>,
    pub subscriptions: S,
    /// Each workspace's own event types, with their schemas compiled once per warm process.
    pub event_types: CustomTypes<T>,
    /// Read for the logs API.
    pub logs: D,
    /// The deliveries queue: enabling a subscription asks the worker to resume its parked work.
    pub resumes: Q,
    /// Test-send goes through the same client, signer and SSRF guard as deliveries.
    pub sender: WebhookSender,
    /// Accept plain-http webhook URLs (local development only).
    pub allow_http: bool,
}

impl<W: WorkspaceStore, S, T, D, Q> Notify<W, S, T, D, Q> {
    pub fn new(
        workspaces: W,
        subscriptions: S,
        event_types: T,
        logs: D,
        resumes: Q,
        sender: WebhookSender,
        allow_http: bool,
    ) -> Self {
        Self {
            keyring: Keyring::new(workspaces),
            subscriptions,
            event_types: CustomTypes::new(event_types),
            logs,
            resumes,
            sender,
            allow_http,
        }
    }
}

/// The notify API's ports under one name, so a handler takes one type parameter.
pub trait Ports: ApiState {
    type Subscriptions: SubscriptionStore + 'static;
    type EventTypes: EventTypeStore + 'static;
    type Logs: LogStore + 'static;
    type Resumes: Queue + 'static;

    fn subscriptions(&self) -> &Self::Subscriptions;
    fn event_types(&self) -> &CustomTypes<Self::EventTypes>;
    fn logs(&self) -> &Self::Logs;
    fn resumes(&self) -> &Self::Resumes;
    fn sender(&self) -> &WebhookSender;
    fn allow_http(&self) -> bool;
}

impl<W, S, T, D, Q> ApiState for Notify<W, S, T, D, Q>
where
    W: WorkspaceStore + 'static,
    S: Send + Sync + 'static,
    T: Send + Sync + 'static,
    D: Send + Sync + 'static,
    Q: Send + Sync + 'static,
{
    type Workspaces = W;
    const MAX_BODY_BYTES: usize = MAX_BODY_BYTES;

    fn keyring(&self) -> &Keyring<W> {
        &self.keyring
    }
}

impl<W, S, T, D, Q> Ports for Notify<W, S, T, D, Q>
where
    W: WorkspaceStore + 'static,
    S: SubscriptionStore + 'static,
    T: EventTypeStore + 'static,
    D: LogStore + 'static,
    Q: Queue + 'static,
{
    type Subscriptions = S;
    type EventTypes = T;
    type Logs = D;
    type Resumes = Q;

    fn subscriptions(&self) -> &S {
        &self.subscriptions
    }

    fn event_types(&self) -> &CustomTypes<T> {
        &self.event_types
    }

    fn logs(&self) -> &D {
        &self.logs
    }

    fn resumes(&self) -> &Q {
        &self.resumes
    }

    fn sender(&self) -> &WebhookSender {
        &self.sender
    }

    fn allow_http(&self) -> bool {
        self.allow_http
    }
}

/// The notify API under [`API_PREFIX`]. The Lambda and local mode serve this same router.
pub fn router<W, S, T, D, Q>(deps: Notify<W, S, T, D, Q>) -> Router
where
    W: WorkspaceStore + 'static,
    S: SubscriptionStore + 'static,
    T: EventTypeStore + 'static,
    D: LogStore + 'static,
    Q: Queue + 'static,
{
    Router::new()
        .merge(event_types::router())
        .merge(subscriptions::router())
        .merge(secrets::router())
        .merge(logs::router())
        .merge(test_send::router())
        .route("/notify/api/v1/{*rest}", any(no_route))
        .layer(from_fn(api_layer::<NotifyEnvelope>))
        .with_state(Arc::new(deps))
}

/// The notify API's words for an [`ApiError`]: `{code, message, fieldErrors}`.
pub struct NotifyEnvelope;

impl Envelope for NotifyEnvelope {
    const NAME: &'static str = "notify";

    fn error_body(err: &ApiError, _request_id: &str) -> Vec<u8> {
        let (code, message, errors) = caller_view(err);
        let body = json!({"code": code, "message": message, "fieldErrors": errors.field_errors});
        body.to_string().into_bytes()
    }
}

/// `(code, message, fieldErrors)` as the caller sees them; nothing internal leaks.
fn caller_view(err: &ApiError) -> (&'static str, String, ValidationErrors) {
    let none = ValidationErrors::default;
    match err {
        ApiError::NoRoute(path) | ApiError::UnknownCategory(path) => {
            ("not_found", format!("No route for {path}"), none())
        }
        ApiError::MethodNotAllowed { method, allowed } => (
            "method_not_allowed",
            format!("Method {method} is not allowed here; use {allowed}"),
            none(),
        ),
        ApiError::MissingKey => (
            "unauthorized",
            "Missing API key: send it in the X-API-KEY header".into(),
            ValidationErrors::field("X-API-KEY", "Required"),
        ),
        ApiError::UnknownKey => (
            "forbidden",
            "API key not recognised".into(),
            ValidationErrors::field("X-API-KEY", "Not a valid API key"),
        ),
        ApiError::ForeignWorkspace => (
            "forbidden",
            "This API key does not grant access to that workspace".into(),
            ValidationErrors::field("workspace_id", "Not the workspace of this API key"),
        ),
        // Worded for every resource a path names (a subscription id, an event type name):
        // one of another workspace reads exactly like one that does not exist.
        ApiError::NotFound => (
            "not_found",
            "Not found in this workspace: no subscription or event type has that id or name".into(),
            none(),
        ),
        ApiError::Missing(what) => ("not_found", format!("{what} not found"), none()),
        // Not an answer of this API (its callers hold keys); worded plainly should one reach it.
        ApiError::NotAuthenticated { field, reason } => (
            "unauthorized",
            format!("Not authenticated: {field}"),
            ValidationErrors::field(*field, *reason),
        ),
        ApiError::UnsupportedMediaType(given) => (
            "unsupported_media_type",
            format!("Content-Type {given:?} is not supported; send application/json"),
            none(),
        ),
        ApiError::BodyTooLarge { size, limit } => (
            "payload_too_large",
            format!("Body of at least {size} bytes exceeds the limit of {limit} bytes"),
            none(),
        ),
        ApiError::UnreadableBody(detail) => (
            "invalid_body",
            format!("The request body could not be read ({detail}); send it again, complete"),
            none(),
        ),
        ApiError::EmptyBody => (
            "invalid_json",
            "Malformed JSON: the body is empty; expected a JSON object".into(),
            none(),
        ),
        ApiError::MalformedJson(detail) => {
            ("invalid_json", format!("Malformed JSON: {detail}"), none())
        }
        ApiError::Invalid(errors) => ("validation_error", "Validation failed".into(), errors.clone()),
        ApiError::LimitReached => (
            "limit_exceeded",
            format!("A workspace holds at most {MAX_SUBSCRIPTIONS_PER_WORKSPACE} subscriptions and {MAX_EVENT_TYPES_PER_WORKSPACE} custom event types; delete one first"),
            none(),
        ),
        ApiError::AtLimit { what, max } => (
            "limit_exceeded",
            format!("A workspace holds at most {max} {what}; delete one first"),
            none(),
        ),
        ApiError::Conflict => (
            "conflict",
            "Conflicts with what is stored: the subscription was changed by another request (read it again and retry), or an event type of that name exists".into(),
            none(),
        ),
        ApiError::Paused => (
            "subscription_paused",
            "The subscription is paused (is_enabled false): enable it first (PATCH it with is_enabled true), then replay or recover".into(),
            ValidationErrors::field("is_enabled", "The subscription is paused; enable it first"),
        ),
        ApiError::InFlight => (
            "attempt_in_flight",
            "An attempt of this delivery is being made right now; replay it once that attempt's log appears".into(),
            none(),
        ),
        ApiError::Busy { field, message } => (
            "conflict",
            message.clone(),
            ValidationErrors::field(*field, message.clone()),
        ),
        ApiError::Store(_) | ApiError::Queue(_) => (
            "unavailable",
            "Temporarily unavailable; retry the request".into(),
            none(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use hookline_shared::adapters::memory::{
        MemoryEventTypes, MemoryLogs, MemoryQueue, MemorySubscriptions, MemoryWorkspaces,
    };
    use hookline_shared::webhook::SenderConfig;
    use hookline_shared::{ApiKey, Workspace, WorkspaceId};
    use lambda_http::tower::ServiceExt as _;

    use super::*;

    const WS: &str = "ws_00000000000000000000000000000001";

    /// The notify API as the Lambda serves it, and a key of [`WS`].
    async fn lambda_app() -> (Router, ApiKey) {
        let workspaces = MemoryWorkspaces::default();
        let id = WorkspaceId::parse(WS).unwrap();
        let workspace = Workspace {
            id: id.clone(),
            name: "routes".into(),
            created_at: chrono::Utc::now(),
        };
        workspaces.create_workspace(&workspace).await.unwrap();
        let key = ApiKey::generate();
        workspaces.add_api_key(&id, &key.hash()).await.unwrap();
        let sender = WebhookSender::new(SenderConfig::local_development());
        let deps = Notify::new(
            workspaces,
            MemorySubscriptions::default(),
            MemoryEventTypes::default(),
            MemoryLogs::default(),
            MemoryQueue::default(),
            sender,
            false,
        );
        let app = hookline_shared::http::front_door(router(deps), &[API_PREFIX], |_| None);
        (app, key)
    }

    /// The route a path reaches, told by what a PUT there answers: `Some(allowed methods)`
    /// for a route (PUT is none's), `None` for no route.
    async fn route(app: &Router, key: &ApiKey, path: &str) -> Option<String> {
        let req = Request::put(path)
            .header("x-api-key", key.expose())
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(req).await.unwrap();
        match response.status() {
            StatusCode::METHOD_NOT_ALLOWED => {
                Some(response.headers()["allow"].to_str().unwrap().into())
            }
            StatusCode::NOT_FOUND => None,
            other => panic!("{path}: {other}"),
        }
    }

    #[tokio::test]
    async fn routes_match_with_and_without_a_stage_prefix() {
        let (app, key) = lambda_app().await;
        assert_eq!(
            route(&app, &key, "/notify/api/v1/event_types")
                .await
                .as_deref(),
            Some("GET")
        );
        assert_eq!(
            route(
                &app,
                &key,
                &format!("/prod/notify/api/v1/workspaces/{WS}/subscription/")
            )
            .await
            .as_deref(),
            Some("GET, POST")
        );
        assert_eq!(
            route(
                &app,
                &key,
                &format!("/notify/api/v1/workspaces/{WS}/subscription/x/secret/rotate")
            )
            .await
            .as_deref(),
            Some("POST")
        );
        assert_eq!(
            route(
                &app,
                &key,
                &format!("/notify/api/v1/workspaces/{WS}/event_types")
            )
            .await
            .as_deref(),
            Some("GET, POST")
        );
        assert_eq!(
            route(
                &app,
                &key,
                &format!("/notify/api/v1/workspaces/{WS}/event_types/invoice.paid")
            )
            .await
            .as_deref(),
            Some("GET, DELETE")
        );
        assert_eq!(route(&app, &key, "/notify/api/v1/workspaces").await, None);
        assert_eq!(
            route(&app, &key, "/notify/api/v1/workspaces/a/subscription/b/c").await,
            None
        );
    }

    /// Every notify body keeps the JSON limits ingest bodies keep, and a breach names its path.
    #[tokio::test]
    async fn bodies_beyond_the_json_limits_are_refused_naming_the_path() {
        use hookline_shared::validation::json_limits::MAX_DEPTH;
        let (app, key) = lambda_app().await;
        let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
        let cases = [
            (
                "subscription",
                format!(r#"{{"webhook_url": "https://x.io", "tags": {deep}}}"#),
                format!("tags{}", ".0".repeat(MAX_DEPTH - 1)),
            ),
            (
                "subscription",
                r#"{"webhook_url": "https://x.io", "n": 1e400}"#.to_owned(),
                "n".to_owned(),
            ),
            (
                "test",
                r#"{"event_type": "emails.sent", "webhook_url": "\udc00"}"#.to_owned(),
                "webhook_url".to_owned(),
            ),
        ];
        for (route, body, path) in cases {
            let req = Request::post(format!("/notify/api/v1/workspaces/{WS}/{route}"))
                .header("x-api-key", key.expose())
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let response = app.clone().oneshot(req).await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(answer["code"], "validation_error", "{answer}");
            let fields: Vec<&String> = answer["fieldErrors"].as_object().unwrap().keys().collect();
            assert_eq!(fields, [&path], "{answer}");
        }
    }
}
