//! `hookline`: local mode (`serve`) and admin commands.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookline::admin::{create_key, create_workspace};
use hookline::dlq;
use hookline::local::{self, ensure_dev_workspace, LocalOptions, LocalStack};
use hookline_shared::adapters::embedded::Redrive;
use hookline_shared::adapters::{DynamoWorkspaces, EmbeddedDb, EmbeddedQueue, SqsQueue};
use hookline_shared::config::{DELIVERIES_QUEUE_URL, WORKSPACES_TABLE};
use hookline_shared::Queue;
use serde_json::json;

/// Names an SQS events queue for `dlq --queue events`. A stack has none (accepted events reach
/// fan-out through the events table's stream, whose failed batches go to the
/// AcceptedEventsFailuresQueue), so unless it is set this reads local mode's events queue.
const EVENTS_QUEUE_URL: &str = "HOOKLINE_EVENTS_QUEUE_URL";

#[derive(Parser)]
#[command(
    name = "hookline",
    version,
    about = "Hookline webhook platform: local mode and admin commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest (and the rest of the stack as it lands) locally on an embedded store.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        #[arg(long, default_value = ".hookline")]
        data_dir: PathBuf,
    },
    /// Manage workspaces.
    Workspace {
        #[command(subcommand)]
        action: WorkspaceAction,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Dead-lettered queue messages: list them, or send them back to their queue. On AWS when
    /// HOOKLINE_EVENTS_QUEUE_URL / HOOKLINE_DELIVERIES_QUEUE_URL is set, else in --data-dir.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Print up to --max dead-lettered messages as JSON lines, leaving them where they are.
    List {
        #[command(flatten)]
        target: DlqTarget,
    },
    /// Send up to --max dead-lettered messages back to their queue; prints {"queue","redriven"}.
    Redrive {
        #[command(flatten)]
        target: DlqTarget,
    },
}

#[derive(clap::Args)]
struct DlqTarget {
    /// Whose dead letters: the events queue (fan-out) or the deliveries queue (attempts).
    #[arg(long, value_enum)]
    queue: QueueName,
    #[arg(long, default_value_t = 100)]
    max: usize,
    #[arg(long, default_value = ".hookline")]
    data_dir: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum QueueName {
    Events,
    Deliveries,
}

impl QueueName {
    fn as_str(self) -> &'static str {
        match self {
            QueueName::Events => "events",
            QueueName::Deliveries => "deliveries",
        }
    }

    /// The environment variable naming the SQS queue, and local mode's queue and DLQ names.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            QueueName::Events => (EVENTS_QUEUE_URL, local::EVENTS_QUEUE, local::EVENTS_DLQ),
            QueueName::Deliveries => (
                DELIVERIES_QUEUE_URL,
                local::DELIVERIES_QUEUE,
                local::DELIVERIES_DLQ,
            ),
        }
    }
}

#[derive(Subcommand)]
enum WorkspaceAction {
    /// Create a workspace and its first API key; prints {"workspace_id","name","api_key"}.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = ".hookline")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// Add an API key to a workspace; prints {"workspace_id","api_key"}.
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long, default_value = ".hookline")]
        data_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr, so stdout carries only what commands print; colour only on a terminal.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

async fn run(command: Command) -> Result<(), AnyError> {
    match command {
        Command::Serve { addr, data_dir } => serve(addr, data_dir).await,
        Command::Workspace {
            action: WorkspaceAction::Create { name, data_dir },
        } => {
            let created = match dynamo_store().await? {
                Some(store) => create_workspace(&store, &name).await?,
                None => create_workspace(&EmbeddedDb::open(&prepared(&data_dir)?)?, &name).await?,
            };
            println!("{}", created.to_json());
            Ok(())
        }
        Command::Key {
            action:
                KeyAction::Create {
                    workspace,
                    data_dir,
                },
        } => {
            let (id, key) = match dynamo_store().await? {
                Some(store) => create_key(&store, &workspace).await?,
                None => create_key(&EmbeddedDb::open(&prepared(&data_dir)?)?, &workspace).await?,
            };
            println!("{}", json!({"workspace_id": id, "api_key": key.expose()}));
            Ok(())
        }
        Command::Dlq { action } => dead_letters(action).await,
    }
}

/// Runs a `dlq` command against SQS or the embedded queues of the data dir.
async fn dead_letters(action: DlqAction) -> Result<(), AnyError> {
    let (redrive, target) = match action {
        DlqAction::List { target } => (false, target),
        DlqAction::Redrive { target } => (true, target),
    };
    let (url_var, local_queue, local_dlq) = target.queue.names();
    let max = target.max;
    let moved = if let Ok(source_url) = std::env::var(url_var) {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_sqs::Client::new(&aws);
        let dlq_url = dlq::sqs_dead_letter_url(&client, &source_url).await?;
        let source = SqsQueue::new(client.clone(), source_url);
        let dead = SqsQueue::new(client, dlq_url);
        run_dlq(redrive, &dead, &source, max).await?
    } else {
        let db = EmbeddedDb::open(&prepared(&target.data_dir)?)?;
        // The source keeps its redrive rule, so a message that fails again dead-letters again.
        let rule = Redrive {
            dead_letter_queue: local_dlq.into(),
            max_receives: local::MAX_RECEIVES,
        };
        let source = EmbeddedQueue::new(db.clone(), local_queue, Some(rule));
        let dead = EmbeddedQueue::new(db, local_dlq, None);
        run_dlq(redrive, &dead, &source, max).await?
    };
    if let Some(moved) = moved {
        println!(
            "{}",
            json!({"queue": target.queue.as_str(), "redriven": moved})
        );
    }
    Ok(())
}

/// Lists (printing a line per message) or redrives; `Some(count)` for a redrive.
async fn run_dlq<D: Queue, S: Queue>(
    redrive: bool,
    dead: &D,
    source: &S,
    max: usize,
) -> Result<Option<usize>, AnyError> {
    if redrive {
        return Ok(Some(dlq::redrive(dead, source, max).await?));
    }
    for line in dlq::list(dead, max).await? {
        println!("{line}");
    }
    Ok(None)
}

/// Admin commands talk to DynamoDB when the stack's table names are in the environment
/// (endpoint from `AWS_ENDPOINT_URL` if set), else to the local data dir.
async fn dynamo_store() -> Result<Option<DynamoWorkspaces>, AnyError> {
    if std::env::var_os(WORKSPACES_TABLE).is_none() {
        return Ok(None);
    }
    let workspaces = std::env::var(WORKSPACES_TABLE)?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(Some(DynamoWorkspaces::new(
        aws_sdk_dynamodb::Client::new(&aws),
        workspaces,
    )))
}

fn prepared(data_dir: &std::path::Path) -> Result<PathBuf, AnyError> {
    std::fs::create_dir_all(data_dir)?;
    Ok(data_dir.join("hookline.db"))
}

async fn serve(addr: SocketAddr, data_dir: PathBuf) -> Result<(), AnyError> {
    // Bound first: export download links name the address actually bound.
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let options = LocalOptions {
        public_url: format!("http://{bound}"),
        ..LocalOptions::from_env()?
    };
    let stack = std::sync::Arc::new(LocalStack::open(&data_dir, options)?);
    let (dev, created) = ensure_dev_workspace(&stack.db, &data_dir).await?;
    println!("Hookline local mode listening on http://{bound}");
    println!(
        "dev workspace{}: {}",
        if created { " (created)" } else { "" },
        dev.workspace_id
    );
    println!("dev API key: {}", dev.api_key);
    println!(
        "try: curl -X POST http://{bound}/api/v2/analytics/webhook/receive/generic/emails -H 'content-type: application/json' -H 'api_key: {}' -d @events/bodies/emails.json",
        dev.api_key
    );
    let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn({
        let stack = std::sync::Arc::clone(&stack);
        async move { stack.run_worker(worker_stopped).await }
    });
    let export_worker = tokio::spawn({
        let (stack, stopped) = (std::sync::Arc::clone(&stack), stop_worker.subscribe());
        async move { stack.run_export_worker(stopped).await }
    });
    axum::serve(listener, stack.router())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // The HTTP side is closed; let attempts and exports in flight finish, leave the rest queued.
    let _ = stop_worker.send(true);
    worker.await?;
    export_worker.await?;
    println!(
        "Hookline local mode stopped; queued work is kept in {}",
        data_dir.display()
    );
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
