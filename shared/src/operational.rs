//! Operational events: what Hookline tells a workspace about its own subscriptions and
//! deliveries (`subscription.paused`, `delivery.failing`, `delivery.exhausted`,
//! `subscription.recovered`), as events of that workspace that fan out to its subscriptions to
//! those types, and never to the subscription they are about.
//!
//! Each is deduplicated by an id derived from its occurrence (the pause's time, the attempt's
//! number), so a settle handled twice emits it once.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::delivery::{Delivery, DeliveryId};
use crate::event::{Affect, Event, EventSource};
use crate::ids::EventId;
use crate::{catalog, RawJson, Subscription};

/// The failed attempt of a delivery after which it is reported as failing.
pub const FAILING_AT_ATTEMPT: u32 = 4;

/// What a failed attempt came to, as the events report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    pub delivery_id: DeliveryId,
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An operational event of `subscription`'s workspace about it, happened at `at`.
fn event(
    kind: &str,
    subscription: &Subscription,
    occurrence: String,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    mut data: Value,
) -> Event {
    debug_assert!(catalog::is_operational(kind), "{kind}");
    data["subscription_id"] = json!(subscription.id);
    data["webhook_url"] = json!(subscription.webhook_url);
    Event {
        id: EventId::generate(),
        workspace_id: subscription.workspace_id.clone(),
        // Apart from every caller-chosen dedup id: the publish API's keys are `key:` ones.
        dedup_id: format!("op:{kind}:{occurrence}"),
        event_type: kind.to_owned(),
        source: EventSource::Operational {
            subscription_id: subscription.id.clone(),
        },
        affect: Affect::Change,
        timestamp: at,
        received_at: now,
        should_process: true,
        payload: RawJson::from_value(&data),
        deliver_at: None,
    }
}

/// `subscription.paused`, for `paused` as it was stored paused, after `last`.
pub fn paused(
    paused: &Subscription,
    consecutive_failures: Option<u32>,
    last: &FailedAttempt,
    now: DateTime<Utc>,
) -> Option<Event> {
    let at = paused.paused_at?;
    let occurrence = format!("{}:{}", paused.id, at.timestamp_micros());
    let data = json!({
        "reason": paused.paused_reason,
        "paused_at": time(at),
        "consecutive_failures": consecutive_failures,
        "last_error": {
            "attempt": last.attempt,
            "delivery_id": last.delivery_id,
            "status_code": last.status_code,
            "error": last.error,
        },
    });
    Some(event(
        "subscription.paused",
        paused,
        occurrence,
        at,
        now,
        data,
    ))
}

/// Whether a delivery's failures are reported: not those of operational events themselves,
/// so subscribers failing on each other's reports never keep one another busy.
pub fn reports_failures_of(delivery: &Delivery) -> bool {
    !catalog::is_operational(&delivery.event_type)
}

/// `delivery.failing`, once its [`FAILING_AT_ATTEMPT`]th attempt failed.
pub fn failing(
    subscription: &Subscription,
    delivery: &Delivery,
    failed: &FailedAttempt,
    next_attempt_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Event> {
    if failed.attempt != FAILING_AT_ATTEMPT || !reports_failures_of(delivery) {
        return None;
    }
    let occurrence = format!("{}:{}", delivery.id, failed.attempt);
    let data = json!({
        "delivery_id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "attempt": failed.attempt,
        "status_code": failed.status_code,
        "error": failed.error,
        "next_attempt_at": next_attempt_at.map(time),
    });
    Some(event(
        "delivery.failing",
        subscription,
        occurrence,
        now,
        now,
        data,
    ))
}

/// `delivery.exhausted`: its last scheduled attempt failed and it was given up.
pub fn exhausted(
    subscription: &Subscription,
    delivery: &Delivery,
    failed: &FailedAttempt,
    now: DateTime<Utc>,
) -> Option<Event> {
    if !reports_failures_of(delivery) {
        return None;
    }
    let occurrence = format!("{}:{}", delivery.id, failed.attempt);
    let data = json!({
        "delivery_id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "attempts": failed.attempt,
        "status_code": failed.status_code,
        "error": failed.error,
    });
    Some(event(
        "delivery.exhausted",
        subscription,
        occurrence,
        now,
        now,
        data,
    ))
}

/// `subscription.recovered`: attempt `attempt` of `delivery` succeeded, ending a run of
/// `failed_attempts` failures (none: nothing to report).
pub fn recovered(
    subscription: &Subscription,
    delivery: &DeliveryId,
    attempt: u32,
    failed_attempts: u32,
    now: DateTime<Utc>,
) -> Option<Event> {
    if failed_attempts == 0 {
        return None;
    }
    let occurrence = format!("{}:{delivery}:{attempt}", subscription.id);
    let data = json!({
        "recovered_at": time(now),
        "failed_attempts": failed_attempts,
        "delivery_id": delivery,
    });
    Some(event(
        "subscription.recovered",
        subscription,
        occurrence,
        now,
        now,
        data,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::{compile, schema_errors};
    use crate::{NewSubscription, SubscriptionType, WorkspaceId};

    fn subscription() -> Subscription {
        let new = NewSubscription {
            webhook_url: "https://hooks.example.com/x".into(),
            event_types: vec!["emails.sent".into()],
            is_enabled: true,
            kind: SubscriptionType::Seasalt,
            created_by: None,
            ..Default::default()
        };
        Subscription::new(WorkspaceId::generate(), new, Utc::now())
    }

    fn delivery(of: &Subscription, event_type: &str) -> Delivery {
        let now = Utc::now();
        let event_id = EventId::generate();
        Delivery {
            id: DeliveryId::for_pair(&event_id, &of.id),
            workspace_id: of.workspace_id.clone(),
            event_id,
            event_dedup_id: "d".into(),
            subscription_id: of.id.clone(),
            event_type: event_type.into(),
            state: crate::delivery::DeliveryState::Pending,
            attempts: 4,
            completed: 3,
            created_at: now,
            updated_at: now,
            batch: None,
            is_batch: false,
        }
    }

    fn failed(delivery: &Delivery, attempt: u32) -> FailedAttempt {
        FailedAttempt {
            delivery_id: delivery.id.clone(),
            attempt,
            status_code: Some(500),
            error: None,
        }
    }

    /// The event's data meets its catalog schema, and it is about `subject` only.
    fn check(event: &Event, subject: &Subscription) {
        let schema = catalog::find(&event.event_type)
            .unwrap()
            .schema
            .as_ref()
            .unwrap();
        let data = event.payload.to_value().unwrap();
        let errors = schema_errors(&compile(schema), &data);
        assert!(errors.is_empty(), "{}: {errors:?}", event.event_type);
        assert!(event.is_about(&subject.id));
        assert!(!event.is_about(&crate::SubscriptionId::generate()));
        assert_eq!(event.workspace_id, subject.workspace_id);
    }

    #[test]
    fn each_occurrence_has_one_dedup_id_and_meets_its_schema() {
        let now = Utc::now();
        let sub = subscription();
        let paused_sub = sub
            .paused("10 consecutive failed delivery attempts".into(), now)
            .unwrap();
        let dlv = delivery(&sub, "emails.sent");
        let events = [
            paused(&paused_sub, Some(10), &failed(&dlv, 3), now).unwrap(),
            failing(&sub, &dlv, &failed(&dlv, 4), Some(now), now).unwrap(),
            exhausted(&sub, &dlv, &failed(&dlv, 8), now).unwrap(),
            recovered(&sub, &dlv.id, 5, 4, now).unwrap(),
        ];
        for event in &events {
            check(event, &sub);
        }
        // Built again for the same occurrence (a settle handled twice): the same dedup id.
        let again = paused(&paused_sub, Some(10), &failed(&dlv, 3), Utc::now()).unwrap();
        assert_eq!(again.dedup_id, events[0].dedup_id);
        let later = exhausted(&sub, &dlv, &failed(&dlv, 9), now).unwrap();
        assert_ne!(
            later.dedup_id, events[2].dedup_id,
            "a replay given up again is news"
        );
        let data = events[0].payload.to_value().unwrap();
        assert_eq!(data["reason"], "10 consecutive failed delivery attempts");
        assert_eq!(data["last_error"]["status_code"], 500);
    }

    #[test]
    fn only_the_fourth_failure_is_failing_and_operational_deliveries_are_not_reported() {
        let now = Utc::now();
        let sub = subscription();
        let dlv = delivery(&sub, "emails.sent");
        assert!(failing(&sub, &dlv, &failed(&dlv, 3), None, now).is_none());
        assert!(failing(&sub, &dlv, &failed(&dlv, 5), None, now).is_none());
        let report = delivery(&sub, "subscription.paused");
        assert!(failing(&sub, &report, &failed(&report, 4), None, now).is_none());
        assert!(exhausted(&sub, &report, &failed(&report, 8), now).is_none());
        assert!(
            recovered(&sub, &dlv.id, 1, 0, now).is_none(),
            "no failures ended"
        );
    }
}
