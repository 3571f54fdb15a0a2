//! Isolation between subscriptions: one slow or failing receiver must not hold the worker's
//! slots that every other subscription needs.
//!
//! Before an attempt claims its delivery it is admitted here, per subscription:
//! - at most `max_in_flight` attempts of one subscription are in flight at once; an attempt
//!   beyond that waits `wait_in_place` for one of them to finish (a healthy receiver answers
//!   well within it), then is deferred: put back on the queue for `defer_for`, holding no slot;
//! - the failure run known so far plus the attempts in flight never exceeds the run that pauses
//!   the subscription, so the pause lands on exactly that many failures, not a few more;
//! - the subscription's [`Breaker`] may make it wait instead.
//!
//! The state is the worker process's own (one warm Lambda, or local mode). Across concurrent
//! Lambdas the store's failure count and pause stay the authority; this only keeps one
//! process's slots fair.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hookline_shared::config::{count_from_env, ConfigError, MAX_IN_FLIGHT_PER_SUBSCRIPTION};
use hookline_shared::SubscriptionId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::breaker::{Breaker, BreakerPolicy, Verdict};
use crate::PAUSE_AFTER_FAILURES;

/// Subscriptions remembered before idle ones are forgotten.
const REMEMBERED_SUBSCRIPTIONS: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub struct IsolationPolicy {
    /// Attempts of one subscription in flight at once in this process.
    pub max_in_flight: usize,
    /// How long an attempt beyond that waits for a slot before it is deferred.
    pub wait_in_place: Duration,
    /// How long a deferred attempt stays on the queue before it asks again.
    pub defer_for: Duration,
    /// Consecutive failures that pause a subscription.
    pub pause_after: u32,
    pub breaker: BreakerPolicy,
}

impl IsolationPolicy {
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
    /// The most [`MAX_IN_FLIGHT_PER_SUBSCRIPTION`] may ask for.
    pub const MOST_IN_FLIGHT: usize = 256;

    /// The defaults, with [`MAX_IN_FLIGHT_PER_SUBSCRIPTION`] honoured.
    pub fn from_env() -> Result<Self, ConfigError> {
        let max_in_flight = count_from_env(
            MAX_IN_FLIGHT_PER_SUBSCRIPTION,
            Self::DEFAULT_MAX_IN_FLIGHT,
            Self::MOST_IN_FLIGHT,
        )?;
        Ok(Self {
            max_in_flight,
            ..Self::default()
        })
    }
}

impl Default for IsolationPolicy {
    fn default() -> Self {
        Self {
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            wait_in_place: Duration::from_millis(200),
            // SQS delays are whole seconds; one is the shortest deferral that is one.
            defer_for: Duration::from_secs(1),
            pause_after: PAUSE_AFTER_FAILURES,
            breaker: BreakerPolicy::default(),
        }
    }
}

struct Slot {
    permits: Arc<Semaphore>,
    health: Mutex<Health>,
}

struct Health {
    /// Consecutive failures as last counted by the store (or by us, when it could not say).
    streak: u32,
    breaker: Breaker,
}

impl Slot {
    fn health(&self) -> MutexGuard<'_, Health> {
        // Held for a few comparisons only; a panic inside cannot leave it half-updated.
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Admits attempts per subscription under an [`IsolationPolicy`].
pub struct Admission {
    policy: IsolationPolicy,
    slots: Mutex<HashMap<SubscriptionId, Arc<Slot>>>,
}

/// An admitted attempt's place; finish it with its outcome. Dropped unfinished (the attempt
/// never reached the receiver), it frees its place and hands back a probe.
pub struct Ticket {
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
    probe: bool,
    finished: bool,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(IsolationPolicy::default())
    }
}

impl Admission {
    pub fn new(policy: IsolationPolicy) -> Self {
        Self {
            policy,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one attempt of `subscription`, or how long to defer it.
    pub async fn admit(&self, subscription: &SubscriptionId) -> Result<Ticket, Duration> {
        let slot = self.slot(subscription);
        let permit = match slot.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waited = tokio::time::timeout(
                    self.policy.wait_in_place,
                    slot.permits.clone().acquire_owned(),
                )
                .await;
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(self.policy.defer_for),
                }
            }
        };
        let in_flight = self.policy.max_in_flight - slot.permits.available_permits();
        let mut health = slot.health();
        if health.streak as usize + in_flight > self.policy.pause_after as usize {
            // Every attempt in flight may fail; one more could overshoot the pause.
            return Err(self.policy.defer_for);
        }
        let probe = match health.breaker.admit(Instant::now()) {
            Verdict::Go => false,
            Verdict::Probe => true,
            Verdict::Wait(wait) => return Err(wait.max(self.policy.defer_for)),
        };
        drop(health);
        Ok(Ticket {
            slot,
            _permit: permit,
            probe,
            finished: false,
        })
    }

    fn slot(&self, subscription: &SubscriptionId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(subscription) {
            return Arc::clone(slot);
        }
        if slots.len() >= REMEMBERED_SUBSCRIPTIONS {
            let max = self.policy.max_in_flight;
            slots.retain(|_, slot| {
                let health = slot.health();
                slot.permits.available_permits() < max
                    || health.streak > 0
                    || !health.breaker.is_idle()
            });
        }
        let slot = Arc::new(Slot {
            permits: Arc::new(Semaphore::new(self.policy.max_in_flight)),
            health: Mutex::new(Health {
                streak: 0,
                breaker: Breaker::new(self.policy.breaker),
            }),
        });
        slots.insert(subscription.clone(), Arc::clone(&slot));
        slot
    }
}

/// How an admitted attempt that reached the receiver (or tried to) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; the failure run the store counted with it, if it could say.
    Failed {
        run: Option<u32>,
    },
    /// Failed and paused the subscription, whose run starts afresh if it is re-enabled.
    Paused,
}

impl Ticket {
    pub fn finish(mut self, outcome: Outcome) {
        let mut health = self.slot.health();
        let failed = outcome != Outcome::Delivered;
        health.breaker.record(Instant::now(), failed, self.probe);
        health.streak = match outcome {
            Outcome::Delivered | Outcome::Paused => 0,
            // Attempts finish in any order: a later one may report a shorter run it counted
            // first. The run never shrinks but by a success or a pause.
            Outcome::Failed { run: Some(counted) } => health.streak.max(counted),
            Outcome::Failed { run: None } => health.streak.saturating_add(1),
        };
        drop(health);
        self.finished = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.probe && !self.finished {
            self.slot.health().breaker.abandon_probe(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_in_flight: usize, pause_after: u32) -> Admission {
        Admission::new(IsolationPolicy {
            max_in_flight,
            wait_in_place: Duration::from_millis(20),
            pause_after,
            ..IsolationPolicy::default()
        })
    }

    #[tokio::test]
    async fn caps_the_attempts_one_subscription_has_in_flight() {
        let admission = admission(2, 10);
        let (busy, other) = (SubscriptionId::generate(), SubscriptionId::generate());
        let first = admission.admit(&busy).await.unwrap();
        let _second = admission.admit(&busy).await.unwrap();
        assert_eq!(
            admission.admit(&busy).await.err(),
            Some(Duration::from_secs(1))
        );
        // Another subscription is not held up by the busy one.
        assert!(admission.admit(&other).await.is_ok());
        first.finish(Outcome::Delivered);
        assert!(admission.admit(&busy).await.is_ok());
    }

    #[tokio::test]
    async fn an_attempt_waiting_in_place_takes_a_place_freed_meanwhile() {
        let admission = Arc::new(Admission::new(IsolationPolicy {
            max_in_flight: 1,
            wait_in_place: Duration::from_secs(5),
            ..IsolationPolicy::default()
        }));
        let subscription = SubscriptionId::generate();
        let held = admission.admit(&subscription).await.unwrap();
        let waiting = {
            let (admission, subscription) = (Arc::clone(&admission), subscription.clone());
            tokio::spawn(async move { admission.admit(&subscription).await.is_ok() })
        };
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn never_lets_more_attempts_go_than_the_failures_left_before_the_pause() {
        let admission = admission(4, 10);
        let subscription = SubscriptionId::generate();
        let ticket = admission.admit(&subscription).await.unwrap();
        ticket.finish(Outcome::Failed { run: Some(8) });
        let ninth = admission.admit(&subscription).await.unwrap();
        let tenth = admission.admit(&subscription).await.unwrap();
        assert!(admission.admit(&subscription).await.is_err());
        ninth.finish(Outcome::Failed { run: Some(9) });
        assert!(admission.admit(&subscription).await.is_err());
        // The tenth paused the subscription, whose count starts again.
        tenth.finish(Outcome::Paused);
        assert!(admission.admit(&subscription).await.is_ok());
    }

    #[tokio::test]
    async fn a_run_counted_earlier_but_reported_later_does_not_shorten_it() {
        let admission = admission(4, 10);
        let subscription = SubscriptionId::generate();
        let first = admission.admit(&subscription).await.unwrap();
        let second = admission.admit(&subscription).await.unwrap();
        // The store counted `first` as the 8th failure and `second` as the 9th, but `second`
        // finishes first.
        second.finish(Outcome::Failed { run: Some(9) });
        first.finish(Outcome::Failed { run: Some(8) });
        let tenth = admission.admit(&subscription).await.unwrap();
        assert!(
            admission.admit(&subscription).await.is_err(),
            "one failure is left before the pause, and it is in flight"
        );
        drop(tenth);
    }

    #[tokio::test]
    async fn a_success_ends_the_failure_run() {
        let admission = admission(4, 10);
        let subscription = SubscriptionId::generate();
        admission
            .admit(&subscription)
            .await
            .unwrap()
            .finish(Outcome::Failed { run: Some(9) });
        admission
            .admit(&subscription)
            .await
            .unwrap()
            .finish(Outcome::Delivered);
        let tickets: Vec<_> =
            futures_util::future::join_all((0..4).map(|_| admission.admit(&subscription))).await;
        assert!(tickets.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn an_open_breaker_defers_and_lets_one_probe_decide() {
        let admission = Admission::new(IsolationPolicy {
            breaker: BreakerPolicy {
                min_requests: 2,
                open_for: Duration::from_millis(10),
                ..BreakerPolicy::default()
            },
            pause_after: 100,
            ..IsolationPolicy::default()
        });
        let subscription = SubscriptionId::generate();
        for _ in 0..2 {
            admission
                .admit(&subscription)
                .await
                .unwrap()
                .finish(Outcome::Failed { run: None });
        }
        assert!(admission.admit(&subscription).await.is_err());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let probe = admission.admit(&subscription).await.unwrap();
        assert!(admission.admit(&subscription).await.is_err());
        probe.finish(Outcome::Delivered);
        assert!(admission.admit(&subscription).await.is_ok());
    }

    #[tokio::test]
    async fn a_probe_that_never_reached_the_receiver_is_handed_back() {
        let admission = Admission::new(IsolationPolicy {
            breaker: BreakerPolicy {
                min_requests: 1,
                open_for: Duration::ZERO,
                ..BreakerPolicy::default()
            },
            pause_after: 100,
            ..IsolationPolicy::default()
        });
        let subscription = SubscriptionId::generate();
        admission
            .admit(&subscription)
            .await
            .unwrap()
            .finish(Outcome::Failed { run: None });
        drop(admission.admit(&subscription).await.unwrap());
        assert!(admission.admit(&subscription).await.is_ok());
    }
}
