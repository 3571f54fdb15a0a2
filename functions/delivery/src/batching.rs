//! Batched subscriptions: events gather per subscription and go as one signed POST.
//!
//! At fan-out an event joins its subscription's gathering batch (`BatchStore::gather`, one
//! atomic write that also creates the event's delivery, so an event is in exactly one batch
//! and a repeated fan-out adds nothing). Opening a batch queues a `FlushBatch` delayed by
//! `max_wait_seconds`; filling one queues a `FlushBatch` at once. A flush seals the batch and
//! makes its first attempt through the same path as any delivery (admission, claim and lease,
//! pause and parking, retries, failure count), the batch record being a delivery of its own;
//! the second flush of a batch finds that attempt claimed or made and does nothing. A worker
//! that dies after a join but before queuing the flush has its fan-out message handed out
//! again; the join is then found made, and the flush is queued anyway, so no batch waits
//! forever.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use hookline_shared::batch::{batch_body, member_size, BatchId, Gathered};
use hookline_shared::delivery::{envelope, Delivery, DeliveryId};
use hookline_shared::delivery_control::BatchLimits;
use hookline_shared::queue_message::MAX_QUEUE_DELAY;
use hookline_shared::{
    BatchStore as _, Event, EventStore as _, Queue as _, QueueMessage, RawJson, Subscription,
    SubscriptionId, Workspace, WorkspaceId,
};

use crate::queueing::Queued;
use crate::{Handled, Ports, Worker, WorkerError, WorkerResult};

/// Member events read at once while a batch is put together.
const MEMBER_READS_AT_ONCE: usize = 16;

/// A batch ready to send: its body, and each member's own delivery and envelope for its log.
pub(crate) struct Assembled {
    pub id: BatchId,
    pub body: RawJson,
    pub members: Vec<(Delivery, RawJson)>,
}

impl<P: Ports> Worker<P> {
    /// Puts `event` into `subscription`'s gathering batch and queues the flushes it calls for.
    pub(crate) async fn gather(
        &self,
        event: &Event,
        subscription: &Subscription,
        limits: &BatchLimits,
        now: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let member = Delivery::new(event, subscription, now);
        let size = member_size(event.payload.as_json().len());
        let gathered = self
            .ports
            .deliveries()
            .gather(&member, limits, size, now)
            .await?;
        let (workspace, id) = (&subscription.workspace_id, &subscription.id);
        match gathered {
            Gathered::Joined {
                batch,
                opened,
                sealed,
                ..
            } => {
                for full in &sealed {
                    self.queue_flush(workspace, id, full, Duration::ZERO)
                        .await?;
                }
                if opened && !sealed.contains(&batch) {
                    self.queue_flush(workspace, id, &batch, limits.max_wait)
                        .await?;
                }
            }
            // Joined by an earlier run, which may have died before queuing the flush.
            Gathered::Already { batch: Some(batch) } => {
                self.queue_flush(workspace, id, &batch, limits.max_wait)
                    .await?;
            }
            Gathered::Already { batch: None } => {}
        }
        Ok(())
    }

    async fn queue_flush(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        batch: &DeliveryId,
        wait: Duration,
    ) -> Result<(), WorkerError> {
        let not_before = (wait > MAX_QUEUE_DELAY).then(|| {
            (Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()).timestamp()
        });
        self.send_flush(workspace, subscription, batch, not_before, wait)
            .await
    }

    async fn send_flush(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        batch: &DeliveryId,
        not_before: Option<i64>,
        wait: Duration,
    ) -> Result<(), WorkerError> {
        let message = QueueMessage::FlushBatch {
            workspace_id: workspace.clone(),
            subscription_id: subscription.clone(),
            batch: batch.clone(),
            not_before,
        };
        let delay = wait.min(MAX_QUEUE_DELAY);
        self.ports.queue().send(&message.to_body(), delay).await?;
        Ok(())
    }

    /// Seals `batch` and makes its first attempt, unless that attempt is made or held; a
    /// flush that arrives before its time (a wait longer than one message delay) waits on.
    pub(crate) async fn flush_batch(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        batch: &DeliveryId,
        not_before: Option<i64>,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        let early = not_before.map_or(0, |at| at - now.timestamp());
        if early > 0 {
            let wait = Duration::from_secs(early as u64);
            self.send_flush(workspace, subscription, batch, not_before, wait)
                .await?;
            return Ok(Handled::Deferred);
        }
        self.ports
            .deliveries()
            .seal_batch(workspace, subscription, batch)
            .await?;
        let first = Queued {
            subscription: Some(subscription.clone()),
            attempt: 1,
            not_before: 0,
            resumed: false,
            slot: None,
        };
        self.attempt(workspace, batch, first, now).await
    }

    /// The body of batch record `batch`: each member's envelope, in the order they joined.
    /// Members whose event expired meanwhile are left out; `None` when none is left.
    pub(crate) async fn assemble(
        &self,
        batch: &Delivery,
        workspace: &Workspace,
        subscription: &Subscription,
    ) -> Result<Option<Assembled>, WorkerError> {
        let members = self
            .ports
            .deliveries()
            .batch_members(&batch.workspace_id, &batch.id)
            .await?;
        let events = self.ports.events();
        let read: Vec<(Delivery, Option<Event>)> = stream::iter(members)
            .map(|member| async move {
                let stored = events
                    .get_event_by_dedup(&batch.workspace_id, &member.event_dedup_id)
                    .await?;
                let event = stored.filter(|e| e.id == member.event_id);
                Ok::<_, WorkerError>((member.delivery_in(batch), event))
            })
            .buffered(MEMBER_READS_AT_ONCE)
            .try_collect()
            .await?;
        let mut members = Vec::with_capacity(read.len());
        for (delivery, event) in read {
            let Some(event) = event else {
                tracing::warn!(delivery_id = %delivery.id, "event expired before its batch went; left out");
                continue;
            };
            let body = envelope(&delivery, &event, workspace, subscription).map_err(|e| {
                WorkerError::Poison(format!("event {} has an unreadable payload: {e}", event.id))
            })?;
            members.push((delivery, body));
        }
        if members.is_empty() {
            return Ok(None);
        }
        let id = BatchId::of(&batch.id);
        let envelopes: Vec<RawJson> = members.iter().map(|(_, body)| body.clone()).collect();
        let body = batch_body(&id, &envelopes)
            .map_err(|e| WorkerError::Poison(format!("batch {id} does not serialize: {e}")))?;
        Ok(Some(Assembled { id, body, members }))
    }
}
