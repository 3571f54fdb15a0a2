//! One delivery attempt: claimed, checked against its subscription and event, paced to its
//! send slot if the subscription is rate-limited, sent, logged.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use hookline_shared::batch::BatchId;
use hookline_shared::delivery::{
    envelope, Delivery, DeliveryId, DeliveryLog, DeliveryState, DeliveryStatus,
};
use hookline_shared::webhook::{Attempt, AttemptOutcome};
use hookline_shared::{
    Claim, DeliveryStore as _, EventStore as _, LogStore as _, RawJson, Subscription,
    SubscriptionStore as _, WorkspaceId, WorkspaceStore as _,
};
use tracing::field::display;

use crate::pacing::Paced;
use crate::queueing::Queued;
use crate::{Handled, Ports, Worker, WorkerError, WorkerResult};

/// How long a worker holds an attempt; longer than the HTTP timeout plus bookkeeping.
const ATTEMPT_LEASE: Duration = Duration::from_secs(60);

impl<P: Ports> Worker<P> {
    /// Makes attempt `queued.attempt` of delivery `id` once its time has come, unless another
    /// worker holds it, it is finished, or its subscription is paused (then it is parked).
    pub(crate) async fn attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        queued: Queued,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        let early = queued.not_before - now.timestamp();
        if early > 0 {
            // The rest of a wait longer than one message delay.
            let wait = Duration::from_secs(early as u64);
            self.queue_attempt(workspace, id, queued, wait).await?;
            return Ok(Handled::Deferred);
        }
        // Admitted before anything is claimed: a deferred attempt leaves no lease behind.
        let ticket = match &queued.subscription {
            Some(subscription) => match self.admission.admit(subscription).await {
                Ok(ticket) => Some(ticket),
                Err(wait) => {
                    tracing::debug!(?wait, "subscription busy or its breaker open; deferred");
                    self.queue_attempt(workspace, id, queued, wait).await?;
                    return Ok(Handled::Deferred);
                }
            },
            None => None,
        };
        let Queued {
            attempt,
            resumed,
            slot,
            ..
        } = queued;
        // An admitted attempt may have waited for its place; it is signed and logged as of now.
        let now = Utc::now();
        let deliveries = self.ports.deliveries();
        let delivery = match deliveries
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
        let span = tracing::Span::current();
        span.record("event_id", display(&delivery.event_id));
        span.record("subscription_id", display(&delivery.subscription_id));
        // Independent reads, made at once: an attempt waits for one round trip, not two. A
        // batch reads its members' events once it knows it will send.
        let (subscription, stored) = tokio::join!(
            self.ports
                .subscriptions()
                .get_subscription(workspace, &delivery.subscription_id),
            async {
                if delivery.is_batch {
                    return Ok(None);
                }
                self.ports
                    .events()
                    .get_event_by_dedup(workspace, &delivery.event_dedup_id)
                    .await
            },
        );
        let Some(subscription) = subscription? else {
            tracing::info!("subscription deleted; delivery abandoned");
            deliveries
                .finish_attempt(workspace, id, attempt, DeliveryState::GaveUp)
                .await?;
            return Ok(Handled::GaveUp);
        };
        if !subscription.is_enabled {
            // Kept, not dropped: parked until the subscription is enabled again, which queues
            // it at once, and looked at again later in case that resume raced with parking. A
            // copy a resume queued leaves that later look to the recheck already queued.
            deliveries.park_attempt(&delivery, attempt).await?;
            if !resumed {
                let recheck = self.paused_recheck;
                self.requeue(workspace, id, &subscription.id, attempt, now, recheck)
                    .await?;
            }
            return Ok(Handled::Deferred);
        }
        let stored = stored?;
        let workspace_record = self.ports.workspaces().get_workspace(workspace).await?;
        let workspace_record = workspace_record
            .ok_or_else(|| WorkerError::Poison(format!("workspace {workspace} not found")))?;
        let outgoing = if delivery.is_batch {
            self.assemble(&delivery, &workspace_record, &subscription)
                .await?
                .map(|batch| {
                    (
                        batch.body,
                        batch.id.to_string(),
                        batch.members,
                        Some(batch.id),
                    )
                })
        } else {
            match stored.filter(|e| e.id == delivery.event_id) {
                Some(event) => {
                    let body = envelope(&delivery, &event, &workspace_record, &subscription)
                        .map_err(|e| {
                            WorkerError::Poison(format!(
                                "event {} has an unreadable payload: {e}",
                                event.id
                            ))
                        })?;
                    Some((
                        body.clone(),
                        id.to_string(),
                        vec![(delivery.clone(), body)],
                        None,
                    ))
                }
                None => None,
            }
        };
        let Some((body, webhook_id, members, batch)) = outgoing else {
            tracing::warn!("event expired before delivery; giving up");
            deliveries
                .finish_attempt(workspace, id, attempt, DeliveryState::GaveUp)
                .await?;
            return Ok(Handled::GaveUp);
        };
        // Paced after the body is built (a batch's too), just before it goes.
        let now = match self
            .pace(&delivery, &subscription, attempt, resumed, slot, now)
            .await?
        {
            Paced::Send(now) => now,
            Paced::Requeued => return Ok(Handled::Deferred),
        };
        let secrets: Vec<&str> = subscription
            .signing_secrets(now)
            .map(|s| s.value.as_str())
            .collect();
        let result = self
            .sender
            .send(
                &subscription.webhook_url,
                &webhook_id,
                now.timestamp(),
                body.as_json(),
                &secrets,
            )
            .await;
        tracing::info!(
            status_code = result.status_code, duration_ms = result.duration_ms,
            outcome = ?result.outcome, error = result.error.as_deref(),
            events = members.len(), "delivery attempt"
        );
        // The logs (one per event, a batch's each naming it) and the bookkeeping touch
        // different items, so they are written at once.
        let logs = join_all(members.into_iter().map(|(member, delivered)| {
            self.write_log(
                member,
                &subscription,
                attempt,
                delivered,
                &result,
                now,
                batch.as_ref(),
            )
        }));
        let (_, settled) = tokio::join!(
            logs,
            self.settle(&subscription, id, attempt, &result, now, ticket),
        );
        self.report_attempt(&delivery, &subscription, attempt, &result, &settled, now)
            .await;
        settled
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_log(
        &self,
        delivery: Delivery,
        subscription: &Subscription,
        attempt: u32,
        delivered: RawJson,
        result: &Attempt,
        now: DateTime<Utc>,
        batch: Option<&BatchId>,
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
            batch_id: batch.map(ToString::to_string),
        };
        // The attempt happened whether or not its log is written; failing here would repeat it.
        if let Err(err) = self.ports.logs().append_log(&log).await {
            tracing::error!(error = %err, "delivery log not written");
        }
    }
}
