//! `hookline dlq list|redrive` as an operator runs it: on a local data directory's embedded
//! queues, and on SQS (moto) found through the source queue's redrive policy.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hookline::local::{DELIVERIES_DLQ, DELIVERIES_QUEUE};
use hookline_shared::adapters::{EmbeddedDb, EmbeddedQueue};
use hookline_shared::delivery::DeliveryId;
use hookline_shared::{EventId, Queue as _, QueueMessage, SubscriptionId, WorkspaceId};
use serde_json::Value;

use crate::support::{moto_url, MotoStack};

const BINARY: &str = env!("CARGO_BIN_EXE_hookline");

/// A delivery attempt's message, as the worker queues it.
fn deliver(attempt: u32) -> QueueMessage {
    QueueMessage::Deliver {
        workspace_id: WorkspaceId::generate(),
        delivery_id: DeliveryId::for_pair(&EventId::generate(), &SubscriptionId::generate()),
        subscription_id: Some(SubscriptionId::generate()),
        attempt,
        not_before: 0,
        resumed: false,
        slot_micros: None,
    }
}

/// Runs `hookline dlq …` with `env`; its stdout as JSON lines.
fn dlq(args: &[&str], data_dir: &Path, env: &[(&str, &str)]) -> Vec<Value> {
    let out = Command::new(BINARY)
        .arg("dlq")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("HOOKLINE_EVENTS_QUEUE_URL")
        .env_remove("HOOKLINE_DELIVERIES_QUEUE_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON lines"))
        .collect()
}

/// Every message visible on `queue` now, left visible.
async fn bodies<Q: hookline_shared::Queue>(queue: &Q) -> Vec<String> {
    let held = queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap();
    for message in &held {
        queue
            .change_visibility(&message.receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    held.into_iter().map(|m| m.body).collect()
}

fn check_listing(listed: &[Value], sent: &[QueueMessage]) {
    assert_eq!(listed.len(), sent.len(), "{listed:?}");
    for line in listed {
        assert_eq!(line["kind"], "deliver", "{line}");
        assert!(line["message_id"].is_string(), "{line}");
        assert!(line["receive_count"].as_u64().is_some(), "{line}");
        assert!(
            line["ids"]["delivery_id"]
                .as_str()
                .unwrap()
                .starts_with("msg_"),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_of_a_data_dir_are_listed_and_redriven_to_their_queue() {
    let dir = tempfile::tempdir().unwrap();
    let sent: Vec<QueueMessage> = (1..=3).map(deliver).collect();
    {
        let db = EmbeddedDb::open(&dir.path().join("hookline.db")).unwrap();
        let dead = EmbeddedQueue::new(db, DELIVERIES_DLQ, None);
        for message in &sent {
            dead.send(&message.to_body(), Duration::ZERO).await.unwrap();
        }
    }
    let listed = dlq(&["list", "--queue", "deliveries"], dir.path(), &[]);
    check_listing(&listed, &sent);
    assert!(dlq(&["list", "--queue", "events"], dir.path(), &[]).is_empty());
    let again = dlq(
        &["list", "--queue", "deliveries", "--max", "2"],
        dir.path(),
        &[],
    );
    assert_eq!(
        again.len(),
        2,
        "listing leaves them in place; --max bounds it"
    );

    let moved = dlq(
        &["redrive", "--queue", "deliveries", "--max", "2"],
        dir.path(),
        &[],
    );
    assert_eq!(
        moved,
        [serde_json::json!({"queue": "deliveries", "redriven": 2})]
    );
    let rest = dlq(&["redrive", "--queue", "deliveries"], dir.path(), &[]);
    assert_eq!(rest[0]["redriven"], 1);
    assert!(dlq(&["list", "--queue", "deliveries"], dir.path(), &[]).is_empty());

    let db = EmbeddedDb::open(&dir.path().join("hookline.db")).unwrap();
    let mut back = bodies(&EmbeddedQueue::new(db, DELIVERIES_QUEUE, None)).await;
    let mut expected: Vec<String> = sent.iter().map(QueueMessage::to_body).collect();
    back.sort();
    expected.sort();
    assert_eq!(back, expected, "each message back on its queue, once");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_on_sqs_are_listed_and_redriven_through_the_redrive_policy() {
    let stack = MotoStack::create(2).await;
    let dead = stack.dead_letters();
    let sent: Vec<QueueMessage> = (1..=3).map(deliver).collect();
    for message in &sent {
        dead.send(&message.to_body(), Duration::ZERO).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let moto = moto_url();
    let env = [
        ("HOOKLINE_DELIVERIES_QUEUE_URL", stack.queue_url.as_str()),
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    check_listing(
        &dlq(&["list", "--queue", "deliveries"], dir.path(), &env),
        &sent,
    );
    let moved = dlq(&["redrive", "--queue", "deliveries"], dir.path(), &env);
    assert_eq!(moved[0]["redriven"], 3, "{moved:?}");
    assert!(dlq(&["list", "--queue", "deliveries"], dir.path(), &env).is_empty());
    let mut back = bodies(&stack.queue()).await;
    let mut expected: Vec<String> = sent.iter().map(QueueMessage::to_body).collect();
    back.sort();
    expected.sort();
    assert_eq!(back, expected);
}
