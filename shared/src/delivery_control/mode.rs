//! Delivery modes: each accepted event delivered at once, after a delay, or gathered into
//! batches of several events in one POST.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validation::ValidationErrors;

const MAX_DELAY_SECONDS: u32 = 604_800;
const MAX_BATCH_EVENTS: u32 = 1_000;
const MAX_BATCH_WAIT_SECONDS: u32 = 3_600;
/// A batch body never grows past this; the next event starts another batch.
pub const MAX_BATCH_BODY_BYTES: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum DeliveryMode {
    #[default]
    Immediate,
    /// The first attempt waits `delay_seconds` after the event was accepted.
    Delayed { delay_seconds: u32 },
    /// Events gather into one POST of up to `max_events`, sent at the latest
    /// `max_wait_seconds` after the first of them.
    Batched {
        max_events: u32,
        max_wait_seconds: u32,
    },
}

/// When a gathering batch is sent: full, or its first event waited long enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_events: u32,
    pub max_wait: std::time::Duration,
    pub max_bytes: usize,
}

impl DeliveryMode {
    /// The mode `value` describes, or every fault in it named under `field`.
    pub fn parse(field: &str, value: &Value, errors: &mut ValidationErrors) -> Option<Self> {
        let Some(object) = value.as_object() else {
            errors.add(
                field.into(),
                "Must be an object such as {\"mode\": \"immediate\"}".into(),
            );
            return None;
        };
        let allowed: &[&str] = match object.get("mode").and_then(Value::as_str) {
            Some("immediate") => &["mode"],
            Some("delayed") => &["mode", "delay_seconds"],
            Some("batched") => &["mode", "max_events", "max_wait_seconds"],
            _ => {
                errors.add(
                    format!("{field}.mode"),
                    "Required: one of immediate, delayed, batched".into(),
                );
                return None;
            }
        };
        let before = errors.count();
        for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
            errors.add(
                format!("{field}.{key}"),
                format!("Not a field of this mode; allowed: {}", allowed.join(", ")),
            );
        }
        let mut bounded = |name: &str, min: u32, max: u32| -> u32 {
            let got = object.get(name).and_then(Value::as_u64);
            match got.filter(|n| (u64::from(min)..=u64::from(max)).contains(n)) {
                Some(n) => n as u32,
                None => {
                    errors.add(
                        format!("{field}.{name}"),
                        format!("Required: an integer from {min} to {max}"),
                    );
                    0
                }
            }
        };
        let mode = match allowed.len() {
            1 => DeliveryMode::Immediate,
            2 => DeliveryMode::Delayed {
                delay_seconds: bounded("delay_seconds", 1, MAX_DELAY_SECONDS),
            },
            _ => DeliveryMode::Batched {
                max_events: bounded("max_events", 2, MAX_BATCH_EVENTS),
                max_wait_seconds: bounded("max_wait_seconds", 1, MAX_BATCH_WAIT_SECONDS),
            },
        };
        (errors.count() == before).then_some(mode)
    }

    /// When the first attempt of an event accepted at `accepted` may be made: after this
    /// mode's delay and not before the event's own `deliver_at`, whichever is later.
    pub fn first_attempt_at(
        &self,
        accepted: DateTime<Utc>,
        deliver_at: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let delayed = match self {
            DeliveryMode::Delayed { delay_seconds } => {
                accepted + Duration::seconds(i64::from(*delay_seconds))
            }
            _ => accepted,
        };
        deliver_at.map_or(delayed, |at| at.max(delayed))
    }

    /// The limits of a batched mode; `None` for modes that send each event alone.
    pub fn batch_limits(&self) -> Option<BatchLimits> {
        match *self {
            DeliveryMode::Batched {
                max_events,
                max_wait_seconds,
            } => Some(BatchLimits {
                max_events,
                max_wait: std::time::Duration::from_secs(u64::from(max_wait_seconds)),
                max_bytes: MAX_BATCH_BODY_BYTES,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<DeliveryMode, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        DeliveryMode::parse("delivery_mode", &value, &mut errors).ok_or(errors)
    }

    fn fields(errors: ValidationErrors) -> String {
        serde_json::to_string(&errors).unwrap()
    }

    #[test]
    fn each_mode_parses_and_round_trips_through_its_stored_form() {
        for value in [
            json!({"mode": "immediate"}),
            json!({"mode": "delayed", "delay_seconds": 3}),
            json!({"mode": "batched", "max_events": 10, "max_wait_seconds": 2}),
        ] {
            let mode = parse(value.clone()).unwrap();
            assert_eq!(serde_json::to_value(mode).unwrap(), value);
        }
    }

    #[test]
    fn every_fault_is_named_by_its_field() {
        let err = fields(parse(json!({"mode": "delayed", "delay_seconds": 0})).unwrap_err());
        assert!(err.contains("delivery_mode.delay_seconds"), "{err}");
        let err = fields(
            parse(json!({"mode": "batched", "max_events": 1, "max_wait_seconds": 4000, "x": 1}))
                .unwrap_err(),
        );
        for field in ["max_events", "max_wait_seconds", "delivery_mode.x"] {
            assert!(err.contains(field), "{field}: {err}");
        }
        let err = fields(parse(json!({"mode": "later"})).unwrap_err());
        assert!(err.contains("delivery_mode.mode"), "{err}");
        assert!(parse(json!("immediate")).is_err());
        assert!(parse(json!({"mode": "immediate", "delay_seconds": 3})).is_err());
    }

    #[test]
    fn the_later_of_the_delay_and_deliver_at_wins() {
        let accepted = Utc::now();
        let delayed = DeliveryMode::Delayed { delay_seconds: 3 };
        let soon = accepted + Duration::seconds(1);
        let later = accepted + Duration::seconds(5);
        assert_eq!(
            delayed.first_attempt_at(accepted, None),
            accepted + Duration::seconds(3)
        );
        assert_eq!(
            delayed.first_attempt_at(accepted, Some(soon)),
            accepted + Duration::seconds(3)
        );
        assert_eq!(delayed.first_attempt_at(accepted, Some(later)), later);
        let immediate = DeliveryMode::Immediate;
        assert_eq!(immediate.first_attempt_at(accepted, None), accepted);
        assert_eq!(immediate.first_attempt_at(accepted, Some(later)), later);
    }
}
