//! The rate-limited case: one subscription limited to [`LIMIT`] attempts a second, drained by
//! [`WORKERS`] workers at once (each its own `Worker` and admission, as separate Lambdas are,
//! sharing the stores and the queue), [`PACED_EVENTS`] events. Achieved attempts/s ÷ the
//! limit, target 0.95–1.0: over the whole run (first to last delivery), and steady (the middle
//! 80 % of deliveries, without the drain at the end, where the last attempts sit out the
//! admission's one-second deferral and the limit idles); and what pacing costs: store calls,
//! slot reservations and requeues per attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use delivery::{Adapters, Handled, Worker};
use hookline_shared::adapters::memory::{
    CallMeter, MemoryDeliveries, MemoryEvents, MemoryLogs, MemoryQueue, MemorySubscriptions,
    MemoryWorkspaces,
};
use hookline_shared::delivery::RetrySchedule;
use hookline_shared::delivery_control::{RateLimit, Slot};
use hookline_shared::webhook::WebhookSender;
use hookline_shared::{
    Category, Created, Event, EventId, EventStore, FailureCounter, Inserted, Queue, QueueMessage,
    RateLimiter, RawJson, StoreError, Subscription, SubscriptionId, SubscriptionStore, Workspace,
    WorkspaceId, WorkspaceStore,
};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use super::{payload, subscription, Receiver, EVENT_TYPE};

pub const LIMIT: u32 = 50;
pub const WORKERS: usize = 4;
pub const PACED_EVENTS: usize = 500;
/// Messages each worker handles at once (an SQS batch).
const PER_WORKER: usize = 10;
const TARGET: (f64, f64) = (0.95, 1.0);
/// A run takes about `PACED_EVENTS / LIMIT` seconds; past this it has stalled.
const DEADLINE: Duration = Duration::from_secs(120);

/// The in-memory subscriptions, counting slot reservations apart from the other calls.
#[derive(Clone)]
struct CountedSlots {
    inner: MemorySubscriptions,
    reservations: Arc<AtomicU64>,
}

impl SubscriptionStore for CountedSlots {
    async fn create_subscription(&self, s: &Subscription) -> Result<Created, StoreError> {
        self.inner.create_subscription(s).await
    }
    async fn get_subscription(
        &self,
        ws: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        self.inner.get_subscription(ws, id).await
    }
    async fn list_subscriptions(&self, ws: &WorkspaceId) -> Result<Vec<Subscription>, StoreError> {
        self.inner.list_subscriptions(ws).await
    }
    async fn replace_subscription(
        &self,
        current: &Subscription,
        updated: &Subscription,
    ) -> Result<bool, StoreError> {
        self.inner.replace_subscription(current, updated).await
    }
    async fn delete_subscription(&self, current: &Subscription) -> Result<bool, StoreError> {
        self.inner.delete_subscription(current).await
    }
    async fn enabled_subscriptions_for(
        &self,
        ws: &WorkspaceId,
        event_type: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.inner.enabled_subscriptions_for(ws, event_type).await
    }
}

impl FailureCounter for CountedSlots {
    async fn record_failure(
        &self,
        ws: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        self.inner.record_failure(ws, id).await
    }
    async fn reset_failures(
        &self,
        ws: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        self.inner.reset_failures(ws, id).await
    }
}

impl RateLimiter for CountedSlots {
    async fn reserve(
        &self,
        ws: &WorkspaceId,
        id: &SubscriptionId,
        limit: RateLimit,
        now_micros: i64,
    ) -> Result<Slot, StoreError> {
        self.reservations.fetch_add(1, Ordering::Relaxed);
        self.inner.reserve(ws, id, limit, now_micros).await
    }
}

type PacedWorker = Worker<
    Adapters<
        MemoryWorkspaces,
        MemoryEvents,
        CountedSlots,
        MemoryDeliveries,
        MemoryLogs,
        MemoryQueue,
    >,
>;

/// What one run came to.
pub struct Paced {
    /// First to last delivery.
    pub attempts_per_sec: f64,
    /// The middle 80 % of deliveries.
    pub steady_per_sec: f64,
    pub store_calls: f64,
    pub reservations: f64,
    pub deferred: usize,
    pub posts: u64,
}

/// One worker's loop: up to [`PER_WORKER`] messages at once until `delivered` reaches the
/// run's deliveries; each delivery's completion time is recorded.
async fn work(worker: Arc<PacedWorker>, done: Arc<std::sync::Mutex<Vec<Instant>>>) -> usize {
    let mut in_flight = JoinSet::new();
    let mut deferred = 0;
    let started = Instant::now();
    while done.lock().unwrap().len() < PACED_EVENTS {
        assert!(started.elapsed() < DEADLINE, "the paced run stalled");
        let free = PER_WORKER - in_flight.len();
        let queue = &worker.ports.queue;
        let messages = if free > 0 {
            queue
                .receive(free as u32, Duration::from_secs(60), Duration::ZERO)
                .await
                .expect("in-memory queue")
        } else {
            Vec::new()
        };
        for message in messages {
            let worker = Arc::clone(&worker);
            in_flight.spawn(async move {
                let handled = worker.handle(&message.body).await;
                let at = Instant::now();
                let queue = &worker.ports.queue;
                queue.delete(&message.receipt).await.expect("no-op delete");
                (handled.expect("the worker failed a message"), at)
            });
        }
        // Delayed messages come due by themselves: look again soon if nothing finished.
        tokio::select! {
            finished = in_flight.join_next(), if !in_flight.is_empty() => {
                let (handled, at) = finished.expect("one task").expect("a bench task panicked");
                match handled {
                    Handled::Delivered => done.lock().unwrap().push(at),
                    Handled::Deferred => deferred += 1,
                    Handled::FannedOut { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
    deferred
}

pub fn run(rt: &Runtime, receiver: &Receiver, sender: &WebhookSender) -> Paced {
    let stores = CallMeter::new();
    let subscriptions = CountedSlots {
        inner: MemorySubscriptions::metered(Arc::clone(&stores)),
        reservations: Arc::new(AtomicU64::new(0)),
    };
    let ports = Adapters {
        workspaces: MemoryWorkspaces::metered(Arc::clone(&stores)),
        events: MemoryEvents::metered(Arc::clone(&stores)),
        subscriptions: subscriptions.clone(),
        deliveries: MemoryDeliveries::metered(Arc::clone(&stores)),
        logs: MemoryLogs::metered(Arc::clone(&stores)),
        queue: MemoryQueue::default(),
    };
    let workers: Vec<Arc<PacedWorker>> = (0..WORKERS)
        .map(|_| {
            Arc::new(Worker {
                ports: ports.clone(),
                sender: sender.clone(),
                schedule: RetrySchedule::new(vec![Duration::ZERO; 7], 0.0),
                log_retention: Duration::from_secs(7 * 86_400),
                paused_recheck: Duration::from_secs(900),
                admission: delivery::Admission::default(),
                filters: Default::default(),
            })
        })
        .collect();
    let now = Utc::now();
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        name: "bench".into(),
        created_at: now,
    };
    let mut limited = subscription(&workspace.id, receiver.url(0), now);
    limited.rate_limit_per_second = RateLimit::new(LIMIT);
    let (category, event_type) = EVENT_TYPE.split_once('.').expect("category.type");
    rt.block_on(async {
        ports.workspaces.create_workspace(&workspace).await.unwrap();
        ports
            .subscriptions
            .create_subscription(&limited)
            .await
            .unwrap();
        for i in 0..PACED_EVENTS {
            let event = Event::generic(
                EventId::generate(),
                workspace.id.clone(),
                format!("paced-{i:08}"),
                Category::parse(category).expect("a category"),
                event_type,
                now,
                now,
                RawJson::from_value(&payload(i)),
            );
            let inserted = ports.events.insert_if_absent(&event, i64::MAX).await;
            assert_eq!(inserted.unwrap(), Inserted::New);
            let message = QueueMessage::EventAccepted {
                workspace_id: event.workspace_id.clone(),
                event_id: event.id.clone(),
                dedup_id: event.dedup_id.clone(),
                not_before: None,
            };
            let body = message.to_body();
            ports.queue.send(&body, Duration::ZERO).await.unwrap();
        }
    });
    stores.take();
    receiver.take_posts();
    let done = Arc::new(std::sync::Mutex::new(Vec::with_capacity(PACED_EVENTS)));
    let deferred: usize = rt.block_on(async {
        let running: Vec<_> = workers
            .iter()
            .map(|w| tokio::spawn(work(Arc::clone(w), Arc::clone(&done))))
            .collect();
        let mut deferred = 0;
        for worker in running {
            deferred += worker.await.expect("a worker panicked");
        }
        deferred
    });
    let mut times = done.lock().unwrap().clone();
    times.sort();
    let rate =
        |from: usize, to: usize| (to - from) as f64 / (times[to] - times[from]).as_secs_f64();
    let last = times.len() - 1;
    let attempts = PACED_EVENTS as f64;
    let (_, store_calls) = stores.take();
    let reservations = subscriptions.reservations.load(Ordering::Relaxed);
    Paced {
        attempts_per_sec: rate(0, last),
        steady_per_sec: rate(last / 10, last - last / 10),
        store_calls: store_calls as f64 / attempts,
        reservations: reservations as f64 / attempts,
        deferred,
        posts: receiver.take_posts(),
    }
}

/// Runs the case and prints its lines of the report.
pub fn report(rt: &Runtime, receiver: &Receiver, sender: &WebhookSender) {
    let paced = run(rt, receiver, sender);
    assert_eq!(paced.posts, PACED_EVENTS as u64, "one POST per paced event");
    let (low, high) = TARGET;
    println!();
    println!(
        "rate limit {LIMIT}/s on one subscription, {WORKERS} workers x {PER_WORKER} in flight, \
         {PACED_EVENTS} events"
    );
    let verdict = |ratio: f64| {
        if (low..=high).contains(&ratio) {
            "ok"
        } else {
            "off target"
        }
    };
    for (label, per_sec) in [
        (
            "attempts/s vs the limit, first to last",
            paced.attempts_per_sec,
        ),
        (
            "attempts/s vs the limit, steady (middle 80 %)",
            paced.steady_per_sec,
        ),
    ] {
        // To the three places printed: timing noise must not read as over the limit.
        let ratio = (per_sec / f64::from(LIMIT) * 1000.0).round() / 1000.0;
        println!(
            "{label:<44} {per_sec:>10.1} {LIMIT:>10} {ratio:>6.3}x {:>8}  {}",
            format!("{low}-{high}"),
            verdict(ratio)
        );
    }
    println!(
        "  per attempt: {:.2} store calls, {:.2} of them slot reservations; {:.2} requeues to \
         wait (admission or a far slot); {} POSTs for {PACED_EVENTS} events",
        paced.store_calls,
        paced.reservations,
        paced.deferred as f64 / PACED_EVENTS as f64,
        paced.posts
    );
}
