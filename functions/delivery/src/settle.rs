//! After an attempt: finished, or failed and counted (pausing a failing subscription) and,
//! while the schedule allows, the next attempt queued.

use chrono::{DateTime, Utc};
use hookline_shared::delivery::{DeliveryId, DeliveryState};
use hookline_shared::operational;
use hookline_shared::webhook::{Attempt, AttemptOutcome};
use hookline_shared::{
    DeliveryStore as _, FailureCounter as _, Subscription, SubscriptionStore as _,
};

use crate::admission::{Outcome, Ticket};
use crate::operational::failed_attempt;
use crate::{Handled, Ports, Worker, WorkerError, WorkerResult};

/// Consecutive failed attempts after which a subscription is paused.
pub const PAUSE_AFTER_FAILURES: u32 = 10;
/// Tries to pause a subscription that is being edited at the same moment.
const PAUSE_TRIES: usize = 3;

impl<P: Ports> Worker<P> {
    /// Records how attempt `attempt` went: finished, or failed and counted and, while the
    /// schedule allows, the next attempt queued. Its admission `ticket` learns the outcome
    /// once the failure run is counted, so no attempt is admitted on a stale count.
    pub(crate) async fn settle(
        &self,
        subscription: &Subscription,
        id: &DeliveryId,
        attempt: u32,
        result: &Attempt,
        now: DateTime<Utc>,
        ticket: Option<Ticket>,
    ) -> WorkerResult {
        let workspace = &subscription.workspace_id;
        let deliveries = self.ports.deliveries();
        if result.outcome == AttemptOutcome::Success {
            let (finished, reset) = tokio::join!(
                deliveries.finish_attempt(workspace, id, attempt, DeliveryState::Succeeded),
                self.ports
                    .subscriptions()
                    .reset_failures(workspace, &subscription.id),
            );
            match reset {
                Ok(ended) => {
                    let recovered = operational::recovered(subscription, id, attempt, ended, now);
                    self.emit(recovered).await;
                }
                Err(err) => tracing::warn!(error = %err, "failure count not reset"),
            }
            if let Some(ticket) = ticket {
                ticket.finish(Outcome::Delivered);
            }
            finished?;
            return Ok(Handled::Delivered);
        }
        // Counted (and paused) before the next attempt is queued, so none follows a pause.
        let outcome = self
            .count_failure(subscription, id, attempt, result, now)
            .await;
        if let Some(ticket) = ticket {
            ticket.finish(outcome);
        }
        match self.schedule.next_delay(attempt, result.retry_after) {
            Some(after) => {
                // Queued before the attempt is marked finished: a failed send retries this
                // message, which could not claim a finished attempt again.
                let next = attempt + 1;
                self.requeue(workspace, id, &subscription.id, next, now, after)
                    .await?;
                deliveries
                    .finish_attempt(workspace, id, attempt, DeliveryState::Pending)
                    .await?;
                Ok(Handled::Retrying {
                    next_attempt: attempt + 1,
                    after,
                })
            }
            None => {
                tracing::warn!("retries exhausted; delivery kept for replay");
                deliveries
                    .finish_attempt(workspace, id, attempt, DeliveryState::GaveUp)
                    .await?;
                Ok(Handled::GaveUp)
            }
        }
    }

    /// Counts a failed attempt and pauses the subscription on 410 Gone or a long failure run;
    /// says which it came to. Bookkeeping errors are logged: they must not turn a finished
    /// attempt into a repeat.
    async fn count_failure(
        &self,
        subscription: &Subscription,
        delivery: &DeliveryId,
        attempt: u32,
        result: &Attempt,
        now: DateTime<Utc>,
    ) -> Outcome {
        let (workspace, id) = (&subscription.workspace_id, &subscription.id);
        let failures = match self
            .ports
            .subscriptions()
            .record_failure(workspace, id)
            .await
        {
            Ok(count) => count,
            Err(err) => {
                tracing::warn!(error = %err, "failure not counted");
                return Outcome::Failed { run: None };
            }
        };
        let reason = if result.outcome == AttemptOutcome::Gone {
            Some("The endpoint answered 410 Gone".to_owned())
        } else if failures >= PAUSE_AFTER_FAILURES {
            Some(format!("{failures} consecutive failed delivery attempts"))
        } else {
            None
        };
        let run = Outcome::Failed {
            run: Some(failures),
        };
        let Some(reason) = reason else {
            return run;
        };
        match self.pause(subscription, reason, now).await {
            Ok(paused) => {
                let last = failed_attempt(delivery, attempt, result);
                let event =
                    paused.and_then(|p| operational::paused(&p, Some(failures), &last, now));
                self.emit(event).await;
                Outcome::Paused
            }
            Err(err) => {
                tracing::warn!(error = %err, "subscription not paused");
                run
            }
        }
    }

    /// Pauses the subscription unless it is off already; a write that raced with an edit is
    /// tried again on a fresh read. Returns the subscription as paused, if this call paused it.
    async fn pause(
        &self,
        subscription: &Subscription,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscription>, WorkerError> {
        let (workspace, id) = (&subscription.workspace_id, &subscription.id);
        let subscriptions = self.ports.subscriptions();
        for _ in 0..PAUSE_TRIES {
            let Some(current) = subscriptions.get_subscription(workspace, id).await? else {
                return Ok(None);
            };
            let Some(paused) = current.paused(reason.clone(), now) else {
                return Ok(None);
            };
            if subscriptions
                .replace_subscription(&current, &paused)
                .await?
            {
                // Re-enabled later, it starts a fresh run.
                subscriptions.reset_failures(workspace, id).await?;
                tracing::warn!(reason, "subscription paused");
                return Ok(Some(paused));
            }
        }
        Ok(None)
    }
}
