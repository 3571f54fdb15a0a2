//! Webhook subscriptions and their signing secrets.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::delivery_control::{DeliveryMode, FilterSpec, RateLimit};
use crate::ids::{SubscriptionId, WorkspaceId};

/// Subscriptions one workspace may hold; every store enforces it atomically on create.
pub const MAX_SUBSCRIPTIONS_PER_WORKSPACE: usize = 50;

/// The limit rule every store applies when it counts, inside the write that creates: one more
/// subscription fits beside the `held` ones.
pub fn room_for_another(held: usize) -> bool {
    held < MAX_SUBSCRIPTIONS_PER_WORKSPACE
}

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
    /// When deliveries go: at once (also for subscriptions stored before modes existed),
    /// after a delay, or gathered into batches.
    #[serde(default)]
    pub delivery_mode: DeliveryMode,
    /// At most this many attempts a second, across every worker; none: unlimited.
    #[serde(default)]
    pub rate_limit_per_second: Option<RateLimit>,
    /// Only events whose envelope meets it are delivered; none: every event of its types.
    #[serde(default)]
    pub filter: Option<FilterSpec>,
}

/// What a new subscription is made from; the rest (id, secret, timestamps) is generated.
#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    pub webhook_url: String,
    pub event_types: Vec<String>,
    pub is_enabled: bool,
    pub kind: SubscriptionType,
    pub created_by: Option<String>,
    pub delivery_mode: DeliveryMode,
    pub rate_limit_per_second: Option<RateLimit>,
    pub filter: Option<FilterSpec>,
}

/// A change to a subscription: who makes it, and any of the fields a caller may edit.
#[derive(Debug, Clone)]
pub struct SubscriptionPatch {
    pub webhook_url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_enabled: Option<bool>,
    pub kind: Option<SubscriptionType>,
    pub delivery_mode: Option<DeliveryMode>,
    /// `Some(None)` removes the limit.
    pub rate_limit_per_second: Option<Option<RateLimit>>,
    /// `Some(None)` removes the filter.
    pub filter: Option<Option<FilterSpec>>,
    pub updated_by: String,
}

impl SubscriptionPatch {
    /// Whether the patch turns delivery on, which resumes any work parked while it was off.
    pub fn enables(&self) -> bool {
        self.is_enabled == Some(true)
    }
}

/// Event types in the order given, each once.
pub fn fold_repeats(types: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    types
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

impl Subscription {
    /// A fresh subscription with a new id and signing secret, at version 1.
    pub fn new(workspace_id: WorkspaceId, new: NewSubscription, now: DateTime<Utc>) -> Self {
        Self {
            id: SubscriptionId::generate(),
            workspace_id,
            webhook_url: new.webhook_url,
            event_types: fold_repeats(new.event_types),
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
            delivery_mode: new.delivery_mode,
            rate_limit_per_second: new.rate_limit_per_second,
            filter: new.filter,
        }
    }

    /// The next stored version: the same content under a bumped version, which stores compare
    /// against the version they hold so a write based on a stale read is refused.
    fn next_version(&self) -> Self {
        Self {
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// This subscription with `patch` applied by its author at `now`. Enabling also clears
    /// a pause delivery set.
    pub fn patched(&self, patch: SubscriptionPatch, now: DateTime<Utc>) -> Self {
        let mut next = self.next_version();
        if let Some(url) = patch.webhook_url {
            next.webhook_url = url;
        }
        if let Some(types) = patch.event_types {
            next.event_types = fold_repeats(types);
        }
        match patch.is_enabled {
            Some(true) => next.enable(),
            Some(false) => next.is_enabled = false,
            None => {}
        }
        if let Some(kind) = patch.kind {
            next.kind = kind;
        }
        if let Some(mode) = patch.delivery_mode {
            next.delivery_mode = mode;
        }
        if let Some(limit) = patch.rate_limit_per_second {
            next.rate_limit_per_second = limit;
        }
        if let Some(filter) = patch.filter {
            next.filter = filter;
        }
        next.updated_by = Some(patch.updated_by);
        next.updated_at = now;
        next
    }

    fn enable(&mut self) {
        self.is_enabled = true;
        self.paused_reason = None;
        self.paused_at = None;
    }

    /// This subscription paused by delivery for `reason`; `None` when it is already off, so a
    /// pause never overwrites a caller's own disabling or an earlier reason.
    pub fn paused(&self, reason: String, at: DateTime<Utc>) -> Option<Self> {
        if !self.is_enabled {
            return None;
        }
        let mut next = self.next_version();
        next.is_enabled = false;
        next.paused_reason = Some(reason);
        next.paused_at = Some(at);
        Some(next)
    }

    /// This subscription with a fresh current secret (see [`Subscription::rotate_secret`]).
    pub fn with_rotated_secret(&self, now: DateTime<Utc>) -> Self {
        let mut next = self.next_version();
        next.rotate_secret(now);
        next
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
    fn rotate_secret(&mut self, now: DateTime<Utc>) {
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
            delivery_mode: DeliveryMode::default(),
            rate_limit_per_second: None,
            filter: None,
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
    fn repeated_event_types_are_folded_in_order() {
        let folded = fold_repeats(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(folded, ["b", "a"]);
    }

    #[test]
    fn enabling_clears_the_pause_and_every_edit_bumps_the_version() {
        let sub = subscription();
        let paused = sub.paused("10 failures".into(), Utc::now()).unwrap();
        assert_eq!((paused.is_enabled, paused.version), (false, 2));
        assert!(paused.paused("again".into(), Utc::now()).is_none());
        let patch = SubscriptionPatch {
            webhook_url: None,
            event_types: Some(vec!["crm.deal_won".into(), "crm.deal_won".into()]),
            is_enabled: Some(true),
            kind: None,
            delivery_mode: None,
            rate_limit_per_second: None,
            filter: None,
            updated_by: "ana".into(),
        };
        assert!(patch.enables());
        let enabled = paused.patched(patch, Utc::now());
        assert_eq!(enabled.version, 3);
        assert!(
            enabled.is_enabled && enabled.paused_reason.is_none() && enabled.paused_at.is_none()
        );
        assert_eq!(enabled.event_types, ["crm.deal_won"]);
        assert_eq!(enabled.with_rotated_secret(Utc::now()).version, 4);
    }

    #[test]
    fn subscriptions_stored_before_delivery_control_read_as_immediate_unlimited_unfiltered() {
        let mut stored = serde_json::to_value(subscription()).unwrap();
        for field in ["delivery_mode", "rate_limit_per_second", "filter"] {
            stored.as_object_mut().unwrap().remove(field);
        }
        let read: Subscription = serde_json::from_value(stored).unwrap();
        assert_eq!(read.delivery_mode, DeliveryMode::Immediate);
        assert!(read.rate_limit_per_second.is_none() && read.filter.is_none());
    }

    #[test]
    fn disabled_subscriptions_route_nothing() {
        let mut sub = subscription();
        assert_eq!(sub.routed_event_types(), ["emails.sent"]);
        sub.is_enabled = false;
        assert!(sub.routed_event_types().is_empty());
    }
}
