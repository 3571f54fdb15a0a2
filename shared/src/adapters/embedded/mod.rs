//! Embedded adapters for local mode: one SQLite file holds the stores and the queues.

//!
//! The database file holds every table; each port's impl on [`EmbeddedDb`] lives in the file
//! named like its DynamoDB twin, and this one keeps the connection, schema and migrations.

mod batches;
mod connections;
mod deliveries;
mod event_types;
mod events;
mod exports;
mod logs;
mod queue;
mod recovery;
mod subscriptions;
mod workspaces;
mod writer;

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::error::StoreError;

pub use events::EmbeddedEvents;
pub use exports::StoredDownload;
pub use queue::{EmbeddedQueue, Redrive};
pub use recovery::Released;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    workspace_id TEXT NOT NULL, dedup_id TEXT NOT NULL, event_id TEXT NOT NULL,
    category TEXT NOT NULL, event_type TEXT NOT NULL, timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL, should_process INTEGER NOT NULL, payload TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, dedup_id));
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
CREATE TABLE IF NOT EXISTS subscription_pace (
    workspace_id TEXT NOT NULL, subscription_id TEXT NOT NULL, next_free INTEGER NOT NULL,
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
CREATE INDEX IF NOT EXISTS delivery_logs_by_id
    ON delivery_logs (workspace_id, json_extract(doc, '$.id'));
CREATE TABLE IF NOT EXISTS event_types (
    workspace_id TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (workspace_id, name));
CREATE TABLE IF NOT EXISTS batch_gathering (
    workspace_id TEXT NOT NULL, subscription_id TEXT NOT NULL, batch_id TEXT NOT NULL,
    members INTEGER NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (workspace_id, subscription_id));
CREATE TABLE IF NOT EXISTS batch_members (
    workspace_id TEXT NOT NULL, batch_id TEXT NOT NULL, position INTEGER NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (workspace_id, batch_id, position));
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS connections_by_workspace ON connections (workspace_id, id);
";

/// Columns added since the tables were first shipped: databases created before gain them on
/// open, so a local data directory survives an upgrade.
const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("deliveries", "parked_subscription", "TEXT"),
    ("events", "meta", "TEXT"),
];

/// The queue local mode fans accepted events out from.
pub const EVENTS_QUEUE: &str = "events";

/// Databases from before events and their fan-out were written together marked each event
/// `queued` once its message was sent. On open, the events such a database left unqueued (a
/// crash between the two writes) get their fan-out message, and the column goes.
const UNQUEUED_EVENTS: &str = "
INSERT INTO queue_messages (queue, message_id, body, visible_at_ms, receive_count)
SELECT ?1, lower(hex(randomblob(16))),
       json_object('kind', 'event_accepted', 'workspace_id', workspace_id,
                   'event_id', event_id, 'dedup_id', dedup_id),
       ?2, 0
FROM events WHERE queued = 0 AND expires_at >= ?3;
";

/// Indexes over added columns, made once those exist; and indexes nothing reads any more.
const LATER_INDEXES: &str = "
DROP INDEX IF EXISTS events_by_event_id;
CREATE INDEX IF NOT EXISTS deliveries_parked ON deliveries (workspace_id, parked_subscription, id);
";

/// A SQLite database shared by the embedded stores and queues. Every call runs on its one
/// writer thread, grouped with the calls made meanwhile into one transaction and one fsync
/// (see `writer.rs`); no async worker ever blocks on the database.
#[derive(Clone)]
pub struct EmbeddedDb {
    writer: mpsc::Sender<Box<dyn writer::Call>>,
    /// Signalled after a message is sent to any queue of this database, so a waiting
    /// consumer wakes at once instead of polling.
    /// A count every send moves, watched rather than notified: each waiting consumer (the
    /// delivery worker, the export worker) wakes, and a send made while one was looking at
    /// the queue is not missed.
    sent: Arc<tokio::sync::watch::Sender<u64>>,
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
        if has_column("events", "queued")? {
            let tx = conn.unchecked_transaction()?;
            let now = Utc::now();
            tx.execute(
                UNQUEUED_EVENTS,
                rusqlite::params![EVENTS_QUEUE, now.timestamp_millis(), now.timestamp()],
            )?;
            tx.execute_batch("ALTER TABLE events DROP COLUMN queued")?;
            tx.commit()?;
        }
        conn.execute_batch(LATER_INDEXES)?;
        conn.execute_batch(exports::SCHEMA)?;
        Ok(Self {
            writer: writer::spawn(conn),
            sent: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Runs `f` on the writer thread, in its own savepoint of the current group's transaction,
    /// and answers once that group is committed. `f` opens savepoints, never transactions.
    pub(crate) async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(f, Box::new(move |result| drop(tx.send(result))));
        rx.await.expect("embedded store call panicked")
    }

    /// [`EmbeddedDb::call`] for code outside the async runtime (start-up).
    pub(crate) fn call_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(f, Box::new(move |result| drop(tx.send(result))));
        rx.recv().expect("embedded store call panicked")
    }

    fn submit<T, E, F>(&self, f: F, respond: Box<dyn FnOnce(Result<T, E>) + Send>)
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let call = Box::new(PendingCall { f, respond });
        if let Err(mpsc::SendError(call)) = self.writer.send(call) {
            // Only if the writer thread died: every call then fails the same way.
            call.fail(&rusqlite::Error::InvalidQuery);
        }
    }
}

/// A call waiting for the writer, with how to answer its caller.
struct PendingCall<F, T, E> {
    f: F,
    respond: Box<dyn FnOnce(Result<T, E>) + Send>,
}

impl<F, T, E> writer::Call for PendingCall<F, T, E>
where
    T: Send + 'static,
    E: From<rusqlite::Error> + Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection) -> (bool, writer::Reply) {
        let PendingCall { f, respond } = *self;
        let result = f(conn);
        let ok = result.is_ok();
        let reply = Box::new(move |commit: Option<&rusqlite::Error>| {
            respond(match (result, commit) {
                (Ok(_), Some(failed)) => Err(E::from(writer::copy_error(failed))),
                (result, _) => result,
            })
        });
        (ok, reply)
    }

    fn fail(self: Box<Self>, err: &rusqlite::Error) {
        (self.respond)(Err(E::from(writer::copy_error(err))));
    }
}

pub(crate) fn corrupt(what: &str) -> impl Fn(String) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn parse_time(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {raw:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SubscriptionId, WorkspaceId};
    use crate::ports::DeliveryStore;

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

    /// A data directory from before events and their fan-out were one write: the event it left
    /// stored but unqueued gets its fan-out message on open, one already queued does not, and
    /// the `queued` column goes.
    #[tokio::test]
    async fn a_database_with_unqueued_events_queues_their_fan_out_on_open() {
        use crate::ports::Queue;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookline.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE events (
                workspace_id TEXT NOT NULL, dedup_id TEXT NOT NULL, event_id TEXT NOT NULL,
                category TEXT NOT NULL, event_type TEXT NOT NULL, timestamp TEXT NOT NULL,
                received_at TEXT NOT NULL, should_process INTEGER NOT NULL, payload TEXT NOT NULL,
                queued INTEGER NOT NULL, expires_at INTEGER NOT NULL,
                PRIMARY KEY (workspace_id, dedup_id));",
        )
        .unwrap();
        let later = Utc::now().timestamp() + 3600;
        for (dedup, id, queued) in [
            ("a", "evt_00000000000000000000000000000001", 0),
            ("b", "evt_00000000000000000000000000000002", 1),
        ] {
            old.execute(
                "INSERT INTO events VALUES ('ws_00000000000000000000000000000001', ?1, ?2, 'emails', 'sent',
                    '2026-01-02T03:04:05Z', '2026-01-02T03:04:05Z', 1, '{}', ?3, ?4)",
                rusqlite::params![dedup, id, queued, later],
            )
            .unwrap();
        }
        drop(old);
        let db = EmbeddedDb::open(&path).unwrap();
        let queue = EmbeddedQueue::new(db.clone(), EVENTS_QUEUE, None);
        let waiting = queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        let bodies: Vec<_> = waiting
            .iter()
            .map(|m| crate::QueueMessage::from_body(&m.body).unwrap())
            .collect();
        assert_eq!(
            bodies,
            [crate::QueueMessage::EventAccepted {
                workspace_id: WorkspaceId::parse("ws_00000000000000000000000000000001").unwrap(),
                event_id: crate::EventId::parse("evt_00000000000000000000000000000001").unwrap(),
                dedup_id: "a".into(),
                not_before: None,
            }]
        );
        drop((db, queue));
        let reopened = Connection::open(&path).unwrap();
        let columns: i64 = reopened
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'queued'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(columns, 0);
    }

    /// A data directory from before custom event types opens with their table added, and its
    /// other tables' rows kept.
    #[tokio::test]
    async fn a_database_from_before_custom_types_gains_their_table() {
        use crate::ports::{EventTypeStore, WorkspaceStore};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookline.db");
        let old_schema = SCHEMA
            .split("CREATE TABLE IF NOT EXISTS event_types")
            .next()
            .unwrap();
        let old = Connection::open(&path).unwrap();
        old.execute_batch(old_schema).unwrap();
        old.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES (?1, 'old', '2026-01-02T03:04:05Z')",
            ["ws_00000000000000000000000000000001"],
        )
        .unwrap();
        drop(old);
        let db = EmbeddedDb::open(&path).unwrap();
        let workspace = WorkspaceId::parse("ws_00000000000000000000000000000001").unwrap();
        assert!(db.get_workspace(&workspace).await.unwrap().is_some());
        assert_eq!(db.list_event_types(&workspace).await.unwrap(), []);
    }
}
