//! An in-memory queue with SQS's delay, visibility, receive-count and redrive semantics.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CallMeter, Metered};
use crate::adapters::long_poll;
use crate::error::QueueError;
use crate::ports::{Queue, ReceivedMessage};

/// How often an empty long poll looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

#[derive(Debug)]
struct Message {
    id: String,
    body: String,
    visible_at: Instant,
    receive_count: u32,
    /// The receipt of the latest receive; earlier ones are stale.
    receipt: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Message>,
    sent: u64,
}

/// Where messages go after `max_receives` receives.
#[derive(Debug, Clone)]
struct Redrive {
    dead_letters: MemoryQueue,
    max_receives: u32,
}

/// Cloning shares the queue.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    inner: Arc<Metered<State>>,
    redrive: Option<Box<Redrive>>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::metered(CallMeter::new())
    }
}

impl MemoryQueue {
    pub fn metered(meter: Arc<CallMeter>) -> Self {
        Self {
            inner: Arc::new(Metered::new(meter)),
            redrive: None,
        }
    }

    /// Moves a message to `dead_letters` instead of handing it out a `max_receives + 1`th time.
    pub fn with_redrive(mut self, dead_letters: MemoryQueue, max_receives: u32) -> Self {
        self.redrive = Some(Box::new(Redrive {
            dead_letters,
            max_receives,
        }));
        self
    }

    /// Messages in the queue, visible or not.
    pub fn depth(&self) -> usize {
        self.inner.lock().messages.len()
    }

    /// Messages not visible now: delayed, or in flight.
    pub fn waiting(&self) -> usize {
        let now = Instant::now();
        let state = self.inner.lock();
        state.messages.iter().filter(|m| m.visible_at > now).count()
    }

    fn receive_now(&self, max: u32, visibility: Duration) -> Vec<ReceivedMessage> {
        let mut dead = Vec::new();
        let received = self.inner.call(|state| {
            let now = Instant::now();
            let mut received = Vec::new();
            let mut i = 0;
            while i < state.messages.len() && received.len() < max.max(1) as usize {
                if state.messages[i].visible_at > now {
                    i += 1;
                    continue;
                }
                let count = state.messages[i].receive_count;
                let spent = self
                    .redrive
                    .as_ref()
                    .is_some_and(|r| count >= r.max_receives);
                if spent {
                    dead.extend(state.messages.remove(i));
                    continue;
                }
                let message = &mut state.messages[i];
                message.receive_count += 1;
                message.visible_at = now + visibility;
                let receipt = format!("{}:{}", message.id, message.receive_count);
                message.receipt = Some(receipt.clone());
                received.push(ReceivedMessage {
                    message_id: message.id.clone(),
                    receipt,
                    body: message.body.clone(),
                    receive_count: message.receive_count,
                });
                i += 1;
            }
            received
        });
        if let Some(redrive) = &self.redrive {
            let mut dlq = redrive.dead_letters.inner.lock();
            for mut message in dead {
                message.receive_count = 0;
                message.receipt = None;
                message.visible_at = Instant::now();
                dlq.messages.push_back(message);
            }
        }
        received
    }

    /// The message the receipt was last handed out with.
    fn with_receipt<R>(
        &self,
        receipt: &str,
        f: impl FnOnce(&mut State, usize) -> R,
    ) -> Result<R, QueueError> {
        self.inner.call(|state| {
            let at = state
                .messages
                .iter()
                .position(|m| m.receipt.as_deref() == Some(receipt))
                .ok_or(QueueError::InvalidReceipt)?;
            Ok(f(state, at))
        })
    }
}

impl MemoryQueue {
    /// Adds a message without counting a call: how an outbox's write also queues its message.
    pub(super) fn push(&self, body: &str, delay: Duration) -> String {
        let mut state = self.inner.lock();
        {
            state.sent += 1;
            let id = format!("msg-{}", state.sent);
            state.messages.push_back(Message {
                id: id.clone(),
                body: body.to_owned(),
                visible_at: Instant::now() + delay,
                receive_count: 0,
                receipt: None,
            });
            id
        }
    }
}

impl Queue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        Ok(self.inner.meter.time(|| self.push(body, delay)))
    }

    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let look = || std::future::ready(Ok(self.receive_now(max, visibility)));
        long_poll(wait, POLL_INTERVAL, look).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        // SQS accepts a stale receipt's delete too; the message is gone either way.
        let _ = self.with_receipt(receipt, |state, at| state.messages.remove(at));
        Ok(())
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        self.with_receipt(receipt, |state, at| {
            state.messages[at].visible_at = Instant::now() + visibility;
        })
    }
}
