//! Deployment configuration read from the environment, failing fast on what is missing.

use std::time::Duration;

use thiserror::Error;

pub const WORKSPACES_TABLE: &str = "HOOKLINE_WORKSPACES_TABLE";
pub const EVENTS_TABLE: &str = "HOOKLINE_EVENTS_TABLE";
pub const DEDUP_WINDOW_DAYS: &str = "HOOKLINE_DEDUP_WINDOW_DAYS";
pub const SUBSCRIPTIONS_TABLE: &str = "HOOKLINE_SUBSCRIPTIONS_TABLE";
pub const DELIVERIES_TABLE: &str = "HOOKLINE_DELIVERIES_TABLE";
pub const LOGS_TABLE: &str = "HOOKLINE_LOGS_TABLE";
pub const DELIVERIES_QUEUE_URL: &str = "HOOKLINE_DELIVERIES_QUEUE_URL";
pub const LOG_RETENTION_DAYS: &str = "HOOKLINE_LOG_RETENTION_DAYS";
/// Comma-separated retry delays in seconds, e.g. `1,1,2`; unset means the default schedule.
pub const RETRY_SCHEDULE: &str = "HOOKLINE_RETRY_SCHEDULE";
/// Development switch: let delivery reach private and loopback addresses.
pub const ALLOW_PRIVATE_TARGETS: &str = "HOOKLINE_ALLOW_PRIVATE_TARGETS";
/// Development switch: accept plain-http webhook URLs.
pub const ALLOW_HTTP_WEBHOOKS: &str = "HOOKLINE_ALLOW_HTTP_WEBHOOKS";

/// Attempts of one subscription a delivery worker has in flight at once (default 4).
pub const MAX_IN_FLIGHT_PER_SUBSCRIPTION: &str = "HOOKLINE_MAX_IN_FLIGHT_PER_SUBSCRIPTION";

pub const DEFAULT_DEDUP_WINDOW_DAYS: u64 = 30;
pub const DEFAULT_LOG_RETENTION_DAYS: u64 = 30;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// How long a dedup record keeps a repeated event out.
pub fn dedup_window_from_env() -> Result<Duration, ConfigError> {
    days_from_env(DEDUP_WINDOW_DAYS, DEFAULT_DEDUP_WINDOW_DAYS)
}

/// A whole number of days between 1 and 3650; unset means `default`.
pub fn days_from_env(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    let days = match std::env::var(name) {
        Err(_) => default,
        Ok(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!("expected whole days between 1 and 3650, got {raw:?}"),
            })?,
    };
    Ok(Duration::from_secs(days * 86_400))
}

/// A whole number between 1 and `max`; unset means `default`.
pub fn count_from_env(
    name: &'static str,
    default: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!("expected a whole number between 1 and {max}, got {raw:?}"),
            }),
    }
}

/// The retry schedule from [`RETRY_SCHEDULE`], or the default one.
pub fn retry_schedule_from_env() -> Result<crate::delivery::RetrySchedule, ConfigError> {
    match std::env::var(RETRY_SCHEDULE) {
        Err(_) => Ok(crate::delivery::RetrySchedule::default()),
        Ok(raw) => {
            crate::delivery::RetrySchedule::parse(&raw).map_err(|reason| ConfigError::Invalid {
                name: RETRY_SCHEDULE,
                reason,
            })
        }
    }
}

/// A `true`/`false` switch; unset means `false`.
pub fn flag(name: &'static str) -> Result<bool, ConfigError> {
    flag_or(name, false)
}

/// Like [`flag`], but `default` when the variable is not set at all.
pub fn flag_or(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match std::env::var(name).ok().as_deref().map(str::trim) {
        None => Ok(default),
        Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            name,
            reason: format!("expected true or false, got {other:?}"),
        }),
    }
}

/// A variable that must be set and non-empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// JSON log lines for the Lambdas (CloudWatch adds the timestamp); `RUST_LOG` filters, default
/// info. Each line carries the fields of the span it is logged in (a request's id, method,
/// path and workspace…) under `span`, so one filter finds every line of one request.
pub fn init_lambda_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .init();
}
