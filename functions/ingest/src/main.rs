//! Ingest Lambda wiring: config, AWS clients, then the runtime loop.

use hookline_shared::adapters::{DynamoStore, SqsQueue};
use hookline_shared::config::{dedup_window_from_env, AwsResources};
use ingest::{handle_ingest, Ingest};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let resources = AwsResources::from_env()?;
    let dedup_window = dedup_window_from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        resources.workspaces_table,
        resources.events_table,
    );
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), resources.events_queue_url);
    let deps = Ingest::new(store.clone(), store, queue, dedup_window);
    run(service_fn(|req: Request| handle_ingest(&deps, req))).await
}
