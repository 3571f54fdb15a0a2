//! Replay and recovery: a delivery reopened for one more attempt of its own (same
//! `webhook-id`) and that attempt queued now.
//!
//! Both go through [`crate::DeliveryStore::reopen_delivery`], so the claim rule still lets one
//! worker make each attempt however many copies are queued: a replay clicked twice, or two
//! recoveries of one window, send a waiting delivery once.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delivery::{DeliveryId, DeliveryLog, DeliveryStatus, Reopened};
use crate::error::{QueueError, StoreError};
use crate::ids::{RecoveryId, SubscriptionId, WorkspaceId};
use crate::ports::{DeliveryStore, LogQuery, LogStore, Queue};
use crate::queue_message::QueueMessage;
use crate::validation::ValidationErrors;

/// Logs one recovery step reads; a window holding more continues in a queue message.
pub const RECOVERY_PAGE: usize = 200;

/// Reopens `delivery` for one more attempt and queues it now; what reopening came to.
pub async fn redeliver<D, Q, Err>(
    deliveries: &D,
    queue: &Q,
    workspace: &WorkspaceId,
    subscription: &SubscriptionId,
    delivery: &DeliveryId,
    if_last: Option<u32>,
) -> Result<Reopened, Err>
where
    D: DeliveryStore,
    Q: Queue,
    Err: From<StoreError> + From<QueueError>,
{
    let reopened = deliveries
        .reopen_delivery(workspace, delivery, if_last)
        .await?;
    if let Reopened::Queued { attempt, .. } = reopened {
        // Queued even when not fresh: a reopen whose send failed is only finished by a retry.
        let message = QueueMessage::Deliver {
            workspace_id: workspace.clone(),
            delivery_id: delivery.clone(),
            subscription_id: Some(subscription.clone()),
            attempt,
            not_before: Utc::now().timestamp(),
            resumed: false,
            slot_micros: None,
        };
        queue.send(&message.to_body(), Duration::ZERO).await?;
    }
    Ok(reopened)
}

/// One recovery: the subscription's deliveries whose last attempt in `[since, until]` failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub job_id: RecoveryId,
    pub workspace_id: WorkspaceId,
    pub subscription_id: SubscriptionId,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Recovery {
    /// Reads `{"since", "until"?}` (RFC 3339 with any offset, as the logs API's dates): `since`
    /// required, `until` defaulting to `now` and not before `since`; the window is cut to the
    /// last `max_window` (older logs are gone) and ends by `now` at the latest.
    pub fn parse(
        body: &Value,
        workspace_id: WorkspaceId,
        subscription_id: SubscriptionId,
        now: DateTime<Utc>,
        max_window: Duration,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(fields) = body.as_object() else {
            errors.form_errors.push("Expected a JSON object".into());
            return Err(errors);
        };
        for name in fields
            .keys()
            .filter(|k| !["since", "until"].contains(&k.as_str()))
        {
            errors.add(name.clone(), "Unknown field; allowed: since, until".into());
        }
        let mut date = |name: &str| match fields.get(name) {
            None => None,
            Some(Value::String(raw)) => match DateTime::parse_from_rfc3339(raw.trim()) {
                Ok(at) => Some(at.with_timezone(&Utc)),
                Err(_) => {
                    errors.add(
                        name.into(),
                        "Must be an ISO 8601 date-time with an offset, e.g. 2026-01-02T03:04:05Z"
                            .into(),
                    );
                    None
                }
            },
            Some(_) => {
                errors.add(name.into(), "Must be a string".into());
                None
            }
        };
        let since = date("since");
        let until = date("until");
        if !fields.contains_key("since") {
            errors.add("since".into(), "Required".into());
        }
        // Logs older than the retention are gone and none are newer than now: the window is
        // cut to what can hold logs, so a wide one is no fault.
        let oldest = now - chrono::Duration::from_std(max_window).unwrap_or_default();
        let since = since.map(|since| since.max(oldest));
        let until_given = until.is_some();
        let until = until.unwrap_or(now).min(now);
        if let Some(since) = since {
            if until < since {
                let (field, why) = if until_given {
                    (
                        "until",
                        "The window ends before it starts (or before the oldest kept log)",
                    )
                } else {
                    ("since", "Must not be in the future")
                };
                errors.add(field.into(), why.into());
            }
        }
        match since {
            Some(since) if errors.is_empty() => Ok(Self {
                job_id: RecoveryId::generate(),
                workspace_id,
                subscription_id,
                since,
                until,
            }),
            _ => Err(errors),
        }
    }

    /// Queues one page of the window, newest logs first: each delivery whose newest log there
    /// failed is reopened, unless a later attempt finished since. Returns how many were newly
    /// queued, and the rest of the window if the page was full.
    pub async fn step<L, D, Q, Err>(
        &self,
        logs: &L,
        deliveries: &D,
        queue: &Q,
    ) -> Result<(usize, Option<Recovery>), Err>
    where
        L: LogStore,
        D: DeliveryStore,
        Q: Queue,
        Err: From<StoreError> + From<QueueError>,
    {
        let query = LogQuery {
            subscription: Some(self.subscription_id.clone()),
            from: Some(self.since),
            to: Some(self.until),
        };
        let page = logs
            .query_logs(&self.workspace_id, &query, RECOVERY_PAGE)
            .await?;
        let failed = last_failed(&page);
        let (workspace, subscription) = (&self.workspace_id, &self.subscription_id);
        let results = join_all(failed.iter().map(|log| {
            redeliver::<D, Q, Err>(
                deliveries,
                queue,
                workspace,
                subscription,
                &log.delivery_id,
                // A delivery re-seen on a later page, or tried again since, is left alone.
                Some(log.attempt),
            )
        }))
        .await;
        let mut queued = 0;
        for result in results {
            if let Reopened::Queued { fresh: true, .. } = result? {
                queued += 1;
            }
        }
        Ok((queued, self.rest(&page)))
    }

    /// The window older than `page` if the page was full. The cut is inclusive (logs of the
    /// oldest instant are read again, harmlessly), stepping past it only if the whole page was
    /// that one instant, so every step moves.
    fn rest(&self, page: &[DeliveryLog]) -> Option<Recovery> {
        if page.len() < RECOVERY_PAGE {
            return None;
        }
        let oldest = page.last()?.created_at;
        let until = if oldest < self.until {
            oldest
        } else {
            oldest - chrono::Duration::microseconds(1)
        };
        (until >= self.since).then(|| Recovery {
            until,
            ..self.clone()
        })
    }
}

/// The failed logs among `page` (newest first) that are their delivery's newest there.
fn last_failed(page: &[DeliveryLog]) -> Vec<&DeliveryLog> {
    let mut seen = HashSet::new();
    page.iter()
        .filter(|log| seen.insert(&log.delivery_id))
        .filter(|log| log.delivery_status == DeliveryStatus::Failed)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<Recovery, ValidationErrors> {
        let now = DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let window = Duration::from_secs(30 * 86_400);
        Recovery::parse(
            &body,
            WorkspaceId::generate(),
            SubscriptionId::generate(),
            now,
            window,
        )
    }

    fn faults(body: Value) -> Vec<String> {
        parse(body).unwrap_err().field_errors.into_keys().collect()
    }

    #[test]
    fn the_window_takes_any_offset_and_ends_now_by_default() {
        let recovery = parse(json!({"since": "2026-03-09T08:00:00+08:00"})).unwrap();
        assert_eq!(recovery.since.to_rfc3339(), "2026-03-09T00:00:00+00:00");
        assert_eq!(recovery.until.to_rfc3339(), "2026-03-10T00:00:00+00:00");
    }

    #[test]
    fn each_fault_of_the_window_is_named() {
        assert_eq!(faults(json!({})), ["since"]);
        assert_eq!(faults(json!({"since": "yesterday"})), ["since"]);
        assert_eq!(
            faults(json!({"since": "2026-03-09T00:00:00Z", "until": "2026-03-08T00:00:00Z"})),
            ["until"]
        );
        assert_eq!(faults(json!({"since": "2026-03-11T00:00:00Z"})), ["since"]);
        let wide = parse(json!({"since": "2000-01-01T00:00:00Z", "until": "2099-01-01T00:00:00Z"}));
        let wide = wide.unwrap();
        assert_eq!(
            wide.since.to_rfc3339(),
            "2026-02-08T00:00:00+00:00",
            "cut to 30 days"
        );
        assert_eq!(
            wide.until.to_rfc3339(),
            "2026-03-10T00:00:00+00:00",
            "cut to now"
        );
        assert_eq!(
            faults(json!({"since": "2026-03-09T00:00:00Z", "extra": 1})),
            ["extra"]
        );
        assert!(parse(json!([])).unwrap_err().form_errors.len() == 1);
    }

    fn log(delivery: &DeliveryId, attempt: u32, status: DeliveryStatus) -> DeliveryLog {
        DeliveryLog {
            id: uuid::Uuid::now_v7().simple().to_string(),
            workspace_id: WorkspaceId::generate(),
            event_id: crate::EventId::generate(),
            subscription_id: SubscriptionId::generate(),
            delivery_id: delivery.clone(),
            event_type: "emails.sent".into(),
            webhook_url: "https://x.io".into(),
            delivery_status: status,
            status_code: None,
            response_body: String::new(),
            delivered_event_obj: crate::RawJson::from_value(&json!({})),
            created_at: Utc::now(),
            attempt,
            duration_ms: 0,
            error: None,
            expires_at: 0,
            batch_id: None,
        }
    }

    #[test]
    fn only_a_delivery_whose_newest_log_failed_is_recovered() {
        let ids: Vec<DeliveryId> = (0..3)
            .map(|_| DeliveryId::for_pair(&crate::EventId::generate(), &SubscriptionId::generate()))
            .collect();
        let page = [
            log(&ids[0], 2, DeliveryStatus::Success),
            log(&ids[1], 8, DeliveryStatus::Failed),
            log(&ids[0], 1, DeliveryStatus::Failed),
            log(&ids[1], 7, DeliveryStatus::Failed),
            log(&ids[2], 1, DeliveryStatus::Failed),
        ];
        let picked: Vec<(&DeliveryId, u32)> = last_failed(&page)
            .into_iter()
            .map(|l| (&l.delivery_id, l.attempt))
            .collect();
        assert_eq!(picked, [(&ids[1], 8), (&ids[2], 1)]);
    }
}
