//! Request and response shapes of the notify API (seed 002 plus ids, timestamps and secrets).

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_shared::{Subscription, SubscriptionType};
use serde::{Deserialize, Serialize};

/// `POST …/subscription`; the schema has already rejected unknown fields and wrong types.
#[derive(Debug, Deserialize)]
pub struct CreateIn {
    pub webhook_url: String,
    pub event_types: Vec<String>,
    pub created_by: Option<String>,
    pub is_enabled: bool,
    #[serde(rename = "type")]
    pub kind: Option<SubscriptionType>,
}

/// `PATCH …/subscription/{id}`: `updated_by` and any of the other fields.
#[derive(Debug, Deserialize)]
pub struct PatchIn {
    pub webhook_url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_enabled: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<SubscriptionType>,
    pub updated_by: String,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Serialize)]
pub struct SubscriptionOut<'a> {
    pub id: &'a str,
    pub webhook_url: &'a str,
    pub event_types: &'a [String],
    pub created_by: Option<&'a str>,
    pub is_enabled: bool,
    #[serde(rename = "type")]
    pub kind: SubscriptionType,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<&'a str>,
    /// Set while delivery has paused the subscription (10 failures in a row, or 410 Gone).
    pub paused_reason: Option<&'a str>,
    pub paused_at: Option<String>,
    /// Only in the answer to create: the one time the secret is shown without asking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
}

impl<'a> SubscriptionOut<'a> {
    pub fn new(subscription: &'a Subscription, with_secret: bool) -> Self {
        Self {
            id: subscription.id.as_str(),
            webhook_url: &subscription.webhook_url,
            event_types: &subscription.event_types,
            created_by: subscription.created_by.as_deref(),
            is_enabled: subscription.is_enabled,
            kind: subscription.kind,
            created_at: timestamp(subscription.created_at),
            updated_at: timestamp(subscription.updated_at),
            updated_by: subscription.updated_by.as_deref(),
            paused_reason: subscription.paused_reason.as_deref(),
            paused_at: subscription.paused_at.map(timestamp),
            secret: with_secret.then(|| subscription.current_secret().value.as_str()),
        }
    }
}

/// The answer to reveal and rotate: the current secret and until when older ones still sign.
#[derive(Debug, Serialize)]
pub struct SecretOut<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub previous_secret_expires_at: Option<String>,
}

impl<'a> SecretOut<'a> {
    pub fn new(subscription: &'a Subscription) -> Self {
        let now = Utc::now();
        let previous = subscription
            .signing_secrets(now)
            .skip(1)
            .filter_map(|s| s.expires_at)
            .max()
            .map(timestamp);
        Self {
            id: subscription.id.as_str(),
            secret: &subscription.current_secret().value,
            previous_secret_expires_at: previous,
        }
    }
}
