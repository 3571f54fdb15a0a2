//! Delivery Lambda wiring: config, AWS clients, the HTTP sender, then the runtime loop.

use delivery::{handle_invocation, Adapters, Admission, IsolationPolicy, Worker};
use hookline_shared::adapters::aws_clients::bounded;
use hookline_shared::adapters::{
    CachedWorkspaces, DynamoDeliveries, DynamoEvents, DynamoLogs, DynamoSubscriptions,
    DynamoWorkspaces, SqsQueue,
};
use hookline_shared::config::{
    days_from_env, flag, init_lambda_logging, required, retry_schedule_from_env,
    ALLOW_PRIVATE_TARGETS, DEFAULT_LOG_RETENTION_DAYS, DELIVERIES_QUEUE_URL, DELIVERIES_TABLE,
    EVENTS_TABLE, LOGS_TABLE, LOG_RETENTION_DAYS, SUBSCRIPTIONS_TABLE, WORKSPACES_TABLE,
};
use hookline_shared::webhook::{SenderConfig, WebhookSender};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

/// Paused subscriptions are looked at again on this period.
const PAUSED_RECHECK: std::time::Duration = std::time::Duration::from_secs(900);

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_lambda_logging();
    let workspaces_table = required(WORKSPACES_TABLE)?;
    let events_table = required(EVENTS_TABLE)?;
    let subscriptions_table = required(SUBSCRIPTIONS_TABLE)?;
    let deliveries_table = required(DELIVERIES_TABLE)?;
    let logs_table = required(LOGS_TABLE)?;
    let queue_url = required(DELIVERIES_QUEUE_URL)?;
    let log_retention = days_from_env(LOG_RETENTION_DAYS, DEFAULT_LOG_RETENTION_DAYS)?;
    let schedule = retry_schedule_from_env()?;
    let allow_private = flag(ALLOW_PRIVATE_TARGETS)?;
    // A silent store fails the message in seconds (and SQS redelivers it) rather than holding
    // the whole batch until the function's timeout.
    let aws = bounded(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let ports = Adapters {
        workspaces: CachedWorkspaces::new(DynamoWorkspaces::new(
            dynamodb.clone(),
            workspaces_table,
        )),
        events: DynamoEvents::new(dynamodb.clone(), events_table),
        subscriptions: DynamoSubscriptions::new(dynamodb.clone(), subscriptions_table),
        deliveries: DynamoDeliveries::new(dynamodb.clone(), deliveries_table, log_retention),
        logs: DynamoLogs::new(dynamodb, logs_table),
        queue: SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url),
    };
    let worker = Worker {
        ports,
        sender: WebhookSender::new(SenderConfig::production_allowing_private(allow_private)),
        schedule,
        log_retention,
        paused_recheck: PAUSED_RECHECK,
        admission: Admission::new(IsolationPolicy::from_env()?),
        filters: Default::default(),
    };
    // The deliveries queue and the events table's stream invoke the same function.
    run(service_fn(|event: LambdaEvent<_>| {
        handle_invocation(&worker, event)
    }))
    .await
}
