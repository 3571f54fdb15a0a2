//! `GET /openapi.json`: the APIs' OpenAPI document, built into the binary so a running server
//! needs no files beside it.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::Router;

/// The document as kept in the repository: YAML, for people to read and edit.
pub const SPEC_YAML: &str = include_str!("../../openapi/hookline.yaml");
/// Where local mode serves it.
pub const ROUTE: &str = "/openapi.json";

/// The document as JSON, converted once: tools that read OpenAPI take JSON everywhere.
static SPEC_JSON: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let spec: serde_json::Value =
        serde_yaml_ng::from_str(SPEC_YAML).expect("openapi/hookline.yaml is valid YAML");
    serde_json::to_vec(&spec).expect("a parsed document serializes")
});

pub fn router() -> Router {
    Router::new().route(ROUTE, get(spec))
}

async fn spec() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        SPEC_JSON.as_slice(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_converts_to_openapi_json() {
        let spec: serde_json::Value = serde_json::from_slice(&SPEC_JSON).unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        assert!(spec["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }
}
