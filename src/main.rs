//! `hookline`: local mode (`serve`) and admin commands.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookline::admin::{create_key, create_workspace};
use hookline::local::{ensure_dev_workspace, LocalOptions, LocalStack};
use hookline_shared::adapters::{DynamoWorkspaces, EmbeddedDb};
use hookline_shared::config::WORKSPACES_TABLE;
use serde_json::json;

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
    }
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
