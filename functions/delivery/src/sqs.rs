//! The Lambda entry point for the deliveries and events queues.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;
use lambda_runtime::LambdaEvent;

use crate::{Disposition, Ports, Worker};

/// Every record handled concurrently, each in its own span; only retryable failures go back
/// to SQS (`ReportBatchItemFailures`), poison messages are logged and acknowledged.
pub async fn handle_sqs<P: Ports>(
    worker: &Worker<P>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = event.payload.records;
    let dispositions = join_all(records.into_iter().map(|record| async move {
        let message_id = record.message_id.unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        (worker.process(&message_id, body).await, message_id)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (disposition, message_id) in dispositions {
        if disposition == Disposition::Retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}
