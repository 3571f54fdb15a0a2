//! Port implementations: DynamoDB and SQS for deployed stacks, SQLite for local mode, memory
//! for benches and tests; each behind its own feature.
//!
//! The helpers below are what every record-keeping adapter shares; a build with none of them
//! has no use for them.

#[cfg(feature = "aws")]
pub mod aws_clients;
pub mod cached;
#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
mod event_layout;
#[cfg(feature = "test-support")]
pub mod memory;
#[cfg(feature = "exports-aws")]
pub mod s3;
#[cfg(feature = "exports-aws")]
pub mod ses;
#[cfg(feature = "aws")]
pub mod sqs;

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{QueueError, StoreError};
use crate::ports::ReceivedMessage;

pub use cached::CachedWorkspaces;
#[cfg(feature = "aws")]
pub use dynamodb::{
    DynamoConnections, DynamoDeliveries, DynamoEventTypes, DynamoEvents, DynamoExports, DynamoLogs,
    DynamoSubscriptions, DynamoWorkspaces,
};
#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedDb, EmbeddedEvents, EmbeddedQueue};
#[cfg(feature = "aws")]
pub use sqs::SqsQueue;

/// DynamoDB's item size limit; the embedded store enforces the same one so both adapters
/// accept exactly the same events.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Room left for the non-payload attributes of an event item.
#[cfg_attr(
    not(any(feature = "aws", feature = "embedded", feature = "test-support")),
    allow(dead_code)
)]
const EVENT_ITEM_OVERHEAD: usize = 2 * 1024;

#[cfg_attr(
    not(any(feature = "aws", feature = "embedded", feature = "test-support")),
    allow(dead_code)
)]
pub(crate) fn ensure_event_fits(payload_json: &str, dedup_id: &str) -> Result<(), StoreError> {
    let size = payload_json.len() + dedup_id.len() + EVENT_ITEM_OVERHEAD;
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge {
            size,
            limit: MAX_ITEM_BYTES,
        });
    }
    Ok(())
}

/// Seconds since the epoch, the unit of every `expires_at`.
#[cfg_attr(
    not(any(feature = "aws", feature = "embedded", feature = "test-support")),
    allow(dead_code)
)]
pub(crate) fn now_epoch_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The JSON document a subscription is stored as, in both adapters (memory keeps the value).
#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn subscription_doc(subscription: &crate::Subscription) -> String {
    serde_json::to_string(subscription).expect("subscriptions always serialize")
}

#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn subscription_from_doc(doc: &str) -> Result<crate::Subscription, StoreError> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::Corrupt(format!("subscription document: {e}")))
}

/// The JSON document a custom event type is stored as, in both adapters.
#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn event_type_doc(event_type: &crate::CustomEventType) -> String {
    serde_json::to_string(event_type).expect("event types always serialize")
}

#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn event_type_from_doc(doc: &str) -> Result<crate::CustomEventType, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("event type document: {e}")))
}

/// The JSON document a connection is stored as, in both adapters (memory keeps the value).
#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn connection_doc(connection: &crate::Connection) -> String {
    serde_json::to_string(connection).expect("connections always serialize")
}

#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn connection_from_doc(doc: &str) -> Result<crate::Connection, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("connection document: {e}")))
}

/// The JSON document a delivery's fixed fields are stored as, in both adapters.
#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn delivery_doc(delivery: &crate::delivery::Delivery) -> String {
    serde_json::to_string(delivery).expect("deliveries always serialize")
}

/// A delivery from its document and the fields both adapters update in place.
#[cfg_attr(not(any(feature = "aws", feature = "embedded")), allow(dead_code))]
pub(crate) fn delivery_from_parts(
    doc: &str,
    state: &str,
    attempts: u32,
    completed: u32,
) -> Result<crate::delivery::Delivery, StoreError> {
    let mut delivery: crate::delivery::Delivery =
        serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("delivery: {e}")))?;
    delivery.state = crate::delivery::DeliveryState::parse(state)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state:?}")))?;
    delivery.attempts = attempts;
    delivery.completed = completed;
    Ok(delivery)
}

/// SQS's long poll over a queue that can only be looked at: looks every `interval` until a
/// look receives something or `wait` has passed, and returns the last look.
#[cfg_attr(
    not(any(feature = "embedded", feature = "test-support")),
    allow(dead_code)
)]
pub(crate) async fn long_poll<Fut>(
    wait: Duration,
    interval: Duration,
    mut look: impl FnMut() -> Fut,
) -> Result<Vec<ReceivedMessage>, QueueError>
where
    Fut: Future<Output = Result<Vec<ReceivedMessage>, QueueError>>,
{
    let deadline = Instant::now() + wait;
    loop {
        let received = look().await?;
        if !received.is_empty() || Instant::now() >= deadline {
            return Ok(received);
        }
        tokio::time::sleep(interval).await;
    }
}
