//! The HTTP layer both APIs share: extractors ([`Caller`], [`JsonBody`], [`RequestId`]), the
//! one [`ApiError`], and the request layer that gives every request its id, its span and its
//! log line and words failures in the API's [`Envelope`].

mod error;
mod extract;
mod request;

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::MethodRouter;
use axum::Router;
use http::{header, HeaderValue, Method, StatusCode, Uri};
use serde::Serialize;
use tracing::Instrument as _;

pub use error::{ApiError, Envelope};
pub use extract::{ApiState, Caller, JsonBody, Keyring, RequestId, WORKSPACE_PARAM};
pub use request::{api_key, query_param, request_id, require_json, REQUEST_ID_HEADER};

/// How a successful request is summed up in its log line (`accepted`, `duplicate`…); a handler
/// adds it to its response as an extension. Without one the line says `ok`.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);

/// The id a front door (a Lambda's invocation) hands over for the request; without one the
/// request layer makes one up.
#[derive(Debug, Clone)]
pub struct GatewayRequestId(pub String);

/// A JSON answer.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("answers always serialize");
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// The answer to a path no route matches.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}

/// `methods` of an authenticated route; any other method is a 405 naming `allowed`, answered
/// only once the caller is known (so a foreign or missing key learns nothing of the route).
pub fn authenticated<A: ApiState>(
    methods: MethodRouter<std::sync::Arc<A>>,
    allowed: &'static str,
) -> MethodRouter<std::sync::Arc<A>> {
    methods.fallback(move |_: Caller, method: Method| async move {
        ApiError::MethodNotAllowed { method, allowed }
    })
}

/// The request layer of an API (`router.layer(from_fn(api_layer::<MyEnvelope>))`): one span per
/// request carrying its id, method, path and, once known, workspace and event; one log line
/// when it is answered; failures written in the API's envelope; `x-request-id` on every answer.
pub async fn api_layer<E: Envelope>(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let gateway = req.extensions().get::<GatewayRequestId>();
    let id = request_id(gateway.map(|g| g.0.as_str()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        api = E::NAME,
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        workspace_id = tracing::field::Empty,
        event_id = tracing::field::Empty,
    );
    async move {
        let mut response = next.run(req).await;
        let status = response.status().as_u16();
        let duration_ms = started.elapsed().as_millis() as u64;
        match response.extensions_mut().remove::<error::Failure>() {
            Some(error::Failure(err)) => {
                let outcome = err.outcome();
                if response.status().is_server_error() {
                    tracing::error!(outcome, status, duration_ms, error = %err, "{}", E::NAME);
                } else {
                    tracing::info!(outcome, status, duration_ms, reason = %err, "{}", E::NAME);
                }
                *response.body_mut() = Body::from(E::error_body(&err, &id));
                let headers = response.headers_mut();
                headers.remove(header::CONTENT_LENGTH);
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            None => {
                let outcome = response.extensions().get::<Outcome>().map_or("ok", |o| o.0);
                tracing::info!(outcome, status, duration_ms, "{}", E::NAME);
            }
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
    .instrument(span)
    .await
}

/// `api` as a front door hands it requests. API Gateway puts a named stage before the route
/// (lambda_http keeps it in the path: `/prod/notify/api/v1/…`) and callers add trailing
/// slashes; both are dropped before routing, for paths under one of `route_prefixes`.
/// `invocation_id` reads the front door's request id off the request, if it has one.
pub fn front_door(
    api: Router,
    route_prefixes: &'static [&'static str],
    invocation_id: fn(&http::Extensions) -> Option<String>,
) -> Router {
    let prepare = move |mut req: Request| async move {
        if let Some(id) = invocation_id(req.extensions()) {
            req.extensions_mut().insert(GatewayRequestId(id));
        }
        if let Some(path) = routed_path(req.uri().path(), route_prefixes) {
            *req.uri_mut() = with_path(req.uri(), &path);
        }
        req
    };
    // A layer on a router runs after its routing; this one routes nothing itself, so `api`
    // routes the prepared request.
    Router::new()
        .fallback_service(api)
        .layer(axum::middleware::map_request(prepare))
}

/// The path routes are matched on, when it differs from `path`.
fn routed_path(path: &str, route_prefixes: &[&str]) -> Option<String> {
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let routed = |p: &str| route_prefixes.iter().any(|prefix| p.starts_with(prefix));
    let unstaged = match trimmed.get(1..).and_then(|rest| rest.find('/')) {
        Some(at) if !routed(trimmed) && routed(&trimmed[at + 1..]) => &trimmed[at + 1..],
        _ => trimmed,
    };
    (unstaged != path).then(|| unstaged.to_owned())
}

fn with_path(uri: &Uri, path: &str) -> Uri {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIXES: &[&str] = &[
        "/notify/api/v1/",
        "/api/v2/analytics/webhook/receive/generic/",
    ];

    #[test]
    fn a_stage_and_a_trailing_slash_are_dropped_before_routing() {
        assert_eq!(
            routed_path("/prod/notify/api/v1/event_types", PREFIXES).as_deref(),
            Some("/notify/api/v1/event_types")
        );
        assert_eq!(
            routed_path("/notify/api/v1/workspaces/ws/subscription/", PREFIXES).as_deref(),
            Some("/notify/api/v1/workspaces/ws/subscription")
        );
        assert_eq!(routed_path("/notify/api/v1/event_types", PREFIXES), None);
        assert_eq!(routed_path("/prod/elsewhere", PREFIXES), None);
        assert_eq!(routed_path("/", PREFIXES), None);
    }

    #[test]
    fn the_query_survives_a_rewritten_path() {
        let uri: Uri = "/prod/notify/api/v1/logs?limit=2".parse().unwrap();
        assert_eq!(
            with_path(&uri, "/notify/api/v1/logs"),
            "/notify/api/v1/logs?limit=2"
        );
    }
}
