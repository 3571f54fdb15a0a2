//! One Lambda entry point for every event source of the delivery function: the deliveries
//! queue (SQS) and the events table's stream (DynamoDB), told apart by their records'
//! `eventSource`.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::{handle_sqs, handle_stream, Ports, Worker};

const DYNAMODB_SOURCE: &str = "aws:dynamodb";

/// Dispatches one invocation and answers its `batchItemFailures`: message ids for SQS,
/// sequence numbers for the stream. An empty batch is answered as an empty SQS one.
pub async fn handle_invocation<P: Ports>(
    worker: &Worker<P>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let (payload, context) = (event.payload, event.context);
    if payload["Records"][0]["eventSource"] == DYNAMODB_SOURCE {
        let records: StreamEvent = serde_json::from_value(payload)?;
        Ok(serde_json::to_value(handle_stream(worker, records).await)?)
    } else {
        let messages: SqsEvent = serde_json::from_value(payload)?;
        let response = handle_sqs(worker, LambdaEvent::new(messages, context)).await?;
        Ok(serde_json::to_value(response)?)
    }
}
