//! Notify API Lambda wiring: config, the DynamoDB client, then the runtime loop.

use hookline_shared::adapters::{DynamoStore, DynamoSubscriptions};
use hookline_shared::config::{
    flag, init_lambda_logging, required, ALLOW_HTTP_WEBHOOKS, SUBSCRIPTIONS_TABLE, WORKSPACES_TABLE,
};
use lambda_http::{run, service_fn, Error, Request};
use subscriptions::{handle_notify, Notify};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_lambda_logging();
    let workspaces_table = required(WORKSPACES_TABLE)?;
    let subscriptions_table = required(SUBSCRIPTIONS_TABLE)?;
    let allow_http = flag(ALLOW_HTTP_WEBHOOKS)?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let workspaces = DynamoStore::new(client.clone(), workspaces_table, "");
    let subscriptions = DynamoSubscriptions::new(client, subscriptions_table);
    let deps = Notify::new(workspaces, subscriptions, allow_http);
    run(service_fn(|req: Request| handle_notify(&deps, req))).await
}
