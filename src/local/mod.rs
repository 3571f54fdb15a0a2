//! Local mode: the Lambdas' routers served over plain HTTP on the embedded store and queue.

mod data_dir;
pub mod log_export;
mod openapi;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use delivery::{Adapters, Admission, IsolationPolicy, Worker};
use exports::ExportWorker;
use hookline_shared::adapters::embedded::Redrive;
use hookline_shared::adapters::{EmbeddedDb, EmbeddedEvents, EmbeddedQueue};
use hookline_shared::config::{
    flag_or, retry_schedule_from_env, ConfigError, ALLOW_PRIVATE_TARGETS,
    DEFAULT_DEDUP_WINDOW_DAYS, DEFAULT_LOG_RETENTION_DAYS,
};
use hookline_shared::delivery::RetrySchedule;
use hookline_shared::export::settings::{EXPORT_SENDER, SMTP_URL};
use hookline_shared::http::front_door;
use hookline_shared::webhook::{SenderConfig, WebhookSender};
use hookline_shared::{StoreError, WorkspaceId, WorkspaceStore};
use ingest::connections::Connections;
use ingest::Ingest;
use serde::{Deserialize, Serialize};
use subscriptions::{ConnectionsApi, ExportsApi, Notify, Publishing, Redelivery};

use crate::admin::{create_workspace, AdminError};
use data_dir::DataDirLock;

/// Where an accepted event's fan-out waits, written in the same transaction as the event.
pub const EVENTS_QUEUE: &str = hookline_shared::adapters::embedded::EVENTS_QUEUE;
pub const EVENTS_DLQ: &str = "events-dlq";
pub const DELIVERIES_QUEUE: &str = "deliveries";
pub const DELIVERIES_DLQ: &str = "deliveries-dlq";
pub const EXPORTS_QUEUE: &str = "exports";
pub const EXPORTS_DLQ: &str = "exports-dlq";
/// One more than an export job's claims, so the receive after its last attempt fails the job
/// (saying why) before the message would be dead-lettered.
const EXPORT_MAX_RECEIVES: u32 = hookline_shared::export::job::MAX_ATTEMPTS + 1;
/// The sender of local mode's export emails unless `HOOKLINE_EXPORT_SENDER` says otherwise.
const DEFAULT_EXPORT_SENDER: &str = "Hookline <hookline@localhost>";
/// Matches the deployed queues' redrive policy.
pub const MAX_RECEIVES: u32 = 5;
const DEV_WORKSPACE_FILE: &str = "dev-workspace.json";
const DATABASE_FILE: &str = "hookline.db";

pub type LocalWorker =
    Worker<Adapters<EmbeddedDb, EmbeddedEvents, EmbeddedDb, EmbeddedDb, EmbeddedDb, EmbeddedQueue>>;

/// What local mode may tune; the defaults suit a developer's machine.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub schedule: RetrySchedule,
    /// Deliver to loopback and private addresses (a receiver on this machine).
    pub allow_private: bool,
    pub log_retention: Duration,
    pub paused_recheck: Duration,
    /// Per-subscription in-flight cap and circuit breaker.
    pub isolation: IsolationPolicy,
    /// `http://<addr>` the server answers on: where export download links point.
    pub public_url: String,
    /// Export emails go through this SMTP server instead of into the outbox.
    pub smtp_url: Option<String>,
    pub export_sender: String,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            allow_private: true,
            log_retention: Duration::from_secs(DEFAULT_LOG_RETENTION_DAYS * 86_400),
            // Enabling a subscription resumes its work at once; this only backs that up.
            paused_recheck: Duration::from_secs(60),
            isolation: IsolationPolicy::default(),
            public_url: "http://127.0.0.1:3000".into(),
            smtp_url: None,
            export_sender: DEFAULT_EXPORT_SENDER.into(),
        }
    }
}

impl LocalOptions {
    /// Defaults, with `HOOKLINE_RETRY_SCHEDULE` and `HOOKLINE_ALLOW_PRIVATE_TARGETS` honoured.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            schedule: retry_schedule_from_env()?,
            allow_private: flag_or(ALLOW_PRIVATE_TARGETS, defaults.allow_private)?,
            isolation: IsolationPolicy::from_env()?,
            smtp_url: std::env::var(SMTP_URL)
                .ok()
                .filter(|url| !url.trim().is_empty()),
            export_sender: std::env::var(EXPORT_SENDER).unwrap_or(defaults.export_sender.clone()),
            ..defaults
        })
    }
}

/// The embedded stack: one database file under `data_dir`.
pub struct LocalStack {
    /// Held for as long as the stack lives: no second process shares its claims.
    _lock: DataDirLock,
    pub db: EmbeddedDb,
    pub events_queue: EmbeddedQueue,
    pub deliveries_queue: EmbeddedQueue,
    pub exports_queue: EmbeddedQueue,
    /// Ingest and the notify API, the Lambdas' own routers, plus `/health`.
    router: Router,
    pub worker: Arc<LocalWorker>,
    pub export_worker: Arc<log_export::LocalExportWorker>,
}

impl LocalStack {
    pub fn open(data_dir: &Path, options: LocalOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let lock = DataDirLock::acquire(data_dir)?;
        let db = EmbeddedDb::open(&data_dir.join(DATABASE_FILE))?;
        // A previous process of this directory is gone (we hold its lock): what it had claimed
        // is handed out again now, not after the visibility timeout and the attempt lease.
        let released = db.release_claims_of_dead_workers()?;
        if released != Default::default() {
            tracing::warn!(
                messages = released.messages,
                attempts = released.attempts,
                "took over work the previous process left claimed"
            );
        }
        let queue = |name: &str, dead_letters: &str, max_receives: u32| {
            let redrive = Redrive {
                dead_letter_queue: dead_letters.into(),
                max_receives,
            };
            EmbeddedQueue::new(db.clone(), name, Some(redrive))
        };
        let events_queue = queue(EVENTS_QUEUE, EVENTS_DLQ, MAX_RECEIVES);
        let deliveries_queue = queue(DELIVERIES_QUEUE, DELIVERIES_DLQ, MAX_RECEIVES);
        let exports_queue = queue(EXPORTS_QUEUE, EXPORTS_DLQ, EXPORT_MAX_RECEIVES);
        let mailer = log_export::LocalMailer::new(
            data_dir,
            options.smtp_url.as_deref(),
            &options.export_sender,
        )
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let export_worker = ExportWorker {
            jobs: db.clone(),
            logs: db.clone(),
            sink: log_export::LocalSink::new(db.clone(), data_dir, options.public_url.clone()),
            mailer,
            lease: log_export::LEASE,
        };
        let log_exports = ExportsApi::new(db.clone(), db.clone(), exports_queue.clone());
        let dedup_window = Duration::from_secs(DEFAULT_DEDUP_WINDOW_DAYS * 86_400);
        // One client, so test sends and deliveries share its connection pool.
        let sender = WebhookSender::new(SenderConfig::production_allowing_private(
            options.allow_private,
        ));
        // The events queue is the events' outbox: each accepted event and its fan-out message
        // are one transaction.
        let events = EmbeddedEvents::new(events_queue.clone());
        let ingest = Ingest::new(db.clone(), events.clone(), dedup_window);
        // A developer's machine: plain-http receivers (e.g. on localhost) are allowed.
        let notify = Notify::new(
            db.clone(),
            db.clone(),
            db.clone(),
            db.clone(),
            deliveries_queue.clone(),
            sender.clone(),
            true,
        );
        let ports = Adapters {
            workspaces: db.clone(),
            events: events.clone(),
            subscriptions: db.clone(),
            deliveries: db.clone(),
            logs: db.clone(),
            queue: deliveries_queue.clone(),
        };
        let worker = Worker {
            ports,
            sender,
            schedule: options.schedule,
            log_retention: options.log_retention,
            paused_recheck: options.paused_recheck,
            admission: Admission::new(options.isolation),
            filters: Default::default(),
        };
        let publishing = Publishing::new(db.clone(), events.clone(), db.clone(), dedup_window);
        let from_providers = Connections::new(db.clone(), events, db.clone(), dedup_window);
        let provider_connections = ConnectionsApi::new(db.clone(), db.clone());
        let redeliveries = Redelivery::new(
            db.clone(),
            db.clone(),
            db.clone(),
            db.clone(),
            deliveries_queue.clone(),
            options.log_retention,
        );
        let apis = ingest::router(ingest)
            .merge(ingest::connections::router(from_providers))
            .merge(subscriptions::router(notify))
            .merge(subscriptions::publish::router(publishing))
            .merge(subscriptions::redelivery::router(redeliveries))
            .merge(subscriptions::connections::router(provider_connections))
            .merge(subscriptions::export::router(log_exports))
            .merge(log_export::download_router(db.clone()))
            .merge(openapi::router())
            .route("/health", axum::routing::get(|| async { "ok" }));
        let prefixes = &[
            ingest::ROUTE_PREFIX,
            ingest::connections::ROUTE_PREFIX,
            subscriptions::API_PREFIX,
        ];
        Ok(Self {
            _lock: lock,
            db,
            events_queue,
            deliveries_queue,
            exports_queue,
            router: front_door(apis, prefixes, |_| None),
            worker: Arc::new(worker),
            export_worker: Arc::new(export_worker),
        })
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }
}

/// The dev workspace local mode creates on first start; its key is kept in the data dir so a
/// restart can print it again (local mode only; deployed stacks store key hashes only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevWorkspace {
    pub workspace_id: WorkspaceId,
    pub api_key: String,
}

pub async fn ensure_dev_workspace<S: WorkspaceStore>(
    store: &S,
    data_dir: &Path,
) -> Result<(DevWorkspace, bool), AdminError> {
    let path = data_dir.join(DEV_WORKSPACE_FILE);
    if let Ok(raw) = std::fs::read_to_string(&path) {
        if let Ok(dev) = serde_json::from_str::<DevWorkspace>(&raw) {
            if store.get_workspace(&dev.workspace_id).await?.is_some() {
                return Ok((dev, false));
            }
        }
    }
    let created = create_workspace(store, "dev").await?;
    let dev = DevWorkspace {
        workspace_id: created.workspace.id,
        api_key: created.api_key.expose().to_owned(),
    };
    write_private(
        &path,
        &serde_json::to_string_pretty(&dev).expect("serializable"),
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot write {}: {e}", path.display())))?;
    Ok((dev, true))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
