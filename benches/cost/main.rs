//! What Hookline costs on AWS per event: every AWS API call counted by operation, priced at
//! us-east-1 list prices.
//!
//! Against moto, started here: 1,000 1 KB events (`HOOKLINE_BENCH_EVENTS`) through the real
//! ingest router, the events table's stream read by a stand-in for Lambda's event source
//! mapping into the delivery function's own entry point, and the deliveries queue drained as
//! Lambda's SQS poller would (receive 10, invoke, delete the batch), delivering to a local
//! receiver; once with 1 subscriber and once with 5. The DynamoDB and SQS clients carry an
//! interceptor that records each call, so the figures are counts, not estimates. Request units
//! come from item sizes (see `units.rs`), Lambda's GB-seconds from the template's memory and
//! the invocations' measured durations here (moto on loopback stands in for DynamoDB).
//!
//! Run with `cargo bench --bench cost`. It is a measurement, not a test: it exits 0 whatever
//! the figures, unless something fails to deliver.

mod stack;
mod units;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use axum::body::Body;
use hookline::admin::create_workspace;
use hookline_shared::adapters::{
    CachedWorkspaces, DynamoDeliveries, DynamoEvents, DynamoLogs, DynamoSubscriptions,
    DynamoWorkspaces, SqsQueue,
};
use hookline_shared::aws_calls::{Call, CallLog};
use hookline_shared::webhook::{Lookup, SenderConfig, WebhookSender};
use hookline_shared::{NewSubscription, Subscription, SubscriptionStore as _, SubscriptionType};
use lambda_http::tower::ServiceExt as _;
use lambda_runtime::{Context, LambdaEvent};

use stack::{Moto, Stack};
use units::{Touched, Units};

// us-east-1 list prices.
/// HTTP API, per million requests (first 300 M a month).
const HTTP_API_PER_M: f64 = 1.00;
const LAMBDA_REQUESTS_PER_M: f64 = 0.20;
/// Lambda on arm64, per GB-second (first 7.5 G GB-s a month).
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// DynamoDB on demand, per million write and read request units.
const WRU_PER_M: f64 = 0.625;
const RRU_PER_M: f64 = 0.125;
/// SQS standard, per million requests (each 64 KB chunk of a request one request).
const SQS_PER_M: f64 = 0.40;
/// Hookdeck Outpost's published price, per million events.
const OUTPOST_PER_M: f64 = 10.0;

/// Bytes of each event's body.
const BODY_BYTES: usize = 1024;
/// Duplicates sent after the events, to price a repeated request.
const DUPLICATES: usize = 100;
/// How long a run may take before the bench gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(2400);
/// Stream records per fan-out invocation here. The template's mapping takes up to 100, which
/// with 5 subscribers is 500 concurrent calls: more than moto answers without failing. The
/// calls and their durations are the same per record; only Lambda requests (at $0.20/M) differ.
const STREAM_BATCH: i32 = 10;

type Worker = delivery::Worker<
    delivery::Adapters<
        CachedWorkspaces<DynamoWorkspaces>,
        DynamoEvents,
        DynamoSubscriptions,
        DynamoDeliveries,
        DynamoLogs,
        SqsQueue,
    >,
>;

/// A loopback receiver answering 200 to every delivery, counting them.
struct Receiver {
    url: String,
    count: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let count = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&count);
        let app = axum::Router::new().route(
            "/hook/{n}",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            count,
            stop: Some(stop),
            task,
        }
    }

    fn received(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let _ = self.task.await;
    }
}

/// One stage of the pipeline: the calls it made and the Lambda invocations it took.
struct Phase {
    name: &'static str,
    /// The template resource whose memory its invocations are billed at.
    function: &'static str,
    calls: Vec<Call>,
    invocations: Vec<Duration>,
}

impl Phase {
    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in &self.calls {
            *counts.entry(operation(call)).or_default() += 1;
        }
        counts
    }

    fn dynamodb_calls(&self) -> usize {
        self.calls.iter().filter(|c| is_dynamodb(c)).count()
    }

    /// GB-seconds, each invocation billed by the started millisecond.
    fn gb_seconds(&self) -> f64 {
        let ms: f64 = self
            .invocations
            .iter()
            .map(|d| (d.as_secs_f64() * 1000.0).ceil())
            .sum();
        ms / 1000.0 * stack::memory_mb(self.function) / 1024.0
    }

    fn sqs_requests(&self) -> f64 {
        self.calls
            .iter()
            .filter(|c| !is_dynamodb(c))
            .map(|c| {
                (c.request.len().max(c.response.len()))
                    .div_ceil(64 * 1024)
                    .max(1) as f64
            })
            .sum()
    }
}

fn is_dynamodb(call: &Call) -> bool {
    call.service.eq_ignore_ascii_case("dynamodb")
}

fn operation(call: &Call) -> String {
    let service = if is_dynamodb(call) { "DynamoDB" } else { "SQS" };
    format!("{service}.{}", call.operation)
}

/// A 1 KB email body, unique per `n`.
fn email(n: usize, tag: &str) -> Vec<u8> {
    let mut body = serde_json::json!({
        "eventTimestamp": "2026-01-02T03:04:05Z", "eventType": "sent",
        "subject": format!("cost {tag} {n}"),
        "body": {"text": ""},
        "from": {"email": "sarah@company.com", "name": "Sarah Johnson"},
        "to": [{"email": "john@prospect.com", "name": "John Smith"}],
        "conversationId": format!("conv-{n}"),
    });
    let short = body.to_string().len();
    body["body"]["text"] = serde_json::json!("x".repeat(BODY_BYTES.saturating_sub(short)));
    body.to_string().into_bytes()
}

struct Run {
    subscribers: usize,
    events: usize,
    phases: Vec<Phase>,
    duplicates: Phase,
    /// Write units of updated, deleted and checked items, by phase name.
    touched_wru: HashMap<&'static str, f64>,
    event_item_bytes: usize,
    /// Stream records the fan-out failed (a transient error) and the mapping retried.
    stream_failures: usize,
}

async fn run(moto: &Moto, subscribers: usize, events: usize) -> Run {
    let config = moto.config().await;
    let plain = aws_sdk_dynamodb::Client::new(&config);
    let name = format!("cost{subscribers}-{}", uuid::Uuid::new_v4().simple());
    let stack = Stack::create(&config, &name).await;
    let receiver = Receiver::start().await;

    let tenant = create_workspace(
        &DynamoWorkspaces::new(plain.clone(), &stack.workspaces),
        "cost",
    )
    .await
    .unwrap();
    let workspace = tenant.workspace.id.clone();
    let subscriptions = DynamoSubscriptions::new(plain.clone(), &stack.subscriptions);
    for n in 0..subscribers {
        let new = NewSubscription {
            webhook_url: format!("{}/{n}", receiver.url),
            event_types: vec!["emails.sent".into()],
            is_enabled: true,
            kind: SubscriptionType::Seasalt,
            created_by: None,
            ..Default::default()
        };
        let subscription = Subscription::new(workspace.clone(), new, chrono::Utc::now());
        subscriptions
            .create_subscription(&subscription)
            .await
            .unwrap();
    }

    // Everything from here on is counted.
    let log = CallLog::default();
    let dynamodb = log.dynamodb(&config);
    let sqs = log.sqs(&config);
    let window = Duration::from_secs(30 * 86_400);
    let app = ingest::router(ingest::Ingest::new(
        DynamoWorkspaces::new(dynamodb.clone(), &stack.workspaces),
        DynamoEvents::new(dynamodb.clone(), &stack.events),
        window,
    ));
    let key = tenant.api_key.expose().to_owned();
    let post = |body: Vec<u8>| {
        lambda_http::http::Request::post("/api/v2/analytics/webhook/receive/generic/emails")
            .header("content-type", "application/json")
            .header("x-api-key", &key)
            .body(Body::from(body))
            .unwrap()
    };
    let mut ingest = Phase {
        name: "ingest",
        function: "IngestFunction",
        calls: Vec::new(),
        invocations: Vec::new(),
    };
    for n in 0..events {
        let started = Instant::now();
        let answer = app.clone().oneshot(post(email(n, &name))).await.unwrap();
        ingest.invocations.push(started.elapsed());
        assert_eq!(answer.status(), 200, "event {n}");
    }
    ingest.calls = log.take();
    let mut duplicates = Phase {
        name: "duplicate",
        function: "IngestFunction",
        calls: Vec::new(),
        invocations: Vec::new(),
    };
    for n in 0..DUPLICATES.min(events) {
        let started = Instant::now();
        let answer = app.clone().oneshot(post(email(n, &name))).await.unwrap();
        duplicates.invocations.push(started.elapsed());
        assert_eq!(answer.status(), 200, "duplicate {n}");
    }
    duplicates.calls = log.take();

    let worker: Worker = delivery::Worker {
        ports: delivery::Adapters {
            workspaces: CachedWorkspaces::new(DynamoWorkspaces::new(
                dynamodb.clone(),
                &stack.workspaces,
            )),
            events: DynamoEvents::new(dynamodb.clone(), &stack.events),
            subscriptions: DynamoSubscriptions::new(dynamodb.clone(), &stack.subscriptions),
            deliveries: DynamoDeliveries::new(dynamodb.clone(), &stack.deliveries, window),
            logs: DynamoLogs::new(dynamodb.clone(), &stack.logs),
            queue: SqsQueue::new(sqs.clone(), &stack.queue_url),
        },
        sender: WebhookSender::with_lookup(SenderConfig::local_development(), Lookup::hosts([])),
        schedule: hookline_shared::delivery::RetrySchedule::default(),
        log_retention: window,
        paused_recheck: Duration::from_secs(900),
        admission: delivery::Admission::default(),
        filters: Default::default(),
    };
    let deadline = Instant::now() + RUN_LIMIT;

    // The stream's records, a batch per invocation (stream reads by Lambda are free: their
    // client is not counted).
    let mapping = stack::stream_mapping();
    let names: Vec<&str> = mapping.event_names.iter().map(String::as_str).collect();
    let mut poller = delivery::stream_poller::StreamPoller::open(
        aws_sdk_dynamodbstreams::Client::new(&config),
        &stack.stream_arn,
        &names,
        mapping.batch_size.min(STREAM_BATCH),
        mapping.max_retries,
    )
    .await
    .unwrap();
    let mut stream_failures = 0;
    let mut fan_out = Phase {
        name: "fan-out",
        function: "DeliveryFunction",
        calls: Vec::new(),
        invocations: Vec::new(),
    };
    // Until every record was read and no failed batch waits for its retry.
    let (mut read, mut pending) = (0, false);
    while read < events || pending {
        assert!(Instant::now() < deadline, "fan-out of {read}/{events} only");
        let started = Instant::now();
        let polled = poller.poll(&worker).await.unwrap();
        if polled.handled > 0 {
            fan_out.invocations.push(started.elapsed());
        }
        if !polled.retry {
            read += polled.handled;
        }
        stream_failures += polled.failures;
        pending = polled.failures > 0;
    }
    assert!(poller.failed.is_empty(), "records past their retries");
    fan_out.calls = log.take();

    // The deliveries queue, as Lambda's SQS poller drains it.
    let mut attempts = Phase {
        name: "delivery",
        function: "DeliveryFunction",
        calls: Vec::new(),
        invocations: Vec::new(),
    };
    let expected = events * subscribers;
    while receiver.received() < expected {
        assert!(
            Instant::now() < deadline,
            "{}/{expected} delivered only",
            receiver.received()
        );
        let batch = sqs
            .receive_message()
            .queue_url(&stack.queue_url)
            .max_number_of_messages(stack::sqs_batch_size())
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = batch
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.receipt_handle = m.receipt_handle.clone();
                record.body = m.body.clone();
                record.event_source = Some("aws:sqs".into());
                record
            })
            .collect();
        let started = Instant::now();
        let answer = delivery::handle_sqs(&worker, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        attempts.invocations.push(started.elapsed());
        let failed: Vec<String> = answer
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        let done: Vec<_> = batch
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.iter().any(|f| Some(f) == m.message_id.as_ref()))
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .unwrap()
            })
            .collect();
        if !done.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&stack.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .unwrap();
        }
    }
    attempts.calls = log.take();
    receiver.stop().await;

    let phases = vec![ingest, fan_out, attempts];
    let mut touched_wru = HashMap::new();
    let mut sizes: HashMap<Touched, usize> = HashMap::new();
    for phase in phases.iter().chain([&duplicates]) {
        let mut wru = 0.0;
        for call in phase.calls.iter().filter(|c| is_dynamodb(c)) {
            for (touched, factor) in units::units(&call.operation, &call.request, &call.response).1
            {
                let bytes = match sizes.get(&touched) {
                    Some(bytes) => *bytes,
                    None => {
                        let bytes = stored_size(&plain, &touched).await;
                        sizes.insert(touched.clone(), bytes);
                        bytes
                    }
                };
                wru += units::touched_units(bytes, factor);
            }
        }
        touched_wru.insert(phase.name, wru);
    }
    let event_item_bytes = phases[0]
        .calls
        .iter()
        .find(|c| c.operation == "PutItem")
        .map(|c| {
            let request: serde_json::Value = serde_json::from_slice(&c.request).unwrap();
            units::item_size(request["Item"].as_object().unwrap())
        })
        .unwrap_or(0);
    Run {
        subscribers,
        events,
        phases,
        duplicates,
        touched_wru,
        event_item_bytes,
        stream_failures,
    }
}

/// The stored size of an item a call touched, read without being counted (0 if gone).
async fn stored_size(client: &aws_sdk_dynamodb::Client, touched: &Touched) -> usize {
    let key: serde_json::Value = serde_json::from_str(&touched.key).unwrap_or_default();
    let key: HashMap<String, AttributeValue> = key
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| {
            let value = match (value.get("S"), value.get("N")) {
                (Some(s), _) => AttributeValue::S(s.as_str()?.to_owned()),
                (_, Some(n)) => AttributeValue::N(n.as_str()?.to_owned()),
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect();
    let item = client
        .get_item()
        .table_name(&touched.table)
        .set_key(Some(key))
        .send()
        .await
        .ok()
        .and_then(|got| got.item);
    item.map_or(0, |item| units::sdk_item_size(&item))
}

/// A phase's request units: from its calls' bodies, and its touched items' stored sizes.
fn phase_units(run: &Run, phase: &Phase) -> Units {
    let mut total = Units::default();
    for call in phase.calls.iter().filter(|c| is_dynamodb(c)) {
        let (units, _) = units::units(&call.operation, &call.request, &call.response);
        total.wru += units.wru;
        total.rru += units.rru;
    }
    total.wru += run.touched_wru.get(phase.name).copied().unwrap_or(0.0);
    total
}

fn report(run: &Run) {
    let events = run.events as f64;
    let deliveries = (run.events * run.subscribers) as f64;
    println!(
        "\n== {} events x {} subscriber{} ({} deliveries); event item {} bytes ==",
        run.events,
        run.subscribers,
        if run.subscribers == 1 { "" } else { "s" },
        run.events * run.subscribers,
        run.event_item_bytes
    );
    println!(
        "{:<10} {:<32} {:>8} {:>10} {:>13}",
        "phase", "operation", "calls", "per event", "per delivery"
    );
    for phase in run.phases.iter().chain([&run.duplicates]) {
        let per = if phase.name == "duplicate" {
            phase.invocations.len() as f64
        } else {
            events
        };
        // A duplicate's figures are per duplicate request; it makes no delivery.
        let per_delivery = |n: usize| {
            if phase.name == "duplicate" {
                "-".to_owned()
            } else {
                format!("{:.3}", n as f64 / deliveries)
            }
        };
        for (operation, calls) in phase.counts() {
            println!(
                "{:<10} {:<32} {:>8} {:>10.3} {:>13}",
                phase.name,
                operation,
                calls,
                calls as f64 / per,
                per_delivery(calls)
            );
        }
        let units = phase_units(run, phase);
        let invocations = phase.invocations.len();
        println!(
            "{:<10} {:<32} {:>8} {:>10.3} {:>13}   WRU {:.3} / RRU {:.3} per {}",
            phase.name,
            "Lambda invocations",
            invocations,
            invocations as f64 / per,
            per_delivery(invocations),
            units.wru / per,
            units.rru / per,
            if phase.name == "duplicate" {
                "duplicate"
            } else {
                "event"
            },
        );
    }

    // Dollars per million events.
    let mut lambda_requests = 0.0;
    let mut gb_seconds = 0.0;
    let mut wru = 0.0;
    let mut rru = 0.0;
    let mut sqs = 0.0;
    for phase in &run.phases {
        lambda_requests += phase.invocations.len() as f64;
        gb_seconds += phase.gb_seconds();
        let units = phase_units(run, phase);
        wru += units.wru;
        rru += units.rru;
        sqs += phase.sqs_requests();
    }
    let million = 1_000_000.0 / events;
    let http = HTTP_API_PER_M;
    let lambda_req = lambda_requests * million * LAMBDA_REQUESTS_PER_M / 1e6;
    let lambda_time = gb_seconds * million * LAMBDA_GB_SECOND;
    let dynamodb = (wru * WRU_PER_M + rru * RRU_PER_M) * million / 1e6;
    let queue = sqs * million * SQS_PER_M / 1e6;
    let total = http + lambda_req + lambda_time + dynamodb + queue;
    let floor = HTTP_API_PER_M + 2.0 * WRU_PER_M;
    println!(
        "\n$ per million events ({} subscriber{}):",
        run.subscribers,
        if run.subscribers == 1 { "" } else { "s" }
    );
    println!("  {:<44} {:>8.3}", "HTTP API (1 request an event)", http);
    println!(
        "  {:<44} {:>8.3}",
        format!("Lambda requests ({:.3} an event)", lambda_requests / events),
        lambda_req
    );
    let ms_per_event: f64 = run
        .phases
        .iter()
        .flat_map(|p| &p.invocations)
        .map(|d| (d.as_secs_f64() * 1000.0).ceil())
        .sum::<f64>()
        / events;
    println!(
        "  {:<44} {:>8.3}",
        format!("Lambda GB-s ({ms_per_event:.1} billed ms an event)"),
        lambda_time
    );
    println!(
        "  {:<44} {:>8.3}",
        format!(
            "DynamoDB ({:.2} WRU + {:.2} RRU an event)",
            wru / events,
            rru / events
        ),
        dynamodb
    );
    println!(
        "  {:<44} {:>8.3}",
        format!("SQS ({:.3} requests an event)", sqs / events),
        queue
    );
    println!("  {:<44} {:>8.3}", "DynamoDB Streams reads by Lambda", 0.0);
    println!("  {:<44} {:>8.3}", "total", total);
    println!(
        "  {:<44} {:>8.3}",
        "floor: HTTP API + 1 WRU dedup + 1 WRU outcome", floor
    );
    println!(
        "  {:<44} {:>8.3}",
        "Hookdeck Outpost (published)", OUTPOST_PER_M
    );

    let ingest = &run.phases[0];
    let per_new = ingest.dynamodb_calls() as f64 / events;
    let per_dup =
        run.duplicates.dynamodb_calls() as f64 / run.duplicates.invocations.len().max(1) as f64;
    let per_attempt = run.phases[2].dynamodb_calls() as f64 / deliveries;
    let fan_out = run.phases[1].dynamodb_calls() as f64 / events;
    println!(
        "\nstore calls ({} subscriber{}):",
        run.subscribers,
        if run.subscribers == 1 { "" } else { "s" }
    );
    println!(
        "  DynamoDB calls per ingested event: {per_new:.3} new, {per_dup:.3} duplicate (target 1)"
    );
    println!(
        "  DynamoDB calls per fan-out: {fan_out:.3} ({:.3} per delivery; {} stream records retried after a failed fan-out, included)",
        run.phases[1].dynamodb_calls() as f64 / deliveries,
        run.stream_failures
    );
    println!(
        "  DynamoDB calls per successful first attempt: {per_attempt:.3} (item 3's target: <= 3)"
    );
    if run.subscribers == 1 {
        let verdict = if total <= 3.0 { "meets" } else { "misses" };
        println!(
            "  ${total:.3} per million 1 KB events to one subscriber: {verdict} the <= $3 target"
        );
    }
}

fn main() {
    let events: usize = std::env::var("HOOKLINE_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    // `HOOKLINE_BENCH_SUBSCRIBERS=5` runs one case only.
    let cases: Vec<usize> = std::env::var("HOOKLINE_BENCH_SUBSCRIBERS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![1, 5]);
    let moto = Moto::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "cost bench: {events} events of {BODY_BYTES} B, {DUPLICATES} duplicates, against moto at {}; \
         us-east-1 list prices; Lambda at {} MB (ingest) / {} MB (delivery), arm64; stream \
         batches of {} (the template's mapping: {})",
        moto.url,
        stack::memory_mb("IngestFunction"),
        stack::memory_mb("DeliveryFunction"),
        stack::stream_mapping().batch_size.min(STREAM_BATCH),
        stack::stream_mapping().batch_size,
    );
    for subscribers in cases {
        let run = runtime.block_on(run(&moto, subscribers, events));
        report(&run);
    }
}
