//! `…/workspaces/{ws}/subscription[/{id}]`: create, list, read, patch and delete subscriptions.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use hookline_shared::custom_types::KnownTypes;
use hookline_shared::delivery_control::{DeliveryMode, FilterSpec, RateLimit, MAX_RATE_PER_SECOND};
use hookline_shared::http::{authenticated, json, query_param, ApiError, Caller, JsonBody};
use hookline_shared::validation::{compile, schema_errors, ValidationErrors};
use hookline_shared::webhook_url::{WebhookUrl, MAX_WEBHOOK_URL_LEN};
use hookline_shared::{
    catalog, Created, NewSubscription, Queue, QueueMessage, Subscription, SubscriptionPatch,
    SubscriptionStore as _, SubscriptionType, WorkspaceId, MAX_EVENT_TYPES_PER_WORKSPACE,
};
use jsonschema::Validator;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use crate::order::{OrderBy, ORDER_BY_VALUES};
use crate::{Found, Ports, SubscriptionParam};

const MAX_ACTOR_LEN: usize = 256;

pub fn router<N: Ports>() -> Router<Arc<N>> {
    Router::new()
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/subscription",
            authenticated(
                get(list_subscriptions::<N>).post(create_subscription::<N>),
                "GET, POST",
            ),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/subscription/{subscription_id}",
            authenticated(
                get(get_subscription)
                    .patch(update_subscription::<N>)
                    .delete(delete_subscription::<N>),
                "GET, PATCH, DELETE",
            ),
        )
}

/// `POST …/subscription`; the schema has already rejected unknown fields and wrong types.
#[derive(Debug, Deserialize)]
pub struct SubscriptionIn {
    pub webhook_url: String,
    pub event_types: Vec<String>,
    pub created_by: Option<String>,
    pub is_enabled: bool,
    #[serde(rename = "type")]
    pub kind: Option<SubscriptionType>,
    pub delivery_mode: Option<DeliveryMode>,
    pub rate_limit_per_second: Option<RateLimit>,
    pub filter: Option<FilterSpec>,
}

/// `PATCH …/subscription/{id}`: `updated_by` and any of the other fields.
#[derive(Debug, Deserialize)]
pub struct SubscriptionPatchIn {
    pub webhook_url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_enabled: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<SubscriptionType>,
    pub delivery_mode: Option<DeliveryMode>,
    /// Absent: unchanged; `null`: removed.
    #[serde(default, deserialize_with = "present")]
    pub rate_limit_per_second: Option<Option<RateLimit>>,
    #[serde(default, deserialize_with = "present")]
    pub filter: Option<Option<FilterSpec>>,
    pub updated_by: String,
}

/// A field that was sent, `null` included; absent fields stay `None` through `default`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl From<SubscriptionIn> for NewSubscription {
    fn from(input: SubscriptionIn) -> Self {
        NewSubscription {
            webhook_url: input.webhook_url,
            event_types: input.event_types,
            is_enabled: input.is_enabled,
            kind: input.kind.unwrap_or_default(),
            created_by: input.created_by,
            delivery_mode: input.delivery_mode.unwrap_or_default(),
            rate_limit_per_second: input.rate_limit_per_second,
            filter: input.filter,
        }
    }
}

impl From<SubscriptionPatchIn> for SubscriptionPatch {
    fn from(patch: SubscriptionPatchIn) -> Self {
        SubscriptionPatch {
            webhook_url: patch.webhook_url,
            event_types: patch.event_types,
            is_enabled: patch.is_enabled,
            kind: patch.kind,
            delivery_mode: patch.delivery_mode,
            rate_limit_per_second: patch.rate_limit_per_second,
            filter: patch.filter,
            updated_by: patch.updated_by,
        }
    }
}

/// A subscription as callers see it (seed 002 plus ids, timestamps and the pause).
#[derive(Debug, Serialize)]
pub struct SubscriptionOut<'a> {
    pub id: &'a str,
    pub webhook_url: &'a str,
    pub event_types: &'a [String],
    pub created_by: Option<&'a str>,
    pub is_enabled: bool,
    #[serde(rename = "type")]
    pub kind: SubscriptionType,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<&'a str>,
    /// Set while delivery has paused the subscription (10 failures in a row, or 410 Gone).
    pub paused_reason: Option<&'a str>,
    pub paused_at: Option<String>,
    pub delivery_mode: DeliveryMode,
    pub rate_limit_per_second: Option<RateLimit>,
    pub filter: Option<&'a FilterSpec>,
    /// Only in the answer to create: the one time the secret is shown without asking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl<'a> SubscriptionOut<'a> {
    pub fn new(subscription: &'a Subscription, with_secret: bool) -> Self {
        Self {
            id: subscription.id.as_str(),
            webhook_url: &subscription.webhook_url,
            event_types: &subscription.event_types,
            created_by: subscription.created_by.as_deref(),
            is_enabled: subscription.is_enabled,
            kind: subscription.kind,
            created_at: timestamp(subscription.created_at),
            updated_at: timestamp(subscription.updated_at),
            updated_by: subscription.updated_by.as_deref(),
            paused_reason: subscription.paused_reason.as_deref(),
            paused_at: subscription.paused_at.map(timestamp),
            delivery_mode: subscription.delivery_mode,
            rate_limit_per_second: subscription.rate_limit_per_second,
            filter: subscription.filter.as_ref(),
            secret: with_secret.then(|| subscription.current_secret().value.as_str()),
        }
    }
}

async fn list_subscriptions<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (order, kind) = list_query(query.as_deref()).map_err(ApiError::Invalid)?;
    let mut subscriptions = api
        .subscriptions()
        .list_subscriptions(&caller.workspace)
        .await?;
    subscriptions.retain(|s| kind.is_none_or(|k| s.kind == k));
    order.sort(&mut subscriptions);
    let out: Vec<SubscriptionOut<'_>> = subscriptions
        .iter()
        .map(|s| SubscriptionOut::new(s, false))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "subscriptions": out })))
}

/// `?order_by=field:dir&type=`: the order (default `created_at:desc`) and the type to keep.
fn list_query(
    query: Option<&str>,
) -> Result<(OrderBy, Option<SubscriptionType>), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let order = match query_param(query, "order_by") {
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
    let kind = match query_param(query, "type") {
        None => None,
        Some(raw) => SubscriptionType::parse(&raw).or_else(|| {
            errors.add(
                "type".into(),
                format!("Unknown type {raw:?}; allowed: SEASALT, ZAPIER"),
            );
            None
        }),
    };
    if errors.is_empty() {
        Ok((order, kind))
    } else {
        Err(errors)
    }
}

async fn create_subscription<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body = body.value()?;
    let known = known_types(api.as_ref(), &caller.workspace, &body).await?;
    let input: SubscriptionIn = validated(&CREATE_SCHEMA, body, &*api, &known).await?;
    let subscription = Subscription::new(caller.workspace, input.into(), Utc::now());
    if api
        .subscriptions()
        .create_subscription(&subscription)
        .await?
        == Created::LimitReached
    {
        return Err(ApiError::LimitReached);
    }
    let out = SubscriptionOut::new(&subscription, true);
    Ok(json(StatusCode::CREATED, &out))
}

async fn get_subscription(Found(subscription): Found) -> Response {
    json(StatusCode::OK, &SubscriptionOut::new(&subscription, false))
}

async fn update_subscription<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    id: SubscriptionParam,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body = body.value()?;
    let current = id.find(api.subscriptions(), &caller.workspace).await?;
    let known = known_types(api.as_ref(), &caller.workspace, &body).await?;
    let patch: SubscriptionPatchIn = validated(&PATCH_SCHEMA, body, &*api, &known).await?;
    let patch = SubscriptionPatch::from(patch);
    let enabling = patch.enables();
    let updated = current.patched(patch, Utc::now());
    if !api
        .subscriptions()
        .replace_subscription(&current, &updated)
        .await?
    {
        return Err(ApiError::Conflict);
    }
    if enabling {
        ask_to_resume(api.resumes(), &updated).await;
    }
    Ok(json(StatusCode::OK, &SubscriptionOut::new(&updated, false)))
}

/// Asks the delivery worker to resume the work parked while `subscription` was off. The change
/// is saved either way: parked work a resume does not reach waits for its recheck. Sent on
/// every enabling PATCH, so sending the same one again also resumes.
async fn ask_to_resume<Q: Queue>(resumes: &Q, subscription: &Subscription) {
    let resume = QueueMessage::Resume {
        workspace_id: subscription.workspace_id.clone(),
        subscription_id: subscription.id.clone(),
        after: None,
    };
    if let Err(err) = resumes.send(&resume.to_body(), Duration::ZERO).await {
        tracing::error!(subscription_id = %subscription.id, error = %err, "resume not queued; parked deliveries wait for their recheck");
    }
}

async fn delete_subscription<N: Ports>(
    State(api): State<Arc<N>>,
    Found(current): Found,
) -> Result<Response, ApiError> {
    if !api.subscriptions().delete_subscription(&current).await? {
        return Err(ApiError::Conflict);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The event types `body` may name: the catalog's, and the workspace's own when it names others.
async fn known_types<N: Ports>(
    api: &N,
    workspace: &WorkspaceId,
    body: &Value,
) -> Result<KnownTypes, ApiError> {
    let named = body.get("event_types").and_then(Value::as_array);
    let named = named.into_iter().flatten().filter_map(Value::as_str);
    Ok(KnownTypes::for_names(api.event_types(), workspace, named).await?)
}

/// `body` checked against `schema`, the webhook URL rule (where delivery could connect
/// included) and the `known` event types, every fault at once, then typed.
async fn validated<T: serde::de::DeserializeOwned, N: Ports>(
    schema: &Validator,
    body: Value,
    api: &N,
    known: &KnownTypes,
) -> Result<T, ApiError> {
    let mut errors = schema_errors(schema, &body);
    WebhookUrl::check_field(&body, api.allow_http(), api.sender().guard(), &mut errors).await;
    if let Some(mode) = body.get("delivery_mode").filter(|v| !v.is_null()) {
        DeliveryMode::parse("delivery_mode", mode, &mut errors);
    }
    if let Some(filter) = body.get("filter").filter(|v| !v.is_null()) {
        FilterSpec::parse("filter", filter, &mut errors);
    }
    if let Some(types) = body.get("event_types").and_then(Value::as_array) {
        let unknown: Vec<&str> = types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| !known.contains(t))
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
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    serde_json::from_value(body).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

fn actor() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_ACTOR_LEN})
}

fn subscription_properties() -> Value {
    json!({
        "webhook_url": {"type": "string", "minLength": 1, "maxLength": MAX_WEBHOOK_URL_LEN},
        "event_types": {"type": "array", "minItems": 1,
            "maxItems": catalog::all().len() + MAX_EVENT_TYPES_PER_WORKSPACE,
            "items": {"type": "string", "minLength": 1, "maxLength": 128}},
        "is_enabled": {"type": "boolean"},
        "type": {"type": "string", "enum": ["SEASALT", "ZAPIER"]},
        // Checked field by field by the domain, which names each fault.
        "delivery_mode": {"type": "object"},
        "rate_limit_per_second": {"type": ["integer", "null"], "minimum": 1,
            "maximum": MAX_RATE_PER_SECOND},
        "filter": {"type": ["object", "null"]},
    })
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
