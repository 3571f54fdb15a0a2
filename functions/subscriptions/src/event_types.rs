//! `GET /event_types`: the catalog of types a subscription may name.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hookline_shared::catalog;
use hookline_shared::http::{authenticated, json, Caller};
use serde::Serialize;

use crate::Ports;

pub fn router<N: Ports>() -> Router<Arc<N>> {
    Router::new().route(
        "/notify/api/v1/event_types",
        authenticated(get(list_event_types), "GET"),
    )
}

#[derive(Debug, Serialize)]
pub struct EventTypeOut {
    pub event_type: &'static str,
    pub description: &'static str,
}

async fn list_event_types(_: Caller) -> Response {
    let types: Vec<EventTypeOut> = catalog::all()
        .iter()
        .map(|info| EventTypeOut {
            event_type: &info.name,
            description: &info.description,
        })
        .collect();
    json(StatusCode::OK, &types)
}
