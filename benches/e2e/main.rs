//! Local mode end to end: `hookline serve` (the release binary `cargo bench` builds) under a
//! Rust load generator, delivering to a Rust receiver, all on loopback, in one run, each
//! figure printed beside Svix OSS's reference figure and issue 11's target.
//!
//! Each phase but the ceiling starts a fresh `serve` on a fresh temporary data directory, warms
//! it with 50 events (through to the receiver when there are subscribers) and stops it after:
//! - idle: nothing to do; CPU (ns on a CPU of its live threads) and context switches over 5 s;
//! - ceiling: the load generator against a trivial axum server that parses each body as JSON
//!   (started by the bench), at 16 and 64 connections; ingest's rate is divided by it;
//! - ingest: N unique emails at 16, then (another serve) 64 connections, no subscriber:
//!   req/s, p50/p99 latency;
//! - end-to-end burst: 1 subscriber and N emails, then 5 subscribers and N/5 emails (the same
//!   number of deliveries), at 16 connections: deliveries per second from the first ingest
//!   request to the last arrival at the receiver;
//! - batched: 1 subscriber in batched mode (up to 100 events a batch, 1 s wait) and N emails:
//!   events per second (beside the immediate burst's) and POSTs per event;
//! - delay: 1 subscriber, N/5 emails paced at 100 a second; ingest's answer to the arrival;
//! - drain: N emails and a subscription written into the data directory with the worker not
//!   running (see `backlog.rs`), then `serve` started on it: deliveries per second from its
//!   banner to the last arrival, and its utime + stime per 1,000 deliveries.
//!
//! Peak RSS is the highest VmHWM of all the serves. Deliveries are matched to ingested events
//! by the envelope's `source.id` and counted lost or duplicated. Waits are bounded: a phase
//! whose deliveries have not all arrived after `HOOKLINE_BENCH_WAIT_S` (default 180) seconds
//! reports what did arrive. `HOOKLINE_BENCH_EVENTS` (default 5000) sets N for quicker runs.
//! It is a measurement, not a test: it exits 0 whatever the figures and panics only if the
//! servers cannot be started or a subscription cannot be created.

mod backlog;
mod load;
mod report;
mod serve;
mod servers;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use load::{blast, emails, paced, Run, Target};
use report::{millis, percentile, Row};
use serde_json::json;
use serve::Serve;
use servers::{Arrival, Ceiling, Receiver};
use tokio::runtime::{Handle, Runtime};

/// Ingest's route for emails (`ingest::ROUTE_PREFIX` + category).
pub const INGEST: &str = "/api/v2/analytics/webhook/receive/generic/emails";
const EVENTS_ENV: &str = "HOOKLINE_BENCH_EVENTS";
const DEFAULT_EVENTS: usize = 5000;
const WAIT_ENV: &str = "HOOKLINE_BENCH_WAIT_S";
const DEFAULT_WAIT: Duration = Duration::from_secs(180);
/// The concurrencies ingest is measured at, and the one the bursts and the backlog use.
const CONNECTIONS: [usize; 2] = [16, 64];
const BURST_CONNECTIONS: usize = 16;
/// Events a batch of the batched phase holds at most.
const BATCH_EVENTS: usize = 100;
/// Requests before each measured run, to open the connections and warm the store.
const WARMUP: usize = 50;
const WARMUP_WAIT: Duration = Duration::from_secs(60);
const PACE_PER_SECOND: u32 = 100;
const IDLE_SETTLE: Duration = Duration::from_secs(2);
const IDLE_WINDOW: Duration = Duration::from_secs(5);
const MIB: f64 = 1024.0 * 1024.0;

struct Config {
    events: usize,
    wait: Duration,
}

impl Config {
    fn from_env() -> Self {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Self {
            events: number(EVENTS_ENV).map_or(DEFAULT_EVENTS, |n| (n as usize).max(10)),
            wait: number(WAIT_ENV).map_or(DEFAULT_WAIT, Duration::from_secs),
        }
    }

    /// Events for the 5-subscriber burst and the paced run: a fifth, so the burst makes as
    /// many deliveries as the 1-subscriber one and the paced run lasts N/500 seconds.
    fn fifth(&self) -> usize {
        (self.events / 5).max(2)
    }
}

/// Where the notify API of one local mode is.
pub struct Api {
    pub base: String,
    pub api_key: String,
    pub workspace_id: String,
}

impl From<&Serve> for Api {
    fn from(serve: &Serve) -> Self {
        Self {
            base: serve.base.clone(),
            api_key: serve.api_key.clone(),
            workspace_id: serve.workspace_id.clone(),
        }
    }
}

/// Subscribes `url` to `emails.sent`; its client is dropped on return, closing its connection.
pub async fn subscribe(api: &Api, url: &str) {
    subscribe_with(api, url, json!({})).await;
}

/// [`subscribe`] with more subscription fields (a delivery mode, a rate limit).
pub async fn subscribe_with(api: &Api, url: &str, extra: serde_json::Value) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("http client");
    let mut body = json!({"webhook_url": url, "event_types": ["emails.sent"], "is_enabled": true,
        "created_by": "bench"});
    if let Some(extra) = extra.as_object() {
        body.as_object_mut()
            .expect("an object")
            .extend(extra.clone());
    }
    let response = client
        .post(format!(
            "{}/notify/api/v1/workspaces/{}/subscription",
            api.base, api.workspace_id
        ))
        .header("x-api-key", &api.api_key)
        .json(&body)
        .send()
        .await
        .expect("subscription request answered");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status.as_u16(), 201, "subscription created: {text}");
}

/// Deliveries matched against the events ingest acknowledged.
#[derive(Debug, Default)]
struct Tally {
    /// Distinct (subscription, event) pairs that arrived.
    delivered: usize,
    duplicates: usize,
    lost: usize,
    /// Arrivals of events this run did not ingest.
    stray: usize,
    last: Option<Instant>,
    /// Each event's first arrival, per subscription.
    first: HashMap<(usize, String), Instant>,
}

impl Tally {
    fn of(arrivals: Vec<Arrival>, ingested: &HashSet<&str>, subscriptions: usize) -> Self {
        let mut tally = Tally::default();
        for arrival in arrivals {
            if !ingested.contains(arrival.event_id.as_str()) {
                tally.stray += 1;
                continue;
            }
            tally.last = Some(tally.last.map_or(arrival.at, |l| l.max(arrival.at)));
            match tally.first.entry((arrival.subscription, arrival.event_id)) {
                std::collections::hash_map::Entry::Occupied(_) => tally.duplicates += 1,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(arrival.at);
                }
            }
        }
        tally.delivered = tally.first.len();
        tally.lost = (ingested.len() * subscriptions).saturating_sub(tally.delivered);
        tally
    }

    /// Deliveries per second from `start` to the last arrival.
    fn rate_since(&self, start: Instant) -> Option<f64> {
        let span = self.last?.checked_duration_since(start)?.as_secs_f64();
        (span > 0.0).then(|| self.delivered as f64 / span)
    }

    fn note(&self, complete: bool, wait: Duration) -> String {
        let mut note = format!(
            "{} delivered, {} lost, {} duplicates",
            self.delivered, self.lost, self.duplicates
        );
        if self.stray > 0 {
            note.push_str(&format!(", {} stray", self.stray));
        }
        if !complete {
            note.push_str(&format!(" (stopped waiting after {} s)", wait.as_secs()));
        }
        note
    }
}

struct Bench {
    config: Config,
    servers: Handle,
    receiver: Receiver,
    /// Each serve's VmHWM (KiB) when it was stopped, by phase.
    peaks: Vec<(String, u64)>,
}

impl Bench {
    /// Records the serve's peak RSS, then stops it.
    fn stop(&mut self, serve: Serve, phase: &str) {
        self.peaks
            .push((phase.to_owned(), serve.sample().peak_rss_kib));
        serve.stop();
    }

    fn ingest_target(serve: &Serve) -> Target {
        Target::new(format!("{}{INGEST}", serve.base), Some(&serve.api_key))
    }

    async fn idle(&mut self) -> Vec<Row> {
        let dir = tempfile::tempdir().expect("temp dir");
        let serve = Serve::start(dir.path());
        tokio::time::sleep(IDLE_SETTLE).await;
        let before = serve.sample();
        tokio::time::sleep(IDLE_WINDOW).await;
        let after = serve.sample();
        self.stop(serve, "idle");
        let window = after.at.zip(before.at).map_or(IDLE_WINDOW, |(a, b)| a - b);
        let (run_ns, switches) = after.threads_since(&before);
        let cpu = run_ns as f64 / window.as_nanos() as f64 * 100.0;
        let per_second = switches as f64 / window.as_secs_f64();
        println!("idle: {cpu:.2} % of a core, {per_second:.0} context switches/s");
        vec![
            Row::new("idle CPU, % of a core", Some(cpu), "%")
                .decimals(2)
                .lower_is_better()
                .svix(0.1, 0.1)
                .svix_note(" (+1.1 % Postgres)")
                .target(0.2),
            Row::new("idle context switches", Some(per_second), "/s")
                .lower_is_better()
                .svix(4.0, 4.0),
        ]
    }

    async fn ceiling(&self) -> HashMap<usize, Run> {
        let ceiling = Ceiling::start(&self.servers, INGEST);
        let target = Target::new(format!("http://{}{INGEST}", ceiling.addr), None);
        let mut runs = HashMap::new();
        for connections in CONNECTIONS {
            blast(&target, &emails("warm", WARMUP), connections).await;
            let bodies = emails(&format!("ceiling {connections}"), self.config.events);
            let run = blast(&target, &bodies, connections).await;
            println!(
                "ceiling, {connections} connections: {:.0} req/s",
                run.per_second()
            );
            runs.insert(connections, run);
        }
        runs
    }

    async fn ingest(&mut self, connections: usize) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let serve = Serve::start(dir.path());
        let target = Self::ingest_target(&serve);
        blast(&target, &emails("warm", WARMUP), connections).await;
        let bodies = emails(&format!("ingest {connections}"), self.config.events);
        let run = blast(&target, &bodies, connections).await;
        drop(target);
        self.stop(serve, &format!("ingest {connections}"));
        let latencies = run.latencies();
        println!(
            "{}",
            joined(&[
                format!(
                    "ingest, {connections} connections: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms",
                    run.per_second(),
                    millis(percentile(&latencies, 0.5)),
                    millis(percentile(&latencies, 0.99)),
                ),
                run.failure_note(),
            ])
        );
        run
    }

    /// A fresh serve with `subscriptions` subscribers, warmed up: one event through to each.
    async fn subscribed(&self, dir: &std::path::Path, subscriptions: usize) -> (Serve, Target) {
        self.subscribed_with(dir, subscriptions, json!({})).await
    }

    /// [`Bench::subscribed`] with subscription fields `extra`.
    async fn subscribed_with(
        &self,
        dir: &std::path::Path,
        subscriptions: usize,
        extra: serde_json::Value,
    ) -> (Serve, Target) {
        let serve = Serve::start(dir);
        let api = Api::from(&serve);
        for n in 0..subscriptions {
            subscribe_with(&api, &self.receiver.url(n), extra.clone()).await;
        }
        let target = Self::ingest_target(&serve);
        self.receiver.take();
        let warm = blast(&target, &emails("warm", WARMUP), BURST_CONNECTIONS).await;
        let arrived = self
            .receiver
            .wait_for(warm.answers.len() * subscriptions, WARMUP_WAIT)
            .await;
        if !arrived {
            eprintln!("warm-up deliveries incomplete after {WARMUP_WAIT:?}; measuring anyway");
        }
        self.receiver.take();
        (serve, target)
    }

    async fn burst(&mut self, subscriptions: usize, events: usize) -> (Option<f64>, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (serve, target) = self.subscribed(dir.path(), subscriptions).await;
        let bodies = emails(&format!("burst {subscriptions}"), events);
        let run = blast(&target, &bodies, BURST_CONNECTIONS).await;
        let expected = run.answers.len() * subscriptions;
        let complete = self.receiver.wait_for(expected, self.config.wait).await;
        let tally = Tally::of(self.receiver.take(), &run.event_ids(), subscriptions);
        drop(target);
        self.stop(serve, &format!("burst, {subscriptions} subscriber(s)"));
        let rate = tally.rate_since(run.started);
        let note = joined(&[
            format!(
                "{events} events x {subscriptions} subscriber(s) at {BURST_CONNECTIONS} \
                 connections (ingest {:.0} req/s):",
                run.per_second()
            ),
            tally.note(complete, self.config.wait),
            run.failure_note(),
        ]);
        println!(
            "burst, {subscriptions} subscriber(s): {:.0} deliveries/s; {note}",
            rate.unwrap_or(0.0)
        );
        (rate, note)
    }

    /// One batched subscriber (`BATCH_EVENTS` a batch) and N emails: events per second from
    /// the first ingest request to the last arrival, and POSTs per event.
    async fn batched(&mut self, events: usize) -> (Option<f64>, Option<f64>, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mode = json!({"delivery_mode": {"mode": "batched", "max_events": BATCH_EVENTS,
            "max_wait_seconds": 1}});
        let (serve, target) = self.subscribed_with(dir.path(), 1, mode).await;
        let bodies = emails("batched", events);
        let run = blast(&target, &bodies, BURST_CONNECTIONS).await;
        let expected = run.answers.len();
        let complete = self.receiver.wait_for(expected, self.config.wait).await;
        let posts = self.receiver.posts();
        let tally = Tally::of(self.receiver.take(), &run.event_ids(), 1);
        drop(target);
        self.stop(serve, "burst, 1 batched subscriber");
        let rate = tally.rate_since(run.started);
        let per_event = (expected > 0).then(|| posts as f64 / expected as f64);
        let note = joined(&[
            format!(
                "{events} events, batches of up to {BATCH_EVENTS} (1 s wait), {posts} POSTs at {BURST_CONNECTIONS} connections (ingest {:.0} req/s):",
                run.per_second()
            ),
            tally.note(complete, self.config.wait),
            run.failure_note(),
        ]);
        println!(
            "burst, 1 batched subscriber: {:.0} events/s; {note}",
            rate.unwrap_or(0.0)
        );
        (rate, per_event, note)
    }

    async fn delay(&mut self) -> (Vec<Duration>, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (serve, target) = self.subscribed(dir.path(), 1).await;
        let bodies = emails("paced", self.config.fifth());
        let run = paced(&target, &bodies, PACE_PER_SECOND).await;
        let complete = self
            .receiver
            .wait_for(run.answers.len(), self.config.wait)
            .await;
        let tally = Tally::of(self.receiver.take(), &run.event_ids(), 1);
        drop(target);
        self.stop(serve, "paced");
        // An arrival before the answer was read counts as no delay, not a negative one.
        let delays: Vec<Duration> = run
            .answers
            .iter()
            .filter_map(|a| {
                let at = tally.first.get(&(0, a.event_id.clone()?))?;
                Some(at.saturating_duration_since(a.answered))
            })
            .collect();
        let note = joined(&[
            format!("{} events at {PACE_PER_SECOND}/s:", bodies.len()),
            tally.note(complete, self.config.wait),
            run.failure_note(),
        ]);
        println!(
            "delay: p50 {:.1} ms, p99 {:.1} ms; {note}",
            millis(percentile(&delays, 0.5)),
            millis(percentile(&delays, 0.99))
        );
        (delays, note)
    }

    async fn drain(&mut self) -> Vec<Row> {
        let dir = tempfile::tempdir().expect("temp dir");
        let bodies = emails("backlog", self.config.events);
        self.receiver.take();
        let filled =
            backlog::fill(dir.path(), &self.receiver.url(0), &bodies, CONNECTIONS[1]).await;
        let serve = Serve::start(dir.path());
        let before = serve.sample();
        let complete = self
            .receiver
            .wait_for(filled.answers.len(), self.config.wait)
            .await;
        let after = serve.sample();
        self.stop(serve, "drain");
        let tally = Tally::of(self.receiver.take(), &filled.event_ids(), 1);
        // From the banner, after which serve starts its worker, to the last arrival.
        let start = before.at.expect("sampled");
        let rate = tally.rate_since(start);
        let cpu = after.cpu_seconds_since(&before);
        let per_thousand = (tally.delivered > 0).then(|| cpu / tally.delivered as f64 * 1000.0);
        let note = joined(&[
            format!("backlog of {} events, 1 subscriber:", filled.answers.len()),
            tally.note(complete, self.config.wait),
            filled.failure_note(),
        ]);
        println!(
            "drain: {:.0} deliveries/s, {cpu:.2} CPU-s; {note}",
            rate.unwrap_or(0.0)
        );
        vec![
            Row::new("worker-only drain, deliveries/s", rate, "/s")
                .svix(1912.0, 2290.0)
                .target(4000.0)
                .note(note),
            Row::new("drain CPU-s per 1,000 deliveries", per_thousand, "s")
                .decimals(2)
                .lower_is_better()
                .target(0.3)
                .note("utime + stime of serve, banner to last arrival (10 ms ticks)"),
        ]
    }

    fn peak_rss(&self) -> Row {
        let (phase, kib) = self
            .peaks
            .iter()
            .max_by_key(|(_, kib)| *kib)
            .cloned()
            .unwrap_or_default();
        Row::new("peak RSS (VmHWM)", Some(kib as f64 * 1024.0 / MIB), "MiB")
            .decimals(1)
            .lower_is_better()
            .svix(47.0, 50.0)
            // 64 MB.
            .target(64e6 / MIB)
            .note(format!(
                "highest of all serves, in phase: {phase}; target 64 MB = 61.0 MiB"
            ))
    }
}

fn ingest_rows(connections: usize, run: &Run, ceiling: Option<&Run>) -> Vec<Row> {
    let latencies = run.latencies();
    let svix = connections == 16;
    let rate = run.per_second();
    let mut throughput = Row::new(
        format!("ingest, {connections} conns, no subscriber"),
        Some(rate),
        "req/s",
    )
    .note(run.failure_note());
    if svix {
        throughput = throughput.svix(891.0, 891.0).target(1800.0);
    }
    let mut rows = vec![throughput];
    if let Some(ceiling) = ceiling {
        let mut share = Row::new(
            format!("ingest / ceiling, {connections} conns"),
            Some(rate / ceiling.per_second()),
            "x",
        )
        .decimals(3);
        if svix {
            share = share
                .target(0.25)
                .note("the issue's direction of travel, not a hard target");
        }
        rows.push(share);
    }
    rows.push(
        Row::new(
            format!("ingest p50 latency, {connections} conns"),
            Some(millis(percentile(&latencies, 0.5))),
            "ms",
        )
        .decimals(1)
        .lower_is_better(),
    );
    rows.push(
        Row::new(
            format!("ingest p99 latency, {connections} conns"),
            Some(millis(percentile(&latencies, 0.99))),
            "ms",
        )
        .decimals(1)
        .lower_is_better(),
    );
    rows
}

/// The non-empty parts, space-separated.
fn joined(parts: &[String]) -> String {
    let parts: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    parts.join(" ")
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() {
    let wall = Instant::now();
    let config = Config::from_env();
    println!(
        "hookline serve end to end on loopback: {} emails per run ({EVENTS_ENV}), \
         deliveries awaited at most {} s ({WAIT_ENV})",
        config.events,
        config.wait.as_secs()
    );
    println!("binary: {}", env!("CARGO_BIN_EXE_hookline"));
    println!();
    // The receiver and the ceiling on their own threads, apart from the load generator's.
    let servers = runtime("bench-servers");
    let load = runtime("bench-load");
    let rows = load.block_on(async {
        let receiver = Receiver::start(servers.handle());
        let mut bench = Bench {
            config,
            servers: servers.handle().clone(),
            receiver,
            peaks: Vec::new(),
        };
        let mut rows = Vec::new();
        let idle = bench.idle().await;
        let ceiling = bench.ceiling().await;
        for connections in CONNECTIONS {
            if let Some(run) = ceiling.get(&connections) {
                let latencies = run.latencies();
                rows.push(
                    Row::new(
                        format!("ceiling, {connections} conns"),
                        Some(run.per_second()),
                        "req/s",
                    )
                    .note(format!(
                        "trivial axum JSON-parsing server, p50 {:.2} ms, p99 {:.2} ms",
                        millis(percentile(&latencies, 0.5)),
                        millis(percentile(&latencies, 0.99))
                    )),
                );
            }
        }
        for connections in CONNECTIONS {
            let run = bench.ingest(connections).await;
            rows.extend(ingest_rows(connections, &run, ceiling.get(&connections)));
        }
        let events = bench.config.events;
        let (one, note) = bench.burst(1, events).await;
        rows.push(
            Row::new("e2e burst, 1 subscriber, msgs/s", one, "/s")
                .svix(377.0, 377.0)
                .target(750.0)
                .note(note),
        );
        let (batched, per_event, note) = bench.batched(events).await;
        let versus = match (batched, one) {
            (Some(b), Some(o)) if o > 0.0 => format!("{:.2}x immediate's rate; ", b / o),
            _ => String::new(),
        };
        rows.push(
            Row::new("e2e burst, 1 batched subscriber, events/s", batched, "/s")
                .note(format!("{versus}{note}")),
        );
        rows.push(
            Row::new("batched: POSTs per event", per_event, "")
                .decimals(4)
                .lower_is_better()
                .target(0.011)
                .note(format!("batches of up to {BATCH_EVENTS}")),
        );
        let (five, note) = bench.burst(5, bench.config.fifth()).await;
        rows.push(
            Row::new("e2e burst, 5 subscribers, deliveries/s", five, "/s")
                .svix(920.0, 920.0)
                .target(1850.0)
                .note(note),
        );
        let (delays, note) = bench.delay().await;
        let measured = !delays.is_empty();
        rows.push(
            Row::new(
                "delay answer -> receiver at 100/s, p50",
                measured.then(|| millis(percentile(&delays, 0.5))),
                "ms",
            )
            .decimals(1)
            .lower_is_better()
            .svix(0.9, 0.9)
            .target(3.0)
            .note(note),
        );
        rows.push(
            Row::new(
                "delay answer -> receiver at 100/s, p99",
                measured.then(|| millis(percentile(&delays, 0.99))),
                "ms",
            )
            .decimals(1)
            .lower_is_better()
            .svix(6.2, 6.2)
            .target(15.0),
        );
        rows.extend(bench.drain().await);
        rows.push(bench.peak_rss());
        rows.extend(idle);
        rows
    });
    drop(load);
    drop(servers);
    println!();
    report::print(&rows);
    println!();
    println!("wall time: {:.0} s", wall.elapsed().as_secs_f64());
}
