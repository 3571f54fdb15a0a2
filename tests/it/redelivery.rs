//! Replay and recovery in local mode: real receivers on loopback, the official signature
//! verifiers, deliveries that gave up sent again with their own `webhook-id`.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use crate::delivery::{email, ingest, logs, serving_with_receiver, subscribe};
use crate::notify_api::Api;
use crate::receiver::{Behavior, Receiver};
use crate::signature_verifiers::{both_verify, Verdict};
use crate::support::poll_until;

const POLL: Duration = Duration::from_millis(100);

/// Polls until the subscription has `count` logs.
async fn wait_for_log_count(api: &Api<'_>, subscription: &Value, count: usize) -> Vec<Value> {
    poll_until(
        Duration::from_secs(20),
        POLL,
        || logs(api, subscription),
        |found| found.len() >= count,
    )
    .await
}

fn webhook_ids(receiver: &Receiver, name: &str) -> Vec<String> {
    let posts = receiver.received(name);
    let ids = posts
        .iter()
        .map(|r| r.headers["webhook-id"].as_str().unwrap().to_owned());
    ids.collect()
}

async fn replay(api: &Api<'_>, log_id: &str) -> (u16, Value) {
    let path = format!("/workspaces/{{ws}}/logs/{log_id}/replay");
    api.send("POST", &path, None).await
}

async fn recover(api: &Api<'_>, subscription: &Value, body: Value) -> (u16, Value) {
    let id = subscription["id"].as_str().unwrap();
    let path = format!("/workspaces/{{ws}}/subscription/{id}/recover");
    api.send("POST", &path, Some(body)).await
}

async fn set_enabled(api: &Api<'_>, subscription: &Value, enabled: bool) {
    let id = subscription["id"].as_str().unwrap();
    let body = json!({"is_enabled": enabled, "updated_by": "ops"});
    let path = format!("/workspaces/{{ws}}/subscription/{id}");
    let (status, answer) = api.send("PATCH", &path, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_given_up_delivery_is_sent_again_by_replay_with_its_own_webhook_id() {
    let schedule = [("HOOKLINE_RETRY_SCHEDULE", "0.2,0.2")];
    let (receiver, _dir, serving) = serving_with_receiver(&schedule).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("hook", Behavior::AlwaysFail);
    let subscription = subscribe(&api, &url, &["emails.sent"]).await;
    ingest(&serving, &email("replay me")).await;
    let failed = wait_for_log_count(&api, &subscription, 3).await;
    assert!(
        failed.iter().all(|l| l["delivery_status"] == "failed"),
        "{failed:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.received("hook").len(),
        3,
        "gave up after three attempts"
    );

    // The receiver works now; the oldest log of the delivery names it.
    receiver.set("hook", Behavior::Ok);
    let log_id = failed[0]["id"].as_str().unwrap();
    let (status, answer) = replay(&api, log_id).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["attempt"], 4, "{answer}");
    let posts = receiver.wait_for("hook", 4, Duration::from_secs(5)).await;
    assert_eq!(posts.len(), 4);
    let ids = webhook_ids(&receiver, "hook");
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id: {ids:?}"
    );
    assert_eq!(answer["delivery_id"], ids[0].as_str());
    let secret = subscription["secret"].as_str().unwrap();
    assert_eq!(
        both_verify(secret, &posts[3].body, &posts[3]),
        [Verdict::Verified, Verdict::Verified]
    );
    let after = wait_for_log_count(&api, &subscription, 4).await;
    assert_eq!(after[3]["delivery_status"], "success");
    assert_eq!(after[3]["attempt"], 4);

    // Whatever its state: a delivery that succeeded is sent once more too.
    let (status, answer) = replay(&api, log_id).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        receiver
            .wait_for("hook", 5, Duration::from_secs(5))
            .await
            .len(),
        5
    );

    // Unknown and malformed ids read alike; a paused subscription refuses, saying what to do.
    let (unknown_status, unknown) = replay(&api, &"0".repeat(32)).await;
    let (malformed_status, malformed) = replay(&api, "not-a-log").await;
    assert_eq!((unknown_status, malformed_status), (404, 404));
    assert_eq!(unknown, malformed);
    set_enabled(&api, &subscription, false).await;
    let (status, refused) = replay(&api, log_id).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("enable it first"),
        "{refused}"
    );
    assert_eq!(
        receiver.received("hook").len(),
        5,
        "nothing sent while paused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recover_sends_every_failed_delivery_of_the_window_again_exactly_once() {
    let schedule = [("HOOKLINE_RETRY_SCHEDULE", "0.2")];
    let (receiver, _dir, serving) = serving_with_receiver(&schedule).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("hook", Behavior::AlwaysFail);
    let subscription = subscribe(&api, &url, &["emails.sent"]).await;
    let since = Utc::now() - chrono::Duration::minutes(1);
    for n in 0..3 {
        ingest(&serving, &email(&format!("lost {n}"))).await;
    }
    wait_for_log_count(&api, &subscription, 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received("hook").len(),
        6,
        "three deliveries gave up"
    );
    let failed: std::collections::BTreeSet<String> =
        webhook_ids(&receiver, "hook").into_iter().collect();
    assert_eq!(failed.len(), 3);
    receiver.set("hook", Behavior::Ok);
    ingest(&serving, &email("fine")).await;
    receiver.wait_for("hook", 7, Duration::from_secs(5)).await;
    let delivered = webhook_ids(&receiver, "hook").pop().unwrap();

    let window = json!({"since": since.to_rfc3339()});
    let (status, first) = recover(&api, &subscription, window.clone()).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["queued"], 3, "{first}");
    assert!(
        first["job_id"].as_str().unwrap().starts_with("rcv_"),
        "{first}"
    );
    let (status, second) = recover(&api, &subscription, window.clone()).await;
    assert_eq!(status, 202, "{second}");
    assert_eq!(second["queued"], 0, "already queued again: {second}");

    receiver.wait_for("hook", 10, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let ids = webhook_ids(&receiver, "hook");
    assert_eq!(ids.len(), 10, "each failed delivery once more: {ids:?}");
    let resent: std::collections::BTreeSet<String> = ids[7..].iter().cloned().collect();
    assert_eq!(resent, failed, "the failed ones, not {delivered}");
    let (_, third) = recover(&api, &subscription, window).await;
    assert_eq!(third["queued"], 0, "nothing failed is left: {third}");

    let (status, invalid) =
        recover(&api, &subscription, json!({"until": since.to_rfc3339()})).await;
    assert_eq!(status, 400, "{invalid}");
    assert!(invalid["fieldErrors"]["since"].is_array(), "{invalid}");
    set_enabled(&api, &subscription, false).await;
    let (status, refused) =
        recover(&api, &subscription, json!({"since": since.to_rfc3339()})).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("enable it first"));
}
