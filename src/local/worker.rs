//! Local mode's delivery worker: polls both embedded queues and hands each message to the
//! same worker the delivery Lambda runs.

use std::sync::Arc;
use std::time::Duration;

use delivery::Disposition;
use hookline_shared::adapters::EmbeddedQueue;
use hookline_shared::{Queue as _, ReceivedMessage};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::{LocalStack, LocalWorker};

/// A received message stays invisible this long: longer than an attempt's claim (60 s), so a
/// message that failed mid-attempt comes back only once its claim can be taken over.
const WORKER_VISIBILITY: Duration = Duration::from_secs(90);
/// The longest an idle worker waits before it looks at the queues again; a send wakes it at
/// once and a delayed message's due time sooner.
const WORKER_IDLE_WAIT: Duration = Duration::from_secs(5);
/// Messages the local worker handles at once.
const WORKER_CONCURRENCY: usize = 32;

impl LocalStack {
    /// Runs the delivery worker on both queues until `shutdown` turns true, then waits for the
    /// attempts in flight. Unfinished messages stay queued for the next start.
    pub async fn run_worker(&self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(WORKER_CONCURRENCY));
        let mut in_flight = JoinSet::new();
        while !*shutdown.borrow() {
            if permits.available_permits() == 0 {
                // Every slot is busy: the next look is worth it once one frees up.
                tokio::select! {
                    _ = in_flight.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut idle = true;
            for queue in [&self.events_queue, &self.deliveries_queue] {
                let free = permits.available_permits().min(10) as u32;
                if free == 0 {
                    break;
                }
                let messages = match queue.receive(free, WORKER_VISIBILITY, Duration::ZERO).await {
                    Ok(messages) => messages,
                    Err(err) => {
                        tracing::error!(error = %err, "local queue unavailable");
                        Vec::new()
                    }
                };
                idle &= messages.is_empty();
                for message in messages {
                    let permit = Arc::clone(&permits)
                        .acquire_owned()
                        .await
                        .expect("semaphore is never closed");
                    let (worker, queue) = (Arc::clone(&self.worker), queue.clone());
                    in_flight.spawn(async move {
                        handle_local_message(&worker, &queue, message).await;
                        drop(permit);
                    });
                }
            }
            while in_flight.try_join_next().is_some() {}
            if idle {
                let queues = [&self.events_queue, &self.deliveries_queue];
                tokio::select! {
                    _ = EmbeddedQueue::wait_for_work(&queues, WORKER_IDLE_WAIT) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
    }
}

/// Deletes a message the worker acknowledges; one to retry stays queued and comes back after
/// its visibility timeout, as on SQS.
async fn handle_local_message(
    worker: &LocalWorker,
    queue: &EmbeddedQueue,
    message: ReceivedMessage,
) {
    if worker.process(&message.message_id, &message.body).await == Disposition::Retry {
        return;
    }
    if let Err(err) = queue.delete(&message.receipt).await {
        tracing::warn!(message_id = message.message_id, error = %err, "handled message not deleted; it will be handled again");
    }
}
