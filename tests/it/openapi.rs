//! The OpenAPI document against the routes: local mode serves it as it is kept, and every
//! operation it lists reaches a handler, with exactly the methods the route allows.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::local_mode::{client, Serving};

const SPEC_YAML: &str = include_str!("../../openapi/hookline.yaml");
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec() -> Value {
    serde_yaml_ng::from_str(SPEC_YAML).expect("openapi/hookline.yaml parses")
}

/// The spec's path with its parameters filled in: the dev workspace, and ids and names of the
/// right shape that name nothing (the handler's 404, not the router's).
fn concrete(path: &str, workspace_id: &str) -> String {
    let concrete = path
        .replace("{workspace_id}", workspace_id)
        .replace("{subscription_id}", &format!("sub_{}", "0".repeat(32)))
        .replace("{connection_id}", &format!("con_{}", "0".repeat(32)))
        .replace("{log_id}", &"0".repeat(32))
        .replace("{event_type}", "invoice.paid")
        .replace("{job_id}", &format!("exp_{}", "0".repeat(32)));
    assert!(
        !concrete.contains('{'),
        "{path}: a parameter is left unfilled"
    );
    concrete
}

/// Whether an answer is the router's own (no route, or no such method) rather than a handler's.
/// Both APIs word a missing route "No route for …"; ingest's envelope nests its message.
fn router_fallback(status: u16, body: &Value) -> bool {
    let message = body["message"]
        .as_str()
        .or_else(|| body["_metadata"]["message"].as_str())
        .unwrap_or_default();
    status == 405 || (status == 404 && message.starts_with("No route for"))
}

#[tokio::test]
async fn local_mode_serves_the_spec_as_kept_in_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let response = client()
        .get(format!("{}/openapi.json", serving.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, spec());
    assert_eq!(served["openapi"], "3.1.0");
}

#[tokio::test]
async fn every_operation_in_the_spec_is_routed_with_exactly_its_methods() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let spec = spec();
    let paths = spec["paths"].as_object().expect("the spec lists paths");
    assert!(paths.len() >= 18, "{} paths", paths.len());
    let mut unrouted = Vec::new();
    let mut wrong_allow = Vec::new();
    for (path, item) in paths {
        let url = format!("{}{}", serving.base, concrete(path, &serving.workspace_id));
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        assert!(!documented.is_empty(), "{path} lists no operation");
        for method in &documented {
            // An empty object: every body route refuses it (400) before anything is sent anywhere.
            let response = client()
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                .header("x-api-key", &serving.api_key)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if router_fallback(status, &body) {
                unrouted.push(format!("{method} {path}: {status} {body}"));
            }
        }
        // No route takes PUT, so its 405 names the methods the route has: the spec's, exactly.
        assert!(
            !documented.contains("PUT"),
            "{path}: pick another probe method"
        );
        let response = client()
            .put(&url)
            .header("x-api-key", &serving.api_key)
            .send()
            .await
            .unwrap();
        let allowed: BTreeSet<String> = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_uppercase())
            .filter(|m| !m.is_empty())
            .collect();
        if response.status() != 405 || allowed != documented {
            wrong_allow.push(format!(
                "{path}: PUT answered {} allowing {allowed:?}; the spec documents {documented:?}",
                response.status()
            ));
        }
    }
    assert!(unrouted.is_empty(), "not routed: {unrouted:#?}");
    assert!(wrong_allow.is_empty(), "methods differ: {wrong_allow:#?}");
}
