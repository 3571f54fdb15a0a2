//! Event timestamp parsing: ISO 8601 strings, epoch milliseconds or seconds, within a window.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use serde_json::Value;

/// Epoch numbers at or above this are milliseconds, below it seconds.
const MILLIS_THRESHOLD: f64 = 1e12;
const YEARS_BACK: i64 = 50;
const YEARS_AHEAD: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampError {
    Unparseable,
    OutOfWindow,
}

impl TimestampError {
    pub fn message(&self) -> &'static str {
        match self {
            TimestampError::Unparseable => {
                "Invalid timestamp: expected an ISO 8601 string with offset, or a Unix epoch in milliseconds (>= 1e12) or seconds"
            }
            TimestampError::OutOfWindow => {
                "Timestamp must be within 50 years in the past and 5 years in the future"
            }
        }
    }
}

/// Parses a timestamp value and checks it falls within the accepted window around `now`.
pub fn parse_event_timestamp(
    value: &Value,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, TimestampError> {
    let parsed = match value {
        Value::Number(n) => n.as_f64().and_then(from_epoch),
        Value::String(s) => parse_string(s.trim()),
        _ => None,
    }
    .ok_or(TimestampError::Unparseable)?;
    let earliest = now - Duration::days(365 * YEARS_BACK + YEARS_BACK / 4);
    let latest = now + Duration::days(365 * YEARS_AHEAD + 1);
    if parsed < earliest || parsed > latest {
        return Err(TimestampError::OutOfWindow);
    }
    Ok(parsed)
}

fn parse_string(s: &str) -> Option<DateTime<Utc>> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.parse::<f64>().ok().and_then(from_epoch);
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .ok()
        .map(|dt| dt.with_timezone(&Utc))
}

fn from_epoch(number: f64) -> Option<DateTime<Utc>> {
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    let millis = if number >= MILLIS_THRESHOLD {
        number
    } else {
        number * 1000.0
    };
    if millis > i64::MAX as f64 {
        return None;
    }
    Utc.timestamp_millis_opt(millis as i64).single()
}

/// The fixed "now" the unit tests of timestamps and validation judge windows against.
#[cfg(test)]
pub(crate) fn test_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::proptest_cases::config;

    use test_now as now;

    fn parse(v: Value) -> Result<String, TimestampError> {
        parse_event_timestamp(&v, now()).map(|t| t.to_rfc3339())
    }

    #[test]
    fn all_accepted_forms_normalize_to_the_same_instant() {
        let expected = Ok("2024-02-03T10:30:00+00:00".to_string());
        assert_eq!(parse(json!("2024-02-03T10:30:00Z")), expected);
        assert_eq!(parse(json!("2024-02-03T12:30:00+02:00")), expected);
        assert_eq!(parse(json!("2024-02-03T10:30:00.000+0000")), expected);
        assert_eq!(parse(json!(1706956200000_i64)), expected);
        assert_eq!(parse(json!(1706956200)), expected);
        assert_eq!(parse(json!("1706956200")), expected);
        assert_eq!(parse(json!("1706956200000")), expected);
    }

    #[test]
    fn rejects_garbage_and_offsetless_strings() {
        for bad in [
            json!("not-a-date"),
            json!(""),
            json!("2024-02-03T10:30:00"),
            json!(true),
            json!(-5),
            json!(null),
        ] {
            assert_eq!(parse(bad), Err(TimestampError::Unparseable));
        }
    }

    #[test]
    fn enforces_the_window() {
        assert_eq!(
            parse(json!("1800-01-01T00:00:00Z")),
            Err(TimestampError::OutOfWindow)
        );
        assert_eq!(
            parse(json!("2033-01-01T00:00:00Z")),
            Err(TimestampError::OutOfWindow)
        );
        assert!(parse(json!("1977-01-01T00:00:00Z")).is_ok());
        assert!(parse(json!("2031-01-01T00:00:00Z")).is_ok());
        // Epoch 0 (1970) is older than 50 years before 2026-11.
        assert_eq!(parse(json!(0)), Err(TimestampError::OutOfWindow));
    }

    /// Strings shaped like the accepted forms, with their parts anywhere in range or beyond.
    fn timestamp_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9.]{0,40}",
            "-?[0-9]{1,25}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,4})?",
            "[0-9+-]{0,6}[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}[T ][0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}(\\.[0-9]{0,15})?(Z|z|[+-][0-9]{1,5}(:[0-9]{1,3})?)?",
            " *[0-9TZ:+.\\- ]{0,30} *",
        ]
    }

    proptest! {
        #![proptest_config(config(1024))]

        #[test]
        fn no_string_makes_the_parser_panic(
            text in prop_oneof![any::<String>(), timestamp_like()],
        ) {
            if let Ok(at) = parse_event_timestamp(&Value::String(text), now()) {
                let window = now() - Duration::days(365 * YEARS_BACK + YEARS_BACK / 4)
                    ..=now() + Duration::days(365 * YEARS_AHEAD + 1);
                prop_assert!(window.contains(&at), "only instants in the window pass: {at}");
            }
        }

        #[test]
        fn no_number_makes_the_parser_panic(
            number in prop_oneof![
                any::<f64>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
            ],
        ) {
            let _ = parse_event_timestamp(&number, now());
        }
    }
}
