//! The Lambda entry point for the events table's stream, the outbox of accepted events: each
//! record's new image is an accepted event, fanned out exactly as its `event_accepted`
//! message would be (and held back the same way until its `deliver_at`).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use futures_util::future::join_all;
use hookline_shared::adapters::DynamoEvents;
use tracing::field::display;
use tracing::{Instrument as _, Span};

use crate::{message_span, Disposition, Handled, Ports, Worker, WorkerError, WorkerResult};

/// Whether a record is an acceptance. An event item is written only when an event is
/// accepted: a new one is an INSERT, and one replacing an expired record its TTL has not
/// removed yet is a MODIFY. REMOVEs (TTL expiry) carry no new image and nothing to do. The
/// event source mapping's filter lets the same two kinds through.
pub fn is_acceptance(record: &EventRecord) -> bool {
    matches!(record.event_name.as_str(), "INSERT" | "MODIFY")
}

/// Every record handled concurrently, each in its own span. Retryable failures are answered
/// by sequence number (`ReportBatchItemFailures`), and Lambda retries the shard from the first
/// of them; a record that can never succeed is logged and passed over, so it never blocks its
/// shard.
pub async fn handle_stream<P: Ports>(
    worker: &Worker<P>,
    event: StreamEvent,
) -> DynamoDbEventResponse {
    let dispositions = join_all(event.records.iter().map(|record| async move {
        let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
        (worker.process_record(record).await, sequence_number)
    }))
    .await;
    let mut response = DynamoDbEventResponse::default();
    for (disposition, sequence_number) in dispositions {
        if disposition == Disposition::Retry {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            response.batch_item_failures.push(failure);
        }
    }
    response
}

impl<P: Ports> Worker<P> {
    /// Handles one stream record and says whether it must be retried.
    pub async fn process_record(&self, record: &EventRecord) -> Disposition {
        let span = message_span(record.change.sequence_number.as_deref());
        async { Disposition::of(&self.accepted(record).await) }
            .instrument(span)
            .await
    }

    async fn accepted(&self, record: &EventRecord) -> WorkerResult {
        if !is_acceptance(record) {
            return Ok(Handled::Skipped);
        }
        let image: HashMap<String, AttributeValue> = record.change.new_image.clone().into();
        let event = DynamoEvents::event_from_image(&image)
            .map_err(|e| WorkerError::Poison(format!("unreadable event image: {e}")))?;
        let span = Span::current();
        span.record("workspace_id", display(&event.workspace_id));
        span.record("event_id", display(&event.id));
        let not_before = event.not_before().map(|at| at.timestamp());
        self.fan_out(
            &event.workspace_id,
            &event.id,
            &event.dedup_id,
            not_before,
            Utc::now(),
        )
        .await
    }
}
