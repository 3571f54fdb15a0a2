//! Deliveries (one event to one subscription), their attempt logs, the retry schedule and
//! the envelope a receiver gets.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::{prefixed_id, EventId, SubscriptionId, WorkspaceId};
use crate::subscription::Subscription;
use crate::{Event, RawJson, Workspace};

prefixed_id!(DeliveryId, "msg_");

/// The `webhook-id` of a delivery: derived from (event, subscription), so the same pair always
/// gets the same id, however often fan-out runs.
impl DeliveryId {
    pub fn for_pair(event: &EventId, subscription: &SubscriptionId) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(event.as_str().as_bytes());
        hasher.update(&[0x1f]);
        hasher.update(subscription.as_str().as_bytes());
        Self(format!(
            "{}{}",
            Self::PREFIX,
            &hasher.finalize().to_hex()[..32]
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// A batch still taking events; sealed (pending) when full or when its wait is over.
    Gathering,
    /// Not yet delivered; attempts may be scheduled.
    Pending,
    Succeeded,
    /// The schedule ran out, or the subscription is gone; kept for replay.
    GaveUp,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Gathering => "gathering",
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::GaveUp => "gave_up",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            DeliveryState::Gathering,
            DeliveryState::Pending,
            DeliveryState::Succeeded,
            DeliveryState::GaveUp,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// One event to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub workspace_id: WorkspaceId,
    pub event_id: EventId,
    /// Where the event is stored: read by key, strongly consistent.
    #[serde(default)]
    pub event_dedup_id: String,
    pub subscription_id: SubscriptionId,
    pub event_type: String,
    pub state: DeliveryState,
    /// Attempts claimed so far.
    pub attempts: u32,
    /// Attempts finished so far; a finished attempt is never made again.
    #[serde(default)]
    pub completed: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The batch record this event's delivery joined; its attempts are the batch's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<DeliveryId>,
    /// This record is a batch: its attempts send its members in one POST. Its event fields
    /// are those of its first member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_batch: bool,
}

impl Delivery {
    pub fn new(event: &Event, subscription: &Subscription, now: DateTime<Utc>) -> Self {
        Self {
            id: DeliveryId::for_pair(&event.id, &subscription.id),
            workspace_id: event.workspace_id.clone(),
            event_id: event.id.clone(),
            event_dedup_id: event.dedup_id.clone(),
            subscription_id: subscription.id.clone(),
            event_type: event.full_type().to_owned(),
            state: DeliveryState::Pending,
            attempts: 0,
            completed: 0,
            created_at: now,
            updated_at: now,
            batch: None,
            is_batch: false,
        }
    }

    /// The claim rule every store applies (DynamoDB as the mirroring condition expression):
    /// attempt `attempt` may be claimed while the delivery is pending and that attempt is not
    /// finished, if it was not claimed yet or its claim's lease (`claimed_until`, epoch
    /// seconds) lapsed before `now` because its worker died.
    pub fn can_claim(&self, attempt: u32, claimed_until: i64, now: i64) -> bool {
        self.state == DeliveryState::Pending
            && self.completed < attempt
            && (self.attempts < attempt || claimed_until < now)
    }

    /// The reopen rule every store applies (DynamoDB as the mirroring condition expression):
    /// a replay or a recovery makes one more attempt, numbered after the last finished one,
    /// whatever state the delivery is in, unless an attempt is being made right now (its claim's
    /// lease `claimed_until` has not lapsed) or, with `if_last`, a later attempt than that one
    /// finished since. The stores then set the delivery pending, claimed up to that attempt with
    /// a lapsed lease, so exactly one worker claims it however many copies are queued.
    pub fn reopen(&self, claimed_until: i64, now: i64, if_last: Option<u32>) -> Reopened {
        if if_last.is_some_and(|last| self.completed != last) {
            return Reopened::Superseded;
        }
        if self.attempts > self.completed && claimed_until >= now {
            return Reopened::InFlight;
        }
        Reopened::Queued {
            attempt: self.completed + 1,
            // Already reopened (or parked) for that attempt: waiting to be claimed.
            fresh: !(self.state == DeliveryState::Pending && self.attempts > self.completed),
        }
    }

    /// A claimed attempt may be given back (parked) while it is still the last one claimed
    /// and it did not finish; otherwise a later claim holds the delivery and nothing parks.
    pub fn can_park(&self, attempt: u32) -> bool {
        self.attempts == attempt && self.completed < attempt
    }
}

/// What reopening a delivery for one more attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopened {
    /// Reopened for attempt `attempt`, to be queued now. `fresh` is false when the delivery was
    /// already waiting for that attempt (reopened before, or parked), so it is not counted twice.
    Queued { attempt: u32, fresh: bool },
    /// An attempt is being made right now; it is not interrupted or doubled.
    InFlight,
    /// A later attempt finished since the one the caller knew of.
    Superseded,
    /// No such delivery.
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Failed,
    Success,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Success => "success",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "failed" => Some(Self::Failed),
            "success" => Some(Self::Success),
            _ => None,
        }
    }
}

/// One attempt, as the logs API shows it (seed 002's fields plus attempt, duration, error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLog {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub event_id: EventId,
    pub subscription_id: SubscriptionId,
    pub delivery_id: DeliveryId,
    pub event_type: String,
    pub webhook_url: String,
    pub delivery_status: DeliveryStatus,
    pub status_code: Option<u16>,
    pub response_body: String,
    pub delivered_event_obj: RawJson,
    pub created_at: DateTime<Utc>,
    pub attempt: u32,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Epoch seconds after which the log is invisible and DynamoDB may delete it.
    pub expires_at: i64,
    /// The batch the attempt sent this event in (`bat_…`), for batched subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

impl DeliveryLog {
    /// Sortable, unique per attempt: `<created_at>#<delivery id>#<attempt>`.
    pub fn sort_key(&self) -> String {
        format!(
            "{}#{}#{:04}",
            log_time(self.created_at),
            self.delivery_id,
            self.attempt
        )
    }
}

/// The timestamp form log sort keys use; fixed width, so text order is time order.
pub fn log_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The inclusive sort-key range of logs created between `from` and `to` (open ends allowed).
/// `0` sorts before every timestamp and `~` after every character a sort key holds, and a
/// key range may not be empty text.
pub fn log_key_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> (String, String) {
    let lower = from.map_or_else(|| "0".to_owned(), log_time);
    let upper = to.map_or_else(|| "~".to_owned(), |to| format!("{}~", log_time(to)));
    (lower, upper)
}

/// The default retry delays after each failed attempt (then give up).
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// When to try again after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    /// ±fraction of each delay, so a receiver that failed many deliveries at once is not hit
    /// by all their retries at once.
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: DEFAULT_RETRY_SCHEDULE.to_vec(),
            jitter: 0.2,
        }
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>, jitter: f64) -> Self {
        Self { delays, jitter }
    }

    /// Comma-separated seconds, e.g. `1,1,2` (jitter stays ±20 %).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let delays = raw
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        format!("{part:?} is not a number of seconds between 0 and 86400")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            delays,
            ..Self::default()
        })
    }

    /// Attempts in all: the first plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The wait before attempt `failed_attempt + 1`, or `None` to give up. A `Retry-After`
    /// from the receiver is honoured within [scheduled, 2 × scheduled].
    pub fn next_delay(
        &self,
        failed_attempt: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let scheduled = *self.delays.get(failed_attempt.checked_sub(1)? as usize)?;
        let jittered = if self.jitter > 0.0 {
            scheduled.mul_f64(1.0 + rand::thread_rng().gen_range(-self.jitter..=self.jitter))
        } else {
            scheduled
        };
        Some(match retry_after {
            Some(asked) => asked.clamp(scheduled, scheduled * 2),
            None => jittered,
        })
    }
}

/// The body a receiver gets: the notify seed's envelope around the event's payload, which is
/// copied in as stored text. `Err` only if that text is not one JSON value.
pub fn envelope(
    delivery: &Delivery,
    event: &Event,
    workspace: &Workspace,
    subscription: &Subscription,
) -> Result<RawJson, serde_json::Error> {
    let (source_id, kind, identifier) = event.envelope_source();
    let body = Envelope {
        id: delivery.id.as_str(),
        event_type: &delivery.event_type,
        affect: event.affect.as_str(),
        timestamp: event.timestamp,
        workspace: EnvelopeWorkspace {
            id: workspace.id.as_str(),
            name: &workspace.name,
        },
        source: EnvelopeSource {
            id: source_id,
            kind,
            identifier,
        },
        data: event.payload.as_raw()?,
        subscription: Some(subscription),
    };
    RawJson::to_json(&body)
}

/// The notify seed's envelope, for real deliveries ([`envelope`]) and test sends alike.
pub struct Envelope<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    /// `add` for an event, `test` for a test send.
    pub affect: &'a str,
    pub timestamp: DateTime<Utc>,
    pub workspace: EnvelopeWorkspace<'a>,
    pub source: EnvelopeSource<'a>,
    pub data: &'a RawValue,
    /// Whose subscription it is, when there is one.
    pub subscription: Option<&'a Subscription>,
}

#[derive(Serialize)]
pub struct EnvelopeWorkspace<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[derive(Serialize)]
pub struct EnvelopeSource<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub identifier: &'a str,
}

/// The field names and order receivers see.
#[derive(Serialize)]
struct EnvelopeOut<'a> {
    id: &'a str,
    event_type: &'a str,
    affect: &'a str,
    version: &'static str,
    timestamp: String,
    workspace: &'a EnvelopeWorkspace<'a>,
    source: &'a EnvelopeSource<'a>,
    data: &'a RawValue,
    subscription_created_by: Option<&'a str>,
    subscription_updated_by: Option<&'a str>,
}

impl Serialize for Envelope<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EnvelopeOut {
            id: self.id,
            event_type: self.event_type,
            affect: self.affect,
            version: "1.0",
            timestamp: self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            workspace: &self.workspace,
            source: &self.source,
            data: self.data,
            subscription_created_by: self.subscription.and_then(|s| s.created_by.as_deref()),
            subscription_updated_by: self.subscription.and_then(|s| s.updated_by.as_deref()),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_per_pair() {
        let (e, s) = (EventId::generate(), SubscriptionId::generate());
        assert_eq!(DeliveryId::for_pair(&e, &s), DeliveryId::for_pair(&e, &s));
        assert_ne!(
            DeliveryId::for_pair(&e, &s),
            DeliveryId::for_pair(&e, &SubscriptionId::generate())
        );
        let id = DeliveryId::for_pair(&e, &s);
        assert_eq!(DeliveryId::parse(id.as_str()), Some(id));
    }

    fn delivery(state: DeliveryState, attempts: u32, completed: u32) -> Delivery {
        let now = Utc::now();
        Delivery {
            id: DeliveryId::for_pair(&EventId::generate(), &SubscriptionId::generate()),
            workspace_id: WorkspaceId::generate(),
            event_id: EventId::generate(),
            event_dedup_id: "d".into(),
            subscription_id: SubscriptionId::generate(),
            event_type: "emails.sent".into(),
            state,
            attempts,
            completed,
            created_at: now,
            updated_at: now,
            batch: None,
            is_batch: false,
        }
    }

    #[test]
    fn a_finished_delivery_reopens_for_the_attempt_after_its_last() {
        for state in [DeliveryState::GaveUp, DeliveryState::Succeeded] {
            let done = delivery(state, 8, 8);
            let reopened = done.reopen(0, 100, None);
            assert_eq!(
                reopened,
                Reopened::Queued {
                    attempt: 9,
                    fresh: true
                }
            );
            // As the stores leave it: pending, claimed up to 9 with a lapsed lease.
            let mut stored = done.clone();
            (stored.state, stored.attempts) = (DeliveryState::Pending, 9);
            assert!(stored.can_claim(9, 0, 100));
            assert_eq!(
                stored.reopen(0, 100, Some(8)),
                Reopened::Queued {
                    attempt: 9,
                    fresh: false
                }
            );
        }
    }

    #[test]
    fn a_pending_delivery_makes_its_next_attempt_now_unless_one_is_in_flight() {
        let waiting = delivery(DeliveryState::Pending, 3, 3);
        assert_eq!(
            waiting.reopen(0, 100, None),
            Reopened::Queued {
                attempt: 4,
                fresh: true
            }
        );
        let sending = delivery(DeliveryState::Pending, 4, 3);
        assert_eq!(sending.reopen(160, 100, None), Reopened::InFlight);
        // Its worker died: the lapsed attempt is the one made.
        assert_eq!(
            sending.reopen(90, 100, None),
            Reopened::Queued {
                attempt: 4,
                fresh: false
            }
        );
    }

    #[test]
    fn a_recovery_skips_a_delivery_whose_later_attempt_finished() {
        let later = delivery(DeliveryState::Succeeded, 5, 5);
        assert_eq!(later.reopen(0, 100, Some(4)), Reopened::Superseded);
        assert!(matches!(
            later.reopen(0, 100, Some(5)),
            Reopened::Queued { .. }
        ));
    }

    #[test]
    fn the_default_schedule_has_eight_attempts_with_bounded_jitter() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 8);
        for _ in 0..100 {
            let first = schedule.next_delay(1, None).unwrap();
            assert!(
                first >= Duration::from_secs(4) && first <= Duration::from_secs(6),
                "{first:?}"
            );
        }
        assert!(schedule.next_delay(7, None).unwrap() >= Duration::from_secs(8 * 3600));
        assert_eq!(schedule.next_delay(8, None), None);
        assert_eq!(schedule.next_delay(0, None), None);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let schedule = RetrySchedule::default();
        let asked = |s| {
            schedule
                .next_delay(2, Some(Duration::from_secs(s)))
                .unwrap()
        };
        assert_eq!(
            asked(1),
            Duration::from_secs(300),
            "never sooner than scheduled"
        );
        assert_eq!(asked(400), Duration::from_secs(400));
        assert_eq!(
            asked(86_400),
            Duration::from_secs(600),
            "never later than twice the schedule"
        );
    }

    #[test]
    fn schedules_parse_from_the_environment_form() {
        let schedule = RetrySchedule::parse("1, 1,2").unwrap();
        assert_eq!(schedule.max_attempts(), 4);
        assert!(RetrySchedule::parse("1,x").unwrap_err().contains("\"x\""));
        assert!(RetrySchedule::parse("-1").is_err());
    }
}
