//! `GET …/logs[/{subscription_id}]`: delivery logs with seed 002's filters, order and paging.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hookline_shared::delivery::{DeliveryLog, DeliveryStatus};
use hookline_shared::http::{authenticated, json, query_param, ApiError, Caller};
use hookline_shared::log_view::{log_json as log_out, parse_log_date};
use hookline_shared::validation::ValidationErrors;
use hookline_shared::{LogQuery, LogStore, SubscriptionId, SubscriptionStore as _, WorkspaceId};
use serde_json::{json, Value};

use crate::{Ports, SubscriptionParam};

pub fn router<N: Ports>() -> Router<Arc<N>> {
    Router::new()
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/logs",
            authenticated(get(list_workspace_logs::<N>), "GET"),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/logs/{subscription_id}",
            authenticated(get(list_subscription_logs::<N>), "GET"),
        )
}

async fn list_workspace_logs<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = list_logs(api.logs(), &caller.workspace, None, query.as_deref()).await?;
    Ok(json(StatusCode::OK, &page))
}

async fn list_subscription_logs<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    id: SubscriptionParam,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let subscription = id.id()?;
    if !has_readable_logs(&*api, &caller.workspace, subscription).await? {
        return Err(ApiError::NotFound);
    }
    let page = list_logs(
        api.logs(),
        &caller.workspace,
        Some(subscription.clone()),
        query.as_deref(),
    )
    .await?;
    Ok(json(StatusCode::OK, &page))
}

/// Whether `workspace` has a subscription `id` to read logs of: one that exists, or one deleted
/// whose logs are still kept (logs outlive their subscription, and its owner may well want them
/// then). Both are looked up in `workspace` alone, so another workspace's id reads as unknown;
/// a deleted one whose logs have all expired leaves nothing to tell it from an unknown id.
async fn has_readable_logs<N: Ports>(
    api: &N,
    workspace: &WorkspaceId,
    id: &SubscriptionId,
) -> Result<bool, ApiError> {
    if api
        .subscriptions()
        .get_subscription(workspace, id)
        .await?
        .is_some()
    {
        return Ok(true);
    }
    let any = LogQuery {
        subscription: Some(id.clone()),
        ..LogQuery::default()
    };
    Ok(!api.logs().query_logs(workspace, &any, 1).await?.is_empty())
}

/// Most logs one read looks at (newest first); older ones need a narrower date window.
pub const MAX_LOGS_SCANNED: usize = 10_000;
/// Largest page; `limit=0` ("all") also stops here.
pub const MAX_PAGE: usize = 1_000;

/// Every accepted `order_by` value.
pub const LOG_ORDER_BY_VALUES: [&str; 8] = [
    "created_at:asc",
    "created_at:desc",
    "event_type:asc",
    "event_type:desc",
    "delivery_status:asc",
    "delivery_status:desc",
    "status_code:asc",
    "status_code:desc",
];

struct Filters {
    query: LogQuery,
    event_type: Option<String>,
    status: Option<DeliveryStatus>,
    order: (String, bool),
    limit: usize,
    offset: usize,
}

fn parse_filters(
    query: Option<&str>,
    subscription: Option<SubscriptionId>,
) -> Result<Filters, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let param = |name: &str| query_param(query, name);
    let mut date = |name: &str| {
        param(name).and_then(|raw| match parse_log_date(&raw) {
            Ok(at) => Some(at),
            Err(message) => {
                errors.add(name.into(), message);
                None
            }
        })
    };
    let (from, to) = (date("start_date"), date("end_date"));
    let status = param("delivery_status").and_then(|raw| {
        DeliveryStatus::parse(&raw).or_else(|| {
            errors.add(
                "delivery_status".into(),
                format!("Unknown delivery_status {raw:?}; allowed: success, failed"),
            );
            None
        })
    });
    let order_raw = param("order_by").unwrap_or_else(|| "created_at:desc".into());
    let order = match order_raw.split_once(':') {
        Some((field, dir)) if LOG_ORDER_BY_VALUES.contains(&order_raw.as_str()) => {
            (field.to_owned(), dir == "desc")
        }
        _ => {
            errors.add(
                "order_by".into(),
                format!(
                    "Unknown order_by {order_raw:?}; allowed: {}",
                    LOG_ORDER_BY_VALUES.join(", ")
                ),
            );
            ("created_at".into(), true)
        }
    };
    let mut number = |name: &str| match param(name) {
        None => 0,
        Some(raw) => raw.trim().parse::<usize>().unwrap_or_else(|_| {
            errors.add(name.into(), format!("Expected a whole number, got {raw:?}"));
            0
        }),
    };
    let (limit, offset) = (number("limit"), number("offset"));
    if limit > MAX_PAGE {
        errors.add(
            "limit".into(),
            format!("At most {MAX_PAGE}; use offset to page"),
        );
    }
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            errors.add("start_date".into(), "Must not be after end_date".into());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Filters {
        query: LogQuery {
            subscription,
            from,
            to,
        },
        event_type: param("event_type"),
        status,
        order,
        limit: if limit == 0 { MAX_PAGE } else { limit },
        offset,
    })
}

/// One page of a workspace's logs (or one subscription's), filtered, ordered and counted.
async fn list_logs<D: LogStore>(
    store: &D,
    workspace: &WorkspaceId,
    subscription: Option<SubscriptionId>,
    query: Option<&str>,
) -> Result<Value, ApiError> {
    let filters = parse_filters(query, subscription).map_err(ApiError::Invalid)?;
    let mut logs = store
        .query_logs(workspace, &filters.query, MAX_LOGS_SCANNED)
        .await?;
    logs.retain(|log| {
        filters
            .event_type
            .as_deref()
            .is_none_or(|t| log.event_type == t)
            && filters.status.is_none_or(|s| log.delivery_status == s)
    });
    let (field, descending) = &filters.order;
    logs.sort_by(|a, b| {
        let ordering = compare(field, a, b)
            .then_with(|| a.created_at.cmp(&b.created_at))
            .then_with(|| a.id.cmp(&b.id));
        if *descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
    let total = logs.len();
    let data: Vec<Value> = logs
        .iter()
        .skip(filters.offset)
        .take(filters.limit)
        .map(log_out)
        .collect();
    Ok(json!({"total": total, "data": data}))
}

fn compare(field: &str, a: &DeliveryLog, b: &DeliveryLog) -> Ordering {
    match field {
        "event_type" => a.event_type.cmp(&b.event_type),
        "delivery_status" => a.delivery_status.as_str().cmp(b.delivery_status.as_str()),
        "status_code" => a.status_code.cmp(&b.status_code),
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_accept_any_utc_offset_and_name_every_bad_value() {
        let ok = parse_filters(
            Some("start_date=2024-06-01T23:59:59-07:00&end_date=2024-06-02T23:59:59%2B08:00"),
            None,
        )
        .unwrap();
        assert_eq!(
            ok.query.from.unwrap().to_rfc3339(),
            "2024-06-02T06:59:59+00:00"
        );
        assert_eq!(
            ok.query.to.unwrap().to_rfc3339(),
            "2024-06-02T15:59:59+00:00"
        );
        let errors = parse_filters(
            Some("start_date=yesterday&delivery_status=ok&order_by=x&limit=-1&offset=a"),
            None,
        )
        .err()
        .unwrap();
        let named: Vec<&str> = errors.field_errors.keys().map(String::as_str).collect();
        assert_eq!(
            named,
            [
                "delivery_status",
                "limit",
                "offset",
                "order_by",
                "start_date"
            ]
        );
    }

    #[test]
    fn an_envelope_a_value_cannot_hold_is_shown_as_text() {
        let (event, subscription) = (
            hookline_shared::EventId::generate(),
            SubscriptionId::generate(),
        );
        let delivered = r#"{"data":{"big":1e400}}"#;
        let log = DeliveryLog {
            id: "log-1".into(),
            workspace_id: WorkspaceId::generate(),
            event_id: event.clone(),
            subscription_id: subscription.clone(),
            delivery_id: hookline_shared::delivery::DeliveryId::for_pair(&event, &subscription),
            event_type: "crm.deal_won".into(),
            webhook_url: "https://example.com/hook".into(),
            delivery_status: DeliveryStatus::Success,
            status_code: Some(200),
            response_body: String::new(),
            delivered_event_obj: hookline_shared::RawJson::from_json(delivered.into()).unwrap(),
            created_at: chrono::Utc::now(),
            attempt: 1,
            duration_ms: 3,
            error: None,
            expires_at: 0,
            batch_id: None,
        };
        assert_eq!(log_out(&log)["delivered_event_obj"], delivered);
    }
}
