//! Ingest Lambda wiring: config, the DynamoDB client, then the ingest router on the runtime
//! loop. No queue: the events table's stream carries accepted events on to fan-out.

use hookline_shared::adapters::aws_clients::bounded;
use hookline_shared::adapters::{
    DynamoConnections, DynamoEventTypes, DynamoEvents, DynamoWorkspaces,
};
use hookline_shared::config::{
    dedup_window_from_env, init_lambda_logging, required, EVENTS_TABLE, SUBSCRIPTIONS_TABLE,
    WORKSPACES_TABLE,
};
use hookline_shared::http::front_door;
use ingest::connections::{self, Connections};
use ingest::{router, Ingest, ROUTE_PREFIX};
use lambda_http::{run, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_lambda_logging();
    let workspaces_table = required(WORKSPACES_TABLE)?;
    let events_table = required(EVENTS_TABLE)?;
    let dedup_window = dedup_window_from_env()?;
    // Provider connections live in the notify API's table; this function only reads them.
    let subscriptions_table = required(SUBSCRIPTIONS_TABLE)?;
    // Bounded, so a store that stops answering is a 503 within seconds.
    let aws = bounded(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let workspaces = DynamoWorkspaces::new(dynamodb.clone(), workspaces_table);
    let events = DynamoEvents::new(dynamodb.clone(), events_table);
    let from_providers = Connections::new(
        DynamoConnections::new(dynamodb.clone(), &subscriptions_table),
        events.clone(),
        // A provider's own event types are registered beside the connections.
        DynamoEventTypes::new(dynamodb, &subscriptions_table),
        dedup_window,
    );
    let deps = Ingest::new(workspaces, events, dedup_window);
    let apis = router(deps).merge(connections::router(from_providers));
    let prefixes = &[ROUTE_PREFIX, connections::ROUTE_PREFIX];
    run(front_door(apis, prefixes, invocation_id)).await
}

/// The Lambda invocation's id, which the answer and the logs carry as the request id.
fn invocation_id(extensions: &lambda_http::http::Extensions) -> Option<String> {
    let context = extensions.get::<lambda_http::Context>()?;
    Some(context.request_id.clone())
}
