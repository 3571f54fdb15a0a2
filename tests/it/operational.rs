//! Operational events in local mode: a workspace's subscriptions to `subscription.paused` and
//! `delivery.failing` hear of another subscription's trouble, and that one never does.

use std::time::Duration;

use serde_json::Value;

use crate::delivery::{email, ingest, serving_with_receiver, subscribe, wait_paused};
use crate::notify_api::Api;
use crate::receiver::{Behavior, Receiver};

fn bodies(receiver: &Receiver, name: &str) -> Vec<Value> {
    let posts = receiver.received(name);
    posts
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_is_told_once_to_the_workspaces_other_subscribers_and_never_to_itself() {
    let schedule = [(
        "HOOKLINE_RETRY_SCHEDULE",
        "0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2",
    )];
    let (receiver, _dir, serving) = serving_with_receiver(&schedule).await;
    let api = Api { serving: &serving };
    let own_types = ["emails.sent", "subscription.paused", "delivery.failing"];
    let broken = subscribe(
        &api,
        &receiver.endpoint("broken", Behavior::AlwaysFail),
        &own_types,
    )
    .await;
    let watcher = receiver.endpoint("watcher", Behavior::Ok);
    subscribe(&api, &watcher, &["subscription.paused"]).await;
    let pager = receiver.endpoint("pager", Behavior::Ok);
    subscribe(&api, &pager, &["delivery.failing"]).await;

    ingest(&serving, &email("fails ten times")).await;
    wait_paused(&api, &broken, Duration::from_secs(30)).await;
    let told = receiver
        .wait_for("watcher", 1, Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received("watcher").len(), 1, "told once: {told:?}");
    let paused = &bodies(&receiver, "watcher")[0];
    assert_eq!(paused["event_type"], "subscription.paused", "{paused}");
    assert_eq!(paused["data"]["subscription_id"], broken["id"], "{paused}");
    let reason = paused["data"]["reason"].as_str().unwrap();
    assert!(reason.contains("10 consecutive"), "{paused}");
    assert_eq!(paused["data"]["last_error"]["status_code"], 500, "{paused}");
    assert_eq!(paused["data"]["last_error"]["attempt"], 10, "{paused}");

    let failing = bodies(&receiver, "pager");
    assert_eq!(failing.len(), 1, "after the 4th failure only: {failing:?}");
    assert_eq!(failing[0]["data"]["attempt"], 4);
    assert_eq!(failing[0]["data"]["subscription_id"], broken["id"]);
    let own: Vec<Value> = bodies(&receiver, "broken");
    assert_eq!(own.len(), 10);
    assert!(
        own.iter().all(|b| b["event_type"] == "emails.sent"),
        "the failing subscription hears nothing of itself"
    );
}
