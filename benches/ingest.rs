//! Ingest handler CPU cost relative to a plain `serde_json::Value` parse of the same body.
//!
//! For 1 KB, 16 KB and 200 KB valid bodies of every category this prints the handler's CPU
//! time per event (in-memory ports, current-thread runtime, no tracing subscriber) divided by
//! the CPU time of `serde_json::from_slice::<Value>` of the same bytes, measured in the same
//! run with alternating rounds. Target: at most 1.5x. It is a measurement, not a test: it
//! exits 0 whatever the ratios (it only panics if the handler stops accepting the bodies).
//! Each row also splits the handler's time into `validate` (`validate_body` alone on the same
//! bodies) and `rest`: key, ids, store and response, which cost the same at any size,
//! beside the time the target allows. After the table, the same costs for each category's
//! smallest valid body show the per-request floor that no body size removes.
//!
//! Run with `cargo bench --bench ingest`; `INGEST_BENCH_ONLY=calls/1024` (a prefix of
//! `category/bytes`) runs only the matching cases, and `INGEST_BENCH_PROFILE=N` runs just N
//! handler events of each, for a profiler.

mod common;

use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use chrono::Utc;
use cpu_time::ThreadTime;
use hookline_shared::adapters::memory::MemoryWorkspaces;
use hookline_shared::expiry::is_live;
use hookline_shared::validation::validate_body;
use hookline_shared::{
    ApiKey, Category, Event, EventId, EventStore, Inserted, StoreError, Workspace, WorkspaceId,
    WorkspaceStore,
};
use ingest::{router, Ingest, ROUTE_PREFIX};
use lambda_http::tower::ServiceExt as _;
use serde_json::{json, Map, Value};
use tokio::runtime::Runtime;

/// Body sizes to measure; each generated body is within 3% of these.
const SIZES: [usize; 3] = [1024, 16 * 1024, 200 * 1024];
const SIZE_TOLERANCE_PCT: usize = 3;
/// The handler may cost at most this many parses of its body.
const TARGET_RATIO: f64 = 1.5;
/// CPU time wanted per side per round, and the bounds on iterations that buy it.
const MEASURE_CPU: Duration = Duration::from_millis(200);
const CALIBRATE_CPU: Duration = Duration::from_millis(50);
const MAX_ITERS: usize = 20_000;
const ROUNDS: usize = 5;
/// Pre-built request bodies per timed batch are capped at this many bytes. Large batches
/// amortize glibc returning freed heap to the OS between batches: with 1 MB batches the 200 KB
/// rows (both sides) pay ~20-60 us more per event in page faults.
const BATCH_BYTES: usize = 32 * 1024 * 1024;
/// Fixed-width placeholder patched with a counter so every body is a new event.
const MARKER: &str = "bench-000000000000";
const MARKER_DIGITS: usize = 12;
/// `INGEST_BENCH_PROFILE=N` runs only N handler events per selected case, for a profiler.
const PROFILE_ENV: &str = "INGEST_BENCH_PROFILE";

// ---------------------------------------------------------------------------------------------
// In-memory ports

/// What a conditional put keeps per (workspace, dedup id): no payload, no serialization.
struct StoredEvent {
    event_id: EventId,
    expires_at: i64,
}

/// Kept apart from the shared in-memory store on purpose: it stores no payload, so the
/// measurement is the handler's, not the copying of 1 KB events into a store.
#[derive(Default, Clone)]
struct MemEvents {
    rows: Arc<Mutex<HashMap<WorkspaceId, HashMap<String, StoredEvent>>>>,
}

impl MemEvents {
    fn len(&self) -> usize {
        self.rows.lock().unwrap().values().map(HashMap::len).sum()
    }

    /// Empties the store but keeps its capacity, so later batches do not pay for rehashing.
    fn clear(&self) {
        self.rows
            .lock()
            .unwrap()
            .values_mut()
            .for_each(HashMap::clear);
    }
}

impl EventStore for MemEvents {
    async fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> Result<Inserted, StoreError> {
        let now = Utc::now().timestamp();
        let fresh = || StoredEvent {
            event_id: event.id.clone(),
            expires_at,
        };
        let mut rows = self.rows.lock().unwrap();
        if !rows.contains_key(&event.workspace_id) {
            rows.insert(event.workspace_id.clone(), HashMap::new());
        }
        let workspace = rows.get_mut(&event.workspace_id).expect("just ensured");
        match workspace.entry(event.dedup_id.clone()) {
            Entry::Occupied(row) if is_live(row.get().expires_at, now) => {
                Ok(Inserted::Existing(row.get().event_id.clone()))
            }
            Entry::Occupied(mut row) => {
                row.insert(fresh());
                Ok(Inserted::New)
            }
            Entry::Vacant(row) => {
                row.insert(fresh());
                Ok(Inserted::New)
            }
        }
    }

    async fn get_event_by_dedup(
        &self,
        _workspace: &WorkspaceId,
        _dedup_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        Ok(None)
    }
}

/// The ingest router as the Lambda serves it, and handles on the stores it writes to.
struct Deps {
    app: axum::Router,
    events: MemEvents,
}

// ---------------------------------------------------------------------------------------------
// Bodies

const SENTENCES: [&str; 8] = [
    "Thanks for walking us through the rollout plan for the EMEA teams yesterday.",
    "I shared the pricing summary with our finance lead and she had two questions.",
    "Could we move the security review to Thursday so our CISO can join the call?",
    "The pilot group saw a thirty percent drop in manual data entry last quarter.",
    "Let me know if the revised order form works, and I will route it for signature.",
    "We would like to understand how the sandbox environment is provisioned.",
    "Our procurement team needs the vendor questionnaire back by end of month.",
    "Happy to set up a follow-up with your solutions engineer next week.",
];

/// Email-like prose of exactly `len` ASCII characters, with a line break every few sentences.
fn prose(len: usize) -> String {
    let mut text = String::with_capacity(len + 100);
    let mut i = 0;
    while text.len() < len {
        text.push_str(SENTENCES[i % SENTENCES.len()]);
        text.push(if i % 4 == 3 { '\n' } else { ' ' });
        i += 1;
    }
    text.truncate(len);
    text
}

/// A flat `Speaker: text` transcript of exactly `len` ASCII characters, ~80-character lines.
fn flat_transcript(len: usize) -> String {
    let speakers = ["Alex Morgan", "Jordan Lee"];
    let mut text = String::with_capacity(len + 100);
    let mut i = 0;
    while text.len() < len {
        text.push_str(speakers[i % 2]);
        text.push_str(": ");
        text.push_str(SENTENCES[(i * 3) % SENTENCES.len()]);
        text.push('\n');
        i += 1;
    }
    text.truncate(len);
    text
}

/// Small string entries (`"k00001": "value ..."`) whose JSON takes about `len` bytes.
fn custom_metadata(len: usize) -> Value {
    let mut map = Map::new();
    let mut remaining = len;
    for i in 1.. {
        let key = format!("k{i:05}");
        let overhead = key.len() + 6; // two pairs of quotes, colon, comma
        if remaining <= overhead {
            break;
        }
        let value = format!("value {i:05} for the opportunity sync");
        let take = value.len().min(remaining - overhead);
        remaining -= overhead + take;
        map.insert(key, Value::String(value[..take].to_owned()));
    }
    Value::Object(map)
}

/// A valid body of `category` whose padding field carries `fill` characters; it contains
/// [`MARKER`] exactly once, in a field that makes the event's dedup id.
fn body(category: Category, fill: usize) -> Value {
    match category {
        Category::Emails => json!({
            "eventId": MARKER,
            "eventTimestamp": "2024-02-03T10:30:00Z",
            "eventType": "sent",
            "subject": "Following up on the rollout plan",
            "body": {
                "text": prose(fill),
                "html": "<p>Hi Jordan,</p><p>Following up on the rollout plan.</p>",
            },
            "from": {"email": "alex.morgan@acme.io", "name": "Alex Morgan"},
            "to": [{"email": "jordan.lee@globex.com", "name": "Jordan Lee"}],
            "conversationId": "conv-2024-0203-001",
        }),
        Category::Calls => json!({
            "eventId": MARKER,
            "eventTimestamp": "2024-02-03T10:30:00Z",
            "eventType": "transcript",
            "title": "Globex rollout planning",
            "participants": [
                {"name": "Alex Morgan", "email": "alex.morgan@acme.io"},
                {"name": "Jordan Lee", "email": "jordan.lee@globex.com"},
            ],
            "duration": 1800,
            "meetingPlatform": "zoom",
            "transcript": flat_transcript(fill),
        }),
        // The CRM schema has no `eventId` (it would go to passthrough and be ignored), so the
        // derived dedup id applies: opportunityId + eventType. The marker makes it unique.
        Category::Crm => json!({
            "eventTimestamp": "2024-02-03T10:30:00Z",
            "eventType": "deal_won",
            "opportunityId": MARKER,
            "opportunityName": "Globex platform expansion",
            "amount": 125000.0,
            "stage": "Closed Won",
            "accountName": "Globex",
            "contactName": "Jordan Lee",
            "contactEmail": "jordan.lee@globex.com",
            "closeDate": "2024-02-03",
            "customMetadata": custom_metadata(fill),
        }),
        Category::Social => json!({
            "eventId": MARKER,
            "eventTimestamp": "2024-02-03T10:30:00Z",
            "eventType": "message_sent",
            "body": {"text": prose(fill)},
            "from": "https://www.linkedin.com/in/alex-morgan",
            "to": "https://www.linkedin.com/in/jordan-lee",
            "conversationId": "li-conv-2024-0203-001",
            "messageType": "inmail",
        }),
    }
}

/// Serializes `body(category, fill)` with `fill` chosen so the bytes come as close to
/// `target` as the padding allows.
fn fit(category: Category, target: usize) -> Vec<u8> {
    let encode = |fill: usize| serde_json::to_vec(&body(category, fill)).expect("bodies serialize");
    let mut fill = target.saturating_sub(encode(0).len());
    let mut best = encode(fill);
    for _ in 0..32 {
        let bytes = encode(fill);
        if bytes.len().abs_diff(target) < best.len().abs_diff(target) {
            best = bytes.clone();
        }
        match bytes.len() {
            n if n == target => break,
            n if n < target => fill += target - n,
            n => fill = fill.saturating_sub((n - target).div_ceil(2)),
        }
    }
    let tolerance = target * SIZE_TOLERANCE_PCT / 100;
    assert!(
        best.len().abs_diff(target) <= tolerance,
        "{category:?} body of {} bytes is not within {SIZE_TOLERANCE_PCT}% of {target}",
        best.len()
    );
    best
}

/// One (category, size) case: the body template and a counter that makes each copy unique.
struct Case {
    category: Category,
    template: Vec<u8>,
    digits_at: usize,
    next: Cell<u64>,
    uri: String,
    key: String,
}

impl Case {
    fn new(category: Category, target: usize, key: &ApiKey, first: u64) -> Self {
        Self::with_template(category, fit(category, target), key, first)
    }

    /// The category's body with one character of padding (a transcript may not be empty):
    /// what every request costs whatever its size.
    fn smallest(category: Category, key: &ApiKey, first: u64) -> Self {
        let template = serde_json::to_vec(&body(category, 1)).expect("bodies serialize");
        Self::with_template(category, template, key, first)
    }

    fn with_template(category: Category, template: Vec<u8>, key: &ApiKey, first: u64) -> Self {
        let marker = MARKER.as_bytes();
        let mut hits = template
            .windows(marker.len())
            .enumerate()
            .filter(|(_, w)| *w == marker);
        let (at, _) = hits.next().expect("the marker is in the body");
        assert!(hits.next().is_none(), "the marker occurs once");
        Case {
            category,
            digits_at: at + marker.len() - MARKER_DIGITS,
            template,
            next: Cell::new(first),
            uri: format!("{ROUTE_PREFIX}{}", category.as_str()),
            key: key.expose().to_owned(),
        }
    }

    fn size(&self) -> usize {
        self.template.len()
    }

    /// A copy of the template with a never-used counter in the marker.
    fn next_body(&self) -> Vec<u8> {
        let n = self.next.get();
        self.next.set(n + 1);
        let mut bytes = self.template.clone();
        let digits = format!("{n:0width$}", width = MARKER_DIGITS);
        bytes[self.digits_at..self.digits_at + MARKER_DIGITS].copy_from_slice(digits.as_bytes());
        bytes
    }

    fn request(&self, bytes: Vec<u8>) -> http::Request<Body> {
        http::Request::builder()
            .method("POST")
            .uri(self.uri.as_str())
            .header("content-type", "application/json")
            .header("x-api-key", self.key.as_str())
            .body(Body::from(bytes))
            .expect("valid request")
    }

    /// How many bodies of this case fit in one pre-built batch.
    fn batch_len(&self, n: usize) -> usize {
        (BATCH_BYTES / self.size()).clamp(1, n.max(1))
    }

    /// Runs `n` events in pre-built batches; `run` times one batch and returns its CPU time.
    fn batched<T>(
        &self,
        n: usize,
        make: impl Fn(Vec<u8>) -> T,
        mut run: impl FnMut(Vec<T>) -> Duration,
    ) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = n;
        while left > 0 {
            let m = self.batch_len(left);
            left -= m;
            let inputs: Vec<T> = (0..m).map(|_| make(self.next_body())).collect();
            total += run(inputs);
        }
        total
    }
}

// ---------------------------------------------------------------------------------------------
// Timed loops

/// CPU time of `n` requests through the handler; every one must be accepted as a new event.
fn run_requests(rt: &Runtime, deps: &Deps, case: &Case, n: usize) -> Duration {
    case.batched(
        n,
        |bytes| (dedup_marker(case, &bytes), case.request(bytes)),
        |requests| {
            let m = requests.len();
            let first_id = requests[0].0.clone();
            let (elapsed, accepted, first_response) = rt.block_on(async {
                let mut accepted = 0usize;
                let mut first_response = None;
                let start = ThreadTime::now();
                for (_, request) in requests {
                    let response = deps
                        .app
                        .clone()
                        .oneshot(request)
                        .await
                        .expect("the router never errors");
                    accepted += usize::from(response.status() == http::StatusCode::OK);
                    if first_response.is_none() {
                        first_response = Some(response);
                    } else {
                        black_box(response);
                    }
                }
                let elapsed = start.elapsed();
                let first = first_response.expect("at least one request").into_body();
                let first = axum::body::to_bytes(first, usize::MAX).await;
                (elapsed, accepted, first.expect("an in-memory body"))
            });
            let (duplicate, dedup_id) = summarize(&first_response);
            assert_eq!(
                accepted, m,
                "{:?}: every request is accepted",
                case.category
            );
            assert!(
                !duplicate,
                "{:?}: the first request of a batch is a new event",
                case.category
            );
            match first_id {
                Some(expected) => {
                    assert_eq!(dedup_id, expected, "{:?}: explicit dedup id", case.category)
                }
                None => assert!(dedup_id.starts_with("crm_"), "derived dedup id {dedup_id}"),
            }
            assert_eq!(
                deps.events.len(),
                m,
                "{:?}: one stored event per request",
                case.category
            );
            deps.events.clear();
            elapsed
        },
    )
}

/// (duplicate, dedupId) from an accepted response, read outside the timed loop.
fn summarize(response: &[u8]) -> (bool, String) {
    let body: Value = serde_json::from_slice(response).expect("JSON response");
    assert_eq!(body["received"], true, "accepted: {body}");
    let data = &body["additionalData"];
    (
        data["duplicate"].as_bool().expect("duplicate flag"),
        data["dedupId"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The explicit dedup id a body carries, or `None` when the category derives one.
fn dedup_marker(case: &Case, bytes: &[u8]) -> Option<String> {
    let digits = std::str::from_utf8(&bytes[case.digits_at..case.digits_at + MARKER_DIGITS])
        .expect("ASCII digits");
    (case.category != Category::Crm)
        .then(|| format!("{}{digits}", &MARKER[..MARKER.len() - MARKER_DIGITS]))
}

/// CPU time of `n` validations of the case's bodies alone: the handler's share that depends on
/// the body; the rest of a request (key, ids, store, response) is the difference.
fn run_validate(case: &Case, n: usize) -> Duration {
    let now = Utc::now();
    case.batched(
        n,
        |bytes| bytes,
        |bodies| {
            time_each(&bodies, |bytes| {
                validate_body(case.category, black_box(bytes), now).expect("valid bodies")
            })
        },
    )
}

/// CPU time of `n` plain parses of the case's bodies (fresh copies, like the handler gets).
fn run_parse(case: &Case, n: usize) -> Duration {
    case.batched(
        n,
        |bytes| bytes,
        |bodies| time_each(&bodies, |bytes| parse(bytes)),
    )
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice::<Value>(black_box(bytes)).expect("valid JSON")
}

/// CPU time of `f` over every input; results are black-boxed and dropped inside the timing.
fn time_each<I, R>(inputs: &[I], mut f: impl FnMut(&I) -> R) -> Duration {
    let start = ThreadTime::now();
    for input in inputs {
        black_box(f(input));
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Sampling

/// Per-event CPU time of one measured quantity over the rounds.
struct Sample {
    iterations: usize,
    micros: Vec<f64>,
}

impl Sample {
    fn median(&self) -> f64 {
        common::median(self.micros.clone())
    }

    /// (max - min) / median, in percent: how noisy the rounds were.
    fn spread_pct(&self) -> f64 {
        let min = self.micros.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.micros.iter().copied().fold(0.0, f64::max);
        100.0 * (max - min) / self.median()
    }
}

fn micros_per(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n as f64
}

/// Warms up and calibrates each runner (a closure timing `n` events), then runs `rounds`
/// rounds, rotating which runner goes first, and returns each one's per-event times.
fn sample(rounds: usize, runners: &mut [&mut dyn FnMut(usize) -> Duration]) -> Vec<Sample> {
    let iterations: Vec<usize> = runners
        .iter_mut()
        .map(|run| {
            let mut n = 1;
            loop {
                let spent = run(n);
                if spent >= CALIBRATE_CPU || n >= MAX_ITERS {
                    let per = spent.as_secs_f64() / n as f64;
                    let wanted = (MEASURE_CPU.as_secs_f64() / per.max(1e-9)).ceil() as usize;
                    break wanted.clamp(1, MAX_ITERS);
                }
                n = (n * 4).min(MAX_ITERS);
            }
        })
        .collect();
    let mut samples: Vec<Sample> = iterations
        .iter()
        .map(|&iterations| Sample {
            iterations,
            micros: Vec::with_capacity(rounds),
        })
        .collect();
    for round in 0..rounds {
        for k in 0..runners.len() {
            let i = (round + k) % runners.len();
            let n = samples[i].iterations;
            let spent = runners[i](n);
            samples[i].micros.push(micros_per(spent, n));
        }
    }
    samples
}

// ---------------------------------------------------------------------------------------------
// Report

struct Row {
    category: Category,
    size: usize,
    handler: Sample,
    validate: Sample,
    parse: Sample,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.handler.median() / self.parse.median()
    }
}

fn setup(rt: &Runtime) -> (Deps, ApiKey) {
    let (workspaces, events) = (MemoryWorkspaces::default(), MemEvents::default());
    let key = ApiKey::generate();
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        name: "bench".into(),
        created_at: Utc::now(),
    };
    rt.block_on(async {
        workspaces
            .create_workspace(&workspace)
            .await
            .expect("in-memory store");
        workspaces
            .add_api_key(&workspace.id, &key.hash())
            .await
            .expect("in-memory store");
    });
    let window = Duration::from_secs(24 * 3600);
    let app = router(Ingest::new(workspaces, events.clone(), window));
    (Deps { app, events }, key)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (deps, key) = setup(&rt);
    let mut next_id = 0u64;
    let mut cases = Vec::new();
    let only = std::env::var("INGEST_BENCH_ONLY").unwrap_or_default();
    for category in Category::ALL {
        for target in SIZES {
            let name = format!("{}/{target}", category.as_str());
            if !name.starts_with(only.as_str()) {
                continue;
            }
            cases.push(Case::new(category, target, &key, next_id));
            next_id += 1_000_000;
        }
    }

    if let Ok(n) = std::env::var(PROFILE_ENV) {
        let n: usize = n
            .parse()
            .expect("INGEST_BENCH_PROFILE is a number of events");
        for case in &cases {
            let spent = run_requests(&rt, &deps, case, n);
            println!(
                "{} {}: {:.2} us/ev",
                case.category.as_str(),
                case.size(),
                micros_per(spent, n.max(1))
            );
        }
        return;
    }
    println!("ingest handler CPU time vs serde_json::from_slice::<Value> of the same body");
    println!(
        "thread CPU time, current-thread runtime, in-memory ports, no tracing subscriber; \
         {ROUNDS} alternating rounds of >= {} ms per side (max {MAX_ITERS} events), medians",
        MEASURE_CPU.as_millis()
    );
    println!();
    println!(
        "{:<8} {:>8} {:>14} {:>12} {:>7} {:>13} {:>12} {:>9} {:>8} {:>9}  verdict",
        "category",
        "bytes",
        "handler us/ev",
        "parse us/ev",
        "ratio",
        "spread h/p %",
        "events h/p",
        "validate",
        "rest",
        "1.5xparse"
    );
    let mut rows = Vec::new();
    for case in &cases {
        let row = measure(&rt, &deps, case);
        print_row(&row, true);
        rows.push(row);
    }
    let worst = rows
        .iter()
        .max_by(|a, b| a.ratio().total_cmp(&b.ratio()))
        .expect("at least one case");
    let over = rows.iter().filter(|r| r.ratio() > TARGET_RATIO).count();
    println!();
    println!(
        "worst ratio: {:.2}x ({} {} bytes); {over} of {} cases over the {TARGET_RATIO}x target",
        worst.ratio(),
        worst.category.as_str(),
        worst.size,
        rows.len()
    );
    println!();
    println!("per-request floor: the smallest valid body of each category (not a target row)");
    for category in Category::ALL {
        if !category
            .as_str()
            .starts_with(only.split('/').next().unwrap_or_default())
        {
            continue;
        }
        let case = Case::smallest(category, &key, next_id);
        next_id += 1_000_000;
        print_row(&measure(&rt, &deps, &case), false);
    }
}

/// Alternating rounds of the handler and of a plain parse over `case`'s bodies.
fn measure(rt: &Runtime, deps: &Deps, case: &Case) -> Row {
    let mut handler = |n| run_requests(rt, deps, case, n);
    let mut validate = |n| run_validate(case, n);
    let mut parse = |n| run_parse(case, n);
    let mut samples = sample(ROUNDS, &mut [&mut handler, &mut validate, &mut parse]).into_iter();
    Row {
        category: case.category,
        size: case.size(),
        handler: samples.next().expect("handler sample"),
        validate: samples.next().expect("validate sample"),
        parse: samples.next().expect("parse sample"),
    }
}

/// One table line; `judged` rows get a verdict against the target.
fn print_row(row: &Row, judged: bool) {
    let ratio = row.ratio();
    let (handler, validate) = (row.handler.median(), row.validate.median());
    println!(
        "{:<8} {:>8} {:>14.2} {:>12.2} {:>6.2}x {:>13} {:>12} {:>9.2} {:>8.2} {:>9.2}  {}",
        row.category.as_str(),
        row.size,
        handler,
        row.parse.median(),
        ratio,
        format!(
            "{:.1}/{:.1}",
            row.handler.spread_pct(),
            row.parse.spread_pct()
        ),
        format!("{}/{}", row.handler.iterations, row.parse.iterations),
        validate,
        handler - validate,
        TARGET_RATIO * row.parse.median(),
        match (judged, ratio <= TARGET_RATIO) {
            (false, _) => "-",
            (true, true) => "ok",
            (true, false) => "over target",
        }
    );
}
