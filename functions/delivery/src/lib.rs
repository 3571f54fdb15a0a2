//! Delivery worker: fans accepted events out to subscriptions and delivers signed webhooks,
//! retrying on a schedule and pausing subscriptions that keep failing.
//!
//! A queue message, or a record of the events table's stream (`stream.rs`), is dispatched
//! here to `fan_out.rs`, `attempt.rs` (which ends in
//! `settle.rs`) or `resume.rs`, all on one [`Ports`] set; [`Disposition`] then tells every
//! queue (SQS in `sqs.rs`, local mode's) what to do with the message.

mod admission;
mod attempt;
mod batching;
mod breaker;
mod fan_out;
mod filters;
mod invocation;
mod operational;
mod pacing;
mod ports;
mod queueing;
mod recover;
mod resume;
mod settle;
mod sqs;
mod stream;
#[cfg(feature = "stream-poller")]
pub mod stream_poller;

use std::time::Duration;

use chrono::Utc;
use hookline_shared::delivery::RetrySchedule;
use hookline_shared::delivery_control::Slot;
use hookline_shared::webhook::WebhookSender;
use hookline_shared::{EventId, QueueError, QueueMessage, StoreError};
use tracing::field::{display, Empty};
use tracing::{Instrument as _, Span};

pub use admission::{Admission, IsolationPolicy};
pub use breaker::BreakerPolicy;
pub use filters::FilterCache;
pub use invocation::handle_invocation;
pub use ports::{Adapters, Ports};
pub use settle::PAUSE_AFTER_FAILURES;
pub use sqs::handle_sqs;
pub use stream::{handle_stream, is_acceptance};

use queueing::Queued;

/// Everything the worker needs; built once per cold start (or once by local mode).
pub struct Worker<P> {
    pub ports: P,
    pub sender: WebhookSender,
    pub schedule: RetrySchedule,
    /// How long delivery logs stay readable.
    pub log_retention: Duration,
    /// How often work for a paused subscription looks again whether it was re-enabled. Enabling
    /// it resumes the work at once; this catches a resume that raced with parking.
    pub paused_recheck: Duration,
    /// Keeps one subscription's slow or failing receiver from holding everyone's slots.
    pub admission: Admission,
    /// Subscription filters compiled for this worker, once per subscription version.
    pub filters: FilterCache,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A message that can never succeed; logged and acknowledged, never retried.
    #[error("poison message: {0}")]
    Poison(String),
    #[error("event {0} not found")]
    EventMissing(EventId),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

impl WorkerError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, WorkerError::Poison(_))
    }
}

/// What handling one message did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    FannedOut {
        deliveries: usize,
    },
    Delivered,
    Retrying {
        next_attempt: u32,
        after: Duration,
    },
    GaveUp,
    /// Waiting for its time, for a paused subscription, for room at a busy or failing
    /// receiver, or for its rate-limited send slot; requeued with a delay, without using an
    /// attempt.
    Deferred,
    /// A re-enabled subscription's parked attempts, queued again.
    Resumed {
        deliveries: usize,
    },
    /// A page of a recovery's failed deliveries, reopened and queued again.
    Recovered {
        deliveries: usize,
    },
    /// Nothing to do: finished already, or another worker holds this attempt.
    Skipped,
}

pub type WorkerResult = Result<Handled, WorkerError>;

/// What a queue does with a message once it was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Handled, or poison that can never succeed: removed from the queue.
    Ack,
    /// A retryable failure: left for the queue to hand out again after its visibility timeout.
    Retry,
}

impl Disposition {
    /// The one retry-or-acknowledge policy; poison messages are logged, then acknowledged.
    pub fn of(result: &WorkerResult) -> Self {
        match result {
            Ok(handled) => {
                tracing::debug!(?handled, "message handled");
                Disposition::Ack
            }
            Err(err) if err.is_retryable() => {
                tracing::error!(error = %err, "message will be retried");
                Disposition::Retry
            }
            Err(err) => {
                tracing::error!(error = %err, "poison message acknowledged");
                Disposition::Ack
            }
        }
    }
}

/// The span of one queue message; what it concerns is recorded as the message is read.
fn message_span(message_id: Option<&str>) -> Span {
    tracing::info_span!(
        "message",
        message_id,
        workspace_id = Empty,
        event_id = Empty,
        subscription_id = Empty,
        delivery_id = Empty,
        attempt = Empty,
    )
}

impl<P: Ports> Worker<P> {
    /// Handles queue message `message_id` and says what its queue should do with it.
    pub async fn process(&self, message_id: &str, body: &str) -> Disposition {
        async { Disposition::of(&self.dispatch(body).await) }
            .instrument(message_span(Some(message_id)))
            .await
    }

    /// Handles one queue message body, whichever queue it came from.
    pub async fn handle(&self, body: &str) -> WorkerResult {
        self.dispatch(body).instrument(message_span(None)).await
    }

    async fn dispatch(&self, body: &str) -> WorkerResult {
        let message = QueueMessage::from_body(body)
            .map_err(|e| WorkerError::Poison(format!("unreadable message: {e}")))?;
        let now = Utc::now();
        let span = Span::current();
        match message {
            QueueMessage::EventAccepted {
                workspace_id,
                event_id,
                dedup_id,
                not_before,
            } => {
                span.record("workspace_id", display(&workspace_id));
                span.record("event_id", display(&event_id));
                self.fan_out(&workspace_id, &event_id, &dedup_id, not_before, now)
                    .await
            }
            QueueMessage::Deliver {
                workspace_id,
                delivery_id,
                subscription_id,
                attempt,
                not_before,
                resumed,
                slot_micros,
            } => {
                span.record("workspace_id", display(&workspace_id));
                span.record("delivery_id", display(&delivery_id));
                span.record("attempt", attempt);
                if let Some(subscription_id) = &subscription_id {
                    span.record("subscription_id", display(subscription_id));
                }
                let queued = Queued {
                    subscription: subscription_id,
                    attempt,
                    not_before,
                    resumed,
                    slot: slot_micros.map(Slot),
                };
                self.attempt(&workspace_id, &delivery_id, queued, now).await
            }
            QueueMessage::Resume {
                workspace_id,
                subscription_id,
                after,
            } => {
                span.record("workspace_id", display(&workspace_id));
                span.record("subscription_id", display(&subscription_id));
                self.resume(&workspace_id, &subscription_id, after, now)
                    .await
            }
            QueueMessage::FlushBatch {
                workspace_id,
                subscription_id,
                batch,
                not_before,
            } => {
                span.record("workspace_id", display(&workspace_id));
                span.record("subscription_id", display(&subscription_id));
                span.record("delivery_id", display(&batch));
                self.flush_batch(&workspace_id, &subscription_id, &batch, not_before, now)
                    .await
            }
            QueueMessage::Recover(recovery) => {
                span.record("workspace_id", display(&recovery.workspace_id));
                span.record("subscription_id", display(&recovery.subscription_id));
                self.recover(recovery).await
            }
        }
    }
}
