//! Fan-out: one delivery per enabled subscription of an accepted event's type.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use hookline_shared::delivery::{Delivery, DeliveryState};
use hookline_shared::delivery_control::Filter;
use hookline_shared::queue_message::MAX_QUEUE_DELAY;
use hookline_shared::{
    DeliveryStore as _, Event, EventId, EventStore as _, Queue as _, QueueMessage, Subscription,
    SubscriptionStore as _, WorkspaceId,
};

use crate::{Handled, Ports, Worker, WorkerError, WorkerResult};

impl<P: Ports> Worker<P> {
    /// Creates one delivery per enabled subscription of the event's type and queues its first
    /// attempt, once `not_before` (its `deliver_at`, epoch seconds) has come. Creation is
    /// idempotent, so a retried fan-out never doubles a delivery.
    pub(crate) async fn fan_out(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
        dedup_id: &str,
        not_before: Option<i64>,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        let early = not_before.map_or(0, |at| at - now.timestamp());
        if early > 0 {
            // Held for its `deliver_at`, a queue delay at a time.
            let rest = QueueMessage::EventAccepted {
                workspace_id: workspace.clone(),
                event_id: event_id.clone(),
                dedup_id: dedup_id.to_owned(),
                not_before,
            };
            let wait = Duration::from_secs(early as u64).min(MAX_QUEUE_DELAY);
            self.ports.queue().send(&rest.to_body(), wait).await?;
            return Ok(Handled::Deferred);
        }
        // Missing is retried, not dropped: SQS parks the message in its DLQ if it never shows.
        let event = self
            .ports
            .events()
            .get_event_by_dedup(workspace, dedup_id)
            .await?
            .ok_or_else(|| WorkerError::EventMissing(event_id.clone()))?;
        if &event.id != event_id {
            // The original expired and a newer event took its dedup id; that one has its own message.
            tracing::info!("event superseded before fan-out");
            return Ok(Handled::Skipped);
        }
        let subscriptions = self
            .ports
            .subscriptions()
            .enabled_subscriptions_for(workspace, event.full_type())
            .await?;
        // An operational event never reaches the subscription it is about. A filtered-out
        // event makes no delivery and no log; its view is built once, and only when some
        // subscription filters.
        let mut view = None;
        let chosen: Vec<&Subscription> = subscriptions
            .iter()
            .filter(|s| !event.is_about(&s.id))
            .filter(|s| {
                self.filters
                    .admits(s, &mut view, || Filter::view_of(&event))
            })
            .collect();
        // Every subscription gets its chance even if one fails; the first error makes the
        // message retry, and the deliveries already queued are not queued again.
        let results = join_all(chosen.iter().map(|s| async {
            match s.delivery_mode.batch_limits() {
                Some(limits) => self.gather(&event, s, &limits, now).await,
                None => self.start_delivery(&event, s, now).await,
            }
        }))
        .await;
        match results.into_iter().find_map(Result::err) {
            Some(err) => Err(err),
            None => Ok(Handled::FannedOut {
                deliveries: chosen.len(),
            }),
        }
    }

    /// Creates the event's delivery to `subscription` and queues its first attempt for when
    /// the subscription's mode and the event's `deliver_at` allow.
    async fn start_delivery(
        &self,
        event: &Event,
        subscription: &Subscription,
        now: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let delivery = self
            .ports
            .deliveries()
            .create_delivery(&Delivery::new(event, subscription, now))
            .await?;
        if delivery.state == DeliveryState::Pending && delivery.attempts == 0 {
            let due = subscription
                .delivery_mode
                .first_attempt_at(event.received_at, event.deliver_at);
            let wait = (due - now).to_std().unwrap_or(Duration::ZERO);
            let (workspace, id) = (&delivery.workspace_id, &delivery.id);
            self.requeue(workspace, id, &subscription.id, 1, now, wait)
                .await?;
        }
        Ok(())
    }
}
