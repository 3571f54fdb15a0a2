//! The Lambda entry point for the exports queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use hookline_shared::export::{ExportJobStore, ExportSink, Mailer};
use hookline_shared::LogStore;
use lambda_runtime::LambdaEvent;

use crate::{Disposition, ExportWorker};

/// One record after another (the event source sends one at a time); only a job given back for
/// another try returns to SQS (`ReportBatchItemFailures`).
pub async fn handle_sqs<J, L, S, M>(
    worker: &ExportWorker<J, L, S, M>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    J: ExportJobStore,
    L: LogStore,
    S: ExportSink,
    M: Mailer,
{
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let message_id = record.message_id.unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        if worker.process(&message_id, body).await == Disposition::Retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}
