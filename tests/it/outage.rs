//! The store and the queue going away mid-ingest. The ingest router runs on DynamoDB and SQS
//! clients built as the Lambda builds them, each reaching moto through a proxy the test
//! switches off and on while a caller sends a stream of new events and retries every 503 as
//! told. Then the delivery worker runs over the same queue: every event answered 200 reaches
//! the subscriber exactly once.

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
/// From which event on each proxy is in which mode (DynamoDB, SQS).
const PHASES: [(usize, Mode, Mode); 6] = [
    (0, Mode::Up, Mode::Up),
    // Both gone: nothing is stored.
    (6, Mode::Refusing, Mode::Refusing),
    // The queue alone: each event is stored but not queued.
    (10, Mode::Up, Mode::Refusing),
    // Both silent: only the clients' own timeouts end a call.
    (14, Mode::Silent, Mode::Silent),
    // The queue alone, silent: stored, and the send times out.
    (16, Mode::Up, Mode::Silent),
    (18, Mode::Up, Mode::Up),
];
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
/// the event id and whether it was marked queued.
async fn stored_events(
    stack: &MotoStack,
    workspace: &WorkspaceId,
) -> BTreeMap<String, (String, bool)> {
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
            let event_id = item["event_id"].as_s().unwrap().clone();
            (subject, (event_id, *item["queued"].as_bool().unwrap()))
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

    // One proxy per service, so the queue can fail alone.
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
        SqsQueue::new(aws_sdk_sqs::Client::new(&sqs_config), &stack.queue_url),
        Duration::from_secs(86_400),
    );
    let caller = Caller {
        app: router(ingest),
        key: tenant.api_key.expose().to_owned(),
    };

    // The stream, the proxies switched as it goes.
    let mut accepted: BTreeMap<String, Value> = BTreeMap::new();
    let mut unavailable: Vec<(String, (Mode, Mode))> = Vec::new();
    let mut modes = (Mode::Up, Mode::Up);
    for n in 0..EVENTS {
        if let Some(&(_, dynamodb, sqs)) = PHASES.iter().find(|(from, ..)| *from == n) {
            dynamodb_proxy.set(dynamodb);
            sqs_proxy.set(sqs);
            modes = (dynamodb, sqs);
        }
        let subject = format!("outage {n}");
        let got = caller.send(&subject).await;
        let outage = modes != (Mode::Up, Mode::Up);
        match got.status {
            200 if !outage => {
                accepted.insert(subject, got.body);
            }
            503 if outage => {
                assert_eq!(got.retry_after.as_deref(), Some("1"), "{subject}");
                assert_eq!(got.body["received"], false, "{}", got.body);
                unavailable.push((subject, modes));
            }
            status => panic!("{subject} with {modes:?}: {status} {}", got.body),
        }
    }
    assert_eq!(accepted.len() + unavailable.len(), EVENTS);

    // What the store holds now: the events of a queue outage stored, none of them queued;
    // the events of a store outage not stored at all.
    let stored = stored_events(&stack, &ws).await;
    for (subject, (dynamodb, _)) in &unavailable {
        match (dynamodb, stored.get(subject)) {
            (Mode::Up, Some((_, queued))) => {
                assert!(!queued, "{subject}: stored but not queued")
            }
            (Mode::Up, None) => panic!("{subject}: the store was up, yet it is not stored"),
            (_, None) => {}
            (_, Some(_)) => panic!("{subject}: stored while the store was down"),
        }
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
                    // Never a duplicate: it had not been queued, so this retry queued it.
                    assert_eq!(got.body["additionalData"]["duplicate"], false, "{subject}");
                    if let Some((event_id, _)) = stored.get(&subject) {
                        assert_eq!(got.body["additionalData"]["eventId"], json!(event_id));
                    }
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
    assert!(stored.values().all(|(_, queued)| *queued), "{stored:?}");
    dynamodb_proxy.stop().await;
    sqs_proxy.stop().await;

    // The worker drains the queue: fan-outs, then attempts.
    let worker = delivery::Worker {
        ports: delivery::Adapters {
            workspaces: stack.workspaces(),
            events: stack.events(),
            subscriptions: stack.subscriptions(),
            deliveries: stack.deliveries(),
            logs: stack.logs(),
            queue: stack.queue(),
        },
        sender: loopback_sender(),
        schedule: hookline_shared::delivery::RetrySchedule::default(),
        log_retention: Duration::from_secs(3600),
        paused_recheck: Duration::from_secs(900),
        admission: delivery::Admission::default(),
        filters: Default::default(),
    };
    let queue = stack.queue();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
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
