//! Hookline's model crate: domain types, ingest validation, ports and their adapters.

pub mod adapters;
pub mod catalog;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod error;
pub mod ids;
pub mod keys;
pub mod model;
pub mod ports;
pub mod request;
pub mod subscription;
pub mod timestamp;
pub mod transcript;
pub mod validation;
pub mod webhook;

pub use error::{QueueError, StoreError};
pub use ids::{ApiKey, ApiKeyHash, EventId, SubscriptionId, WorkspaceId};
pub use model::{Category, Event, QueueMessage, RawJson, Workspace};
pub use ports::{
    Claim, DeliveryStore, EventStore, ExistingEvent, FailureCounter, Inserted, LogQuery, Queue,
    ReceivedMessage, SubscriptionStore, WorkspaceStore,
};
pub use subscription::{NewSubscription, SigningSecret, Subscription, SubscriptionType};
