//! Rate limits: at most `per_second` attempts a second to one subscription, whichever worker
//! makes them. Attempts are spaced evenly (a leaky bucket without burst, in the form of GCRA's
//! "theoretical arrival time"): each one reserves the next free slot, so a limit of 5 sends
//! one attempt every 200 ms rather than 5 at once at the top of every second.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most a subscription may ask for.
pub const MAX_RATE_PER_SECOND: u32 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateLimit(u32);

/// A reserved send time, in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot(pub i64);

impl RateLimit {
    /// `None` outside 1..=[`MAX_RATE_PER_SECOND`].
    pub fn new(per_second: u32) -> Option<Self> {
        (1..=MAX_RATE_PER_SECOND)
            .contains(&per_second)
            .then_some(Self(per_second))
    }

    pub fn per_second(self) -> u32 {
        self.0
    }

    /// The spacing between two attempts, rounded up so the limit is never exceeded.
    pub fn interval_micros(self) -> i64 {
        let per_second = i64::from(self.0);
        (1_000_000 + per_second - 1) / per_second
    }

    /// The rule every store applies in one atomic write: given the subscription's next free
    /// time `next_free` (none before its first attempt), an attempt asking at `now` gets the
    /// later of the two, and the next free time moves one interval past it.
    pub fn reserve(self, next_free: Option<i64>, now: i64) -> (Slot, i64) {
        let slot = next_free.map_or(now, |free| free.max(now));
        (Slot(slot), slot + self.interval_micros())
    }
}

impl Slot {
    pub fn now() -> i64 {
        chrono::Utc::now().timestamp_micros()
    }

    /// How long from `now` (microseconds) until the slot.
    pub fn wait_from(self, now: i64) -> Duration {
        Duration::from_micros(self.0.saturating_sub(now).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_evenly_and_an_idle_bucket_starts_now() {
        let limit = RateLimit::new(5).unwrap();
        let (first, next) = limit.reserve(None, 1_000_000);
        assert_eq!((first, next), (Slot(1_000_000), 1_200_000));
        let (second, next) = limit.reserve(Some(next), 1_000_010);
        assert_eq!(second, Slot(1_200_000));
        // Idle since: no credit builds up, the next attempt starts from now.
        let (later, _) = limit.reserve(Some(next), 9_000_000);
        assert_eq!(later, Slot(9_000_000));
        assert_eq!(second.wait_from(1_000_010), Duration::from_micros(199_990));
        assert_eq!(first.wait_from(2_000_000), Duration::ZERO);
    }

    #[test]
    fn limits_are_bounded_and_never_rounded_up_past_the_rate() {
        assert!(RateLimit::new(0).is_none() && RateLimit::new(1001).is_none());
        let three = RateLimit::new(3).unwrap();
        assert!(1_000_000 / three.interval_micros() <= 3);
        assert_eq!(RateLimit::new(1000).unwrap().interval_micros(), 1_000);
    }
}
