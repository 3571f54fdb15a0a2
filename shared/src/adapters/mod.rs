//! Port implementations: DynamoDB and SQS for deployed stacks, SQLite for local mode.

pub mod cached;
pub mod dynamodb;
pub mod embedded;
#[cfg(feature = "test-support")]
pub mod memory;
pub mod sqs;

use crate::error::StoreError;

pub use cached::CachedWorkspaces;
pub use dynamodb::{
    DynamoDeliveries, DynamoEvents, DynamoLogs, DynamoSubscriptions, DynamoWorkspaces,
};
pub use embedded::{EmbeddedDb, EmbeddedQueue};
pub use sqs::SqsQueue;

/// DynamoDB's item size limit; the embedded store enforces the same one so both adapters
/// accept exactly the same events.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Room left for the non-payload attributes of an event item.
const EVENT_ITEM_OVERHEAD: usize = 2 * 1024;

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
pub(crate) fn now_epoch_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The JSON document a subscription is stored as, in both adapters.
pub(crate) fn subscription_doc(subscription: &crate::Subscription) -> String {
    serde_json::to_string(subscription).expect("subscriptions always serialize")
}

pub(crate) fn subscription_from_doc(doc: &str) -> Result<crate::Subscription, StoreError> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::Corrupt(format!("subscription document: {e}")))
}
