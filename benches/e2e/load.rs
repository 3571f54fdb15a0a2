//! The load generator: unique emails POSTed over N keep-alive connections, flat out or at a
//! fixed pace, each answer timed and its event id kept.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// The seed body of the README's curl example.
const SEED_EMAIL: &str = include_str!("../../events/bodies/emails.json");
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `n` emails that differ in their subject, one of the fields the dedup id is derived from,
/// so each is a new event; `tag` keeps one phase's apart from another's.
pub fn emails(tag: &str, n: usize) -> Arc<Vec<Bytes>> {
    let seed: Value = serde_json::from_str(SEED_EMAIL).expect("emails.json is JSON");
    let bodies = (0..n)
        .map(|i| {
            let mut body = seed.clone();
            body["subject"] = json!(format!("{tag} {i}"));
            Bytes::from(body.to_string())
        })
        .collect();
    Arc::new(bodies)
}

/// Where the load goes: one client, so its pool holds one connection per concurrent sender.
#[derive(Clone)]
pub struct Target {
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
}

impl Target {
    pub fn new(url: String, api_key: Option<&str>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build()
            .expect("http client");
        Self {
            client,
            url,
            api_key: api_key.map(str::to_owned),
        }
    }
}

/// One request: sent, answered (body read), and the event id ingest gave it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub sent: Instant,
    pub answered: Instant,
    pub event_id: Option<String>,
}

/// What a run of requests did.
#[derive(Debug)]
pub struct Run {
    pub started: Instant,
    pub finished: Instant,
    pub answers: Vec<Answer>,
    pub failures: usize,
    pub first_failure: Option<String>,
}

impl Run {
    /// Answered requests per second, first sent to last answered.
    pub fn per_second(&self) -> f64 {
        self.answers.len() as f64 / (self.finished - self.started).as_secs_f64()
    }

    pub fn latencies(&self) -> Vec<Duration> {
        self.answers.iter().map(|a| a.answered - a.sent).collect()
    }

    pub fn event_ids(&self) -> HashSet<&str> {
        self.answers
            .iter()
            .filter_map(|a| a.event_id.as_deref())
            .collect()
    }

    /// "" or a note of the failed requests, for the table.
    pub fn failure_note(&self) -> String {
        match &self.first_failure {
            None => String::new(),
            Some(first) => format!("{} requests failed (first: {first})", self.failures),
        }
    }

    fn collect(started: Instant, results: Vec<Result<Answer, String>>) -> Self {
        let mut run = Run {
            started,
            finished: started,
            answers: Vec::with_capacity(results.len()),
            failures: 0,
            first_failure: None,
        };
        for result in results {
            match result {
                Ok(answer) => {
                    run.finished = run.finished.max(answer.answered);
                    run.answers.push(answer);
                }
                Err(why) => {
                    run.failures += 1;
                    run.first_failure.get_or_insert(why);
                }
            }
        }
        run
    }
}

/// Every body in turn, `connections` requests in flight at all times.
pub async fn blast(target: &Target, bodies: &Arc<Vec<Bytes>>, connections: usize) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = JoinSet::new();
    for _ in 0..connections {
        let (target, bodies, next) = (target.clone(), Arc::clone(bodies), Arc::clone(&next));
        senders.spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    break results;
                };
                results.push(send(&target, body.clone()).await);
            }
        });
    }
    let mut results = Vec::with_capacity(bodies.len());
    while let Some(done) = senders.join_next().await {
        results.extend(done.expect("a sender task panicked"));
    }
    Run::collect(started, results)
}

/// One body every `1 / per_second` seconds, each sent on schedule whether or not the ones
/// before it were answered.
pub async fn paced(target: &Target, bodies: &Arc<Vec<Bytes>>, per_second: u32) -> Run {
    let gap = Duration::from_secs(1) / per_second;
    let started = Instant::now();
    let mut senders = JoinSet::new();
    for (i, body) in bodies.iter().enumerate() {
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
        let (target, body) = (target.clone(), body.clone());
        senders.spawn(async move { send(&target, body).await });
    }
    let mut results = Vec::with_capacity(bodies.len());
    while let Some(done) = senders.join_next().await {
        results.push(done.expect("a sender task panicked"));
    }
    Run::collect(started, results)
}

#[derive(Deserialize)]
struct IngestAnswer {
    #[serde(rename = "additionalData")]
    additional: Option<Additional>,
}

#[derive(Deserialize)]
struct Additional {
    #[serde(rename = "eventId")]
    event_id: String,
    #[serde(default)]
    duplicate: bool,
}

async fn send(target: &Target, body: Bytes) -> Result<Answer, String> {
    let sent = Instant::now();
    let mut request = target
        .client
        .post(&target.url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = &target.api_key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let answered = Instant::now();
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    let event_id = match serde_json::from_slice::<IngestAnswer>(&bytes) {
        Ok(IngestAnswer {
            additional: Some(Additional {
                duplicate: true, ..
            }),
        }) => return Err("answered as a duplicate".into()),
        Ok(answer) => answer.additional.map(|a| a.event_id),
        Err(_) => None,
    };
    Ok(Answer {
        sent,
        answered,
        event_id,
    })
}
