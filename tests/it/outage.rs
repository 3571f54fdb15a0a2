//! The store going away mid-ingest, then the queue going away mid-fan-out. The ingest router
//! runs on a DynamoDB client built as the Lambda builds it, reaching moto through a proxy the
//! test switches off and on while a caller sends a stream of new events and retries every 503
//! as told: a 503 stored nothing, a 200 stored the event once. The queue is not on that path
//! (the events table's stream carries events on), so its outage hits the fan-out instead: the
//! stream's records fail while SQS is gone and are retried once it is back. Every event
//! answered 200 reaches the subscriber exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use hookline::admin::create_workspace;
use hookline_shared::adapters::aws_clients::bounded;
use hookline_shared::adapters::{DynamoEvents, DynamoWorkspaces, SqsQueue};
use hookline_shared::{Queue as _, SubscriptionStore as _, WorkspaceId};
use ingest::{router, Ingest};
use serde_json::{json, Value};

use crate::ingest_api::{answer, request, seed_email};
use crate::receiver::{Behavior, Receiver};
use crate::support::{aws_loader, loopback_sender, moto_url, MotoStack};
use crate::switch_proxy::{Mode, SwitchProxy};

/// Events in the stream.
const EVENTS: usize = 24;
/// From which event on the DynamoDB proxy is in which mode.
const PHASES: [(usize, Mode); 5] = [
    (0, Mode::Up),
    // Gone: nothing is stored.
    (6, Mode::Refusing),
    (10, Mode::Up),
    // Silent: only the client's own timeouts end a call.
    (14, Mode::Silent),
    (18, Mode::Up),
];
/// Stream polls made while the queue is gone.
const POLLS_WITHOUT_QUEUE: usize = 3;
/// Longest a caller may wait for an answer, however the store fails: well inside the ingest
/// function's 10 s timeout, after which the caller would get no answer it can act on.
const ANSWER_LIMIT: Duration = Duration::from_secs(8);
/// Retry rounds the caller makes over what was answered 503.
const RETRY_ROUNDS: usize = 5;

/// One answer to the caller.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// A caller of the ingest API with one workspace's key.
struct Caller {
    app: Router,
    key: String,
}

impl Caller {
    /// Posts the seed email with `subject` (so each subject is its own event).
    async fn send(&self, subject: &str) -> Answer {
        let mut email = seed_email();
        email["subject"] = json!(subject);
        let started = Instant::now();
        let response = tokio::time::timeout(
            ANSWER_LIMIT,
            answer(&self.app, request("emails", &self.key, &email)),
        )
        .await
        .unwrap_or_else(|_| panic!("{subject}: no answer within {ANSWER_LIMIT:?}"));
        assert!(started.elapsed() < ANSWER_LIMIT);
        Answer {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: serde_json::from_slice(response.body()).unwrap(),
        }
    }
}

/// The event items of `workspace` on the events table, read past the proxies: by subject,
/// the event id.
async fn stored_events(stack: &MotoStack, workspace: &WorkspaceId) -> BTreeMap<String, String> {
    let items = stack
        .dynamodb
        .query()
        .table_name(&stack.events_table)
        .key_condition_expression("pk = :ws")
        .expression_attribute_values(":ws", AttributeValue::S(workspace.to_string()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let payload: Value = serde_json::from_str(item["payload"].as_s().unwrap()).unwrap();
            let subject = payload["subject"].as_str().unwrap().to_owned();
            (subject, item["event_id"].as_s().unwrap().clone())
        })
        .collect()
}

fn moto_addr() -> SocketAddr {
    let url = url::Url::parse(&moto_url()).unwrap();
    let host = url.host_str().unwrap();
    format!("{host}:{}", url.port().unwrap()).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_mid_ingest_loses_no_accepted_event_and_delivers_each_once() {
    let stack = MotoStack::create(5).await;
    let tenant = create_workspace(&stack.workspaces(), "outage")
        .await
        .unwrap();
    let ws = tenant.workspace.id.clone();
    let receiver = Receiver::start().await;
    let mut subscription = crate::contract::subscription(&ws, &["emails.sent"], true);
    subscription.webhook_url = receiver.endpoint("hook", Behavior::Ok);
    stack
        .subscriptions()
        .create_subscription(&subscription)
        .await
        .unwrap();

    // One proxy per service, so each can fail alone.
    let (dynamodb_proxy, sqs_proxy) = (
        SwitchProxy::start(moto_addr()).await,
        SwitchProxy::start(moto_addr()).await,
    );
    let dynamodb_config = bounded(aws_loader(&dynamodb_proxy.url())).load().await;
    let sqs_config = bounded(aws_loader(&sqs_proxy.url())).load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&dynamodb_config);
    let ingest = Ingest::new(
        DynamoWorkspaces::new(dynamodb.clone(), &stack.workspaces_table),
        DynamoEvents::new(dynamodb, &stack.events_table),
        Duration::from_secs(86_400),
    );
    let caller = Caller {
        app: router(ingest),
        key: tenant.api_key.expose().to_owned(),
    };

    // The stream, the store's proxy switched as it goes.
    let mut accepted: BTreeMap<String, Value> = BTreeMap::new();
    let mut unavailable: Vec<(String, Mode)> = Vec::new();
    let mut mode = Mode::Up;
    for n in 0..EVENTS {
        if let Some(&(_, next)) = PHASES.iter().find(|(from, _)| *from == n) {
            dynamodb_proxy.set(next);
            mode = next;
        }
        let subject = format!("outage {n}");
        let got = caller.send(&subject).await;
        match got.status {
            200 if mode == Mode::Up => {
                accepted.insert(subject, got.body);
            }
            503 if mode != Mode::Up => {
                assert_eq!(got.retry_after.as_deref(), Some("1"), "{subject}");
                assert_eq!(got.body["received"], false, "{}", got.body);
                unavailable.push((subject, mode));
            }
            status => panic!("{subject} with {mode:?}: {status} {}", got.body),
        }
    }
    assert_eq!(accepted.len() + unavailable.len(), EVENTS);

    // A 503 stored nothing: there is no event stored but not on its way.
    let stored = stored_events(&stack, &ws).await;
    for (subject, mode) in &unavailable {
        assert!(
            !stored.contains_key(subject),
            "{subject}: stored while the store was {mode:?}"
        );
    }

    // The caller retries every 503, as `Retry-After` says, a bounded number of times.
    let mut pending: Vec<String> = unavailable.iter().map(|(s, _)| s.clone()).collect();
    for _ in 0..RETRY_ROUNDS {
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut still = Vec::new();
        for subject in pending {
            let got = caller.send(&subject).await;
            match got.status {
                200 => {
                    // Never a duplicate: the failed request had stored nothing.
                    assert_eq!(got.body["additionalData"]["duplicate"], false, "{subject}");
                    accepted.insert(subject, got.body);
                }
                503 => still.push(subject),
                status => panic!("retrying {subject}: {status} {}", got.body),
            }
        }
        pending = still;
    }
    assert!(
        pending.is_empty(),
        "still refused after retries: {pending:?}"
    );
    assert_eq!(accepted.len(), EVENTS);
    let stored = stored_events(&stack, &ws).await;
    assert_eq!(stored.len(), EVENTS);
    for (subject, answer) in &accepted {
        assert_eq!(answer["additionalData"]["eventId"], json!(stored[subject]));
    }
    dynamodb_proxy.stop().await;

    // The fan-out reads the stream while the queue is gone: every record fails, and is kept.
    let worker = delivery::Worker {
        ports: delivery::Adapters {
            workspaces: stack.workspaces(),
            events: stack.events(),
            subscriptions: stack.subscriptions(),
            deliveries: stack.deliveries(),
            logs: stack.logs(),
            queue: SqsQueue::new(aws_sdk_sqs::Client::new(&sqs_config), &stack.queue_url),
        },
        sender: loopback_sender(),
        schedule: hookline_shared::delivery::RetrySchedule::default(),
        log_retention: Duration::from_secs(3600),
        paused_recheck: Duration::from_secs(900),
        admission: delivery::Admission::default(),
        filters: Default::default(),
    };
    let mut stream = stack.stream_poller().await;
    sqs_proxy.set(Mode::Refusing);
    let mut failures = 0;
    for _ in 0..POLLS_WITHOUT_QUEUE {
        failures += stream.poll(&worker).await.unwrap().failures;
    }
    assert!(
        failures >= EVENTS,
        "each record failed at least once: {failures}"
    );
    assert!(stream.failed.is_empty(), "within the mapping's retries");
    assert!(receiver.received("hook").is_empty());

    // The queue back: the stream's retries fan out, and the worker drains the attempts.
    sqs_proxy.set(Mode::Up);
    let queue = stack.queue();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        stream.poll(&worker).await.unwrap();
        let batch = queue
            .receive(10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap();
        if batch.is_empty() && receiver.received("hook").len() >= EVENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not finish in time"
        );
        for message in batch {
            match worker.process(&message.message_id, &message.body).await {
                delivery::Disposition::Ack => queue.delete(&message.receipt).await.unwrap(),
                delivery::Disposition::Retry => queue
                    .change_visibility(&message.receipt, Duration::ZERO)
                    .await
                    .unwrap(),
            }
        }
    }
    assert!(stream.failed.is_empty(), "{:?}", stream.failed);
    sqs_proxy.stop().await;

    // Every accepted event, each under its own webhook-id, exactly once.
    let received = receiver.received("hook");
    let mut per_webhook_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut delivered_events = BTreeSet::new();
    for delivery in &received {
        let id = delivery.headers["webhook-id"].as_str().unwrap().to_owned();
        *per_webhook_id.entry(id).or_default() += 1;
        let body: Value = serde_json::from_str(&delivery.body).unwrap();
        delivered_events.insert(body["source"]["id"].as_str().unwrap().to_owned());
    }
    assert!(
        per_webhook_id.values().all(|&n| n == 1),
        "each webhook-id once: {per_webhook_id:?}"
    );
    let accepted_events: BTreeSet<String> = accepted
        .values()
        .map(|a| a["additionalData"]["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accepted_events.len(), EVENTS);
    assert_eq!(delivered_events, accepted_events, "none lost, none extra");
    assert_eq!(received.len(), EVENTS);
}
