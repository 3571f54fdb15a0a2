//! Rate limits end to end in local mode: a limited subscription's attempts are spread over
//! time, none lost, none repeated, none counted as failures; an unlimited subscription on the
//! same events is not held back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::delivery::{email, ingest, logs, serving_with_receiver, subscribe};
use crate::notify_api::Api;
use crate::receiver::{Behavior, Received};

const EVENTS: usize = 20;

/// The event ids of `posts`, each once, and how many posts there were.
fn event_ids(posts: &[Received]) -> HashSet<String> {
    posts
        .iter()
        .map(|post| {
            let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
            body["source"]["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn five_a_second_spreads_twenty_events_over_seconds_and_an_unlimited_subscriber_is_not_slowed(
) {
    // Every attempt admitted at once: most reserve a slot beyond the wait in place, give their
    // claim back and come back off the queue for it.
    let in_flight = [("HOOKLINE_MAX_IN_FLIGHT_PER_SUBSCRIPTION", "32")];
    let (receiver, _dir, serving) = serving_with_receiver(&in_flight).await;
    let api = Api { serving: &serving };
    let body = json!({
        "webhook_url": receiver.endpoint("paced", Behavior::Ok),
        "event_types": ["emails.sent"], "is_enabled": true, "created_by": "tests",
        "rate_limit_per_second": 5,
    });
    let (status, paced) = api
        .send("POST", "/workspaces/{ws}/subscription", Some(body))
        .await;
    assert_eq!(status, 201, "{paced}");
    let free_url = receiver.endpoint("free", Behavior::Ok);
    subscribe(&api, &free_url, &["emails.sent"]).await;

    let started = Instant::now();
    for n in 0..EVENTS {
        ingest(&serving, &email(&format!("paced {n}"))).await;
    }
    let free = receiver
        .wait_for("free", EVENTS, Duration::from_secs(10))
        .await;
    let free_done = free.last().map(|post| post.at - started);
    assert_eq!(
        free.len(),
        EVENTS,
        "the unlimited subscriber got every event"
    );
    assert!(
        free_done < Some(Duration::from_secs(3)),
        "the unlimited subscriber is not slowed: its last event came after {free_done:?}"
    );

    let paced_posts = receiver
        .wait_for("paced", EVENTS, Duration::from_secs(30))
        .await;
    assert_eq!(paced_posts.len(), EVENTS, "none lost");
    // Anything sent twice would arrive within the next few slots.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let paced_posts = receiver.received("paced");
    assert_eq!(paced_posts.len(), EVENTS, "none repeated");
    assert_eq!(event_ids(&paced_posts), event_ids(&free), "the same events");
    let mut times: Vec<Instant> = paced_posts.iter().map(|post| post.at).collect();
    times.sort();
    let spread = times[EVENTS - 1] - times[0];
    // 19 intervals of 200 ms at 5 a second.
    assert!(
        spread >= Duration::from_millis(3_500) && spread < Duration::from_secs(20),
        "first to last receipt took {spread:?}"
    );

    // Waiting for a slot is neither a failure nor an attempt: one successful first attempt each.
    let paced_logs = logs(&api, &paced).await;
    assert_eq!(paced_logs.len(), EVENTS, "one log per event");
    assert!(
        paced_logs
            .iter()
            .all(|log| log["delivery_status"] == "success" && log["attempt"] == 1),
        "{paced_logs:?}"
    );
}
