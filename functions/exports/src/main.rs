//! Exports Lambda wiring: config, the DynamoDB, S3 and SES clients, then the runtime loop.

// The S3 and SES clients' futures nest deeper than the default limit allows.
#![recursion_limit = "256"]

use std::time::Duration;

use exports::{handle_sqs, ExportWorker};
use hookline_shared::adapters::s3::S3Sink;
use hookline_shared::adapters::ses::SesMailer;
use hookline_shared::adapters::{DynamoExports, DynamoLogs};
use hookline_shared::config::{flag, init_lambda_logging, required, LOGS_TABLE};
use hookline_shared::export::settings::{
    EXPORTS_BUCKET, EXPORTS_TABLE, EXPORT_SENDER, S3_FORCE_PATH_STYLE,
};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

/// A claim's length; renewed every third of it while the export runs, so a worker that dies
/// lets its job go within two minutes of its last renewal.
const LEASE: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_lambda_logging();
    let exports_table = required(EXPORTS_TABLE)?;
    let logs_table = required(LOGS_TABLE)?;
    let bucket = required(EXPORTS_BUCKET)?;
    let sender = required(EXPORT_SENDER)?;
    let path_style = flag(S3_FORCE_PATH_STYLE)?;
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(path_style)
            .build(),
    );
    let worker = ExportWorker {
        jobs: DynamoExports::new(dynamodb.clone(), exports_table),
        logs: DynamoLogs::new(dynamodb, logs_table),
        sink: S3Sink::new(s3, bucket),
        mailer: SesMailer::new(aws_sdk_sesv2::Client::new(&aws), sender),
        lease: LEASE,
    };
    run(service_fn(|event: LambdaEvent<_>| {
        handle_sqs(&worker, event)
    }))
    .await
}
