//! The rest of a recovery's window: a page of failed deliveries reopened and queued per
//! message, continuing in a message of its own, as a resume does.

use std::time::Duration;

use hookline_shared::redelivery::Recovery;
use hookline_shared::{Queue as _, QueueMessage, SubscriptionStore as _};

use crate::{Handled, Ports, Worker, WorkerResult};

impl<P: Ports> Worker<P> {
    /// Queues one more page of `recovery`. A page handled twice (a retried message) queues
    /// nothing twice: each delivery is reopened once for the attempt after its failed one.
    pub(crate) async fn recover(&self, recovery: Recovery) -> WorkerResult {
        let subscription = self
            .ports
            .subscriptions()
            .get_subscription(&recovery.workspace_id, &recovery.subscription_id)
            .await?;
        if !subscription.is_some_and(|s| s.is_enabled) {
            // Paused or deleted since: what is parked resumes when it is enabled again.
            tracing::info!(job_id = %recovery.job_id, "recovery stopped: subscription paused or gone");
            return Ok(Handled::Recovered { deliveries: 0 });
        }
        let ports = &self.ports;
        let (queued, rest) = recovery
            .step::<_, _, _, crate::WorkerError>(ports.logs(), ports.deliveries(), ports.queue())
            .await?;
        if let Some(rest) = rest {
            let message = QueueMessage::Recover(rest);
            ports
                .queue()
                .send(&message.to_body(), Duration::ZERO)
                .await?;
        }
        tracing::info!(job_id = %recovery.job_id, queued, "recovery page queued");
        Ok(Handled::Recovered { deliveries: queued })
    }
}
