//! Resuming a re-enabled subscription: its parked attempts queued again, a page per message.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use hookline_shared::delivery::DeliveryId;
use hookline_shared::{DeliveryStore as _, Queue as _, QueueMessage, SubscriptionId, WorkspaceId};

use crate::queueing::Queued;
use crate::{Handled, Ports, Worker, WorkerResult};

/// Parked deliveries one resume message queues; more continue in a message of their own.
const RESUME_PAGE: usize = 100;

impl<P: Ports> Worker<P> {
    /// Queues the attempts parked for a subscription that was enabled again, a page per
    /// message. A page queued twice (a retried message) is harmless: each attempt is claimed
    /// once, and its copies are skipped.
    pub(crate) async fn resume(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        after: Option<DeliveryId>,
        now: DateTime<Utc>,
    ) -> WorkerResult {
        let parked = self
            .ports
            .deliveries()
            .parked_attempts(workspace, subscription, after.as_ref(), RESUME_PAGE)
            .await?;
        let sent = join_all(parked.iter().map(|(id, attempt)| {
            let queued = Queued {
                subscription: Some(subscription.clone()),
                attempt: *attempt,
                not_before: now.timestamp(),
                resumed: true,
                slot: None,
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
            self.ports
                .queue()
                .send(&rest.to_body(), Duration::ZERO)
                .await?;
        }
        tracing::info!(deliveries = parked.len(), "parked deliveries resumed");
        Ok(Handled::Resumed {
            deliveries: parked.len(),
        })
    }
}
