//! Embedded queues: SQS's semantics over a table of the local database.

use std::time::Duration;

use chrono::Utc;
use rusqlite::params;

use super::EmbeddedDb;
use crate::adapters::long_poll;
use crate::error::QueueError;
use crate::ports::{Queue, ReceivedMessage};

/// How often an empty long poll looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Where a queue's messages go after too many receives, as SQS's redrive policy does.
#[derive(Debug, Clone)]
pub struct Redrive {
    pub dead_letter_queue: String,
    pub max_receives: u32,
}

/// A named queue inside an [`EmbeddedDb`] with SQS's delay, visibility and redrive semantics.
#[derive(Clone)]
pub struct EmbeddedQueue {
    db: EmbeddedDb,
    name: String,
    redrive: Option<Redrive>,
}

impl EmbeddedQueue {
    pub fn new(db: EmbeddedDb, name: impl Into<String>, redrive: Option<Redrive>) -> Self {
        Self {
            db,
            name: name.into(),
            redrive,
        }
    }

    async fn receive_now(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let (name, redrive) = (self.name.clone(), self.redrive.clone());
        self.db
            .call(move |c| {
                let now = now_millis();
                let tx = c.savepoint()?;
                let candidates: Vec<(i64, String, String, u32)> = {
                    // Polled every few milliseconds during a long poll, so prepared once.
                    let mut stmt = tx.prepare_cached(
                        "SELECT seq, message_id, body, receive_count FROM queue_messages
                         WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY seq LIMIT ?3",
                    )?;
                    let rows = stmt.query_map(params![name, now, max.max(1)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                    rows.collect::<Result<_, _>>()?
                };
                let mut received = Vec::new();
                for (seq, message_id, body, receive_count) in candidates {
                    if let Some(rule) = redrive.as_ref().filter(|r| receive_count >= r.max_receives) {
                        tx.execute(
                            "UPDATE queue_messages SET queue = ?1, receive_count = 0, receipt = NULL, visible_at_ms = ?2 WHERE seq = ?3",
                            params![rule.dead_letter_queue, now, seq],
                        )?;
                        continue;
                    }
                    let receipt = format!("{message_id}:{}", uuid::Uuid::new_v4().simple());
                    let visible_at = now.saturating_add(i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX));
                    tx.execute(
                        "UPDATE queue_messages SET receive_count = receive_count + 1, receipt = ?1, visible_at_ms = ?2 WHERE seq = ?3",
                        params![receipt, visible_at, seq],
                    )?;
                    received.push(ReceivedMessage { message_id, receipt, body, receive_count: receive_count + 1 });
                }
                tx.commit()?;
                Ok(received)
            })
            .await
    }
}

impl EmbeddedQueue {
    /// Waits, at most `max`, until there may be work on one of `queues` (all of one database):
    /// a message was sent to any queue of it, or a delayed or invisible one comes due.
    pub async fn wait_for_work(queues: &[&EmbeddedQueue], max: Duration) {
        let Some(first) = queues.first() else {
            return;
        };
        // Watched before looking, so a send from here on wakes this wait.
        let mut sent = first.db.sent.subscribe();
        let names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
        let next_due: Option<i64> = first
            .db
            .call(move |c| {
                let mut due: Option<i64> = None;
                let mut stmt = c.prepare_cached(
                    "SELECT MIN(visible_at_ms) FROM queue_messages WHERE queue = ?1",
                )?;
                for name in &names {
                    let at: Option<i64> = stmt.query_row([name], |r| r.get(0))?;
                    due = match (due, at) {
                        (Some(d), Some(a)) => Some(d.min(a)),
                        (d, a) => d.or(a),
                    };
                }
                Ok::<_, QueueError>(due)
            })
            .await
            .unwrap_or(None);
        let wait = next_due.map_or(max, |at| {
            Duration::from_millis(at.saturating_sub(now_millis()).max(0) as u64).min(max)
        });
        if wait.is_zero() {
            return;
        }
        let _ = tokio::time::timeout(wait, sent.changed()).await;
    }
}

impl EmbeddedQueue {
    /// The database this queue lives in.
    pub(super) fn db(&self) -> &EmbeddedDb {
        &self.db
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Wakes the consumer after a send was committed. One consumer waits per database (local
    /// mode's worker); a permit is kept if it is busy.
    pub(super) fn notify_sent(&self) {
        self.db
            .sent
            .send_modify(|sends| *sends = sends.wrapping_add(1));
    }
}

/// Adds a message to queue `name` within the caller's transaction; its id.
pub(super) fn insert_message(
    conn: &rusqlite::Connection,
    name: &str,
    body: &str,
    delay: Duration,
) -> Result<String, rusqlite::Error> {
    let message_id = uuid::Uuid::now_v7().to_string();
    let visible_at = now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
    conn.prepare_cached(
        "INSERT INTO queue_messages (queue, message_id, body, visible_at_ms, receive_count) VALUES (?1, ?2, ?3, ?4, 0)",
    )?
    .execute(params![name, message_id, body, visible_at])?;
    Ok(message_id)
}

fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

impl Queue for EmbeddedQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        let (name, body) = (self.name.clone(), body.to_owned());
        let message_id = self
            .db
            .call(move |c| Ok::<_, QueueError>(insert_message(c, &name, &body, delay)?))
            .await?;
        self.notify_sent();
        Ok(message_id)
    }

    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        long_poll(wait, POLL_INTERVAL, || self.receive_now(max, visibility)).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.db
            .call(move |c| {
                c.execute("DELETE FROM queue_messages WHERE receipt = ?1", [receipt])?;
                Ok(())
            })
            .await
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        let visible_at =
            now_millis() + i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX / 2);
        self.db
            .call(move |c| {
                let updated = c.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?1 WHERE receipt = ?2",
                    params![visible_at, receipt],
                )?;
                if updated == 0 {
                    return Err(QueueError::InvalidReceipt);
                }
                Ok(())
            })
            .await
    }
}

#[cfg(feature = "test-support")]
impl crate::test_support::QueueDepth for EmbeddedQueue {
    async fn depth(&self) -> Result<u64, QueueError> {
        let name = self.name.clone();
        self.db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1",
                    [name],
                    |r| r.get(0),
                )?)
            })
            .await
    }
}
