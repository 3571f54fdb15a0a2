//! Notify API Lambda wiring: config, the DynamoDB and SQS clients, then the notify router on the
//! runtime loop.

use hookline_shared::adapters::aws_clients::bounded;
use hookline_shared::adapters::{
    DynamoConnections, DynamoDeliveries, DynamoEventTypes, DynamoEvents, DynamoExports, DynamoLogs,
    DynamoSubscriptions, DynamoWorkspaces, SqsQueue,
};
use hookline_shared::config::{
    days_from_env, dedup_window_from_env, flag, init_lambda_logging, required, ALLOW_HTTP_WEBHOOKS,
    ALLOW_PRIVATE_TARGETS, DEFAULT_LOG_RETENTION_DAYS, DELIVERIES_QUEUE_URL, DELIVERIES_TABLE,
    EVENTS_TABLE, LOGS_TABLE, LOG_RETENTION_DAYS, SUBSCRIPTIONS_TABLE, WORKSPACES_TABLE,
};
use hookline_shared::export::settings::{EXPORTS_QUEUE_URL, EXPORTS_TABLE};
use hookline_shared::http::front_door;
use hookline_shared::webhook::{SenderConfig, WebhookSender};
use lambda_http::{run, Error};
use subscriptions::{
    connections, export, publish, redelivery, router, ConnectionsApi, ExportsApi, Notify,
    Publishing, Redelivery, API_PREFIX,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_lambda_logging();
    let workspaces_table = required(WORKSPACES_TABLE)?;
    let subscriptions_table = required(SUBSCRIPTIONS_TABLE)?;
    let logs_table = required(LOGS_TABLE)?;
    let deliveries_queue_url = required(DELIVERIES_QUEUE_URL)?;
    let events_table = required(EVENTS_TABLE)?;
    let exports_table = required(EXPORTS_TABLE)?;
    let exports_queue_url = required(EXPORTS_QUEUE_URL)?;
    let dedup_window = dedup_window_from_env()?;
    let deliveries_table = required(DELIVERIES_TABLE)?;
    let log_retention = days_from_env(LOG_RETENTION_DAYS, DEFAULT_LOG_RETENTION_DAYS)?;
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
    let log_exports = ExportsApi::new(
        workspaces.clone(),
        DynamoExports::new(client.clone(), exports_table),
        SqsQueue::new(sqs.clone(), exports_queue_url),
    );
    let resumes = SqsQueue::new(sqs.clone(), deliveries_queue_url);
    let redeliveries = Redelivery::new(
        workspaces.clone(),
        subscriptions.clone(),
        logs.clone(),
        DynamoDeliveries::new(client.clone(), deliveries_table, log_retention),
        resumes.clone(),
        log_retention,
    );
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
        .merge(redelivery::router(redeliveries))
        .merge(connections::router(provider_connections))
        .merge(export::router(log_exports));
    run(front_door(apis, &[API_PREFIX], invocation_id)).await
}

/// The Lambda invocation's id, which the answer and the logs carry as the request id.
fn invocation_id(extensions: &lambda_http::http::Extensions) -> Option<String> {
    let context = extensions.get::<lambda_http::Context>()?;
    Some(context.request_id.clone())
}
