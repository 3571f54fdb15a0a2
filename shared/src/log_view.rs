//! A delivery log as callers see it: the logs API's JSON object, and the same fields as the
//! cells of an export's CSV row. One mapping, so an export's rows equal the API's logs.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::delivery::DeliveryLog;

/// The fields of a log, in the order the API writes them and an export's CSV columns run.
pub const LOG_FIELDS: [&str; 16] = [
    "id",
    "workspace_id",
    "event_id",
    "subscription_id",
    "delivery_id",
    "event_type",
    "webhook_url",
    "delivery_status",
    "status_code",
    "response_body",
    "delivered_event_obj",
    "created_at",
    "attempt",
    "duration_ms",
    "error",
    "batch_id",
];

/// Seed 002's log shape (status code as text) plus attempt, duration, error and the batch the
/// event went in.
pub fn log_json(log: &DeliveryLog) -> Value {
    json!({
        "id": log.id,
        "workspace_id": log.workspace_id,
        "event_id": log.event_id,
        "subscription_id": log.subscription_id,
        "delivery_id": log.delivery_id,
        "event_type": log.event_type,
        "webhook_url": log.webhook_url,
        "delivery_status": log.delivery_status.as_str(),
        "status_code": log.status_code.map(|c| c.to_string()),
        "response_body": log.response_body,
        // Text a `Value` cannot hold (an out-of-range number the sender sent) is shown as text.
        "delivered_event_obj": log.delivered_event_obj.to_value()
            .unwrap_or_else(|| Value::String(log.delivered_event_obj.as_json().to_owned())),
        "created_at": created_at(log),
        "attempt": log.attempt,
        "duration_ms": log.duration_ms,
        "error": log.error,
        "batch_id": log.batch_id,
    })
}

/// The [`LOG_FIELDS`] of `log` as CSV cells: text as it is, an absent value as an empty cell,
/// the delivered envelope as the JSON text it was sent as.
pub fn log_cells(log: &DeliveryLog) -> [Cow<'_, str>; 16] {
    [
        Cow::Borrowed(log.id.as_str()),
        Cow::Borrowed(log.workspace_id.as_str()),
        Cow::Borrowed(log.event_id.as_str()),
        Cow::Borrowed(log.subscription_id.as_str()),
        Cow::Borrowed(log.delivery_id.as_str()),
        Cow::Borrowed(log.event_type.as_str()),
        Cow::Borrowed(log.webhook_url.as_str()),
        Cow::Borrowed(log.delivery_status.as_str()),
        log.status_code
            .map_or(Cow::Borrowed(""), |c| Cow::Owned(c.to_string())),
        Cow::Borrowed(log.response_body.as_str()),
        Cow::Borrowed(log.delivered_event_obj.as_json()),
        Cow::Owned(created_at(log)),
        Cow::Owned(log.attempt.to_string()),
        Cow::Owned(log.duration_ms.to_string()),
        log.error
            .as_deref()
            .map_or(Cow::Borrowed(""), Cow::Borrowed),
        log.batch_id
            .as_deref()
            .map_or(Cow::Borrowed(""), Cow::Borrowed),
    ]
}

fn created_at(log: &DeliveryLog) -> String {
    log.created_at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A `start_date`/`end_date` of the logs API and of an export: ISO 8601 with any offset.
pub fn parse_log_date(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "Invalid date {raw:?}; use ISO 8601 with an offset, e.g. 2024-06-01T23:59:59-07:00"
            )
        })
}
