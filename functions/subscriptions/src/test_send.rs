//! `POST …/test`: the type's sample (the catalog's, or the workspace's own type's), signed and
//! sent like a real delivery, and what happened.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use hookline_shared::custom_types::{test_payload, TestPayload};
use hookline_shared::delivery::{Envelope, EnvelopeSource, EnvelopeWorkspace};
use hookline_shared::http::{authenticated, json, ApiError, Caller, JsonBody};
use hookline_shared::validation::{compile, schema_errors};
use hookline_shared::webhook::AttemptOutcome;
use hookline_shared::webhook_url::{WebhookUrl, MAX_WEBHOOK_URL_LEN};
use hookline_shared::{RawJson, SigningSecret, SubscriptionStore as _, WorkspaceStore as _};
use jsonschema::Validator;
use serde_json::{json, Value};

use crate::Ports;

pub fn router<N: Ports>() -> Router<Arc<N>> {
    Router::new().route(
        "/notify/api/v1/workspaces/{workspace_id}/test",
        authenticated(post(send_test::<N>), "POST"),
    )
}

static TEST_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    compile(
        &json!({"type": "object", "additionalProperties": false, "required": ["event_type", "webhook_url"],
        "properties": {"event_type": {"type": "string", "minLength": 1, "maxLength": 128},
            "webhook_url": {"type": "string", "minLength": 1, "maxLength": MAX_WEBHOOK_URL_LEN}}}),
    )
});

/// Signs with the secrets of the workspace's subscription to that URL when there is one, so the
/// receiver's real verification is exercised; otherwise with a one-off secret it is shown.
async fn send_test<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body = body.value()?;
    let workspace = &caller.workspace;
    let mut errors = schema_errors(&TEST_SCHEMA, &body);
    WebhookUrl::check_field(&body, api.allow_http(), api.sender().guard(), &mut errors).await;
    let mut sample = None;
    if let Some(event_type) = body.get("event_type").and_then(Value::as_str) {
        if !errors.field_errors.contains_key("event_type") {
            match test_payload(api.event_types(), workspace, event_type).await? {
                TestPayload::Ready(payload) => sample = Some(payload),
                TestPayload::Unknown => errors.add(
                    "event_type".into(),
                    format!("Unknown event type {event_type:?}; see GET /notify/api/v1/event_types"),
                ),
                TestPayload::NeedsSample => errors.add(
                    "event_type".into(),
                    format!("Event type {event_type:?} needs a sample: no instance generated from its schema satisfies it; define the type again with a sample"),
                ),
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let (event_type, url) = (
        body["event_type"].as_str().unwrap_or_default(),
        body["webhook_url"].as_str().unwrap_or_default(),
    );
    let now = Utc::now();
    let name = api
        .keyring()
        .workspaces
        .get_workspace(workspace)
        .await?
        .map(|w| w.name)
        .unwrap_or_default();
    let matching = api
        .subscriptions()
        .list_subscriptions(workspace)
        .await?
        .into_iter()
        .find(|s| s.webhook_url == url);
    let one_off = matching.is_none().then(SigningSecret::generate);
    let secrets: Vec<String> = match &matching {
        Some(subscription) => subscription
            .signing_secrets(now)
            .map(|s| s.value.clone())
            .collect(),
        None => one_off.iter().map(|s| s.value.clone()).collect(),
    };
    let webhook_id = format!("msg_test_{}", uuid::Uuid::now_v7().simple());
    // Found whenever the body had no faults.
    let sample = sample.unwrap_or_default();
    let data = serde_json::value::to_raw_value(&sample).expect("samples serialize");
    let envelope = Envelope {
        id: &webhook_id,
        event_type,
        affect: "test",
        timestamp: now,
        workspace: EnvelopeWorkspace {
            id: workspace.as_str(),
            name: &name,
        },
        source: EnvelopeSource {
            id: "test",
            kind: "TEST",
            identifier: "Hookline test send",
        },
        data: &data,
        subscription: matching.as_ref(),
    };
    let body = RawJson::to_json(&envelope).expect("envelopes serialize");
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let attempt = api
        .sender()
        .send(
            url,
            &webhook_id,
            now.timestamp(),
            body.as_json(),
            &secret_refs,
        )
        .await;
    let headers: serde_json::Map<String, Value> = attempt
        .request_headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "success": attempt.outcome == AttemptOutcome::Success,
            "status_code": attempt.status_code,
            "response_body": attempt.response_body,
            "duration_ms": attempt.duration_ms,
            "error": attempt.error,
            "headers_sent": headers,
            "payload": body.to_value(),
            "signed_with": if matching.is_some() { "subscription secrets" } else { "one-off secret" },
            "signing_secret": one_off.map(|s| s.value),
        }),
    ))
}
