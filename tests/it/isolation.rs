//! One receiver's trouble stays its own: a hanging receiver does not hold up a healthy one, and
//! a failing one is paused after exactly its run of failures, however many attempts were queued.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};
use serde_json::Value;

use crate::delivery::{email, ingest, logs, serving_with_receiver, subscribe, wait_paused};
use crate::local_mode::Serving;
use crate::notify_api::Api;
use crate::receiver::Behavior;

/// Ingests one email per subject, `concurrency` at a time, and says when each was answered.
async fn ingest_subjects(
    serving: &Serving,
    subjects: &[String],
    concurrency: usize,
) -> HashMap<String, Instant> {
    stream::iter(subjects)
        .map(|subject| async move {
            ingest(serving, &email(subject)).await;
            (subject.clone(), Instant::now())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

fn subject_of(body: &str) -> String {
    let envelope: Value = serde_json::from_str(body).expect("a JSON envelope");
    envelope["data"]["subject"]
        .as_str()
        .expect("the email's subject")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    // Never answers within the sender's timeout: every attempt to it holds its slot for 15 s.
    let hanging = receiver.endpoint("hanging", Behavior::Slow(Duration::from_secs(3600)));
    subscribe(&api, &hanging, &["emails.sent"]).await;
    let healthy = receiver.endpoint("healthy", Behavior::Ok);
    subscribe(&api, &healthy, &["emails.sent"]).await;

    // 40 events at once: 40 attempts for the hanging receiver, more than the worker's slots.
    let burst: Vec<String> = (0..40).map(|i| format!("burst {i}")).collect();
    let mut answered = ingest_subjects(&serving, &burst, 16).await;
    // Then a steady trickle while those hang.
    for i in 0..40 {
        let subject = format!("paced {i}");
        answered.extend(ingest_subjects(&serving, &[subject], 1).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver
        .wait_for("healthy", answered.len(), Duration::from_secs(30))
        .await;
    assert_eq!(
        got.len(),
        answered.len(),
        "the healthy receiver got every event"
    );
    let mut delays: Vec<Duration> = got
        .iter()
        .map(|r| {
            r.at.saturating_duration_since(answered[&subject_of(&r.body)])
        })
        .collect();
    delays.sort();
    let p99 = delays[(delays.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "healthy receiver beside a hanging one: p50 {:?}, p99 {p99:?}, {} events",
        delays[delays.len() / 2],
        delays.len()
    );
    assert!(
        p99 < Duration::from_secs(1),
        "healthy p99 {p99:?} (p50 {:?})",
        delays[delays.len() / 2]
    );
    assert!(
        receiver.received("hanging").len() <= 4,
        "at most 4 attempts of one subscription in flight: {}",
        receiver.received("hanging").len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_is_paused_after_exactly_ten_failures_with_many_queued() {
    let schedule = "0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3";
    let (receiver, _dir, serving) =
        serving_with_receiver(&[("HOOKLINE_RETRY_SCHEDULE", schedule)]).await;
    let api = Api { serving: &serving };
    let broken = subscribe(
        &api,
        &receiver.endpoint("broken", Behavior::AlwaysFail),
        &["emails.sent"],
    )
    .await;

    let subjects: Vec<String> = (0..30).map(|i| format!("doomed {i}")).collect();
    ingest_subjects(&serving, &subjects, 16).await;
    let paused = wait_paused(&api, &broken, Duration::from_secs(60)).await;
    assert_eq!(paused["is_enabled"], false, "{paused}");
    // Whatever was still in flight or queued had its chance to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.received("broken").len(),
        10,
        "POSTs before the pause"
    );
    assert_eq!(logs(&api, &broken).await.len(), 10, "attempts logged");
}

/// The delivery Lambda's batch: nine records for a healthy receiver are sent while the tenth
/// waits on one that hangs, not after its timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_lambda_batch_sends_nine_while_the_tenth_hangs() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use hookline_shared::delivery::Delivery;
    use hookline_shared::{
        DeliveryStore as _, EventStore as _, QueueMessage, SubscriptionStore as _, Workspace,
        WorkspaceId, WorkspaceStore as _,
    };

    let receiver = crate::receiver::Receiver::start().await;
    let stack = crate::support::EmbeddedStack::create(5);
    let worker = std::sync::Arc::new(crate::delivery::embedded_worker(&stack));
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        name: "batch".into(),
        created_at: chrono::Utc::now(),
    };
    stack.db.create_workspace(&workspace).await.unwrap();
    let subscribed = |name: &str, behavior| {
        let mut subscription =
            crate::contract::subscription(&workspace.id, &["crm.deal_won"], true);
        subscription.webhook_url = receiver.endpoint(name, behavior);
        subscription
    };
    let hanging = subscribed("hanging", Behavior::Slow(Duration::from_secs(3600)));
    let healthy = subscribed("healthy", Behavior::Ok);
    for subscription in [&hanging, &healthy] {
        stack.db.create_subscription(subscription).await.unwrap();
    }
    let now = chrono::Utc::now();
    let mut records = Vec::new();
    for i in 0..10 {
        let event = crate::contract::event(&workspace.id, &format!("deal-{i}"));
        stack
            .events
            .insert_if_absent(&event, now.timestamp() + 3600)
            .await
            .unwrap();
        let to = if i == 0 { &hanging } else { &healthy };
        let delivery = stack
            .db
            .create_delivery(&Delivery::new(&event, to, now))
            .await
            .unwrap();
        let message = QueueMessage::Deliver {
            workspace_id: workspace.id.clone(),
            delivery_id: delivery.id.clone(),
            subscription_id: Some(to.id.clone()),
            attempt: 1,
            not_before: 0,
            resumed: false,
            slot_micros: None,
        };
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("m{i}"));
        record.body = Some(message.to_body());
        records.push(record);
    }
    let mut batch = SqsEvent::default();
    batch.records = records;
    let invocation = lambda_runtime::LambdaEvent::new(batch, Default::default());
    let handling = tokio::spawn({
        let worker = std::sync::Arc::clone(&worker);
        async move { delivery::handle_sqs(&worker, invocation).await.is_ok() }
    });

    let got = receiver
        .wait_for("healthy", 9, Duration::from_secs(5))
        .await;
    assert_eq!(got.len(), 9, "the healthy records were sent at once");
    assert_eq!(receiver.received("hanging").len(), 1);
    assert!(
        !handling.is_finished(),
        "the hanging record is still waiting"
    );
    handling.abort();
}
