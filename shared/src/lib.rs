//! Hookline's model crate: domain types, ingest validation, ports and their adapters.

pub mod adapters;
#[cfg(all(feature = "test-support", feature = "aws"))]
pub mod aws_calls;
pub mod batch;
pub mod catalog;
pub mod category;
pub mod config;
pub mod connection;
pub mod custom_types;
pub mod dedup;
pub mod delivery;
pub mod delivery_control;
pub mod error;
pub mod event;
pub mod expiry;
pub mod export;
#[cfg(feature = "http")]
pub mod http;
pub mod ids;
pub mod intake;
pub mod keys;
pub mod log_view;
pub mod operational;
pub mod ports;
#[cfg(test)]
mod proptest_cases;
pub mod publication;
pub mod queue_message;
pub mod raw_json;
pub mod redelivery;
pub mod subscription;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod timestamp;
pub mod transcript;
pub mod validation;
pub mod webhook;
pub mod webhook_url;
pub mod workspace;

pub use category::Category;
pub use connection::{Connection, ConnectionKind, ConnectionSecret};
pub use custom_types::{CustomEventType, EventTypeName, MAX_EVENT_TYPES_PER_WORKSPACE};
pub use error::{QueueError, StoreError};
pub use event::{Affect, Event, EventSource, SourceRef};
pub use ids::{
    ApiKey, ApiKeyHash, ConnectionId, EventId, ExportJobId, RecoveryId, SubscriptionId, WorkspaceId,
};
pub use ports::{
    BatchStore, Claim, ConnectionStore, Created, Defined, DeliveryStore, EventStore,
    EventTypeStore, FailureCounter, Inserted, LogQuery, LogStore, Queue, RateLimiter,
    ReceivedMessage, SubscriptionStore, WorkspaceStore,
};
pub use queue_message::QueueMessage;
pub use raw_json::RawJson;
pub use subscription::{
    NewSubscription, SigningSecret, Subscription, SubscriptionPatch, SubscriptionType,
    MAX_SUBSCRIPTIONS_PER_WORKSPACE,
};
pub use workspace::Workspace;
