//! Webhook subscriptions and their signing secrets.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::ids::{SubscriptionId, WorkspaceId};

/// How long a rotated-out secret keeps signing deliveries, so receivers can switch over.
pub const SECRET_ROTATION_GRACE: Duration = Duration::hours(24);
/// Random bytes behind a signing secret.
const SECRET_BYTES: usize = 32;
const SECRET_PREFIX: &str = "whsec_";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum SubscriptionType {
    #[default]
    Seasalt,
    Zapier,
}

impl SubscriptionType {
    pub const ALL: [SubscriptionType; 2] = [SubscriptionType::Seasalt, SubscriptionType::Zapier];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionType::Seasalt => "SEASALT",
            SubscriptionType::Zapier => "ZAPIER",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 CSPRNG bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    pub value: String,
    /// `None` for the current secret; set when it was rotated out.
    pub expires_at: Option<DateTime<Utc>>,
}

impl SigningSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        Self {
            value: format!("{SECRET_PREFIX}{encoded}"),
            expires_at: None,
        }
    }

    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// One webhook endpoint of a workspace and the event types it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub workspace_id: WorkspaceId,
    pub webhook_url: String,
    pub event_types: Vec<String>,
    pub is_enabled: bool,
    #[serde(rename = "type")]
    pub kind: SubscriptionType,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The current secret first, then rotated-out ones still in their grace period.
    pub secrets: Vec<SigningSecret>,
    /// Bumped on every write; stores refuse a write based on a stale version.
    pub version: u64,
    /// Why delivery paused this subscription (cleared when it is enabled again).
    #[serde(default)]
    pub paused_reason: Option<String>,
    #[serde(default)]
    pub paused_at: Option<DateTime<Utc>>,
}

/// What a new subscription is made from; the rest (id, secret, timestamps) is generated.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub webhook_url: String,
    pub event_types: Vec<String>,
    pub is_enabled: bool,
    pub kind: SubscriptionType,
    pub created_by: Option<String>,
}

impl Subscription {
    /// A fresh subscription with a new id and signing secret, at version 1.
    pub fn new(workspace_id: WorkspaceId, new: NewSubscription, now: DateTime<Utc>) -> Self {
        Self {
            id: SubscriptionId::generate(),
            workspace_id,
            webhook_url: new.webhook_url,
            event_types: new.event_types,
            is_enabled: new.is_enabled,
            kind: new.kind,
            updated_by: new.created_by.clone(),
            created_by: new.created_by,
            created_at: now,
            updated_at: now,
            secrets: vec![SigningSecret::generate()],
            version: 1,
            paused_reason: None,
            paused_at: None,
        }
    }

    /// The secret new deliveries are announced with.
    pub fn current_secret(&self) -> &SigningSecret {
        self.secrets
            .first()
            .expect("a subscription always has a current secret")
    }

    /// Every secret a delivery at `now` is signed with.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &SigningSecret> {
        self.secrets.iter().filter(move |s| s.is_valid_at(now))
    }

    /// Makes a fresh secret current; the old one stays valid for [`SECRET_ROTATION_GRACE`].
    /// Secrets already past their grace period are dropped.
    pub fn rotate_secret(&mut self, now: DateTime<Utc>) {
        let mut kept: Vec<SigningSecret> = self
            .secrets
            .drain(..)
            .filter(|s| s.is_valid_at(now))
            .collect();
        for secret in &mut kept {
            let grace_end = now + SECRET_ROTATION_GRACE;
            secret.expires_at = Some(secret.expires_at.map_or(grace_end, |at| at.min(grace_end)));
        }
        self.secrets = std::iter::once(SigningSecret::generate())
            .chain(kept)
            .collect();
    }

    /// The event types this subscription is routed for right now: none while disabled.
    pub fn routed_event_types(&self) -> &[String] {
        if self.is_enabled {
            &self.event_types
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription() -> Subscription {
        let new = NewSubscription {
            webhook_url: "https://example.com/hook".into(),
            event_types: vec!["emails.sent".into()],
            is_enabled: true,
            kind: SubscriptionType::default(),
            created_by: None,
        };
        Subscription::new(WorkspaceId::generate(), new, Utc::now())
    }

    #[test]
    fn secrets_carry_at_least_24_random_bytes() {
        let secret = SigningSecret::generate();
        let raw = secret.value.strip_prefix("whsec_").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap();
        assert!(bytes.len() >= 24);
        assert_ne!(SigningSecret::generate(), secret);
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
        let mut sub = subscription();
        let now = Utc::now();
        let old = sub.current_secret().clone();
        sub.rotate_secret(now);
        assert_ne!(sub.current_secret().value, old.value);
        let signing: Vec<_> = sub.signing_secrets(now).map(|s| s.value.clone()).collect();
        assert_eq!(
            signing,
            [sub.current_secret().value.clone(), old.value.clone()]
        );
        let later = now + SECRET_ROTATION_GRACE + Duration::seconds(1);
        assert_eq!(sub.signing_secrets(later).count(), 1);
        sub.rotate_secret(later);
        assert_eq!(
            sub.secrets.len(),
            2,
            "the expired secret is dropped at the next rotation"
        );
    }

    #[test]
    fn disabled_subscriptions_route_nothing() {
        let mut sub = subscription();
        assert_eq!(sub.routed_event_types(), ["emails.sent"]);
        sub.is_enabled = false;
        assert!(sub.routed_event_types().is_empty());
    }
}
