//! A circuit breaker per subscription: a receiver that keeps failing is left alone for a while
//! instead of being hammered, and its deliveries wait rather than burn their retries.
//!
//! Closed: every attempt goes, and outcomes are kept for a sliding window. Once the window holds
//! at least `min_requests` outcomes of which at least `failure_ratio` failed, the breaker opens.
//! Open: attempts wait until `open_for` has passed, then exactly one goes as a half-open probe.
//! The probe decides: success closes the breaker (with a fresh window), failure reopens it for
//! twice as long, up to `max_open_for`. Waiting is not failing: a delivery that waits is not
//! attempted, so it neither uses a retry nor counts toward the subscription's pause.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    pub window: Duration,
    pub min_requests: usize,
    /// Failed share of the window's outcomes at which the breaker opens, in (0, 1].
    pub failure_ratio: f64,
    pub open_for: Duration,
    pub max_open_for: Duration,
}

/// Sized for volume: a receiver that is simply down is paused after its run of consecutive
/// failures long before 20 attempts; the breaker is for one that fails often but not always
/// (overloaded, flapping), which a failure run never catches because successes reset it.
impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            min_requests: 20,
            failure_ratio: 0.5,
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(60),
        }
    }
}

/// What the breaker lets an attempt do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// The single attempt whose outcome decides whether the breaker closes.
    Probe,
    /// Not now: look again after this long.
    Wait(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
        open_for: Duration,
    },
    /// Open, with its probe in flight.
    Probing {
        open_for: Duration,
    },
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: State,
    /// (when, failed) of the attempts finished while closed, oldest first.
    outcomes: VecDeque<(Instant, bool)>,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: State::Closed,
            outcomes: VecDeque::new(),
        }
    }

    /// Whether an attempt may go at `now`; a `Probe` must be answered by [`Breaker::record`]
    /// with `probe = true` or handed back with [`Breaker::abandon_probe`].
    pub fn admit(&mut self, now: Instant) -> Verdict {
        match self.state {
            State::Closed => Verdict::Go,
            State::Open { until, open_for } if now >= until => {
                self.state = State::Probing { open_for };
                Verdict::Probe
            }
            State::Open { until, .. } => Verdict::Wait(until - now),
            // The probe answers within the sender's timeout; looking again sooner is cheap.
            State::Probing { open_for } => Verdict::Wait(open_for.min(self.policy.open_for)),
        }
    }

    /// Records an attempt's outcome. Only the probe moves an open breaker; attempts that were
    /// already in flight when it opened finish without changing its mind.
    pub fn record(&mut self, now: Instant, failed: bool, probe: bool) {
        match self.state {
            State::Probing { open_for } if probe => {
                if failed {
                    let open_for = (open_for * 2).min(self.policy.max_open_for);
                    self.state = State::Open {
                        until: now + open_for,
                        open_for,
                    };
                } else {
                    self.state = State::Closed;
                    self.outcomes.clear();
                }
            }
            State::Closed => {
                self.outcomes.push_back((now, failed));
                self.forget_before(now);
                if self.tripped() {
                    let open_for = self.policy.open_for;
                    self.state = State::Open {
                        until: now + open_for,
                        open_for,
                    };
                    self.outcomes.clear();
                }
            }
            _ => {}
        }
    }

    /// The probe did not reach the receiver (its delivery was parked, finished or skipped):
    /// the next attempt may probe instead.
    pub fn abandon_probe(&mut self, now: Instant) {
        if let State::Probing { open_for } = self.state {
            self.state = State::Open {
                until: now,
                open_for,
            };
        }
    }

    /// Closed with no failure remembered: nothing worth keeping.
    pub fn is_idle(&self) -> bool {
        self.state == State::Closed && self.outcomes.iter().all(|(_, failed)| !failed)
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some((at, _)) = self.outcomes.front() {
            if now.duration_since(*at) <= self.policy.window {
                break;
            }
            self.outcomes.pop_front();
        }
    }

    fn tripped(&self) -> bool {
        let requests = self.outcomes.len();
        let failures = self.outcomes.iter().filter(|(_, failed)| *failed).count();
        requests >= self.policy.min_requests
            && failures as f64 >= self.policy.failure_ratio * requests as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            window: Duration::from_secs(10),
            min_requests: 4,
            failure_ratio: 0.5,
            open_for: Duration::from_secs(2),
            max_open_for: Duration::from_secs(5),
        }
    }

    fn record_all(breaker: &mut Breaker, at: Instant, outcomes: &[bool]) {
        for failed in outcomes {
            breaker.record(at, *failed, false);
        }
    }

    #[test]
    fn stays_closed_below_the_minimum_of_requests() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true, true, true]);
        assert_eq!(breaker.admit(t0), Verdict::Go);
    }

    #[test]
    fn stays_closed_below_the_failure_ratio() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true, false, false, false, true, false]);
        assert_eq!(breaker.admit(t0), Verdict::Go);
    }

    #[test]
    fn opens_at_the_ratio_and_makes_attempts_wait() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true, false, true, false]);
        assert_eq!(breaker.admit(t0), Verdict::Wait(Duration::from_secs(2)));
        let later = t0 + Duration::from_millis(500);
        assert_eq!(
            breaker.admit(later),
            Verdict::Wait(Duration::from_millis(1500))
        );
    }

    #[test]
    fn forgets_outcomes_older_than_the_window() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true, true, true]);
        let much_later = t0 + Duration::from_secs(11);
        record_all(&mut breaker, much_later, &[true, false, false]);
        assert_eq!(breaker.admit(much_later), Verdict::Go);
    }

    #[test]
    fn lets_exactly_one_probe_through_once_open_time_passed() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true; 4]);
        let after = t0 + Duration::from_secs(2);
        assert_eq!(breaker.admit(after), Verdict::Probe);
        assert!(matches!(breaker.admit(after), Verdict::Wait(_)));
        assert!(matches!(breaker.admit(after), Verdict::Wait(_)));
    }

    #[test]
    fn a_successful_probe_closes_it_with_a_fresh_window() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true; 4]);
        let after = t0 + Duration::from_secs(2);
        assert_eq!(breaker.admit(after), Verdict::Probe);
        breaker.record(after, false, true);
        assert_eq!(breaker.admit(after), Verdict::Go);
        // The failures that opened it are gone: three more do not reopen it.
        record_all(&mut breaker, after, &[true; 3]);
        assert_eq!(breaker.admit(after), Verdict::Go);
    }

    #[test]
    fn a_failed_probe_reopens_it_for_longer_up_to_the_cap() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true; 4]);
        let mut now = t0 + Duration::from_secs(2);
        for expected in [4, 5, 5] {
            assert_eq!(breaker.admit(now), Verdict::Probe);
            breaker.record(now, true, true);
            assert_eq!(
                breaker.admit(now),
                Verdict::Wait(Duration::from_secs(expected))
            );
            now += Duration::from_secs(expected);
        }
    }

    #[test]
    fn outcomes_of_attempts_already_in_flight_do_not_decide() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true; 4]);
        let after = t0 + Duration::from_secs(2);
        assert_eq!(breaker.admit(after), Verdict::Probe);
        breaker.record(after, false, false);
        assert!(matches!(breaker.admit(after), Verdict::Wait(_)));
        breaker.record(after, true, true);
        assert_eq!(breaker.admit(after), Verdict::Wait(Duration::from_secs(4)));
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_attempt_probe() {
        let (mut breaker, t0) = (Breaker::new(policy()), Instant::now());
        record_all(&mut breaker, t0, &[true; 4]);
        let after = t0 + Duration::from_secs(2);
        assert_eq!(breaker.admit(after), Verdict::Probe);
        breaker.abandon_probe(after);
        assert_eq!(breaker.admit(after), Verdict::Probe);
    }
}
