//! Crash recovery of local mode: `serve` stopped mid-delivery and started again on the same
//! data directory loses nothing and drains in seconds. Killed (SIGKILL), it may repeat an
//! attempt it could not record, always with the same `webhook-id`; stopped (SIGTERM), it
//! finishes what it started and repeats nothing.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};
use serde_json::Value;

use hookline::local::LocalStack;

use crate::delivery::{email, ingest, subscribe};
use crate::local_mode::Serving;
use crate::notify_api::Api;
use crate::receiver::{Behavior, Receiver};
use crate::support::poll_until;

const EVENTS: usize = 500;
const RECEIVERS: [&str; 3] = ["first", "second", "third"];
/// Generous for 1,500 deliveries on a loaded 2-core machine; a healthy restart takes seconds.
const DRAIN_LIMIT: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    Kill,
    Terminate,
}

/// Per receiver: event id → the `webhook-id` of every POST that carried it.
fn posts_by_event(receiver: &Receiver) -> HashMap<&'static str, HashMap<String, Vec<String>>> {
    RECEIVERS
        .iter()
        .map(|name| {
            let mut by_event: HashMap<String, Vec<String>> = HashMap::new();
            for post in receiver.received(name) {
                let envelope: Value = serde_json::from_str(&post.body).unwrap();
                let event = envelope["source"]["id"].as_str().unwrap().to_owned();
                let webhook_id = post.headers["webhook-id"].as_str().unwrap().to_owned();
                by_event.entry(event).or_default().push(webhook_id);
            }
            (*name, by_event)
        })
        .collect()
}

fn all_arrived(receiver: &Receiver, accepted: &HashSet<String>) -> bool {
    posts_by_event(receiver)
        .values()
        .all(|by_event| accepted.iter().all(|id| by_event.contains_key(id)))
}

/// Ingests `EVENTS` emails, stops `serve` as `stop` says once a fifth of the deliveries
/// arrived, starts it again, and checks what every receiver got. Returns the drain time after
/// the restart and the number of repeated POSTs.
async fn stop_mid_delivery_and_restart(stop: Stop) -> (Duration, usize) {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let api = Api { serving: &serving };
    for name in RECEIVERS {
        // A short wait keeps attempts in flight when the process goes.
        let url = receiver.endpoint(name, Behavior::Slow(Duration::from_millis(10)));
        subscribe(&api, &url, &["emails.sent"]).await;
    }
    let accepted: HashSet<String> = stream::iter(0..EVENTS)
        .map(|i| {
            let serving = &serving;
            async move {
                let answer = ingest(serving, &email(&format!("{stop:?} {i}"))).await;
                answer["additionalData"]["eventId"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(accepted.len(), EVENTS);

    let total = || {
        RECEIVERS
            .iter()
            .map(|n| receiver.received(n).len())
            .sum::<usize>()
    };
    let fifth = EVENTS * RECEIVERS.len() / 5;
    poll_until(
        Duration::from_secs(60),
        Duration::from_millis(5),
        || async { total() },
        |arrived| *arrived >= fifth,
    )
    .await;
    let before = total();
    assert!(
        before < EVENTS * RECEIVERS.len(),
        "stopped before the deliveries were done ({before})"
    );
    match stop {
        Stop::Kill => drop(serving),
        Stop::Terminate => assert!(serving.stop().success(), "SIGTERM stops cleanly"),
    }

    let restarted_at = Instant::now();
    let serving = Serving::start(dir.path());
    poll_until(
        DRAIN_LIMIT,
        Duration::from_millis(20),
        || async { all_arrived(&receiver, &accepted) },
        |done| *done,
    )
    .await;
    let drained = restarted_at.elapsed();
    assert!(
        all_arrived(&receiver, &accepted),
        "every accepted event reached every receiver within {DRAIN_LIMIT:?} of the restart"
    );
    // Anything still to come (a repeat) has its chance to arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(serving);

    let mut repeats = 0;
    for (name, by_event) in posts_by_event(&receiver) {
        for (event, webhook_ids) in by_event {
            assert!(accepted.contains(&event), "{name} got an event nobody sent");
            assert!(
                webhook_ids.iter().all(|id| *id == webhook_ids[0]),
                "{name}: repeats of {event} carry one webhook-id: {webhook_ids:?}"
            );
            repeats += webhook_ids.len() - 1;
        }
    }
    eprintln!(
        "{stop:?} after {before} of {} deliveries: drained {drained:?} after the restart, {repeats} repeated",
        EVENTS * RECEIVERS.len()
    );
    (drained, repeats)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_serve_loses_nothing_and_recovers_in_seconds() {
    let (drained, _) = stop_mid_delivery_and_restart(Stop::Kill).await;
    // Before the restart took over the dead process's claims this waited out the queue's
    // 90 s visibility timeout.
    assert!(drained < Duration::from_secs(45), "drained in {drained:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_serve_finishes_what_it_started_and_repeats_nothing() {
    let (_, repeats) = stop_mid_delivery_and_restart(Stop::Terminate).await;
    assert_eq!(repeats, 0);
}

#[test]
fn a_second_stack_on_a_data_dir_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = LocalStack::open(dir.path(), Default::default()).unwrap();
    let refused = LocalStack::open(dir.path(), Default::default())
        .err()
        .expect("the directory is in use");
    assert!(
        refused
            .to_string()
            .contains("another hookline serve is using"),
        "{refused}"
    );
    drop(first);
    // Released with its holder, as it is when a process dies.
    LocalStack::open(dir.path(), Default::default()).unwrap();
}
