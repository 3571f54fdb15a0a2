//! Ingest Lambda wiring: config, AWS clients, then the runtime loop.

use hookline_shared::adapters::{DynamoEvents, DynamoWorkspaces, SqsQueue};
use hookline_shared::config::{
    dedup_window_from_env, init_lambda_logging, required, EVENTS_QUEUE_URL, EVENTS_TABLE,
    WORKSPACES_TABLE,
};
use ingest::{handle_ingest, Ingest};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_lambda_logging();
    let workspaces_table = required(WORKSPACES_TABLE)?;
    let events_table = required(EVENTS_TABLE)?;
    let queue_url = required(EVENTS_QUEUE_URL)?;
    let dedup_window = dedup_window_from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let workspaces = DynamoWorkspaces::new(dynamodb.clone(), workspaces_table);
    let events = DynamoEvents::new(dynamodb, events_table);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
    let deps = Ingest::new(workspaces, events, queue, dedup_window);
    run(service_fn(|req: Request| handle_ingest(&deps, req))).await
}
