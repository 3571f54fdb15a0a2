//! Deployment configuration read from the environment, failing fast on what is missing.

use std::time::Duration;

use thiserror::Error;

pub const WORKSPACES_TABLE: &str = "HOOKLINE_WORKSPACES_TABLE";
pub const EVENTS_TABLE: &str = "HOOKLINE_EVENTS_TABLE";
pub const EVENTS_QUEUE_URL: &str = "HOOKLINE_EVENTS_QUEUE_URL";
pub const DEDUP_WINDOW_DAYS: &str = "HOOKLINE_DEDUP_WINDOW_DAYS";

pub const DEFAULT_DEDUP_WINDOW_DAYS: u64 = 30;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Names of the DynamoDB tables and SQS queues a deployed stack uses.
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub workspaces_table: String,
    pub events_table: String,
    pub events_queue_url: String,
}

impl AwsResources {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            workspaces_table: required(WORKSPACES_TABLE)?,
            events_table: required(EVENTS_TABLE)?,
            events_queue_url: required(EVENTS_QUEUE_URL)?,
        })
    }
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

fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}
