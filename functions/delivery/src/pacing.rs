//! Rate limits in the worker: an attempt of a rate-limited subscription is made at the send
//! slot it reserved in the store, which spaces every worker's attempts evenly.
//!
//! A slot close at hand is waited for in place, the attempt's claim and admission held. A
//! slot further off gives the claim back unused and requeues the attempt with the slot it
//! reserved, so it is not reserved again when it comes back; it then waits in place for the
//! rest. Either way the attempt is delayed, never dropped, and nothing counts it: no attempt
//! used, no failure, no log. A subscription without a limit costs nothing here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hookline_shared::delivery::Delivery;
use hookline_shared::delivery_control::{RateLimit, Slot};
use hookline_shared::{DeliveryStore as _, RateLimiter as _, Subscription};

use crate::queueing::Queued;
use crate::{Ports, Worker, WorkerError};

/// The longest an attempt waits for its slot in place, holding its claim and its admission
/// ticket. Queue delays are whole seconds, so a requeued attempt comes back within this of
/// its slot.
const WAIT_IN_PLACE: Duration = Duration::from_secs(1);

/// What pacing an attempt came to.
pub(crate) enum Paced {
    /// Its slot has come (or no limit applies): send it now, as of this time.
    Send(DateTime<Utc>),
    /// Its claim was given back and it was requeued for its slot.
    Requeued,
}

impl<P: Ports> Worker<P> {
    /// Holds claimed attempt `attempt` of `delivery` until its send slot, or requeues it for
    /// then. `reserved` is the slot a requeued attempt carries.
    pub(crate) async fn pace(
        &self,
        delivery: &Delivery,
        subscription: &Subscription,
        attempt: u32,
        resumed: bool,
        reserved: Option<Slot>,
        now: DateTime<Utc>,
    ) -> Result<Paced, WorkerError> {
        let Some(limit) = subscription.rate_limit_per_second else {
            return Ok(Paced::Send(now));
        };
        let asked = Slot::now();
        let slot = match reserved {
            Some(slot) if asked - slot.0 <= micros(WAIT_IN_PLACE) => slot,
            // None yet; or the attempt came back long after its slot (it waited for room at
            // the receiver) and takes a fresh one rather than crowd the slots of those on time.
            _ => self.reserve(delivery, limit, asked).await?,
        };
        let wait = slot.wait_from(Slot::now());
        if wait <= WAIT_IN_PLACE {
            if !wait.is_zero() {
                let wait_ms = wait.as_millis() as u64;
                tracing::info!(wait_ms, "attempt paced: waiting for its send slot");
                tokio::time::sleep(wait).await;
            }
            return Ok(Paced::Send(Utc::now()));
        }
        let (workspace, id) = (&delivery.workspace_id, &delivery.id);
        self.ports
            .deliveries()
            .release_attempt(delivery, attempt)
            .await?;
        let queued = Queued {
            subscription: Some(subscription.id.clone()),
            attempt,
            // Whole seconds, rounded down: the attempt comes back at most a second early and
            // waits in place for the rest.
            not_before: slot.0.div_euclid(1_000_000),
            resumed,
            slot: Some(slot),
        };
        self.queue_attempt(workspace, id, queued, wait).await?;
        let wait_ms = wait.as_millis() as u64;
        tracing::info!(wait_ms, "attempt paced: requeued for its send slot");
        Ok(Paced::Requeued)
    }

    async fn reserve(
        &self,
        delivery: &Delivery,
        limit: RateLimit,
        now: i64,
    ) -> Result<Slot, WorkerError> {
        let subscriptions = self.ports.subscriptions();
        let (workspace, subscription) = (&delivery.workspace_id, &delivery.subscription_id);
        Ok(subscriptions
            .reserve(workspace, subscription, limit, now)
            .await?)
    }
}

fn micros(duration: Duration) -> i64 {
    duration.as_micros() as i64
}
