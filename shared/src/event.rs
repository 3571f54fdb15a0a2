//! One accepted input event, normalized, whichever way it came in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::ids::{EventId, SubscriptionId, WorkspaceId};
use crate::raw_json::RawJson;

/// One accepted input event, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    pub dedup_id: String,
    /// The catalog name: `emails.sent`, `conversation.new`, a workspace's `acme.lead.create`.
    pub event_type: String,
    pub source: EventSource,
    pub affect: Affect,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub should_process: bool,
    pub payload: RawJson,
    /// Not delivered before this instant (the publish API's `deliver_at`).
    pub deliver_at: Option<DateTime<Utc>>,
}

impl Event {
    /// An event of the generic ingest route: type `{category}.{event_type}`, `affect` add.
    #[allow(clippy::too_many_arguments)]
    pub fn generic(
        id: EventId,
        workspace_id: WorkspaceId,
        dedup_id: String,
        category: Category,
        event_type: &str,
        timestamp: DateTime<Utc>,
        received_at: DateTime<Utc>,
        payload: RawJson,
    ) -> Self {
        Self {
            id,
            workspace_id,
            dedup_id,
            should_process: category.should_process(event_type),
            event_type: category.full_type(event_type),
            source: EventSource::Generic { category },
            affect: Affect::Add,
            timestamp,
            received_at,
            payload,
            deliver_at: None,
        }
    }

    /// The catalog name subscriptions route on.
    /// Before when its fan-out must wait: its `deliver_at`, unless that was already past on
    /// arrival.
    pub fn not_before(&self) -> Option<DateTime<Utc>> {
        self.deliver_at.filter(|at| *at > self.received_at)
    }

    pub fn full_type(&self) -> &str {
        &self.event_type
    }

    /// The generic category it was ingested under, if it was.
    pub fn category(&self) -> Option<Category> {
        match self.source {
            EventSource::Generic { category } => Some(category),
            _ => None,
        }
    }
}

/// Where an event came from; a delivery's envelope says so in its `source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventSource {
    /// The generic ingest route of one category.
    Generic { category: Category },
    /// The publish API, with what the caller said of its own source.
    Published {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<SourceRef>,
    },
    /// A provider's webhook, through one of the workspace's connections.
    Connection { connection_id: String, name: String },
    /// Emitted by Hookline about one of the workspace's subscriptions (`subscription.paused`,
    /// …), which never receives it itself.
    Operational { subscription_id: SubscriptionId },
}

/// A publisher's own account of where an event came from; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
}

/// What the event did to the thing it is about, as the notify seed's envelope says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Affect {
    #[default]
    Add,
    Change,
    Delete,
}

impl Affect {
    pub fn as_str(self) -> &'static str {
        match self {
            Affect::Add => "add",
            Affect::Change => "change",
            Affect::Delete => "delete",
        }
    }
}

impl Event {
    /// What its delivery envelope says of its source: `(id, type, identifier)`.
    pub fn envelope_source(&self) -> (&str, &str, &str) {
        match &self.source {
            EventSource::Generic { category } => (self.id.as_str(), "GENERIC", category.as_str()),
            EventSource::Published { origin } => {
                let origin = origin.as_ref();
                (
                    origin
                        .and_then(|o| o.id.as_deref())
                        .unwrap_or(self.id.as_str()),
                    origin.and_then(|o| o.kind.as_deref()).unwrap_or("API"),
                    origin
                        .and_then(|o| o.identifier.as_deref())
                        .unwrap_or("publish"),
                )
            }
            EventSource::Connection { name, .. } => (self.id.as_str(), "CONNECTION", name),
            EventSource::Operational { subscription_id } => {
                (self.id.as_str(), "HOOKLINE", subscription_id.as_str())
            }
        }
    }

    /// Whether this is an operational event about `subscription`: one it must never receive,
    /// so a failing receiver is not told of its own failures (or sent more to fail on).
    pub fn is_about(&self, subscription: &SubscriptionId) -> bool {
        matches!(&self.source, EventSource::Operational { subscription_id } if subscription_id == subscription)
    }
}
