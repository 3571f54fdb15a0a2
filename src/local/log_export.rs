//! Local mode's log export: files under `<data-dir>/exports/`, served at `/exports/{token}`
//! with an unguessable token that expires; the email as an `.eml` in `<data-dir>/outbox/`, or
//! through SMTP when `HOOKLINE_SMTP_URL` is set. The job itself runs in the same worker the
//! exports Lambda runs, from the embedded exports queue.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use chrono::Utc;
use exports::{Disposition, ExportWorker};
use hookline_shared::adapters::embedded::StoredDownload;
use hookline_shared::adapters::{EmbeddedDb, EmbeddedQueue};
use hookline_shared::export::{
    Download, ExportEmail, ExportJob, ExportSink, ExportUpload, MailError, Mailer, SinkError,
};
use hookline_shared::Queue as _;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::RngCore as _;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::watch;

use super::LocalStack;

pub const EXPORTS_DIR: &str = "exports";
pub const OUTBOX_DIR: &str = "outbox";
/// How long a download link works, as the deployed presigned links do.
pub const LINK_TTL: Duration = Duration::from_secs(24 * 3600);
/// The route download links point at.
pub const DOWNLOAD_PREFIX: &str = "/exports/";
/// A received export message stays invisible this long (the Lambda's timeout when deployed).
const EXPORT_VISIBILITY: Duration = Duration::from_secs(900);
/// A job given back for another try is handed out again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// A claim's length locally; renewed every third of it.
pub const LEASE: Duration = Duration::from_secs(60);

pub type LocalExportWorker = ExportWorker<EmbeddedDb, EmbeddedDb, LocalSink, LocalMailer>;

/// The hash a token is filed under: the database never holds a working link.
fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Export files under the data dir, each with a tokened link served by `hookline serve`.
#[derive(Clone)]
pub struct LocalSink {
    db: EmbeddedDb,
    dir: PathBuf,
    /// `http://<addr>` of the serving process.
    public_url: String,
}

impl LocalSink {
    pub fn new(db: EmbeddedDb, data_dir: &Path, public_url: impl Into<String>) -> Self {
        Self {
            db,
            dir: data_dir.join(EXPORTS_DIR),
            public_url: public_url.into(),
        }
    }
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> SinkError {
    move |e| SinkError(format!("{what}: {e}"))
}

impl ExportSink for LocalSink {
    type Upload = LocalUpload;

    async fn start(&self, job: &ExportJob) -> Result<LocalUpload, SinkError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io("creating the exports directory"))?;
        let path = self
            .dir
            .join(format!("{}.{}", job.id, job.request.format.extension()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(io("creating the export file"))?;
        Ok(LocalUpload {
            file,
            path,
            sink: self.clone(),
            job: job.clone(),
        })
    }
}

/// One file being written.
pub struct LocalUpload {
    file: tokio::fs::File,
    path: PathBuf,
    sink: LocalSink,
    job: ExportJob,
}

impl ExportUpload for LocalUpload {
    async fn write_part(&mut self, part: Vec<u8>) -> Result<(), SinkError> {
        self.file
            .write_all(&part)
            .await
            .map_err(io("writing the export file"))
    }

    async fn finish(mut self) -> Result<Download, SinkError> {
        self.file
            .flush()
            .await
            .map_err(io("writing the export file"))?;
        self.file
            .sync_all()
            .await
            .map_err(io("writing the export file"))?;
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let expires_at = Utc::now() + LINK_TTL;
        let download = StoredDownload {
            workspace_id: self.job.workspace_id.clone(),
            job_id: self.job.id.clone(),
            path: self.path.to_string_lossy().into_owned(),
            content_type: self.job.request.format.content_type().to_owned(),
            expires_at: expires_at.timestamp(),
        };
        self.sink
            .db
            .add_download(&token_hash(&token), &download)
            .await
            .map_err(|e| SinkError(format!("filing the download: {e}")))?;
        Ok(Download {
            url: format!("{}{DOWNLOAD_PREFIX}{token}", self.sink.public_url),
            expires_at,
        })
    }

    async fn abort(self) {
        drop(self.file);
        if let Err(err) = tokio::fs::remove_file(&self.path).await {
            tracing::warn!(path = %self.path.display(), error = %err, "unfinished export file not removed");
        }
    }
}

/// Where local mode's export emails go.
#[derive(Clone)]
pub enum LocalMailer {
    /// `.eml` files in `<data-dir>/outbox/`.
    Outbox {
        transport: AsyncFileTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// An SMTP server (`HOOKLINE_SMTP_URL`).
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
}

impl LocalMailer {
    /// SMTP when `smtp_url` is given, else the outbox under `data_dir`.
    pub fn new(data_dir: &Path, smtp_url: Option<&str>, from: &str) -> Result<Self, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError(format!("sender address {from:?}: {e}")))?;
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError(format!("HOOKLINE_SMTP_URL: {e}")))?
                    .build();
                Ok(LocalMailer::Smtp { transport, from })
            }
            None => {
                let outbox = data_dir.join(OUTBOX_DIR);
                std::fs::create_dir_all(&outbox)
                    .map_err(|e| MailError(format!("cannot create {}: {e}", outbox.display())))?;
                Ok(LocalMailer::Outbox {
                    transport: AsyncFileTransport::new(outbox),
                    from,
                })
            }
        }
    }
}

/// `email` as a MIME message: a text and an HTML alternative, both UTF-8.
pub fn mime_message(from: &Mailbox, email: &ExportEmail) -> Result<Message, MailError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| MailError(format!("recipient {:?}: {e}", email.to)))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(email.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(email.html.clone()),
                ),
        )
        .map_err(|e| MailError(format!("building the email: {e}")))
}

impl Mailer for LocalMailer {
    async fn send(&self, email: &ExportEmail) -> Result<(), MailError> {
        match self {
            LocalMailer::Outbox { transport, from } => {
                let message = mime_message(from, email)?;
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|e| MailError(format!("writing to the outbox: {e}")))
            }
            LocalMailer::Smtp { transport, from } => {
                let message = mime_message(from, email)?;
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|e| MailError(format!("SMTP: {e}")))
            }
        }
    }
}

/// `GET /exports/{token}`: the file behind a live token; any other token is a 404, so an
/// expired, unknown or made-up link learns nothing.
pub fn download_router(db: EmbeddedDb) -> Router {
    Router::new()
        .route("/exports/{token}", get(download))
        .with_state(db)
}

async fn download(State(db): State<EmbeddedDb>, UrlPath(token): UrlPath<String>) -> Response {
    let not_found = || {
        let body = r#"{"code":"not_found","message":"No export behind this link: it is unknown or has expired"}"#;
        (
            StatusCode::NOT_FOUND,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    let found = match db.find_download(&token_hash(&token)).await {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, "download lookup failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let Some(download) = found.filter(|d| d.expires_at > Utc::now().timestamp()) else {
        return not_found();
    };
    let Ok(file) = tokio::fs::File::open(&download.path).await else {
        return not_found();
    };
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut chunk = vec![0u8; 64 * 1024];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok::<_, std::io::Error>(chunk), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let name = Path::new(&download.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    if let Ok(kind) = HeaderValue::from_str(&download.content_type) {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"hookline-logs-{name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

impl LocalStack {
    /// Runs export jobs from the exports queue, one at a time, until `shutdown` turns true;
    /// a job in flight is finished first. An unfinished job's message stays queued.
    pub async fn run_export_worker(&self, mut shutdown: watch::Receiver<bool>) {
        let queue = &self.exports_queue;
        while !*shutdown.borrow() {
            let received = match queue.receive(1, EXPORT_VISIBILITY, Duration::ZERO).await {
                Ok(received) => received,
                Err(err) => {
                    tracing::error!(error = %err, "local exports queue unavailable");
                    Vec::new()
                }
            };
            if received.is_empty() {
                let queues = [queue];
                tokio::select! {
                    _ = EmbeddedQueue::wait_for_work(&queues, IDLE_WAIT) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            for message in received {
                handle_export_message(&self.export_worker, queue, &message).await;
            }
        }
    }
}

async fn handle_export_message(
    worker: &Arc<LocalExportWorker>,
    queue: &EmbeddedQueue,
    message: &hookline_shared::ReceivedMessage,
) {
    let settled = match worker.process(&message.message_id, &message.body).await {
        Disposition::Ack => queue.delete(&message.receipt).await,
        Disposition::Retry => queue.change_visibility(&message.receipt, RETRY_AFTER).await,
    };
    if let Err(err) = settled {
        tracing::warn!(message_id = message.message_id, error = %err, "export message not settled; it comes back after its visibility timeout");
    }
}
