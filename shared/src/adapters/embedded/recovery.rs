//! Taking over a data directory after its previous process died.
//!
//! A killed `serve` leaves its work claimed: queue messages invisible for their visibility
//! timeout, attempts leased for their lease. Both are there only to keep two live workers
//! apart. The caller holds the data directory's lock, so no other worker is alive: the claims
//! are given back at once and the work resumes in seconds instead of after the timeouts.

use rusqlite::params;

use super::EmbeddedDb;
use crate::error::StoreError;

/// What a restart gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    pub messages: usize,
    pub attempts: usize,
}

impl EmbeddedDb {
    /// Makes every received-but-undeleted queue message visible and every leased attempt
    /// claimable again. Only for the one process that holds the data directory's lock: run
    /// beside a live worker, it would let a second one repeat that worker's attempts.
    pub fn release_claims_of_dead_workers(&self) -> Result<Released, StoreError> {
        let now = chrono::Utc::now();
        self.call_blocking(move |conn| {
        let tx = conn.savepoint()?;
        let messages = tx.execute(
            "UPDATE queue_messages SET receipt = NULL, visible_at_ms = ?1
             WHERE receipt IS NOT NULL AND visible_at_ms > ?1",
            params![now.timestamp_millis()],
        )?;
        let attempts = tx.execute(
            "UPDATE deliveries SET claimed_until = 0 WHERE claimed_until > 0 AND completed < attempts",
            [],
        )?;
        tx.commit()?;
        Ok(Released { messages, attempts })
        })
    }
}
