//! Embedded adapters for local mode: one SQLite file holds the stores and the queues.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{ensure_event_fits, now_epoch_seconds, subscription_doc, subscription_from_doc};
use crate::delivery::{log_key_range, Delivery, DeliveryId, DeliveryLog, DeliveryState};
use crate::error::{QueueError, StoreError};
use crate::ids::{ApiKeyHash, EventId, SubscriptionId, WorkspaceId};
use crate::ports::{
    Claim, Created, DeliveryStore, EventStore, ExistingEvent, FailureCounter, Inserted, LogQuery,
    LogStore, Queue, ReceivedMessage, SubscriptionStore, WorkspaceStore,
};
use crate::subscription::Subscription;
use crate::{Category, Event, RawJson, Workspace};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    workspace_id TEXT NOT NULL, dedup_id TEXT NOT NULL, event_id TEXT NOT NULL,
    category TEXT NOT NULL, event_type TEXT NOT NULL, timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL, should_process INTEGER NOT NULL, payload TEXT NOT NULL,
    queued INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, dedup_id));
CREATE INDEX IF NOT EXISTS events_by_event_id ON events (event_id);
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL, visible_at_ms INTEGER NOT NULL, receive_count INTEGER NOT NULL,
    receipt TEXT UNIQUE);
CREATE INDEX IF NOT EXISTS queue_ready ON queue_messages (queue, visible_at_ms);
CREATE TABLE IF NOT EXISTS subscriptions (
    workspace_id TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, id));
CREATE TABLE IF NOT EXISTS subscription_routes (
    workspace_id TEXT NOT NULL, event_type TEXT NOT NULL, subscription_id TEXT NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (workspace_id, event_type, subscription_id));
CREATE TABLE IF NOT EXISTS subscription_health (
    workspace_id TEXT NOT NULL, subscription_id TEXT NOT NULL, failures INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, subscription_id));
CREATE TABLE IF NOT EXISTS deliveries (
    workspace_id TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL, completed INTEGER NOT NULL, claimed_until INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id));
CREATE TABLE IF NOT EXISTS delivery_logs (
    workspace_id TEXT NOT NULL, sort_key TEXT NOT NULL, subscription_id TEXT NOT NULL,
    doc TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (workspace_id, sort_key));
CREATE INDEX IF NOT EXISTS delivery_logs_by_subscription
    ON delivery_logs (workspace_id, subscription_id, sort_key);
";

/// Columns added since the tables were first shipped: databases created before gain them on
/// open, so a local data directory survives an upgrade.
const ADDED_COLUMNS: [(&str, &str, &str); 1] = [("deliveries", "parked_subscription", "TEXT")];

/// Indexes over added columns, made once those exist.
const LATER_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS deliveries_parked ON deliveries (workspace_id, parked_subscription, id);
";

/// How often an empty long poll looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A SQLite database shared by the embedded stores and queues. Calls run on tokio's blocking
/// pool so they never stall the async workers.
#[derive(Clone)]
pub struct EmbeddedDb {
    conn: Arc<Mutex<Connection>>,
}

impl EmbeddedDb {
    /// Opens (creating if needed) a durable database file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        Self::init(conn)
    }

    /// A throwaway database, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let has_column = |table: &str, column: &str| {
            conn.prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists([column])
        };
        for (table, column, kind) in ADDED_COLUMNS {
            if has_column(table, column)? {
                continue;
            }
            let added =
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"));
            // Another process opening the same file at once (an admin command beside `serve`)
            // may have added it first.
            if let Err(err) = added {
                if !has_column(table, column)? {
                    return Err(err.into());
                }
            }
        }
        conn.execute_batch(LATER_INDEXES)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .expect("embedded store task panicked")
    }
}

fn corrupt(what: &str) -> impl Fn(String) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {raw:?}: {e}")))
}

impl WorkspaceStore for EmbeddedDb {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let ws = workspace.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![ws.id.as_str(), ws.name, ws.created_at.to_rfc3339()],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        let key = id.clone();
        let row: Option<(String, String)> = self
            .call(move |c| {
                c.query_row(
                    "SELECT name, created_at FROM workspaces WHERE id = ?1",
                    [key.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        let Some((name, created_at)) = row else {
            return Ok(None);
        };
        Ok(Some(Workspace {
            id: id.clone(),
            name,
            created_at: parse_time(&created_at)?,
        }))
    }

    async fn add_api_key(
        &self,
        workspace: &WorkspaceId,
        key: &ApiKeyHash,
    ) -> Result<(), StoreError> {
        let (ws, key) = (workspace.clone(), key.clone());
        self.call(move |c| {
            c.execute(
                "INSERT INTO api_keys (key_hash, workspace_id, created_at) VALUES (?1, ?2, ?3)",
                params![key.as_str(), ws.as_str(), Utc::now().to_rfc3339()],
            )?;
            Ok(())
        })
        .await
    }

    async fn workspace_for_key(&self, key: &ApiKeyHash) -> Result<Option<WorkspaceId>, StoreError> {
        let key = key.clone();
        let raw: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT workspace_id FROM api_keys WHERE key_hash = ?1",
                    [key.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        raw.map(|r| WorkspaceId::try_from(r).map_err(corrupt("workspace id")))
            .transpose()
    }
}

impl EventStore for EmbeddedDb {
    async fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> Result<Inserted, StoreError> {
        ensure_event_fits(event.payload.as_json(), &event.dedup_id)?;
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let existing: Option<(String, bool, i64)> = tx
                .query_row(
                    "SELECT event_id, queued, expires_at FROM events WHERE workspace_id = ?1 AND dedup_id = ?2",
                    params![event.workspace_id.as_str(), event.dedup_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((event_id, queued, old_expiry)) = existing {
                if old_expiry >= now_epoch_seconds() {
                    let event_id = EventId::try_from(event_id).map_err(corrupt("event id"))?;
                    return Ok(Inserted::Existing(ExistingEvent { event_id, queued }));
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO events (workspace_id, dedup_id, event_id, category, event_type,
                    timestamp, received_at, should_process, payload, queued, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
                params![
                    event.workspace_id.as_str(),
                    event.dedup_id,
                    event.id.as_str(),
                    event.category.as_str(),
                    event.event_type,
                    event.timestamp.to_rfc3339(),
                    event.received_at.to_rfc3339(),
                    event.should_process,
                    event.payload.as_json(),
                    expires_at,
                ],
            )?;
            tx.commit()?;
            Ok(Inserted::New)
        })
        .await
    }

    async fn mark_queued(&self, workspace: &WorkspaceId, dedup_id: &str) -> Result<(), StoreError> {
        let (ws, dedup_id) = (workspace.clone(), dedup_id.to_owned());
        self.call(move |c| {
            let updated = c.execute(
                "UPDATE events SET queued = 1 WHERE workspace_id = ?1 AND dedup_id = ?2",
                params![ws.as_str(), dedup_id],
            )?;
            if updated == 0 {
                return Err(StoreError::Corrupt(format!(
                    "no event with dedup id {dedup_id} to mark queued"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn get_event(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        self.select_event(workspace, "event_id", event_id.to_string())
            .await
    }

    async fn get_event_by_dedup(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        self.select_event(workspace, "dedup_id", dedup_id.to_owned())
            .await
    }
}

type EventRow = (String, String, String, String, String, String, bool, String);

impl EmbeddedDb {
    /// One unexpired event of the workspace whose `column` (a fixed column name) equals `key`.
    async fn select_event(
        &self,
        workspace: &WorkspaceId,
        column: &'static str,
        key: String,
    ) -> Result<Option<Event>, StoreError> {
        let ws = workspace.clone();
        let row: Option<EventRow> = self
            .call(move |c| {
                let sql = format!(
                    "SELECT event_id, dedup_id, category, event_type, timestamp, received_at, should_process, payload
                     FROM events WHERE {column} = ?1 AND workspace_id = ?2 AND expires_at >= ?3"
                );
                c.query_row(&sql, params![key, ws.as_str(), now_epoch_seconds()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
                })
                .optional()
            })
            .await?;
        let Some((
            id,
            dedup_id,
            category,
            event_type,
            timestamp,
            received_at,
            should_process,
            payload,
        )) = row
        else {
            return Ok(None);
        };
        Ok(Some(Event {
            id: EventId::try_from(id).map_err(corrupt("event id"))?,
            workspace_id: workspace.clone(),
            dedup_id,
            category: Category::parse(&category)
                .ok_or_else(|| StoreError::Corrupt(format!("category {category}")))?,
            event_type,
            timestamp: parse_time(&timestamp)?,
            received_at: parse_time(&received_at)?,
            should_process,
            payload: RawJson::from_json(payload)
                .map_err(|e| StoreError::Corrupt(format!("payload: {e}")))?,
        }))
    }
}

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

    /// Messages currently in the queue, visible or not.
    pub async fn depth(&self) -> Result<u64, QueueError> {
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

    async fn receive_now(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let (name, redrive) = (self.name.clone(), self.redrive.clone());
        self.db
            .call(move |c| {
                let now = now_millis();
                let tx = c.transaction()?;
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

fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

impl Queue for EmbeddedQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        let (name, body) = (self.name.clone(), body.to_owned());
        let message_id = uuid::Uuid::now_v7().to_string();
        let id = message_id.clone();
        let visible_at = now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO queue_messages (queue, message_id, body, visible_at_ms, receive_count) VALUES (?1, ?2, ?3, ?4, 0)",
                    params![name, id, body, visible_at],
                )?;
                Ok::<_, QueueError>(())
            })
            .await?;
        Ok(message_id)
    }

    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let received = self.receive_now(max, visibility).await?;
            if !received.is_empty() || Instant::now() >= deadline {
                return Ok(received);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
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

/// Mirrors the DynamoDB design: the subscription row, plus one route row per enabled event type
/// carrying a copy, moved in the same transaction.
fn write_routes(
    tx: &rusqlite::Transaction<'_>,
    subscription: &Subscription,
    doc: &str,
) -> rusqlite::Result<()> {
    for event_type in subscription.routed_event_types() {
        tx.execute(
            "INSERT INTO subscription_routes (workspace_id, event_type, subscription_id, doc) VALUES (?1, ?2, ?3, ?4)",
            params![subscription.workspace_id.as_str(), event_type, subscription.id.as_str(), doc],
        )?;
    }
    Ok(())
}

fn delete_routes(
    tx: &rusqlite::Transaction<'_>,
    subscription: &Subscription,
) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM subscription_routes WHERE workspace_id = ?1 AND subscription_id = ?2",
        params![subscription.workspace_id.as_str(), subscription.id.as_str()],
    )?;
    Ok(())
}

fn docs(rows: Vec<String>) -> Result<Vec<Subscription>, StoreError> {
    rows.iter().map(|doc| subscription_from_doc(doc)).collect()
}

impl SubscriptionStore for EmbeddedDb {
    async fn create_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Created, StoreError> {
        let subscription = subscription.clone();
        self.call(move |c| {
            let doc = subscription_doc(&subscription);
            // Immediate: the count and the insert happen under one write lock.
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let held: i64 = tx.query_row(
                "SELECT COUNT(*) FROM subscriptions WHERE workspace_id = ?1",
                [subscription.workspace_id.as_str()],
                |r| r.get(0),
            )?;
            if held >= crate::MAX_SUBSCRIPTIONS_PER_WORKSPACE as i64 {
                return Ok(Created::LimitReached);
            }
            tx.execute(
                "INSERT INTO subscriptions (workspace_id, id, version, doc) VALUES (?1, ?2, ?3, ?4)",
                params![subscription.workspace_id.as_str(), subscription.id.as_str(), subscription.version as i64, doc],
            )?;
            write_routes(&tx, &subscription, &doc)?;
            tx.commit()?;
            Ok(Created::Created)
        })
        .await
    }

    async fn get_subscription(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let doc: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT doc FROM subscriptions WHERE workspace_id = ?1 AND id = ?2",
                    params![ws.as_str(), id.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        doc.map(|d| subscription_from_doc(&d)).transpose()
    }

    async fn list_subscriptions(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let ws = workspace.clone();
        let rows: Vec<String> = self
            .call(move |c| {
                let mut stmt =
                    c.prepare("SELECT doc FROM subscriptions WHERE workspace_id = ?1")?;
                let rows = stmt.query_map([ws.as_str()], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()
            })
            .await?;
        docs(rows)
    }

    async fn replace_subscription(
        &self,
        current: &Subscription,
        updated: &Subscription,
    ) -> Result<bool, StoreError> {
        let (current, updated) = (current.clone(), updated.clone());
        self.call(move |c| {
            let doc = subscription_doc(&updated);
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE subscriptions SET version = ?1, doc = ?2 WHERE workspace_id = ?3 AND id = ?4 AND version = ?5",
                params![updated.version as i64, doc, current.workspace_id.as_str(), current.id.as_str(), current.version as i64],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            delete_routes(&tx, &current)?;
            write_routes(&tx, &updated, &doc)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn delete_subscription(&self, current: &Subscription) -> Result<bool, StoreError> {
        let current = current.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let deleted = tx.execute(
                "DELETE FROM subscriptions WHERE workspace_id = ?1 AND id = ?2 AND version = ?3",
                params![
                    current.workspace_id.as_str(),
                    current.id.as_str(),
                    current.version as i64
                ],
            )?;
            if deleted == 0 {
                return Ok(false);
            }
            delete_routes(&tx, &current)?;
            tx.execute(
                "DELETE FROM subscription_health WHERE workspace_id = ?1 AND subscription_id = ?2",
                params![current.workspace_id.as_str(), current.id.as_str()],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn enabled_subscriptions_for(
        &self,
        workspace: &WorkspaceId,
        event_type: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        let (ws, event_type) = (workspace.clone(), event_type.to_owned());
        let rows: Vec<String> = self
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT doc FROM subscription_routes WHERE workspace_id = ?1 AND event_type = ?2",
                )?;
                let rows = stmt.query_map(params![ws.as_str(), event_type], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()
            })
            .await?;
        docs(rows)
    }
}

impl FailureCounter for EmbeddedDb {
    async fn record_failure(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.call(move |c| {
            Ok(c.query_row(
                "INSERT INTO subscription_health (workspace_id, subscription_id, failures) VALUES (?1, ?2, 1)
                 ON CONFLICT (workspace_id, subscription_id) DO UPDATE SET failures = failures + 1
                 RETURNING failures",
                params![ws.as_str(), id.as_str()],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn reset_failures(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<(), StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.call(move |c| {
            c.execute(
                "UPDATE subscription_health SET failures = 0 WHERE workspace_id = ?1 AND subscription_id = ?2",
                params![ws.as_str(), id.as_str()],
            )?;
            Ok(())
        })
        .await
    }
}

type DeliveryRow = (String, String, u32, u32);

const DELIVERY_SELECT: &str =
    "SELECT doc, state, attempts, completed FROM deliveries WHERE workspace_id = ?1 AND id = ?2";

fn read_delivery_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn delivery_from_row(
    (doc, state, attempts, completed): (String, String, u32, u32),
) -> Result<Delivery, StoreError> {
    let mut delivery: Delivery =
        serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(format!("delivery: {e}")))?;
    delivery.state = DeliveryState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state:?}")))?;
    delivery.attempts = attempts;
    delivery.completed = completed;
    Ok(delivery)
}

impl DeliveryStore for EmbeddedDb {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let written = delivery.clone();
        let existing: Option<DeliveryRow> = self
            .call(move |c| {
                let delivery = written;
                let doc = serde_json::to_string(&delivery).expect("deliveries always serialize");
                let inserted = c.execute(
                    "INSERT OR IGNORE INTO deliveries (workspace_id, id, doc, state, attempts, completed, claimed_until)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                    params![
                        delivery.workspace_id.as_str(),
                        delivery.id.as_str(),
                        doc,
                        delivery.state.as_str(),
                        delivery.attempts,
                        delivery.completed
                    ],
                )?;
                if inserted == 1 {
                    // The row is exactly what was written.
                    return Ok(None);
                }
                c.query_row(DELIVERY_SELECT, params![delivery.workspace_id.as_str(), delivery.id.as_str()], read_delivery_row)
                    .map(Some)
            })
            .await?;
        existing.map_or_else(|| Ok(delivery.clone()), delivery_from_row)
    }

    async fn get_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let row: Option<DeliveryRow> = self
            .call(move |c| {
                c.query_row(
                    DELIVERY_SELECT,
                    params![ws.as_str(), id.as_str()],
                    read_delivery_row,
                )
                .optional()
            })
            .await?;
        row.map(delivery_from_row).transpose()
    }

    async fn claim_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let now = now_epoch_seconds();
        let lease_end = now + lease.as_secs() as i64;
        let (claimed, exists): (Option<DeliveryRow>, bool) = self
            .call(move |c| {
                let claimed = c
                    .query_row(
                        "UPDATE deliveries SET attempts = ?1, claimed_until = ?2, parked_subscription = NULL
                         WHERE workspace_id = ?3 AND id = ?4 AND state = 'pending' AND completed < ?1
                           AND (attempts < ?1 OR claimed_until < ?5)
                         RETURNING doc, state, attempts, completed",
                        params![attempt, lease_end, ws.as_str(), id.as_str(), now],
                        read_delivery_row,
                    )
                    .optional()?;
                let exists = claimed.is_some()
                    || c.query_row(
                        "SELECT 1 FROM deliveries WHERE workspace_id = ?1 AND id = ?2",
                        params![ws.as_str(), id.as_str()],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                Ok::<_, StoreError>((claimed, exists))
            })
            .await?;
        match (claimed, exists) {
            (Some(row), _) => delivery_from_row(row).map(Claim::Claimed),
            (None, true) => Ok(Claim::Unavailable),
            (None, false) => Ok(Claim::Missing),
        }
    }

    async fn park_attempt(&self, delivery: &Delivery, attempt: u32) -> Result<(), StoreError> {
        let (ws, id) = (delivery.workspace_id.clone(), delivery.id.clone());
        let subscription = delivery.subscription_id.clone();
        self.call(move |c| {
            c.execute(
                "UPDATE deliveries SET claimed_until = 0, parked_subscription = ?4
                 WHERE workspace_id = ?1 AND id = ?2 AND attempts = ?3 AND completed < ?3",
                params![ws.as_str(), id.as_str(), attempt, subscription.as_str()],
            )?;
            Ok(())
        })
        .await
    }

    async fn parked_attempts(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        after: Option<&DeliveryId>,
        max: usize,
    ) -> Result<Vec<(DeliveryId, u32)>, StoreError> {
        let (ws, subscription) = (workspace.clone(), subscription.clone());
        let after = after.map_or_else(String::new, |id| id.to_string());
        let rows: Vec<(String, u32)> = self
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT id, attempts FROM deliveries
                     WHERE workspace_id = ?1 AND parked_subscription = ?2 AND id > ?3
                     ORDER BY id LIMIT ?4",
                )?;
                let rows = statement
                    .query_map(
                        params![ws.as_str(), subscription.as_str(), after, max as i64],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?
                    .collect::<rusqlite::Result<_>>()?;
                Ok::<_, StoreError>(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, attempt)| {
                DeliveryId::parse(&id)
                    .map(|id| (id, attempt))
                    .ok_or_else(|| StoreError::Corrupt(format!("parked delivery id {id:?}")))
            })
            .collect()
    }

    async fn finish_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        state: DeliveryState,
    ) -> Result<(), StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.call(move |c| {
            c.execute(
                "UPDATE deliveries SET state = ?1, completed = ?2 WHERE workspace_id = ?3 AND id = ?4",
                params![state.as_str(), attempt, ws.as_str(), id.as_str()],
            )?;
            Ok(())
        })
        .await
    }
}

impl LogStore for EmbeddedDb {
    async fn append_log(&self, log: &DeliveryLog) -> Result<(), StoreError> {
        let log = log.clone();
        self.call(move |c| {
            let doc = serde_json::to_string(&log).expect("logs always serialize");
            c.execute(
                "INSERT OR REPLACE INTO delivery_logs (workspace_id, sort_key, subscription_id, doc, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![log.workspace_id.as_str(), log.sort_key(), log.subscription_id.as_str(), doc, log.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn query_logs(
        &self,
        workspace: &WorkspaceId,
        query: &LogQuery,
        max: usize,
    ) -> Result<Vec<DeliveryLog>, StoreError> {
        let ws = workspace.clone();
        let subscription = query.subscription.as_ref().map(|s| s.to_string());
        let (lower, upper) = log_key_range(query.from, query.to);
        let rows: Vec<String> = self
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT doc FROM delivery_logs
                     WHERE workspace_id = ?1 AND (?2 IS NULL OR subscription_id = ?2)
                       AND sort_key BETWEEN ?3 AND ?4 AND expires_at >= ?5
                     ORDER BY sort_key DESC LIMIT ?6",
                )?;
                let rows = stmt.query_map(
                    params![
                        ws.as_str(),
                        subscription,
                        lower,
                        upper,
                        now_epoch_seconds(),
                        max as i64
                    ],
                    |r| r.get(0),
                )?;
                rows.collect::<Result<_, _>>()
            })
            .await?;
        rows.iter()
            .map(|doc| {
                serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("log: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory from before deliveries could be parked opens, gains the column (which
    /// the parked read selects on) and opens again with it in place.
    #[tokio::test]
    async fn a_database_from_before_parking_gains_the_parked_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookline.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE deliveries (
                    workspace_id TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
                    state TEXT NOT NULL, attempts INTEGER NOT NULL, completed INTEGER NOT NULL,
                    claimed_until INTEGER NOT NULL, PRIMARY KEY (workspace_id, id));",
            )
            .unwrap();
        let db = EmbeddedDb::open(&path).unwrap();
        let workspace = WorkspaceId::generate();
        let subscription = SubscriptionId::generate();
        assert_eq!(
            db.parked_attempts(&workspace, &subscription, None, 10)
                .await
                .unwrap(),
            []
        );
        drop(db);
        EmbeddedDb::open(&path).expect("opening again finds the column in place");
    }
}
