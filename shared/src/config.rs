//! Deployment configuration read from the environment, failing fast on what is missing.

use std::time::Duration;

use thiserror::Error;

pub const WORKSPACES_TABLE: &str = "HOOKLINE_WORKSPACES_TABLE";
pub const EVENTS_TABLE: &str = "HOOKLINE_EVENTS_TABLE";
pub const EVENTS_QUEUE_URL: &str = "HOOKLINE_EVENTS_QUEUE_URL";
pub const DEDUP_WINDOW_DAYS: &str = "HOOKLINE_DEDUP_WINDOW_DAYS";
pub const SUBSCRIPTIONS_TABLE: &str = "HOOKLINE_SUBSCRIPTIONS_TABLE";
/// Development switch: accept plain-http webhook URLs.
pub const ALLOW_HTTP_WEBHOOKS: &str = "HOOKLINE_ALLOW_HTTP_WEBHOOKS";

pub const DEFAULT_DEDUP_WINDOW_DAYS: u64 = 30;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// How long a dedup record keeps a repeated event out.
pub fn dedup_window_from_env() -> Result<Duration, ConfigError> {
    let days = match std::env::var(DEDUP_WINDOW_DAYS) {
        Err(_) => DEFAULT_DEDUP_WINDOW_DAYS,
        Ok(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| ConfigError::Invalid {
                name: DEDUP_WINDOW_DAYS,
                reason: format!("expected whole days between 1 and 3650, got {raw:?}"),
            })?,
    };
    Ok(Duration::from_secs(days * 86_400))
}

/// A `true`/`false` switch; unset means `false`.
pub fn flag(name: &'static str) -> Result<bool, ConfigError> {
    match std::env::var(name).ok().as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
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

/// JSON log lines for the Lambdas (CloudWatch adds the timestamp); `RUST_LOG` filters, default info.
pub fn init_lambda_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
}
