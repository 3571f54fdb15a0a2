//! A data directory holding a backlog: events ingested and a subscription to deliver them
//! to, with none of the worker's part done yet.
//!
//! `serve` always runs its worker beside the HTTP side, so the backlog is written by local
//! mode's own stack opened in this process, serving ingest and the notify API on loopback
//! without starting the worker. The directory is then handed to `hookline serve`, whose worker
//! finds every event still to fan out and deliver and nothing else to do: its drain is the
//! worker's work alone, fan-out included, with no ingest competing for the store or the CPU.

use std::path::Path;
use std::time::Duration;

use axum::body::Bytes;
use hookline::local::{ensure_dev_workspace, LocalOptions, LocalStack};
use std::sync::Arc;

use crate::load::{blast, Run, Target};
use crate::{subscribe, Api, INGEST};

const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Ingests `bodies` over `connections` into `data_dir`, subscribed to by `webhook_url`;
/// returns the ingest run (its event ids are the backlog's). The stack is closed, its lock
/// released, when this returns.
pub async fn fill(
    data_dir: &Path,
    webhook_url: &str,
    bodies: &Arc<Vec<Bytes>>,
    connections: usize,
) -> Run {
    let stack = LocalStack::open(data_dir, LocalOptions::default()).expect("local stack opens");
    let (dev, _) = ensure_dev_workspace(&stack.db, data_dir)
        .await
        .expect("dev workspace");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("bound address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, stack.router())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .expect("backlog server runs");
        stack
    });
    let api = Api {
        base: base.clone(),
        api_key: dev.api_key.clone(),
        workspace_id: dev.workspace_id.as_str().to_owned(),
    };
    subscribe(&api, webhook_url).await;
    let run = {
        let target = Target::new(format!("{base}{INGEST}"), Some(&dev.api_key));
        blast(&target, bodies, connections).await
        // The target's pool closes here, so the graceful shutdown has no connection to wait for.
    };
    let _ = stop.send(());
    let mut server = server;
    match tokio::time::timeout(SHUTDOWN_LIMIT, &mut server).await {
        Ok(stack) => drop(stack.expect("backlog server task")),
        Err(_) => {
            // Dropping the task drops the stack it owns, and with it the directory's lock.
            eprintln!("backlog server still had connections after 10 s; aborting it");
            server.abort();
            let _ = server.await;
        }
    }
    run
}
