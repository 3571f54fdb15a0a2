//! Notify API Lambda wiring: config, the DynamoDB and SQS clients, then the notify router on the
//! runtime loop.

use hookline_shared::adapters::aws_clients::bounded;
use hookline_shared::adapters::{
    DynamoConnections, DynamoEventTypes, DynamoEvents, DynamoLogs, DynamoSubscriptions,
    DynamoWorkspaces, SqsQueue,
};
use hookline_shared::config::{
    dedup_window_from_env, flag, init_lambda_logging, required, ALLOW_HTTP_WEBHOOKS,
    ALLOW_PRIVATE_TARGETS, DELIVERIES_QUEUE_URL, EVENTS_TABLE, LOGS_TABLE, SUBSCRIPTIONS_TABLE,
    WORKSPACES_TABLE,
};
use hookline_shared::http::front_door;
use hookline_shared::webhook::{SenderConfig, WebhookSender};
use lambda_http::{run, Error};
use subscriptions::{connections, publish, router, ConnectionsApi, Notify, Publishing, API_PREFIX};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_lambda_logging();
    let workspaces_table = required(WORKSPACES_TABLE)?;
    let subscriptions_table = required(SUBSCRIPTIONS_TABLE)?;
    let logs_table = required(LOGS_TABLE)?;
    let deliveries_queue_url = required(DELIVERIES_QUEUE_URL)?;
    let events_table = required(EVENTS_TABLE)?;
    let dedup_window = dedup_window_from_env()?;
    let allow_http = flag(ALLOW_HTTP_WEBHOOKS)?;
    let allow_private = flag(ALLOW_PRIVATE_TARGETS)?;
    // Bounded, so a store or queue that stops answering is a 503 within seconds.
    let aws = bounded(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let workspaces = DynamoWorkspaces::new(client.clone(), workspaces_table);
    // Custom event types and provider connections are items of the subscriptions table.
    let event_types = DynamoEventTypes::new(client.clone(), &subscriptions_table);
    let subscriptions = DynamoSubscriptions::new(client.clone(), &subscriptions_table);
    let provider_connections = ConnectionsApi::new(
        workspaces.clone(),
        DynamoConnections::new(client.clone(), subscriptions_table),
    );
    let logs = DynamoLogs::new(client.clone(), logs_table);
    let resumes = SqsQueue::new(sqs, deliveries_queue_url);
    let sender = WebhookSender::new(SenderConfig::production_allowing_private(allow_private));
    let publishing = Publishing::new(
        workspaces.clone(),
        DynamoEvents::new(client, events_table),
        event_types.clone(),
        dedup_window,
    );
    let deps = Notify::new(
        workspaces,
        subscriptions,
        event_types,
        logs,
        resumes,
        sender,
        allow_http,
    );
    let apis = router(deps)
        .merge(publish::router(publishing))
        .merge(connections::router(provider_connections));
    run(front_door(apis, &[API_PREFIX], invocation_id)).await
}

/// The Lambda invocation's id, which the answer and the logs carry as the request id.
fn invocation_id(extensions: &lambda_http::http::Extensions) -> Option<String> {
    let context = extensions.get::<lambda_http::Context>()?;
    Some(context.request_id.clone())
}
