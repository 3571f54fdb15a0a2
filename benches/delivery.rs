//! Delivery worker throughput against a loopback receiver, relative to a bare reqwest loop.
//!
//! 100 subscriptions (one receiver path each) and 40 `emails.sent` events of ~1 KB fan out to
//! 4000 deliveries. The worker (in-memory ports, the real `WebhookSender`) drains them with at
//! most 32 messages in flight; a bare `reqwest::Client` POSTs the same number of same-size
//! bodies to the same paths at the same concurrency. Rounds alternate and the medians give
//! deliveries/s divided by requests/s (target: at least 0.9x). A `WebhookSender`-only loop is
//! measured alongside to split the gap between the sender and the worker's bookkeeping.
//!
//! Then every tenth receiver path answers 500 the first time it sees a `webhook-id`, and the
//! POSTs the receiver counted are divided by the ideal (one per delivery, two for those
//! paths; target: at most 1.05x).
//!
//! Then one subscription limited to 50 attempts a second is drained by 4 workers at once
//! (`pacing/`): achieved attempts/s ÷ the limit (target 0.95–1.0), and store calls and slot
//! reservations per attempt.
//!
//! It is a measurement, not a test: it exits 0 whatever the ratios, and panics only when the
//! worker errors or deliveries do not finish. Run with `cargo bench --bench delivery`;
//! `DELIVERY_BENCH_PROFILE=bare|sender|worker` runs one side only, repeatedly, for a profiler.

mod common;
mod pacing;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use common::median;
use cpu_time::ThreadTime;
use delivery::{Adapters, Handled, Worker};
use hookline_shared::adapters::memory::{
    CallMeter, MemoryDeliveries, MemoryEvents, MemoryLogs, MemoryQueue, MemorySubscriptions,
    MemoryWorkspaces,
};
use hookline_shared::delivery::{envelope, Delivery, DeliveryId, RetrySchedule};
use hookline_shared::webhook::{sign, AttemptOutcome, SenderConfig, WebhookSender};
use hookline_shared::{
    Category, Event, EventId, EventStore, Inserted, NewSubscription, Queue, QueueMessage, RawJson,
    Subscription, SubscriptionStore, SubscriptionType, Workspace, WorkspaceId, WorkspaceStore,
};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// Receiver paths `/r0` .. `/r99`, one subscription each.
const PATHS: usize = 100;
/// Events per run; each fans out to every subscription.
const EVENTS: usize = 40;
const DELIVERIES: usize = EVENTS * PATHS;
/// Messages (or bare requests) in flight at once.
const CONCURRENCY: usize = 32;
const ROUNDS: usize = 3;
/// Events of the warm-up runs, which open the connection pools.
const WARMUP_EVENTS: usize = 4;
/// Serialized payload size of every event.
const PAYLOAD_BYTES: usize = 1024;
const EVENT_TYPE: &str = "emails.sent";
/// Every path `n` with `n % FAILING_EVERY == 0` fails once per delivery in the second part.
const FAILING_EVERY: usize = 10;
/// Events per wave in the fail-once run that stays under the auto-pause threshold (10).
const WAVE_EVENTS: usize = 8;
const TARGET_THROUGHPUT: f64 = 0.9;
const TARGET_POSTS: f64 = 1.05;
/// Paused work is requeued with this delay, so it waits in the in-memory queue until the end.
const PAUSED_RECHECK: Duration = Duration::from_secs(900);
/// Iterations of each single-thread cost measurement.
const MICRO_ITERS: u32 = 2000;

// ---------------------------------------------------------------------------------------------
// In-memory ports

/// One per fixture; the stores count into `stores`, the queue into `queue`.
#[derive(Default)]
struct Meters {
    stores: Arc<CallMeter>,
    queue: Arc<CallMeter>,
}

type BenchWorker = Worker<
    Adapters<
        MemoryWorkspaces,
        MemoryEvents,
        MemorySubscriptions,
        MemoryDeliveries,
        MemoryLogs,
        MemoryQueue,
    >,
>;

// ---------------------------------------------------------------------------------------------
// Receiver

/// POSTs per path, and the `webhook-id`s the failing paths have already refused once.
struct ReceiverState {
    posts: Vec<AtomicU64>,
    fail_once: AtomicBool,
    seen: Mutex<HashSet<String>>,
}

/// An HTTP/1 server on 127.0.0.1 with its own runtime on its own threads (named `recv-*`).
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Self {
        let state = Arc::new(ReceiverState {
            posts: (0..PATHS).map(|_| AtomicU64::new(0)).collect(),
            fail_once: AtomicBool::new(false),
            seen: Mutex::new(HashSet::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let app = Router::new()
            .route("/{name}", post(answer))
            .with_state(Arc::clone(&state));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("recv-main".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("recv-worker")
                    .enable_all()
                    .build()
                    .expect("receiver runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        served = axum::serve(listener, app) => served.expect("receiver serves"),
                        _ = stopped => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("receiver thread");
        Receiver {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self, n: usize) -> String {
        format!("http://{}/r{n}", self.addr)
    }

    /// POSTs counted since the last call.
    fn take_posts(&self) -> u64 {
        let posts = &self.state.posts;
        posts.iter().map(|p| p.swap(0, Ordering::Relaxed)).sum()
    }

    fn set_fail_once(&self, on: bool) {
        self.state.seen.lock().unwrap().clear();
        self.state.fail_once.store(on, Ordering::Relaxed);
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("receiver thread exits");
        }
    }
}

async fn answer(
    State(state): State<Arc<ReceiverState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    _body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(n) = name
        .strip_prefix('r')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < PATHS)
    else {
        return (StatusCode::NOT_FOUND, "no such path");
    };
    state.posts[n].fetch_add(1, Ordering::Relaxed);
    if n % FAILING_EVERY == 0 && state.fail_once.load(Ordering::Relaxed) {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if state.seen.lock().unwrap().insert(id.to_owned()) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "try again");
        }
    }
    (StatusCode::OK, "ok")
}

// ---------------------------------------------------------------------------------------------
// Fixture

/// One workspace, one subscription per receiver path, and `events` stored events.
struct Fixture {
    worker: Arc<BenchWorker>,
    meters: Arc<Meters>,
    workspace: Workspace,
    subscriptions: Vec<Subscription>,
    events: Vec<Event>,
}

/// A ~1 KB email payload; the body text is padded so the JSON is exactly [`PAYLOAD_BYTES`].
fn payload(i: usize) -> Value {
    let build = |fill: usize| {
        json!({
            "eventId": format!("bench-{i:08}"),
            "eventTimestamp": "2024-02-03T10:30:00Z",
            "eventType": "sent",
            "subject": "Following up on the rollout plan",
            "body": {
                "text": "Thanks for walking us through the rollout plan. ".repeat(fill / 49 + 1)[..fill].to_owned(),
                "html": "<p>Hi Jordan,</p><p>Following up on the rollout plan.</p>",
            },
            "from": {"email": "alex.morgan@acme.io", "name": "Alex Morgan"},
            "to": [{"email": "jordan.lee@globex.com", "name": "Jordan Lee"}],
            "conversationId": "conv-2024-0203-001",
        })
    };
    let base = build(0).to_string().len();
    let value = build(PAYLOAD_BYTES.saturating_sub(base));
    assert_eq!(value.to_string().len(), PAYLOAD_BYTES, "payload size");
    value
}

fn subscription(workspace: &WorkspaceId, url: String, now: DateTime<Utc>) -> Subscription {
    let new = NewSubscription {
        webhook_url: url,
        event_types: vec![EVENT_TYPE.into()],
        is_enabled: true,
        kind: SubscriptionType::default(),
        created_by: Some("bench".into()),
        ..Default::default()
    };
    Subscription::new(workspace.clone(), new, now)
}

impl Fixture {
    fn new(rt: &Runtime, receiver: &Receiver, sender: &WebhookSender, events: usize) -> Self {
        let meters = Arc::new(Meters::default());
        let worker = Arc::new(Worker {
            ports: Adapters {
                workspaces: MemoryWorkspaces::metered(Arc::clone(&meters.stores)),
                events: MemoryEvents::metered(Arc::clone(&meters.stores)),
                // One workspace holds all `PATHS` subscriptions, over the product's limit.
                subscriptions: MemorySubscriptions::metered_with_limit(
                    Arc::clone(&meters.stores),
                    PATHS,
                ),
                deliveries: MemoryDeliveries::metered(Arc::clone(&meters.stores)),
                logs: MemoryLogs::metered(Arc::clone(&meters.stores)),
                queue: MemoryQueue::metered(Arc::clone(&meters.queue)),
            },
            sender: sender.clone(),
            schedule: RetrySchedule::new(vec![Duration::ZERO; 7], 0.0),
            log_retention: Duration::from_secs(7 * 86_400),
            paused_recheck: PAUSED_RECHECK,
            admission: delivery::Admission::default(),
            filters: Default::default(),
        });
        let now = Utc::now();
        let workspace = Workspace {
            id: WorkspaceId::generate(),
            name: "bench".into(),
            created_at: now,
        };
        let subscriptions: Vec<Subscription> = (0..PATHS)
            .map(|n| subscription(&workspace.id, receiver.url(n), now))
            .collect();
        let (category, event_type) = EVENT_TYPE.split_once('.').expect("category.type");
        let events: Vec<Event> = (0..events)
            .map(|i| {
                Event::generic(
                    EventId::generate(),
                    workspace.id.clone(),
                    format!("bench-{i:08}"),
                    Category::parse(category).expect("a category"),
                    event_type,
                    now,
                    now,
                    RawJson::from_value(&payload(i)),
                )
            })
            .collect();
        rt.block_on(async {
            let w = &worker.ports;
            w.workspaces.create_workspace(&workspace).await.unwrap();
            for s in &subscriptions {
                w.subscriptions.create_subscription(s).await.unwrap();
            }
            for e in &events {
                let inserted = w.events.insert_if_absent(e, i64::MAX).await.unwrap();
                assert_eq!(inserted, Inserted::New);
            }
        });
        meters.stores.take();
        Fixture {
            worker,
            meters,
            workspace,
            subscriptions,
            events,
        }
    }

    /// Queues the `EventAccepted` message of events `range`, as ingest does.
    fn accept(&self, rt: &Runtime, range: std::ops::Range<usize>) {
        rt.block_on(async {
            for e in &self.events[range] {
                let message = QueueMessage::EventAccepted {
                    workspace_id: e.workspace_id.clone(),
                    event_id: e.id.clone(),
                    dedup_id: e.dedup_id.clone(),
                    not_before: None,
                };
                let queue = &self.worker.ports.queue;
                queue
                    .send(&message.to_body(), Duration::ZERO)
                    .await
                    .unwrap();
            }
        });
        self.meters.queue.take();
    }

    /// The body, id and secret of one delivery, exactly as the worker would send it.
    fn sample(&self) -> (String, DeliveryId, String) {
        let (event, sub) = (&self.events[0], &self.subscriptions[0]);
        let delivery = Delivery::new(event, sub, Utc::now());
        let body = envelope(&delivery, event, &self.workspace, sub)
            .expect("bench payloads are JSON")
            .as_json()
            .to_owned();
        (body, delivery.id, sub.current_secret().value.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Driving

/// Runs tasks with at most [`CONCURRENCY`] in flight, asking `next(free)` for more whenever a
/// slot is free, until it has none and nothing is in flight. Returns the wall time from the
/// first `next` to the last completion. Panics after `max_completions`.
async fn drive<T, F, N, NF>(
    max_completions: usize,
    mut next: N,
    mut done: impl FnMut(T),
) -> Duration
where
    N: FnMut(usize) -> NF,
    NF: Future<Output = Vec<F>>,
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut in_flight = JoinSet::new();
    let start = Instant::now();
    for _ in 0..max_completions {
        let free = CONCURRENCY - in_flight.len();
        if free > 0 {
            for task in next(free).await {
                in_flight.spawn(task);
            }
        }
        match in_flight.join_next().await {
            Some(result) => done(result.expect("a bench task panicked")),
            None => return start.elapsed(),
        }
    }
    panic!("work did not finish within {max_completions} completions");
}

/// What the worker's messages came to.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    fanned_out: usize,
    delivered: usize,
    retrying: usize,
    deferred: usize,
    skipped: usize,
    gave_up: usize,
}

impl Tally {
    fn absorb(&mut self, t: Tally) {
        for (sum, part) in [
            (&mut self.fanned_out, t.fanned_out),
            (&mut self.delivered, t.delivered),
            (&mut self.retrying, t.retrying),
            (&mut self.deferred, t.deferred),
            (&mut self.skipped, t.skipped),
            (&mut self.gave_up, t.gave_up),
        ] {
            *sum += part;
        }
    }

    fn add(&mut self, handled: Handled) {
        match handled {
            Handled::FannedOut { deliveries } => self.fanned_out += deliveries,
            Handled::Delivered => self.delivered += 1,
            Handled::Retrying { .. } => self.retrying += 1,
            Handled::Deferred => self.deferred += 1,
            Handled::Skipped => self.skipped += 1,
            Handled::GaveUp => self.gave_up += 1,
            Handled::Resumed { .. } => {
                unreachable!("the bench never enables a paused subscription")
            }
            Handled::Recovered { .. } => unreachable!("the bench never recovers a subscription"),
        }
    }
}

/// Drains the fixture's queue through the worker; any worker error panics.
fn run_worker(rt: &Runtime, fixture: &Fixture, deliveries: usize) -> (Duration, Tally) {
    let worker = &fixture.worker;
    let mut tally = Tally::default();
    let elapsed = rt.block_on(drive(
        8 * (EVENTS + 2 * deliveries),
        |free| async move {
            let messages = worker
                .ports
                .queue
                .receive(free as u32, Duration::from_secs(60), Duration::ZERO)
                .await
                .expect("in-memory queue");
            messages
                .into_iter()
                .map(|m| {
                    let worker = Arc::clone(worker);
                    async move {
                        let handled = worker.handle(&m.body).await;
                        if handled.is_ok() {
                            worker
                                .ports
                                .queue
                                .delete(&m.receipt)
                                .await
                                .expect("no-op delete");
                        }
                        handled.map_err(|e| e.to_string())
                    }
                })
                .collect()
        },
        |handled| match handled {
            Ok(handled) => tally.add(handled),
            Err(err) => panic!("the worker failed a message: {err}"),
        },
    ));
    (elapsed, tally)
}

/// `count` round-robin POSTs with `send`, which must report success for each.
fn run_requests<F>(
    rt: &Runtime,
    receiver: &Receiver,
    count: usize,
    send: impl Fn(String) -> F,
) -> Duration
where
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let urls: Vec<String> = (0..PATHS).map(|n| receiver.url(n)).collect();
    let mut started = 0;
    let elapsed = rt.block_on(drive(
        count + 1,
        |free| {
            let take = free.min(count - started);
            let tasks: Vec<F> = (started..started + take)
                .map(|i| send(urls[i % PATHS].clone()))
                .collect();
            started += take;
            async move { tasks }
        },
        |result| result.expect("a request failed"),
    ));
    assert_eq!(started, count);
    elapsed
}

/// A bare reqwest POST of `body` with Standard-Webhooks-like headers; reads the answer.
fn bare_post(
    client: &reqwest::Client,
    url: String,
    body: &Bytes,
    headers: &reqwest::header::HeaderMap,
) -> impl Future<Output = Result<(), String>> + Send + 'static {
    let request = client
        .post(url)
        .headers(headers.clone())
        .body(body.clone())
        .send();
    async move {
        let response = request.await.map_err(|e| e.to_string())?;
        let status = response.status();
        response.bytes().await.map_err(|e| e.to_string())?;
        status
            .is_success()
            .then_some(())
            .ok_or_else(|| format!("status {status}"))
    }
}

// ---------------------------------------------------------------------------------------------
// CPU per side, from /proc (Linux; `None` elsewhere)

/// Nanoseconds each live thread has run, and whether it belongs to the receiver.
struct CpuSnapshot(HashMap<String, (bool, u64)>);

fn cpu_snapshot() -> Option<CpuSnapshot> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue; // the thread exited meanwhile
        };
        let ran: u64 = stat.split_whitespace().next()?.parse().ok()?;
        let tid = path.file_name()?.to_string_lossy().into_owned();
        threads.insert(tid, (comm.starts_with("recv"), ran));
    }
    Some(CpuSnapshot(threads))
}

/// (client, receiver) CPU time since `before`, over threads alive at both ends or started since.
fn cpu_since(before: &Option<CpuSnapshot>) -> Option<(Duration, Duration)> {
    let (before, after) = (before.as_ref()?, cpu_snapshot()?);
    let (mut client, mut receiver) = (0u64, 0u64);
    for (tid, (is_receiver, ran)) in &after.0 {
        let delta = ran.saturating_sub(before.0.get(tid).map_or(0, |(_, r)| *r));
        *(if *is_receiver {
            &mut receiver
        } else {
            &mut client
        }) += delta;
    }
    Some((Duration::from_nanos(client), Duration::from_nanos(receiver)))
}

// ---------------------------------------------------------------------------------------------
// Sampling and report

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Bare,
    Sender,
    Worker,
}

impl Side {
    const ALL: [Side; 3] = [Side::Bare, Side::Sender, Side::Worker];

    fn key(self) -> &'static str {
        match self {
            Side::Bare => "bare",
            Side::Sender => "sender",
            Side::Worker => "worker",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Bare => "bare reqwest",
            Side::Sender => "WebhookSender only",
            Side::Worker => "delivery worker",
        }
    }
}

/// One timed run: POSTs per second and CPU microseconds per POST on each side.
#[derive(Clone, Copy)]
struct Run {
    per_sec: f64,
    client_us: Option<f64>,
    receiver_us: Option<f64>,
    store_us: Option<f64>,
    /// Store calls per delivery, fan-out included.
    store_calls: Option<f64>,
    queue_us: Option<f64>,
}

fn median_of(runs: &[Run], field: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let values: Option<Vec<f64>> = runs.iter().map(field).collect();
    values.filter(|v| !v.is_empty()).map(median)
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.1}"))
}

/// Everything the three sides share: the runtime, the receiver, both clients and the body.
struct Bench {
    rt: Runtime,
    receiver: Receiver,
    sender: WebhookSender,
    client: reqwest::Client,
    body: Bytes,
    headers: reqwest::header::HeaderMap,
    id: DeliveryId,
    secret: String,
}

impl Bench {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-worker")
            .enable_all()
            .build()
            .expect("bench runtime");
        let receiver = Receiver::start();
        let sender = WebhookSender::new(SenderConfig::local_development());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        let (body, id, secret) = Fixture::new(&rt, &receiver, &sender, 1).sample();
        let timestamp = Utc::now().timestamp();
        let signature = sign(&[secret.as_str()], id.as_str(), timestamp, &body);
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json".to_owned()),
            ("webhook-id", id.to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ] {
            headers.insert(name, value.parse().expect("header value"));
        }
        Bench {
            rt,
            receiver,
            sender,
            client,
            body: Bytes::from(body),
            headers,
            id,
            secret,
        }
    }

    /// Runs one side over `events * PATHS` POSTs and checks the receiver saw exactly those.
    fn run(&self, side: Side, events: usize) -> Run {
        let count = events * PATHS;
        self.receiver.take_posts();
        let (elapsed, cpu, meters) = match side {
            Side::Bare => {
                let cpu = cpu_snapshot();
                let elapsed = run_requests(&self.rt, &self.receiver, count, |url| {
                    bare_post(&self.client, url, &self.body, &self.headers)
                });
                (elapsed, cpu_since(&cpu), None)
            }
            Side::Sender => {
                let body: Arc<str> = std::str::from_utf8(&self.body).expect("UTF-8").into();
                let cpu = cpu_snapshot();
                let elapsed = run_requests(&self.rt, &self.receiver, count, |url| {
                    let (sender, body) = (self.sender.clone(), Arc::clone(&body));
                    let (id, secret) = (self.id.clone(), self.secret.clone());
                    async move {
                        let timestamp = Utc::now().timestamp();
                        let attempt = sender
                            .send(&url, id.as_str(), timestamp, &body, &[secret.as_str()])
                            .await;
                        (attempt.outcome == AttemptOutcome::Success)
                            .then_some(())
                            .ok_or_else(|| format!("{attempt:?}"))
                    }
                });
                (elapsed, cpu_since(&cpu), None)
            }
            Side::Worker => {
                let fixture = Fixture::new(&self.rt, &self.receiver, &self.sender, events);
                fixture.accept(&self.rt, 0..events);
                let cpu = cpu_snapshot();
                let (elapsed, tally) = run_worker(&self.rt, &fixture, count);
                let cpu = cpu_since(&cpu);
                let meters = (fixture.meters.stores.take(), fixture.meters.queue.take());
                assert_eq!(tally.fanned_out, count, "fan-out: {tally:?}");
                assert_eq!(tally.delivered, count, "deliveries: {tally:?}");
                let states = fixture.worker.ports.deliveries.states();
                assert_eq!(states, (0, count, 0), "(pending, succeeded, gave up)");
                (elapsed, cpu, Some(meters))
            }
        };
        let posts = self.receiver.take_posts();
        assert_eq!(posts, count as u64, "{}: POSTs received", side.name());
        let per_post = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
        Run {
            per_sec: count as f64 / elapsed.as_secs_f64(),
            client_us: cpu.map(|(c, _)| per_post(c)),
            receiver_us: cpu.map(|(_, r)| per_post(r)),
            store_us: meters.map(|((d, _), _)| per_post(d)),
            store_calls: meters.map(|((_, calls), _)| calls as f64 / count as f64),
            queue_us: meters.map(|(_, (d, _))| per_post(d)),
        }
    }
}

/// The fail-once run's outcome.
struct FailOnce {
    posts: u64,
    ideal: u64,
    tally: Tally,
    /// (pending, succeeded, gave up)
    states: (usize, usize, usize),
    paused: usize,
    parked: usize,
}

/// Every tenth path fails each delivery once; `wave` events are queued at a time and drained
/// before the next wave.
/// How long a fail-once wave waits, at most, for attempts deferred by admission or an open
/// breaker (which stays open up to a minute): rounds of [`DEFERRED_POLL`].
const DEFERRED_ROUNDS: usize = 1_200;
const DEFERRED_POLL: Duration = Duration::from_millis(100);

fn fail_once(bench: &Bench, wave: usize) -> FailOnce {
    let fixture = Fixture::new(&bench.rt, &bench.receiver, &bench.sender, EVENTS);
    bench.receiver.take_posts();
    bench.receiver.set_fail_once(true);
    let mut tally = Tally::default();
    for start in (0..EVENTS).step_by(wave) {
        let end = (start + wave).min(EVENTS);
        fixture.accept(&bench.rt, start..end);
        // Attempts deferred by admission or an open breaker come back later: the wave is
        // done once none is waiting any more (bounded, so a stuck one fails the bench).
        for round in 0..=DEFERRED_ROUNDS {
            let (_, t) = run_worker(&bench.rt, &fixture, (end - start) * PATHS);
            tally.absorb(t);
            if fixture.worker.ports.queue.waiting() == 0 || round == DEFERRED_ROUNDS {
                break;
            }
            bench.rt.block_on(tokio::time::sleep(DEFERRED_POLL));
        }
    }
    bench.receiver.set_fail_once(false);
    let failing = (0..PATHS).filter(|n| n % FAILING_EVERY == 0).count() * EVENTS;
    FailOnce {
        posts: bench.receiver.take_posts(),
        ideal: (DELIVERIES + failing) as u64,
        tally,
        states: fixture.worker.ports.deliveries.states(),
        paused: fixture.worker.ports.subscriptions.disabled(),
        parked: fixture.worker.ports.queue.waiting(),
    }
}

/// Single-thread CPU microseconds per call of `f`.
fn micro<T>(mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..MICRO_ITERS / 10 {
        black_box(f());
    }
    let start = ThreadTime::now();
    for _ in 0..MICRO_ITERS {
        black_box(f());
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(MICRO_ITERS)
}

/// `DELIVERY_BENCH_PROFILE=bare|sender|worker` runs only that side, [`PROFILE_RUNS`] times, for a
/// profiler (`perf record -F 999 target/release/deps/delivery-*`); prints POSTs/s per run.
const PROFILE_ENV: &str = "DELIVERY_BENCH_PROFILE";
const PROFILE_RUNS: usize = 10;

fn profile(bench: &Bench, side: &str) {
    let side = Side::ALL
        .into_iter()
        .find(|s| s.key() == side)
        .unwrap_or_else(|| panic!("{PROFILE_ENV} is one of bare, sender, worker"));
    for _ in 0..PROFILE_RUNS {
        let run = bench.run(side, EVENTS);
        println!("{}: {:.0} POSTs/s", side.name(), run.per_sec);
    }
}

fn main() {
    let bench = Bench::new();
    if let Ok(side) = std::env::var(PROFILE_ENV) {
        profile(&bench, &side);
        let Bench { rt, receiver, .. } = bench;
        drop(rt);
        receiver.stop();
        return;
    }
    println!("delivery worker vs a bare reqwest loop, loopback receiver answering 200 at once");
    println!(
        "{PATHS} subscriptions x {EVENTS} events of {PAYLOAD_BYTES} B = {DELIVERIES} deliveries \
         ({} B envelopes), {CONCURRENCY} in flight, multi-thread runtimes of 2 workers each \
         for client and receiver, {ROUNDS} alternating rounds, medians",
        bench.body.len()
    );
    println!();

    for side in Side::ALL {
        bench.run(side, WARMUP_EVENTS);
    }
    let mut runs: HashMap<&str, Vec<Run>> = HashMap::new();
    println!(
        "{:<6} {:<20} {:>10} {:>16} {:>18} {:>14} {:>14}",
        "round",
        "side",
        "POSTs/s",
        "client cpu us/op",
        "receiver cpu us/op",
        "store us/op",
        "queue us/op"
    );
    for round in 0..ROUNDS {
        for k in 0..Side::ALL.len() {
            let side = Side::ALL[(round + k) % Side::ALL.len()];
            let run = bench.run(side, EVENTS);
            println!(
                "{:<6} {:<20} {:>10.0} {:>16} {:>18} {:>14} {:>14}",
                round + 1,
                side.name(),
                run.per_sec,
                fmt_opt(run.client_us),
                fmt_opt(run.receiver_us),
                fmt_opt(run.store_us),
                fmt_opt(run.queue_us),
            );
            runs.entry(side.name()).or_default().push(run);
        }
    }
    let of = |side: Side| &runs[side.name()][..];
    let rate = |side: Side| median(of(side).iter().map(|r| r.per_sec).collect());
    let client = |side: Side| median_of(of(side), |r| r.client_us);

    pacing::report(&bench.rt, &bench.receiver, &bench.sender);

    let burst = fail_once(&bench, EVENTS);
    let waves = fail_once(&bench, WAVE_EVENTS);
    assert_eq!(
        waves.states,
        (0, DELIVERIES, 0),
        "fail-once in waves: every delivery succeeds (pending, succeeded, gave up); {:?}",
        waves.tally
    );
    let burst_explained = burst.states.1 == DELIVERIES || burst.paused > 0;
    assert!(
        burst_explained,
        "fail-once burst: deliveries unfinished without a paused subscription: {:?} {:?}",
        burst.states, burst.tally
    );

    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>7} {:>8}  verdict",
        "measure", "value", "baseline", "ratio", "target"
    );
    let (worker_rate, bare_rate) = (rate(Side::Worker), rate(Side::Bare));
    let ratio = worker_rate / bare_rate;
    println!(
        "{:<44} {:>10.0} {:>10.0} {:>6.2}x {:>8}  {}",
        "deliveries/s vs bare reqwest requests/s",
        worker_rate,
        bare_rate,
        ratio,
        format!(">= {TARGET_THROUGHPUT}"),
        if ratio >= TARGET_THROUGHPUT {
            "ok"
        } else {
            "under target"
        }
    );
    for (label, run) in [
        (
            format!("POSTs / ideal, 10% fail once, waves of {WAVE_EVENTS}"),
            &waves,
        ),
        (
            format!("POSTs / ideal, 10% fail once, all {EVENTS} queued"),
            &burst,
        ),
    ] {
        let ratio = run.posts as f64 / run.ideal as f64;
        let verdict = if run.states.1 != DELIVERIES {
            format!(
                "not comparable: {} subscriptions auto-paused, {} deliveries pending",
                run.paused, run.states.0
            )
        } else if ratio <= TARGET_POSTS {
            "ok".into()
        } else {
            "over target".into()
        };
        println!(
            "{:<44} {:>10} {:>10} {:>6.2}x {:>8}  {verdict}",
            label,
            run.posts,
            run.ideal,
            ratio,
            format!("<= {TARGET_POSTS}"),
        );
    }
    for (label, run) in [("waves", &waves), ("all queued", &burst)] {
        let t = run.tally;
        println!(
            "  fail-once {label}: {} delivered, {} retried, {} deferred, {} skipped, {} gave up; \
             {} paused subscriptions, {} parked messages",
            t.delivered, t.retrying, t.deferred, t.skipped, t.gave_up, run.paused, run.parked
        );
    }

    // Where the worker's client-side CPU goes, per delivery.
    let fixture = Fixture::new(&bench.rt, &bench.receiver, &bench.sender, 1);
    let (event, sub) = (&fixture.events[0], &fixture.subscriptions[0]);
    let delivery = Delivery::new(event, sub, Utc::now());
    let body = envelope(&delivery, event, &fixture.workspace, sub)
        .expect("bench payloads are JSON")
        .as_json()
        .to_owned();
    let secret = sub.current_secret().value.as_str();
    let message = QueueMessage::Deliver {
        workspace_id: delivery.workspace_id.clone(),
        delivery_id: delivery.id.clone(),
        subscription_id: Some(delivery.subscription_id.clone()),
        attempt: 1,
        not_before: 0,
        resumed: false,
        slot_micros: None,
    };
    let costs = [
        (
            "envelope()",
            micro(|| envelope(&delivery, event, &fixture.workspace, sub)),
        ),
        (
            "sign() (HMAC-SHA256, 1 secret)",
            micro(|| sign(&[secret], delivery.id.as_str(), 1_700_000_000, &body)),
        ),
        (
            "Deliver message to_body() + from_body()",
            micro(|| QueueMessage::from_body(&message.to_body()).expect("round trip")),
        ),
        ("Event clone (~1 KB payload)", micro(|| event.clone())),
        ("Subscription clone", micro(|| sub.clone())),
    ];
    println!();
    println!("client-side cost per POST (us; CPU of the bench runtime + driver threads, medians):");
    let (bare, sender, worker) = (
        client(Side::Bare),
        client(Side::Sender),
        client(Side::Worker),
    );
    println!(
        "  bare reqwest request                       {:>8}",
        fmt_opt(bare)
    );
    println!(
        "  WebhookSender::send                        {:>8}   ({:.0}/s, {:.2}x bare)",
        fmt_opt(sender),
        rate(Side::Sender),
        rate(Side::Sender) / bare_rate
    );
    println!(
        "  delivery worker, per delivery              {:>8}",
        fmt_opt(worker)
    );
    println!(
        "    in-memory store calls (wall, in ports)   {:>8}   ({} calls)",
        fmt_opt(median_of(of(Side::Worker), |r| r.store_us)),
        fmt_opt(median_of(of(Side::Worker), |r| r.store_calls))
    );
    println!(
        "    in-memory queue calls (wall, in ports)   {:>8}",
        fmt_opt(median_of(of(Side::Worker), |r| r.queue_us))
    );
    for (label, us) in costs {
        println!("    {label:<40} {us:>8.1}   (single thread)");
    }
    println!(
        "  receiver CPU per POST: bare {}, sender {}, worker {}",
        fmt_opt(median_of(of(Side::Bare), |r| r.receiver_us)),
        fmt_opt(median_of(of(Side::Sender), |r| r.receiver_us)),
        fmt_opt(median_of(of(Side::Worker), |r| r.receiver_us)),
    );

    drop(fixture);
    let Bench { rt, receiver, .. } = bench;
    drop(rt);
    receiver.stop();
}
