//! Errors the ports report, shared by every adapter.

use thiserror::Error;

/// A store failure. `TooLarge` is the caller's fault; everything else is ours and retryable.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("item of {size} bytes exceeds the store's limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

/// A queue failure; always retryable from the caller's point of view.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("unknown or expired receipt handle")]
    InvalidReceipt,
}

#[cfg(feature = "embedded")]
impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}

#[cfg(feature = "embedded")]
impl From<rusqlite::Error> for QueueError {
    fn from(err: rusqlite::Error) -> Self {
        QueueError::Unavailable(err.to_string())
    }
}
