//! Delivery end to end in local mode: real receivers on loopback, the official signature
//! verifiers, the shortened retry schedule, auto-pause and the failure modes a user meets.

use std::time::{Duration, Instant};

use hookline_shared::test_support::QueueDepth as _;
use ingest::ROUTE_PREFIX;
use serde_json::{json, Value};

use crate::ingest_api::seed_email;
use crate::local_mode::{post, Serving};
use crate::notify_api::Api;
use crate::receiver::{Behavior, Receiver};
use crate::signature_verifiers::{both_verify, Verdict};
use crate::support::poll_until;

const POLL_INTERVAL: Duration = Duration::from_millis(100);

pub(crate) async fn subscribe(api: &Api<'_>, url: &str, event_types: &[&str]) -> Value {
    let body = json!({"webhook_url": url, "event_types": event_types, "is_enabled": true, "created_by": "tests"});
    let (status, created) = api
        .send("POST", "/workspaces/{ws}/subscription", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

pub(crate) async fn ingest(serving: &Serving, body: &Value) -> Value {
    let (status, answer) = post(
        serving,
        &format!("{ROUTE_PREFIX}emails"),
        Some(&serving.api_key),
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A receiver to deliver to, and local mode with `env` in a fresh data directory (kept
/// while the server runs).
pub(crate) async fn serving_with_receiver(
    env: &[(&str, &str)],
) -> (Receiver, tempfile::TempDir, Serving) {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start_with(dir.path(), env);
    (receiver, dir, serving)
}

/// Asks the notify API to send a test `event_type` to `url`.
async fn test_send(api: &Api<'_>, event_type: &str, url: &str) -> (u16, Value) {
    let body = json!({"event_type": event_type, "webhook_url": url});
    api.send("POST", "/workspaces/{ws}/test", Some(body)).await
}

/// Subscribes the receiver's endpoint `name`, answering as `behavior`, to `emails.sent`.
async fn subscribe_endpoint(
    api: &Api<'_>,
    receiver: &Receiver,
    name: &str,
    behavior: Behavior,
) -> Value {
    subscribe(api, &receiver.endpoint(name, behavior), &["emails.sent"]).await
}

/// The seed email with a unique subject, so each call is a new event.
pub(crate) fn email(subject: &str) -> Value {
    let mut body = seed_email();
    body["subject"] = json!(subject);
    body
}

pub(crate) async fn logs(api: &Api<'_>, subscription: &Value) -> Vec<Value> {
    let id = subscription["id"].as_str().unwrap();
    let (status, page) = api
        .send(
            "GET",
            &format!("/workspaces/{{ws}}/logs/{id}?order_by=created_at:asc"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().clone()
}

/// Polls the subscription's logs until there is at least one, for at most `limit`.
async fn wait_for_logs(api: &Api<'_>, subscription: &Value, limit: Duration) -> Vec<Value> {
    poll_until(
        limit,
        POLL_INTERVAL,
        || logs(api, subscription),
        |attempts| !attempts.is_empty(),
    )
    .await
}

/// Polls the subscription until `is_enabled` is `false` (paused), for at most `limit`.
pub(crate) async fn wait_paused(api: &Api<'_>, subscription: &Value, limit: Duration) -> Value {
    let path = format!(
        "/workspaces/{{ws}}/subscription/{}",
        subscription["id"].as_str().unwrap()
    );
    poll_until(
        limit,
        POLL_INTERVAL,
        || async { api.send("GET", &path, None).await.1 },
        |current| current["is_enabled"] == false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingested_event_reaches_its_subscriber_signed_and_logged() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let subscription = subscribe_endpoint(&api, &receiver, "hook", Behavior::Ok).await;
    let other = subscribe(
        &api,
        &receiver.endpoint("crm", Behavior::Ok),
        &["crm.deal_won"],
    )
    .await;

    let sent_at = Instant::now();
    let accepted = ingest(&serving, &seed_email()).await;
    let got = receiver.wait_for("hook", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "delivered");
    let latency = got[0].at - sent_at;
    assert!(
        latency < Duration::from_secs(1),
        "reached the receiver in {latency:?}"
    );

    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["event_type"], "emails.sent");
    assert_eq!(body["source"]["id"], accepted["additionalData"]["eventId"]);
    assert_eq!(body["data"]["subject"], "Follow up on our conversation");
    assert_eq!(body["workspace"]["name"], "dev");
    assert_eq!(body["subscription_created_by"], "tests");
    assert_eq!(got[0].headers["webhook-id"], body["id"]);
    assert!(got[0].headers["user-agent"]
        .as_str()
        .unwrap()
        .contains("Hookline"));
    let secret = subscription["secret"].as_str().unwrap();
    assert_eq!(
        both_verify(secret, &got[0].body, &got[0]),
        [Verdict::Verified, Verdict::Verified]
    );

    // The log is written after the receiver answers, so it may trail the POST by a moment.
    let attempts = wait_for_logs(&api, &subscription, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["delivery_status"], "success");
    assert_eq!(attempts[0]["status_code"], "200");
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(
        attempts[0]["event_id"],
        accepted["additionalData"]["eventId"]
    );
    assert!(
        receiver.received("crm").is_empty(),
        "other event types are not delivered"
    );
    assert!(logs(&api, &other).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_follow_the_schedule_and_ten_failures_pause_only_the_failing_subscription() {
    let schedule = "0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3";
    let (receiver, _dir, serving) =
        serving_with_receiver(&[("HOOKLINE_RETRY_SCHEDULE", schedule)]).await;
    let api = Api { serving: &serving };
    let flaky = subscribe_endpoint(&api, &receiver, "flaky", Behavior::FailTimes(3)).await;
    let broken = subscribe_endpoint(&api, &receiver, "broken", Behavior::AlwaysFail).await;
    subscribe_endpoint(&api, &receiver, "healthy", Behavior::Ok).await;

    ingest(&serving, &email("retry me")).await;
    let flaky_posts = receiver.wait_for("flaky", 4, Duration::from_secs(30)).await;
    assert_eq!(flaky_posts.len(), 4, "3 failures then the success");
    let ids: Vec<&Value> = flaky_posts
        .iter()
        .map(|r| &r.headers["webhook-id"])
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id across retries: {ids:?}"
    );
    for pair in flaky_posts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(200),
            "retries wait for the schedule"
        );
    }

    let paused = wait_paused(&api, &broken, Duration::from_secs(60)).await;
    assert_eq!(paused["is_enabled"], false, "{paused}");
    assert!(
        paused["paused_reason"]
            .as_str()
            .unwrap()
            .contains("10 consecutive"),
        "{paused}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.received("broken").len(),
        10,
        "no attempt after the pause"
    );
    assert_eq!(
        receiver.received("healthy").len(),
        1,
        "the healthy subscriber got exactly one POST"
    );
    assert_eq!(receiver.received("flaky").len(), 4);
    let broken_logs = logs(&api, &broken).await;
    assert_eq!(broken_logs.len(), 10);
    assert!(broken_logs
        .iter()
        .all(|l| l["delivery_status"] == "failed" && l["status_code"] == "500"));
    let flaky_logs = logs(&api, &flaky).await;
    let statuses: Vec<&str> = flaky_logs
        .iter()
        .map(|l| l["delivery_status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed", "failed", "success"]);

    // Kept, not dropped: re-enabled, the paused work is delivered at once (the backup recheck
    // of local mode comes only after a minute).
    receiver.set("broken", Behavior::Ok);
    let id = broken["id"].as_str().unwrap();
    let (status, _) = api
        .send(
            "PATCH",
            &format!("/workspaces/{{ws}}/subscription/{id}"),
            Some(json!({"is_enabled": true, "updated_by": "ops"})),
        )
        .await;
    assert_eq!(status, 200);
    let resumed = receiver
        .wait_for("broken", 11, Duration::from_secs(5))
        .await;
    assert_eq!(
        resumed.len(),
        11,
        "the parked attempt was made after re-enabling"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failure_mode_is_logged_clearly_and_the_worker_keeps_going() {
    let (receiver, _dir, serving) =
        serving_with_receiver(&[("HOOKLINE_RETRY_SCHEDULE", "600")]).await;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = Api { serving: &serving };
    let unreachable = format!("http://127.0.0.1:{closed_port}/hook");
    let slow = Behavior::Slow(Duration::from_secs(20));
    let targets = [
        (
            "redirect",
            receiver.endpoint("redirect", Behavior::Redirect),
            "redirect",
        ),
        ("gone", receiver.endpoint("gone", Behavior::Gone), ""),
        ("slow", receiver.endpoint("slow", slow), "timed out"),
        ("unreachable", unreachable, "could not connect"),
        (
            "big",
            receiver.endpoint("big", Behavior::Big(5 * 1024 * 1024)),
            "",
        ),
        ("healthy", receiver.endpoint("healthy", Behavior::Ok), ""),
    ];
    let mut cases = Vec::new();
    for (name, url, expected) in targets {
        cases.push((
            name,
            subscribe(&api, &url, &["emails.sent"]).await,
            expected,
        ));
    }
    let healthy = cases.pop().unwrap().1;
    let big = cases.pop().unwrap().1;

    let started = Instant::now();
    ingest(&serving, &email("failure modes")).await;
    assert_eq!(
        receiver
            .wait_for("healthy", 1, Duration::from_secs(5))
            .await
            .len(),
        1,
        "not held up by the slow one"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // The slow receiver is cut off at the 15 s timeout.
    for (name, subscription, expected) in &cases {
        let attempts = wait_for_logs(&api, subscription, Duration::from_secs(30)).await;
        assert_eq!(attempts.len(), 1, "{name}: one attempt logged");
        assert_eq!(attempts[0]["delivery_status"], "failed", "{name}");
        let error = attempts[0]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(expected),
            "{name}: error {error:?} should mention {expected:?}"
        );
    }
    let gone = wait_paused(&api, &cases[1].1, Duration::from_secs(5)).await;
    assert!(
        gone["paused_reason"].as_str().unwrap().contains("410"),
        "410 pauses at once: {gone}"
    );
    let big_logs = logs(&api, &big).await;
    assert_eq!(big_logs[0]["delivery_status"], "success");
    assert!(
        big_logs[0]["response_body"].as_str().unwrap().len() <= 20 * 1024,
        "only 20 KB of the 5 MB kept"
    );
    assert_eq!(logs(&api, &healthy).await[0]["delivery_status"], "success");
}

/// A subscription made while private targets were allowed, then delivered with them refused
/// (the switch turned off, or DNS that changed since): the guard at connect time refuses it.
/// Given now, the same URL is refused outright.
#[tokio::test(flavor = "multi_thread")]
async fn a_deployed_configuration_never_reaches_loopback() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = receiver.endpoint("internal", Behavior::Ok);
    let allowed = Serving::start(dir.path());
    let subscription = subscribe(&Api { serving: &allowed }, &url, &["emails.sent"]).await;
    assert!(allowed.stop().success());

    let serving = Serving::start_with(
        dir.path(),
        &[
            ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "false"),
            ("HOOKLINE_RETRY_SCHEDULE", "600"),
        ],
    );
    let api = Api { serving: &serving };
    ingest(&serving, &email("ssrf")).await;
    let attempts = wait_for_logs(&api, &subscription, Duration::from_secs(10)).await;
    assert_eq!(attempts.len(), 1);
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("loopback"),
        "{}",
        attempts[0]
    );

    // Create and test-send obey the same guard, before anything is stored or sent.
    let body = json!({"webhook_url": url, "event_types": ["emails.sent"], "is_enabled": true});
    let (status, refused) = api
        .send("POST", "/workspaces/{ws}/subscription", Some(body))
        .await;
    assert_eq!(status, 400, "{refused}");
    let reason = refused["fieldErrors"]["webhook_url"][0].as_str().unwrap();
    assert!(
        reason.contains("127.0.0.1 is a loopback address"),
        "{reason}"
    );
    let (status, refused) = test_send(&api, "conversation.new", &url).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["fieldErrors"]["webhook_url"][0]
        .as_str()
        .unwrap()
        .contains("loopback"));
    assert!(
        receiver.received("internal").is_empty(),
        "no connection was made"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_send_delivers_the_catalog_sample_signed_like_a_real_delivery() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("test", Behavior::Ok);
    let (status, outcome) = test_send(&api, "conversation.new", &url).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["success"], true);
    assert_eq!(outcome["status_code"], 200);
    assert!(outcome["headers_sent"]["webhook-signature"]
        .as_str()
        .unwrap()
        .starts_with("v1,"));
    let got = receiver.received("test");
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["event_type"], "conversation.new");
    assert_eq!(body["data"]["conversation_id"], "conv-789");
    let secret = outcome["signing_secret"].as_str().unwrap();
    assert_eq!(
        both_verify(secret, &got[0].body, &got[0]),
        [Verdict::Verified, Verdict::Verified]
    );

    let (status, refused) = test_send(&api, "emails.forwarded", "nope").await;
    assert_eq!(status, 400);
    assert!(
        refused["fieldErrors"]["event_type"].is_array()
            && refused["fieldErrors"]["webhook_url"].is_array()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_retry_survives_a_restart() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let schedule = [("HOOKLINE_RETRY_SCHEDULE", "600")];
    let serving = Serving::start_with(dir.path(), &schedule);
    let api = Api { serving: &serving };
    let subscription = subscribe(
        &api,
        &format!("http://127.0.0.1:{closed_port}/down"),
        &["emails.sent"],
    )
    .await;
    ingest(&serving, &email("survives")).await;
    assert_eq!(
        wait_for_logs(&api, &subscription, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    assert!(serving.stop().success(), "SIGTERM stops local mode cleanly");

    let stack = hookline::local::LocalStack::open(dir.path(), Default::default()).unwrap();
    assert_eq!(
        stack.deliveries_queue.depth().await.unwrap(),
        1,
        "the second attempt waits in the queue"
    );
}

/// Every port on the embedded database, attempts on the stack's queue.
type EmbeddedPorts = delivery::Adapters<
    hookline_shared::adapters::EmbeddedDb,
    hookline_shared::adapters::EmbeddedEvents,
    hookline_shared::adapters::EmbeddedDb,
    hookline_shared::adapters::EmbeddedDb,
    hookline_shared::adapters::EmbeddedDb,
    hookline_shared::adapters::EmbeddedQueue,
>;

/// The worker on an embedded stack, with the production recheck period.
pub(crate) fn embedded_worker(
    stack: &crate::support::EmbeddedStack,
) -> delivery::Worker<EmbeddedPorts> {
    delivery::Worker {
        ports: delivery::Adapters {
            workspaces: stack.db.clone(),
            events: stack.events(),
            subscriptions: stack.db.clone(),
            deliveries: stack.db.clone(),
            logs: stack.db.clone(),
            queue: stack.queue.clone(),
        },
        sender: crate::support::loopback_sender(),
        schedule: hookline_shared::delivery::RetrySchedule::default(),
        log_retention: Duration::from_secs(3600),
        paused_recheck: Duration::from_secs(900),
        admission: delivery::Admission::default(),
        filters: Default::default(),
    }
}

/// `count` deliveries for a paused subscription, each with attempt 1 claimed and parked.
async fn parked_deliveries(
    stack: &crate::support::EmbeddedStack,
    count: usize,
) -> (
    hookline_shared::Subscription,
    Vec<hookline_shared::delivery::Delivery>,
) {
    use hookline_shared::delivery::Delivery;
    use hookline_shared::{Claim, DeliveryStore, SubscriptionStore};

    let workspace = hookline_shared::WorkspaceId::generate();
    let paused = crate::contract::subscription(&workspace, &["emails.sent"], false);
    stack.db.create_subscription(&paused).await.unwrap();
    let now = chrono::Utc::now();
    let mut deliveries = Vec::new();
    for n in 0..count {
        let event = crate::contract::event(&workspace, &format!("parked-{n}"));
        let delivery = Delivery::new(&event, &paused, now);
        stack.db.create_delivery(&delivery).await.unwrap();
        let claim = stack
            .db
            .claim_attempt(&workspace, &delivery.id, 1, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(claim, Claim::Claimed(_)));
        stack.db.park_attempt(&delivery, 1).await.unwrap();
        deliveries.push(delivery);
    }
    (paused, deliveries)
}

/// Every message on the stack's queue now, as parsed messages with their bodies.
async fn drain(
    stack: &crate::support::EmbeddedStack,
) -> Vec<(hookline_shared::QueueMessage, String)> {
    use hookline_shared::{Queue, QueueMessage};
    let mut drained = Vec::new();
    loop {
        let batch = stack
            .queue
            .receive(10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        if batch.is_empty() {
            return drained;
        }
        for message in batch {
            drained.push((
                QueueMessage::from_body(&message.body).unwrap(),
                message.body,
            ));
        }
    }
}

/// More parked deliveries than one resume message takes: the worker queues a page, then a
/// message for the rest, and every parked attempt is queued exactly once.
#[tokio::test]
async fn resuming_queues_every_parked_attempt_a_page_at_a_time() {
    use std::collections::BTreeSet;

    use delivery::Handled;
    use hookline_shared::QueueMessage;

    const PARKED: usize = 150;
    let stack = crate::support::EmbeddedStack::create(5);
    let worker = embedded_worker(&stack);
    let (paused, deliveries) = parked_deliveries(&stack, PARKED).await;
    let parked: BTreeSet<String> = deliveries.iter().map(|d| d.id.to_string()).collect();

    let mut resume = QueueMessage::Resume {
        workspace_id: paused.workspace_id.clone(),
        subscription_id: paused.id.clone(),
        after: None,
    }
    .to_body();
    let (mut queued, mut pages) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let handled = worker.handle(&resume).await.unwrap();
        let Handled::Resumed { deliveries } = handled else {
            panic!("{handled:?}");
        };
        pages.push(deliveries);
        let mut next = None;
        for (message, body) in drain(&stack).await {
            match message {
                QueueMessage::Deliver {
                    delivery_id,
                    attempt,
                    resumed,
                    ..
                } => queued.push((delivery_id.to_string(), attempt, resumed)),
                QueueMessage::Resume { .. } => next = Some(body),
                other => panic!("unexpected {other:?}"),
            }
        }
        match next {
            Some(body) => resume = body,
            None => break,
        }
    }
    assert_eq!(pages, [100, 50]);
    assert_eq!(queued.len(), PARKED, "each parked attempt queued once");
    assert!(queued
        .iter()
        .all(|(_, attempt, resumed)| *attempt == 1 && *resumed));
    let ids: BTreeSet<String> = queued.into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, parked);
}

/// Work that finds its subscription paused parks and queues one recheck; a copy a resume
/// queued, finding it paused again, only parks, so toggling a subscription never multiplies
/// the rechecks of its parked work.
#[tokio::test]
async fn only_one_recheck_stays_queued_per_parked_delivery() {
    use delivery::Handled;
    use hookline_shared::{DeliveryStore, QueueMessage};

    let stack = crate::support::EmbeddedStack::create(5);
    // Rechecks due at once, so the queue shows them.
    let worker = delivery::Worker {
        paused_recheck: Duration::ZERO,
        admission: delivery::Admission::default(),
        filters: Default::default(),
        ..embedded_worker(&stack)
    };
    let (paused, deliveries) = parked_deliveries(&stack, 1).await;
    let delivery = &deliveries[0];
    let attempt_one = |resumed| {
        QueueMessage::Deliver {
            workspace_id: delivery.workspace_id.clone(),
            delivery_id: delivery.id.clone(),
            subscription_id: Some(delivery.subscription_id.clone()),
            attempt: 1,
            not_before: 0,
            resumed,
            slot_micros: None,
        }
        .to_body()
    };
    let parked = || async {
        stack
            .db
            .parked_attempts(&paused.workspace_id, &paused.id, None, 10)
            .await
            .unwrap()
    };

    assert_eq!(
        worker.handle(&attempt_one(true)).await.unwrap(),
        Handled::Deferred
    );
    assert_eq!(parked().await, [(delivery.id.clone(), 1)]);
    assert!(
        drain(&stack).await.is_empty(),
        "a resumed copy queues no recheck"
    );

    assert_eq!(
        worker.handle(&attempt_one(false)).await.unwrap(),
        Handled::Deferred
    );
    assert_eq!(parked().await, [(delivery.id.clone(), 1)]);
    let rechecks = drain(&stack).await;
    assert_eq!(
        rechecks.len(),
        1,
        "the recheck queues the next one: {rechecks:?}"
    );
    assert!(matches!(
        rechecks[0].0,
        QueueMessage::Deliver {
            attempt: 1,
            resumed: false,
            ..
        }
    ));
}
