//! Delivery modes and delivery control in local mode: a delayed subscription waits, a batched
//! one gets its events gathered into signed batches retried as a unit, and a filter keeps the
//! events it does not match from making deliveries or logs.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};
use ingest::ROUTE_PREFIX;
use serde_json::{json, Value};

use crate::delivery::{email, ingest, logs, serving_with_receiver};
use crate::local_mode::{post, Serving};
use crate::notify_api::Api;
use crate::receiver::{Behavior, Received, Receiver};
use crate::signature_verifiers::{both_verify, Verdict};
use crate::support::poll_until;

/// Creates a subscription with the delivery-control fields in `extra`.
async fn subscribe_with(api: &Api<'_>, url: &str, event_types: &[&str], extra: Value) -> Value {
    let mut body = json!({"webhook_url": url, "event_types": event_types, "is_enabled": true});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, created) = api
        .send("POST", "/workspaces/{ws}/subscription", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Ingests `count` distinct emails at once; returns their event ids.
async fn ingest_emails(serving: &Serving, tag: &str, count: usize) -> HashSet<String> {
    stream::iter(0..count)
        .map(|i| async move {
            let answer = ingest(serving, &email(&format!("{tag} {i}"))).await;
            answer["additionalData"]["eventId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .buffer_unordered(8)
        .collect()
        .await
}

/// A batch POST: its `webhook-id` and the event (source) id of each envelope in it.
fn batch_of(post: &Received) -> (String, Vec<String>) {
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["type"], "batch", "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(post.headers["webhook-id"].as_str(), Some(id.as_str()));
    assert!(id.starts_with("bat_"), "{id}");
    let events = body["events"].as_array().unwrap();
    let ids = events
        .iter()
        .map(|e| {
            assert!(e["id"].as_str().unwrap().starts_with("msg_"), "{e}");
            e["source"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    (id, ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_subscription_waits_its_delay_while_an_immediate_one_does_not() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let now_url = receiver.endpoint("now", Behavior::Ok);
    let later_url = receiver.endpoint("later", Behavior::Ok);
    subscribe_with(&api, &now_url, &["emails.sent"], json!({})).await;
    let delayed = json!({"delivery_mode": {"mode": "delayed", "delay_seconds": 3}});
    let created = subscribe_with(&api, &later_url, &["emails.sent"], delayed.clone()).await;
    assert_eq!(created["delivery_mode"], delayed["delivery_mode"]);
    let (status, read) = api
        .send(
            "GET",
            &format!(
                "/workspaces/{{ws}}/subscription/{}",
                created["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(read["delivery_mode"], delayed["delivery_mode"], "{read}");

    let ingested = Instant::now();
    ingest(&serving, &email("delayed")).await;
    let now = receiver.wait_for("now", 1, Duration::from_secs(5)).await;
    let later = receiver.wait_for("later", 1, Duration::from_secs(10)).await;
    let (now, later) = (now[0].at - ingested, later[0].at - ingested);
    assert!(now < Duration::from_secs(1), "immediate after {now:?}");
    assert!(
        later >= Duration::from_millis(2900) && later < Duration::from_secs(5),
        "delayed 3 s, delivered after {later:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batched_subscription_gets_25_events_as_signed_batches_of_10_10_and_5() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("batches", Behavior::Ok);
    let mode =
        json!({"delivery_mode": {"mode": "batched", "max_events": 10, "max_wait_seconds": 2}});
    let subscription = subscribe_with(&api, &url, &["emails.sent"], mode).await;
    let secret = subscription["secret"].as_str().unwrap();

    let started = Instant::now();
    let accepted = ingest_emails(&serving, "batched", 25).await;
    let ingested = started.elapsed();
    receiver
        .wait_for("batches", 3, Duration::from_secs(15))
        .await;
    // Nothing more comes once the 25 went.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let posts = receiver.received("batches");
    assert_eq!(posts.len(), 3, "{posts:?}");
    let mut sizes = Vec::new();
    let mut seen = HashMap::new();
    for post in &posts {
        assert_eq!(
            both_verify(secret, &post.body, post),
            [Verdict::Verified, Verdict::Verified]
        );
        let (id, events) = batch_of(post);
        sizes.push(events.len());
        for event in events {
            assert!(
                seen.insert(event.clone(), id.clone()).is_none(),
                "{event} sent twice"
            );
        }
    }
    assert_eq!(
        sizes,
        [10, 10, 5],
        "full batches go at once, the rest after its wait"
    );
    assert_eq!(seen.keys().cloned().collect::<HashSet<_>>(), accepted);
    let last = posts[2].at - started;
    assert!(
        last >= Duration::from_secs(2) && last < ingested + Duration::from_secs(5),
        "the last batch waited its 2 s: {last:?}"
    );

    // One log per event, each naming its batch.
    let logged = logs(&api, &subscription).await;
    assert_eq!(logged.len(), 25);
    for log in &logged {
        let event = log["event_id"].as_str().unwrap();
        assert_eq!(
            log["batch_id"].as_str(),
            seen.get(event).map(String::as_str),
            "{log}"
        );
        assert_eq!(log["delivery_status"], "success");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_batch_is_retried_as_a_unit_under_one_batch_id() {
    let (receiver, _dir, serving) =
        serving_with_receiver(&[("HOOKLINE_RETRY_SCHEDULE", "1,1,1")]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("flaky", Behavior::FailTimes(2));
    let mode =
        json!({"delivery_mode": {"mode": "batched", "max_events": 5, "max_wait_seconds": 60}});
    let subscription = subscribe_with(&api, &url, &["emails.sent"], mode).await;
    let accepted = ingest_emails(&serving, "retried", 5).await;
    let posts = receiver.wait_for("flaky", 3, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 3);
    let batches: Vec<(String, Vec<String>)> = posts.iter().map(batch_of).collect();
    assert!(batches.iter().all(|b| b == &batches[0]), "{batches:?}");
    assert_eq!(
        batches[0].1.iter().cloned().collect::<HashSet<_>>(),
        accepted
    );

    let logged = poll_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || logs(&api, &subscription),
        |l| l.len() >= 15,
    )
    .await;
    assert_eq!(logged.len(), 15, "five events, three attempts each");
    let ok = logged.iter().filter(|l| l["delivery_status"] == "success");
    assert_eq!(ok.count(), 5);
    assert!(logged
        .iter()
        .all(|l| l["batch_id"].as_str() == Some(batches[0].0.as_str())));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_delivers_the_big_deal_only_and_logs_only_it() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("deals", Behavior::Ok);
    let (status, refused) = api
        .send(
            "POST",
            "/workspaces/{ws}/subscription",
            Some(
                json!({"webhook_url": url, "event_types": ["crm.deal_won"], "is_enabled": true,
                "filter": {"data.amount": {"$atleast": 1000}}}),
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        refused["fieldErrors"]["filter.data.amount.$atleast"].is_array(),
        "{refused}"
    );
    let filter = json!({"filter": {"data.amount": {"$gte": 1000}}});
    let subscription = subscribe_with(&api, &url, &["crm.deal_won"], filter.clone()).await;
    assert_eq!(subscription["filter"], filter["filter"]);
    for (deal, amount) in [("big", 5000), ("small", 50)] {
        let body = json!({"eventTimestamp": "1706956200", "eventType": "deal_won",
            "opportunityId": deal, "opportunityName": deal, "amount": amount});
        let (status, answer) = post(
            &serving,
            &format!("{ROUTE_PREFIX}crm"),
            Some(&serving.api_key),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    receiver.wait_for("deals", 1, Duration::from_secs(10)).await;
    // The small deal had its chance to arrive too.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = receiver.received("deals");
    assert_eq!(got.len(), 1, "{got:?}");
    let envelope: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(envelope["data"]["amount"], 5000);
    let logged = logs(&api, &subscription).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
}

/// Kills `serve` while batches are being sent and starts it again: every event arrives, each
/// in exactly one batch (a batch in flight at the kill may come again, under its own id).
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_batch_loses_and_doubles_nothing() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let api = Api { serving: &serving };
    let url = receiver.endpoint("slow", Behavior::Slow(Duration::from_millis(300)));
    let mode =
        json!({"delivery_mode": {"mode": "batched", "max_events": 20, "max_wait_seconds": 1}});
    subscribe_with(&api, &url, &["emails.sent"], mode).await;
    let accepted = ingest_emails(&serving, "crash", 200).await;
    receiver.wait_for("slow", 1, Duration::from_secs(15)).await;
    drop(serving);
    let _serving = Serving::start(dir.path());

    let arrived = |posts: &[Received]| -> HashSet<String> {
        posts.iter().flat_map(|p| batch_of(p).1).collect()
    };
    poll_until(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async { receiver.received("slow") },
        |posts| arrived(posts).len() >= accepted.len(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posts = receiver.received("slow");
    assert_eq!(arrived(&posts), accepted, "every accepted event arrived");
    let mut batch_of_event: HashMap<String, String> = HashMap::new();
    let mut events_of_batch: HashMap<String, Vec<String>> = HashMap::new();
    for post in &posts {
        let (id, events) = batch_of(post);
        if let Some(earlier) = events_of_batch.get(&id) {
            assert_eq!(earlier, &events, "a repeated batch carries the same events");
            continue;
        }
        for event in &events {
            let other = batch_of_event.insert(event.clone(), id.clone());
            assert!(
                other.is_none(),
                "{event} in two batches: {other:?} and {id}"
            );
        }
        events_of_batch.insert(id, events);
    }
    eprintln!(
        "{} batches, {} POSTs after a kill mid-batch",
        events_of_batch.len(),
        posts.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_control_fields_are_validated_named_and_cleared_by_null() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("fields", Behavior::Ok);
    let plain = subscribe_with(&api, &url, &["emails.sent"], json!({})).await;
    assert_eq!(plain["delivery_mode"], json!({"mode": "immediate"}));
    assert!(plain["rate_limit_per_second"].is_null() && plain["filter"].is_null());
    let path = format!(
        "/workspaces/{{ws}}/subscription/{}",
        plain["id"].as_str().unwrap()
    );
    let (status, refused) = api
        .send(
            "PATCH",
            &path,
            Some(json!({"updated_by": "ana", "rate_limit_per_second": 0,
                "delivery_mode": {"mode": "batched", "max_events": 1},
                "filter": {"data.x": {"$in": []}}})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    for field in [
        "rate_limit_per_second",
        "delivery_mode.max_events",
        "delivery_mode.max_wait_seconds",
        "filter.data.x.$in",
    ] {
        assert!(
            refused["fieldErrors"][field].is_array(),
            "{field}: {refused}"
        );
    }
    let set = json!({"updated_by": "ana", "rate_limit_per_second": 20,
        "delivery_mode": {"mode": "delayed", "delay_seconds": 60}, "filter": {"data.subject": {"$prefix": "Re:"}}});
    let (status, patched) = api.send("PATCH", &path, Some(set.clone())).await;
    assert_eq!(status, 200, "{patched}");
    for field in ["rate_limit_per_second", "delivery_mode", "filter"] {
        assert_eq!(patched[field], set[field], "{field}");
    }
    let (status, cleared) = api
        .send(
            "PATCH",
            &path,
            Some(json!({"updated_by": "ana", "rate_limit_per_second": null, "filter": null})),
        )
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared["rate_limit_per_second"].is_null() && cleared["filter"].is_null());
    assert_eq!(
        cleared["delivery_mode"], set["delivery_mode"],
        "untouched when absent"
    );
}
