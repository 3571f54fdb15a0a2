//! Delivery worker: fans accepted events out to subscriptions and delivers signed webhooks,
//! retrying on a schedule and pausing subscriptions that keep failing.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use hookline_shared::delivery::{
    envelope, Delivery, DeliveryId, DeliveryLog, DeliveryState, DeliveryStatus, RetrySchedule,
};
use hookline_shared::webhook::{Attempt, AttemptOutcome, WebhookSender};
use hookline_shared::{
    Claim, DeliveryStore, Event, EventId, EventStore, FailureCounter, LogStore, Queue, QueueError,
    QueueMessage, RawJson, StoreError, Subscription, SubscriptionId, SubscriptionStore,
    WorkspaceId, WorkspaceStore,
};
use lambda_runtime::LambdaEvent;

/// Consecutive failed attempts after which a subscription is paused.
pub const PAUSE_AFTER_FAILURES: u32 = 10;
/// How long a worker holds an attempt; longer than the HTTP timeout plus bookkeeping.
const ATTEMPT_LEASE: Duration = Duration::from_secs(60);
/// SQS refuses longer message delays; longer waits are chained.
const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);
/// Tries to pause a subscription that is being edited at the same moment.
const PAUSE_TRIES: usize = 3;
/// Parked deliveries one resume message queues; more continue in a message of their own.
const RESUME_PAGE: usize = 100;

/// Everything the worker needs; built once per cold start (or once by local mode).
pub struct Worker<W, E, S, D, L, Q> {
    pub workspaces: W,
    pub events: E,
    pub subscriptions: S,
    pub deliveries: D,
    pub logs: L,
    /// The deliveries queue: attempts (and their chained delays) travel here.
    pub queue: Q,
    pub sender: WebhookSender,
    pub schedule: RetrySchedule,
    /// How long delivery logs stay readable.
    pub log_retention: Duration,
    /// How often work for a paused subscription looks again whether it was re-enabled. Enabling
    /// it resumes the work at once; this catches a resume that raced with parking.
    pub paused_recheck: Duration,
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
    /// Waiting for its time, or for a paused subscription; requeued with a delay.
    Deferred,
    /// A re-enabled subscription's parked attempts, queued again.
    Resumed {
        deliveries: usize,
    },
    /// Nothing to do: finished already, or another worker holds this attempt.
    Skipped,
}

type WorkerResult = Result<Handled, WorkerError>;

/// One queued attempt, as its `Deliver` message carries it.
#[derive(Debug, Clone, Copy)]
struct Queued {
    attempt: u32,
    /// Epoch seconds before which the attempt is not made.
    not_before: i64,
    /// Queued by a resume rather than by the schedule or a recheck.
    resumed: bool,
}

impl<W, E, S, D, L, Q> Worker<W, E, S, D, L, Q>
where
    W: WorkspaceStore,
    E: EventStore,
    S: SubscriptionStore + FailureCounter,
    D: DeliveryStore,
    L: LogStore,
    Q: Queue,
{
    /// Handles one queue message body, whichever queue it came from.
    pub async fn handle(&self, body: &str) -> WorkerResult {
        let message = QueueMessage::from_body(body)
            .map_err(|e| WorkerError::Poison(format!("unreadable message: {e}")))?;
        let now = Utc::now();
        match message {
            QueueMessage::EventAccepted {
                workspace_id,
                event_id,
                dedup_id,
            } => self.fan_out(&workspace_id, &event_id, &dedup_id, now).await,
            QueueMessage::Deliver {
                workspace_id,
                delivery_id,
                attempt,
                not_before,
                resumed,
            } => {
                let queued = Queued {
                    attempt,
                    not_before,
                    resumed,
                };
                self.deliver(&workspace_id, &delivery_id, queued, now).await
            }
            QueueMessage::Resume {
                workspace_id,
                subscription_id,
                after,
            } => {
                self.resume(&workspace_id, &subscription_id, after, now)
                    .await
            }
        }
    }

    /// Queues the attempts parked for a subscription that was enabled again, a page per
    /// message. A page queued twice (a retried message) is harmless: each attempt is claimed
    /// once, and its copies are skipped.
    async fn resume(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        after: Option<DeliveryId>,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        let parked = self
            .deliveries
            .parked_attempts(workspace, subscription, after.as_ref(), RESUME_PAGE)
            .await?;
        let sent = join_all(parked.iter().map(|(id, attempt)| {
            let queued = Queued {
                attempt: *attempt,
                not_before: now.timestamp(),
                resumed: true,
            };
            self.queue_attempt(workspace, id, queued, Duration::ZERO)
        }))
        .await;
        if let Some(err) = sent.into_iter().find_map(Result::err) {
            return Err(err);
        }
        if parked.len() == RESUME_PAGE {
            let rest = QueueMessage::Resume {
                workspace_id: workspace.clone(),
                subscription_id: subscription.clone(),
                after: parked.last().map(|(id, _)| id.clone()),
            };
            self.queue.send(&rest.to_body(), Duration::ZERO).await?;
        }
        tracing::info!(%workspace, subscription_id = %subscription, deliveries = parked.len(), "parked deliveries resumed");
        Ok(Handled::Resumed {
            deliveries: parked.len(),
        })
    }

    /// Creates one delivery per enabled subscription of the event's type and queues its first
    /// attempt. Creation is idempotent, so a retried fan-out never doubles a delivery.
    async fn fan_out(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
        dedup_id: &str,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        // Missing is retried, not dropped: SQS parks the message in its DLQ if it never shows.
        let event = self
            .events
            .get_event_by_dedup(workspace, dedup_id)
            .await?
            .ok_or_else(|| WorkerError::EventMissing(event_id.clone()))?;
        if &event.id != event_id {
            // The original expired and a newer event took its dedup id; that one has its own message.
            tracing::info!(%workspace, %event_id, "event superseded before fan-out");
            return Ok(Handled::Skipped);
        }
        let subscriptions = self
            .subscriptions
            .enabled_subscriptions_for(workspace, &event.full_type())
            .await?;
        // Every subscription gets its chance even if one fails; the first error makes the
        // message retry, and the deliveries already queued are not queued again.
        let results = join_all(
            subscriptions
                .iter()
                .map(|s| self.start_delivery(&event, s, now)),
        )
        .await;
        match results.into_iter().find_map(Result::err) {
            Some(err) => Err(err),
            None => Ok(Handled::FannedOut {
                deliveries: subscriptions.len(),
            }),
        }
    }

    async fn start_delivery(
        &self,
        event: &Event,
        subscription: &Subscription,
        now: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let delivery = self
            .deliveries
            .create_delivery(&Delivery::new(event, subscription, now))
            .await?;
        if delivery.state == DeliveryState::Pending && delivery.attempts == 0 {
            self.requeue(&delivery.workspace_id, &delivery.id, 1, now, Duration::ZERO)
                .await?;
        }
        Ok(())
    }

    async fn deliver(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        queued: Queued,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        let Queued {
            attempt, resumed, ..
        } = queued;
        let early = queued.not_before - now.timestamp();
        if early > 0 {
            // The rest of a wait longer than one message delay.
            self.queue_attempt(workspace, id, queued, Duration::from_secs(early as u64))
                .await?;
            return Ok(Handled::Deferred);
        }
        let delivery = match self
            .deliveries
            .claim_attempt(workspace, id, attempt, ATTEMPT_LEASE)
            .await?
        {
            Claim::Claimed(delivery) => delivery,
            Claim::Unavailable => return Ok(Handled::Skipped),
            Claim::Missing => {
                return Err(WorkerError::Poison(format!(
                    "delivery {id} of {workspace} not found"
                )))
            }
        };
        // Independent reads, made at once: an attempt waits for one round trip, not two.
        let (subscription, stored) = tokio::join!(
            self.subscriptions
                .get_subscription(workspace, &delivery.subscription_id),
            self.events
                .get_event_by_dedup(workspace, &delivery.event_dedup_id),
        );
        let Some(subscription) = subscription? else {
            tracing::info!(%workspace, delivery_id = %id, "subscription deleted; delivery abandoned");
            self.deliveries
                .finish_attempt(workspace, id, attempt, DeliveryState::GaveUp)
                .await?;
            return Ok(Handled::GaveUp);
        };
        if !subscription.is_enabled {
            // Kept, not dropped: parked until the subscription is enabled again, which queues
            // it at once, and looked at again later in case that resume raced with parking. A
            // copy a resume queued leaves that later look to the recheck already queued.
            self.deliveries.park_attempt(&delivery, attempt).await?;
            if !resumed {
                self.requeue(workspace, id, attempt, now, self.paused_recheck)
                    .await?;
            }
            return Ok(Handled::Deferred);
        }
        let Some(event) = stored?.filter(|e| e.id == delivery.event_id) else {
            tracing::warn!(%workspace, delivery_id = %id, "event expired before delivery; giving up");
            self.deliveries
                .finish_attempt(workspace, id, attempt, DeliveryState::GaveUp)
                .await?;
            return Ok(Handled::GaveUp);
        };
        let workspace_record = self.workspaces.get_workspace(workspace).await?;
        let workspace_record = workspace_record
            .ok_or_else(|| WorkerError::Poison(format!("workspace {workspace} not found")))?;
        let body = envelope(&delivery, &event, &workspace_record, &subscription).map_err(|e| {
            WorkerError::Poison(format!("event {} has an unreadable payload: {e}", event.id))
        })?;
        let secrets: Vec<&str> = subscription
            .signing_secrets(now)
            .map(|s| s.value.as_str())
            .collect();
        let result = self
            .sender
            .send(
                &subscription.webhook_url,
                id.as_str(),
                now.timestamp(),
                body.as_json(),
                &secrets,
            )
            .await;
        tracing::info!(
            %workspace, delivery_id = %id, subscription_id = %subscription.id, attempt,
            status_code = result.status_code, duration_ms = result.duration_ms,
            outcome = ?result.outcome, error = result.error.as_deref(), "delivery attempt"
        );
        // The log and the bookkeeping touch different items, so they are written at once.
        let (_, settled) = tokio::join!(
            self.write_log(&delivery, &subscription, attempt, body, &result, now),
            self.settle(&subscription, id, attempt, &result, now),
        );
        settled
    }

    /// Records how attempt `attempt` went: finished, or failed and counted and, while the
    /// schedule allows, the next attempt queued.
    async fn settle(
        &self,
        subscription: &Subscription,
        id: &DeliveryId,
        attempt: u32,
        result: &Attempt,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        let workspace = &subscription.workspace_id;
        if result.outcome == AttemptOutcome::Success {
            let (finished, reset) = tokio::join!(
                self.deliveries
                    .finish_attempt(workspace, id, attempt, DeliveryState::Succeeded),
                self.subscriptions
                    .reset_failures(workspace, &subscription.id),
            );
            if let Err(err) = reset {
                tracing::warn!(%workspace, subscription_id = %subscription.id, error = %err, "failure count not reset");
            }
            finished?;
            return Ok(Handled::Delivered);
        }
        // Counted (and paused) before the next attempt is queued, so none follows a pause.
        self.count_failure(subscription, result, now).await;
        match self.schedule.next_delay(attempt, result.retry_after) {
            Some(after) => {
                // Queued before the attempt is marked finished: a failed send retries this
                // message, which could not claim a finished attempt again.
                self.requeue(workspace, id, attempt + 1, now, after).await?;
                self.deliveries
                    .finish_attempt(workspace, id, attempt, DeliveryState::Pending)
                    .await?;
                Ok(Handled::Retrying {
                    next_attempt: attempt + 1,
                    after,
                })
            }
            None => {
                tracing::warn!(%workspace, delivery_id = %id, attempt, "retries exhausted; delivery kept for replay");
                self.deliveries
                    .finish_attempt(workspace, id, attempt, DeliveryState::GaveUp)
                    .await?;
                Ok(Handled::GaveUp)
            }
        }
    }

    /// Queues attempt `attempt`, not to be made until `wait` after `now`. The message delay is
    /// capped at SQS's 15 minutes; an attempt that arrives early re-queues itself.
    async fn requeue(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        now: DateTime<Utc>,
        wait: Duration,
    ) -> Result<(), WorkerError> {
        let queued = Queued {
            attempt,
            not_before: later(now, wait),
            resumed: false,
        };
        self.queue_attempt(workspace, id, queued, wait).await
    }

    async fn queue_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        queued: Queued,
        wait: Duration,
    ) -> Result<(), WorkerError> {
        let message = QueueMessage::Deliver {
            workspace_id: workspace.clone(),
            delivery_id: id.clone(),
            attempt: queued.attempt,
            not_before: queued.not_before,
            resumed: queued.resumed,
        };
        self.queue
            .send(&message.to_body(), wait.min(MAX_QUEUE_DELAY))
            .await?;
        Ok(())
    }

    /// Counts a failed attempt and pauses the subscription on 410 Gone or a long failure run.
    /// Bookkeeping errors are logged: they must not turn a finished attempt into a repeat.
    async fn count_failure(
        &self,
        subscription: &Subscription,
        result: &Attempt,
        now: DateTime<Utc>,
    ) {
        let (workspace, id) = (&subscription.workspace_id, &subscription.id);
        let failures = match self.subscriptions.record_failure(workspace, id).await {
            Ok(count) => count,
            Err(err) => {
                tracing::warn!(%workspace, subscription_id = %id, error = %err, "failure not counted");
                return;
            }
        };
        let reason = if result.outcome == AttemptOutcome::Gone {
            Some("The endpoint answered 410 Gone".to_owned())
        } else if failures >= PAUSE_AFTER_FAILURES {
            Some(format!("{failures} consecutive failed delivery attempts"))
        } else {
            None
        };
        if let Some(reason) = reason {
            if let Err(err) = self.pause(subscription, reason, now).await {
                tracing::warn!(%workspace, subscription_id = %id, error = %err, "subscription not paused");
            }
        }
    }

    async fn pause(
        &self,
        subscription: &Subscription,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let (workspace, id) = (&subscription.workspace_id, &subscription.id);
        for _ in 0..PAUSE_TRIES {
            let Some(current) = self.subscriptions.get_subscription(workspace, id).await? else {
                return Ok(());
            };
            if !current.is_enabled {
                return Ok(());
            }
            let paused = Subscription {
                is_enabled: false,
                paused_reason: Some(reason.clone()),
                paused_at: Some(now),
                version: current.version + 1,
                ..current.clone()
            };
            if self
                .subscriptions
                .replace_subscription(&current, &paused)
                .await?
            {
                // Re-enabled later, it starts a fresh run.
                self.subscriptions.reset_failures(workspace, id).await?;
                tracing::warn!(%workspace, subscription_id = %id, reason, "subscription paused");
                return Ok(());
            }
        }
        Ok(())
    }

    async fn write_log(
        &self,
        delivery: &Delivery,
        subscription: &Subscription,
        attempt: u32,
        delivered: RawJson,
        result: &Attempt,
        now: DateTime<Utc>,
    ) {
        let log = DeliveryLog {
            id: uuid::Uuid::now_v7()
                .simple()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .to_owned(),
            workspace_id: delivery.workspace_id.clone(),
            event_id: delivery.event_id.clone(),
            subscription_id: delivery.subscription_id.clone(),
            delivery_id: delivery.id.clone(),
            event_type: delivery.event_type.clone(),
            webhook_url: subscription.webhook_url.clone(),
            delivery_status: if result.outcome == AttemptOutcome::Success {
                DeliveryStatus::Success
            } else {
                DeliveryStatus::Failed
            },
            status_code: result.status_code,
            response_body: result.response_body.clone(),
            delivered_event_obj: delivered,
            created_at: now,
            attempt,
            duration_ms: result.duration_ms,
            error: result.error.clone(),
            expires_at: now.timestamp() + self.log_retention.as_secs() as i64,
        };
        // The attempt happened whether or not its log is written; failing here would repeat it.
        if let Err(err) = self.logs.append_log(&log).await {
            tracing::error!(workspace = %log.workspace_id, delivery_id = %log.delivery_id, error = %err, "delivery log not written");
        }
    }
}

fn later(now: DateTime<Utc>, after: Duration) -> i64 {
    (now + chrono::Duration::from_std(after).unwrap_or_default()).timestamp()
}

/// The Lambda entry point: every record handled concurrently; only retryable failures go back
/// to SQS (`ReportBatchItemFailures`), poison messages are logged and acknowledged.
pub async fn handle_sqs<W, E, S, D, L, Q>(
    worker: &Worker<W, E, S, D, L, Q>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    W: WorkspaceStore,
    E: EventStore,
    S: SubscriptionStore + FailureCounter,
    D: DeliveryStore,
    L: LogStore,
    Q: Queue,
{
    let records = event.payload.records;
    let outcomes = join_all(records.iter().map(|record| async {
        let body = record.body.as_deref().unwrap_or_default();
        (record.message_id.clone(), worker.handle(body).await)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        let message_id = message_id.unwrap_or_default();
        match outcome {
            Ok(handled) => tracing::debug!(message_id, ?handled, "message handled"),
            Err(err) if err.is_retryable() => {
                tracing::error!(message_id, error = %err, "message will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
            }
            Err(err) => tracing::error!(message_id, error = %err, "poison message acknowledged"),
        }
    }
    Ok(response)
}
