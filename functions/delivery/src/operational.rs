//! Emitting operational events (`subscription.paused`, `delivery.failing`,
//! `delivery.exhausted`, `subscription.recovered`) as the workspace's own events, through the
//! same intake as a publish: stored once per occurrence, then fanned out to the workspace's
//! subscriptions to them, never to the subscription they are about (see `fan_out.rs`).

use chrono::{DateTime, Utc};
use hookline_shared::delivery::{Delivery, DeliveryId};
use hookline_shared::intake::accept;
use hookline_shared::operational::{self, FailedAttempt};
use hookline_shared::webhook::{Attempt, AttemptOutcome};
use hookline_shared::{Event, Subscription};

use crate::{Handled, Ports, Worker, WorkerError};

/// What a failed attempt came to, for the events that report it.
pub(crate) fn failed_attempt(id: &DeliveryId, attempt: u32, result: &Attempt) -> FailedAttempt {
    FailedAttempt {
        delivery_id: id.clone(),
        attempt,
        status_code: result.status_code,
        error: result.error.clone(),
    }
}

impl<P: Ports> Worker<P> {
    /// Emits `event`, if there is one. Never fails its caller: the attempt it reports on is
    /// finished whether or not the report is stored; a retried settle emits it then.
    pub(crate) async fn emit(&self, event: Option<Event>) {
        let Some(event) = event else {
            return;
        };
        let ports = &self.ports;
        // Stored like any accepted event: the store's outbox (the table's stream, or local
        // mode's transaction) fans it out.
        let accepted = accept::<_, WorkerError>(ports.events(), &event, self.log_retention).await;
        match accepted {
            Ok(intake) if !intake.duplicate => {
                tracing::info!(event_type = event.event_type, event_id = %intake.event_id, "operational event emitted");
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(event_type = event.event_type, error = %err, "operational event not emitted");
            }
        }
    }

    /// `delivery.failing` or `delivery.exhausted` for an attempt that was made and settled.
    pub(crate) async fn report_attempt(
        &self,
        delivery: &Delivery,
        subscription: &Subscription,
        attempt: u32,
        result: &Attempt,
        settled: &Result<Handled, WorkerError>,
        now: DateTime<Utc>,
    ) {
        if result.outcome == AttemptOutcome::Success {
            return;
        }
        let failed = failed_attempt(&delivery.id, attempt, result);
        let event = match settled {
            Ok(Handled::Retrying { after, .. }) => {
                let next = now + chrono::Duration::from_std(*after).unwrap_or_default();
                operational::failing(subscription, delivery, &failed, Some(next), now)
            }
            Ok(Handled::GaveUp) => operational::exhausted(subscription, delivery, &failed, now),
            _ => None,
        };
        self.emit(event).await;
    }
}
