//! One contract suite for the ports, run against the DynamoDB/SQS adapters (on moto), the
//! embedded adapters and the in-memory ones: if they can disagree, these tests say where.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use hookline_shared::adapters::MAX_ITEM_BYTES;
use hookline_shared::batch::Gathered;
use hookline_shared::connection::MAX_CONNECTIONS_PER_WORKSPACE;
use hookline_shared::custom_types::NewEventType;
use hookline_shared::delivery::{Delivery, DeliveryLog, DeliveryState, DeliveryStatus};
use hookline_shared::delivery_control::{BatchLimits, RateLimit, Slot};
use hookline_shared::test_support::{DeliveryLookup, EventLookup};
use hookline_shared::{
    ApiKey, BatchStore, Category, Claim, Connection, ConnectionId, ConnectionStore, Created,
    CustomEventType, Defined, DeliveryStore, Event, EventId, EventStore, EventTypeName,
    EventTypeStore, FailureCounter, Inserted, LogQuery, LogStore, NewSubscription, Queue,
    RateLimiter, RawJson, ReceivedMessage, StoreError, Subscription, SubscriptionId,
    SubscriptionStore, SubscriptionType, Workspace, WorkspaceId, WorkspaceStore,
    MAX_EVENT_TYPES_PER_WORKSPACE, MAX_SUBSCRIPTIONS_PER_WORKSPACE,
};
use serde_json::json;

use crate::support::{EmbeddedStack, MemoryStack, MotoStack, Outbox};

const MAX_RECEIVES: u32 = 2;

/// One `#[tokio::test]` per backend (DynamoDB/SQS on moto, embedded, memory), each running
/// `$contract` on the ports its stack builds under the names given; an attribute after
/// `dynamodb:` applies to the moto run alone.
macro_rules! every_backend {
    ($test:ident => $contract:ident($($port:ident),+) $(, dynamodb: #[$dynamodb:meta])?) => {
        mod $test {
            use super::*;

            #[tokio::test]
            $(#[$dynamodb])?
            async fn dynamodb() {
                let stack = MotoStack::create(MAX_RECEIVES).await;
                $contract($(&stack.$port()),+).await;
            }

            #[tokio::test]
            async fn embedded() {
                let stack = EmbeddedStack::create(MAX_RECEIVES);
                $contract($(&stack.$port()),+).await;
            }

            #[tokio::test]
            async fn memory() {
                let stack = MemoryStack::create(MAX_RECEIVES);
                $contract($(&stack.$port()),+).await;
            }
        }
    };
}

every_backend!(workspace_store => workspace_store_contract(workspaces));
every_backend!(event_store => event_store_contract(events));
every_backend!(event_outbox => event_outbox_contract(events, outbox));
every_backend!(queue => queue_contract(queue, dead_letters));
every_backend!(subscription_store => subscription_store_contract(subscriptions));
every_backend!(
    subscription_limit => subscription_limit_contract(subscriptions),
    dynamodb: #[ignore = "moto does not serialize concurrent transactions"]
);
every_backend!(delivery_store => delivery_store_contract(deliveries, logs));
every_backend!(event_type_store => event_type_store_contract(event_types));
every_backend!(
    event_type_limit => event_type_limit_contract(event_types),
    dynamodb: #[ignore = "moto does not serialize concurrent transactions"]
);
every_backend!(
    event_types_beside_subscriptions => event_types_beside_subscriptions_contract(event_types, subscriptions)
);
every_backend!(failure_counter => failure_counter_contract(subscriptions));
every_backend!(released_attempt => released_attempt_contract(deliveries));
// Twice the port: on DynamoDB two adapters, like two workers, each with its own memory of
// the last next-free time it saw.
every_backend!(rate_limiter => rate_limiter_contract(subscriptions, subscriptions));
every_backend!(
    concurrent_rate_limiter => concurrent_rate_limiter_contract(subscriptions, subscriptions),
    dynamodb: #[ignore = "moto does not serialize concurrent conditional writes"]
);
every_backend!(connection_store => connection_store_contract(connections, subscriptions));
const HOUR: i64 = 3600;

fn workspace(name: &str) -> Workspace {
    let created_at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&Utc);
    Workspace {
        id: WorkspaceId::generate(),
        name: name.into(),
        created_at,
    }
}

pub(crate) fn event(workspace_id: &WorkspaceId, dedup_id: &str) -> Event {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    Event::generic(
        EventId::generate(),
        workspace_id.clone(),
        dedup_id.into(),
        Category::Crm,
        "deal_won",
        at("2024-02-03T10:30:00Z"),
        at("2026-11-23T10:00:00.123Z"),
        RawJson::from_value(
            &json!({"opportunityId": "o1", "amount": 12.5, "nested": {"ü": ["x", null, true]}}),
        ),
    )
}

async fn workspace_store_contract<S: WorkspaceStore>(store: &S) {
    let ws = workspace("acme ☕");
    store.create_workspace(&ws).await.unwrap();
    assert_eq!(store.get_workspace(&ws.id).await.unwrap(), Some(ws.clone()));
    assert_eq!(
        store.get_workspace(&WorkspaceId::generate()).await.unwrap(),
        None
    );
    assert!(
        store.create_workspace(&ws).await.is_err(),
        "a workspace id is created once"
    );

    let key = ApiKey::generate();
    store.add_api_key(&ws.id, &key.hash()).await.unwrap();
    assert_eq!(
        store.workspace_for_key(&key.hash()).await.unwrap(),
        Some(ws.id.clone())
    );
    assert_eq!(
        store
            .workspace_for_key(&ApiKey::generate().hash())
            .await
            .unwrap(),
        None
    );
    let other = workspace("other");
    store.create_workspace(&other).await.unwrap();
    assert!(
        store.add_api_key(&other.id, &key.hash()).await.is_err(),
        "a key never moves to another workspace"
    );
    assert_eq!(
        store.workspace_for_key(&key.hash()).await.unwrap(),
        Some(ws.id)
    );
}

async fn event_store_contract<S: EventLookup>(store: &S) {
    let now = Utc::now().timestamp();
    let (ws_a, ws_b) = (WorkspaceId::generate(), WorkspaceId::generate());
    let original = event(&ws_a, "dedup-1");
    assert_eq!(
        store.insert_if_absent(&original, now + HOUR).await.unwrap(),
        Inserted::New
    );

    let repeat = event(&ws_a, "dedup-1");
    assert_eq!(
        store.insert_if_absent(&repeat, now + HOUR).await.unwrap(),
        Inserted::Existing(original.id.clone())
    );

    assert_eq!(
        store.get_event(&ws_a, &original.id).await.unwrap(),
        Some(original.clone())
    );
    assert_eq!(
        store.get_event(&ws_a, &repeat.id).await.unwrap(),
        None,
        "the duplicate was not stored"
    );
    assert_eq!(
        store.get_event(&ws_b, &original.id).await.unwrap(),
        None,
        "another workspace cannot read it"
    );
    assert_eq!(
        store.get_event_by_dedup(&ws_a, "dedup-1").await.unwrap(),
        Some(original.clone())
    );
    assert_eq!(
        store.get_event_by_dedup(&ws_b, "dedup-1").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .insert_if_absent(&event(&ws_b, "dedup-1"), now + HOUR)
            .await
            .unwrap(),
        Inserted::New,
        "dedup ids are scoped per workspace"
    );

    let stale = event(&ws_a, "dedup-stale");
    store.insert_if_absent(&stale, now - 10).await.unwrap();
    assert_eq!(
        store.get_event(&ws_a, &stale.id).await.unwrap(),
        None,
        "expired events are invisible"
    );
    assert_eq!(
        store
            .get_event_by_dedup(&ws_a, "dedup-stale")
            .await
            .unwrap(),
        None
    );
    let fresh = event(&ws_a, "dedup-stale");
    assert_eq!(
        store.insert_if_absent(&fresh, now + HOUR).await.unwrap(),
        Inserted::New,
        "an expired dedup record no longer dedups"
    );
    assert_eq!(
        store.get_event(&ws_a, &fresh.id).await.unwrap(),
        Some(fresh)
    );

    let mut huge = event(&ws_a, "dedup-huge");
    huge.payload = RawJson::from_value(&json!({"blob": "x".repeat(MAX_ITEM_BYTES)}));
    assert!(matches!(
        store.insert_if_absent(&huge, now + HOUR).await,
        Err(StoreError::TooLarge { .. })
    ));
}

/// Storing an event hands its fan-out on, in the same write: once per accepted event, never
/// for a duplicate, and again for an event that took an expired one's dedup id.
async fn event_outbox_contract<S: EventStore, O: Outbox>(store: &S, outbox: &O) {
    let now = Utc::now().timestamp();
    let ws = WorkspaceId::generate();
    let first = event(&ws, "dedup-1");
    assert_eq!(
        store.insert_if_absent(&first, now + HOUR).await.unwrap(),
        Inserted::New
    );
    assert_eq!(
        store
            .insert_if_absent(&event(&ws, "dedup-1"), now + HOUR)
            .await
            .unwrap(),
        Inserted::Existing(first.id.clone())
    );
    let stale = event(&ws, "dedup-2");
    store.insert_if_absent(&stale, now - 10).await.unwrap();
    let fresh = event(&ws, "dedup-2");
    assert_eq!(
        store.insert_if_absent(&fresh, now + HOUR).await.unwrap(),
        Inserted::New
    );
    assert_eq!(
        outbox.fanned_out().await,
        [first.id, stale.id, fresh.id],
        "one fan-out per stored event, none for the duplicate"
    );
}

const VISIBILITY: Duration = Duration::from_secs(30);

/// Receives what is visible now, waiting up to `wait_secs` for the first message.
async fn receive<Q: Queue>(queue: &Q, max: u32, wait_secs: u64) -> Vec<ReceivedMessage> {
    queue
        .receive(max, VISIBILITY, Duration::from_secs(wait_secs))
        .await
        .unwrap()
}

async fn queue_contract<Q: Queue>(queue: &Q, dead_letters: &Q) {
    assert!(receive(queue, 10, 0).await.is_empty());

    // Delivered once, invisible while in flight, gone after delete.
    queue.send("first", Duration::ZERO).await.unwrap();
    let got = receive(queue, 10, 2).await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].body.as_str(), got[0].receive_count), ("first", 1));
    assert!(
        receive(queue, 10, 0).await.is_empty(),
        "in flight = invisible"
    );
    queue.delete(&got[0].receipt).await.unwrap();
    assert!(receive(queue, 10, 0).await.is_empty(), "deleted = gone");

    // A delayed message appears only after its delay.
    queue.send("delayed", Duration::from_secs(1)).await.unwrap();
    assert!(receive(queue, 10, 0).await.is_empty(), "still delayed");
    let got = receive(queue, 10, 3).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "delayed");
    queue.delete(&got[0].receipt).await.unwrap();

    // Releasing a message makes it visible again with a higher receive count; past the
    // redrive limit it moves to the dead-letter queue.
    queue.send("poison", Duration::ZERO).await.unwrap();
    for expected_count in 1..=MAX_RECEIVES {
        let got = receive(queue, 1, 2).await;
        assert_eq!(got.len(), 1, "receive #{expected_count}");
        assert_eq!(got[0].receive_count, expected_count);
        queue
            .change_visibility(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(receive(queue, 1, 0).await.is_empty(), "moved to the DLQ");
    let parked = receive(dead_letters, 10, 2).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].body, "poison");

    // Visibility expiry on its own also redelivers.
    queue.send("expiring", Duration::ZERO).await.unwrap();
    let first = queue
        .receive(1, Duration::from_secs(1), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let again = receive(queue, 1, 4).await;
    assert_eq!(again.len(), 1, "redelivered after the visibility timeout");
    assert_eq!(again[0].body, "expiring");
    assert_eq!(again[0].receive_count, 2);
}

pub fn subscription(workspace: &WorkspaceId, event_types: &[&str], enabled: bool) -> Subscription {
    let new = NewSubscription {
        webhook_url: "https://hooks.example.com/ü?x=1".into(),
        event_types: event_types.iter().map(|t| t.to_string()).collect(),
        is_enabled: enabled,
        kind: SubscriptionType::Zapier,
        created_by: Some("ana@example.com".into()),
        ..Default::default()
    };
    Subscription {
        updated_by: None,
        ..Subscription::new(workspace.clone(), new, Utc::now())
    }
}

async fn routed_ids<S: SubscriptionStore>(
    store: &S,
    ws: &WorkspaceId,
    event_type: &str,
) -> Vec<String> {
    let mut ids: Vec<_> = store
        .enabled_subscriptions_for(ws, event_type)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    ids.sort();
    ids
}

async fn subscription_store_contract<S: SubscriptionStore>(store: &S) {
    let (ws, other_ws) = (WorkspaceId::generate(), WorkspaceId::generate());
    let a = subscription(&ws, &["emails.sent", "crm.deal_won"], true);
    let b = subscription(&ws, &["emails.sent"], false);
    let foreign = subscription(&other_ws, &["emails.sent"], true);
    for s in [&a, &b, &foreign] {
        store.create_subscription(s).await.unwrap();
    }
    assert_eq!(
        store.get_subscription(&ws, &a.id).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.get_subscription(&other_ws, &a.id).await.unwrap(),
        None,
        "keyed by workspace"
    );
    let mut listed: Vec<_> = store
        .list_subscriptions(&ws)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    listed.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    // Fan-out sees enabled subscriptions of this workspace only.
    assert_eq!(routed_ids(store, &ws, "emails.sent").await, [a.id.as_str()]);
    assert_eq!(
        routed_ids(store, &ws, "crm.deal_won").await,
        [a.id.as_str()]
    );
    assert!(routed_ids(store, &ws, "calls.missed").await.is_empty());

    // Replacing moves the routes: types dropped, types added, disabled and re-enabled.
    let mut moved = a.clone();
    moved.event_types = vec!["crm.deal_won".into(), "calls.missed".into()];
    moved.version = 2;
    assert!(store.replace_subscription(&a, &moved).await.unwrap());
    assert!(routed_ids(store, &ws, "emails.sent").await.is_empty());
    assert_eq!(
        routed_ids(store, &ws, "calls.missed").await,
        [a.id.as_str()]
    );
    let routed = store
        .enabled_subscriptions_for(&ws, "crm.deal_won")
        .await
        .unwrap();
    assert_eq!(
        routed,
        [moved.clone()],
        "routes carry the current subscription, secrets included"
    );
    assert!(
        !store.replace_subscription(&a, &moved).await.unwrap(),
        "a stale version is refused"
    );

    let mut enabled_b = b.clone();
    enabled_b.is_enabled = true;
    enabled_b.version = 2;
    assert!(store.replace_subscription(&b, &enabled_b).await.unwrap());
    assert_eq!(routed_ids(store, &ws, "emails.sent").await, [b.id.as_str()]);
    let mut disabled = moved.clone();
    disabled.is_enabled = false;
    disabled.version = 3;
    assert!(store.replace_subscription(&moved, &disabled).await.unwrap());
    assert!(routed_ids(store, &ws, "calls.missed").await.is_empty());

    // Deleting removes the subscription and its routes; a stale or repeated delete is refused.
    assert!(!store
        .delete_subscription(&Subscription {
            version: 1,
            ..enabled_b.clone()
        })
        .await
        .unwrap());
    assert!(store.delete_subscription(&enabled_b).await.unwrap());
    assert!(!store.delete_subscription(&enabled_b).await.unwrap());
    assert_eq!(store.get_subscription(&ws, &b.id).await.unwrap(), None);
    assert!(routed_ids(store, &ws, "emails.sent").await.is_empty());
    assert_eq!(
        routed_ids(store, &other_ws, "emails.sent").await,
        [foreign.id.as_str()]
    );
}

async fn subscription_limit_contract<S: SubscriptionStore>(store: &S) {
    limit_holds(store, true).await;
}

async fn sequential_subscription_limit<S: SubscriptionStore>(store: &S) {
    limit_holds(store, false).await;
}

/// The limit holds against concurrent creates: however they interleave, exactly the
/// workspace's room is created and the rest are refused. `concurrent: false` sends them one
/// after another.
async fn limit_holds<S: SubscriptionStore>(store: &S, concurrent: bool) {
    let ws = WorkspaceId::generate();
    let attempts: Vec<_> = (0..MAX_SUBSCRIPTIONS_PER_WORKSPACE + 10)
        .map(|_| subscription(&ws, &["emails.sent"], true))
        .collect();
    let outcomes = if concurrent {
        futures_util::future::join_all(attempts.iter().map(|s| store.create_subscription(s))).await
    } else {
        let mut outcomes = Vec::new();
        for s in &attempts {
            outcomes.push(store.create_subscription(s).await);
        }
        outcomes
    };
    let count = |wanted: Created| {
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(c) if *c == wanted))
            .count()
    };
    assert_eq!(count(Created::Created), MAX_SUBSCRIPTIONS_PER_WORKSPACE);
    assert_eq!(count(Created::LimitReached), 10);
    assert_eq!(
        store.list_subscriptions(&ws).await.unwrap().len(),
        MAX_SUBSCRIPTIONS_PER_WORKSPACE
    );

    // A delete makes room for exactly one more.
    let gone = &attempts[0];
    assert!(store.delete_subscription(gone).await.unwrap());
    let again = subscription(&ws, &["emails.sent"], true);
    assert_eq!(
        store.create_subscription(&again).await.unwrap(),
        Created::Created
    );
    let over = subscription(&ws, &["emails.sent"], true);
    assert_eq!(
        store.create_subscription(&over).await.unwrap(),
        Created::LimitReached
    );
}

/// DynamoDB serializes transactions on the count item; moto does not (it lets concurrent
/// transactions read the same count), so on moto the limit is also checked one create at a
/// time, and `subscription_limit::dynamodb` needs DynamoDB itself or DynamoDB Local.
#[tokio::test]
async fn sequential_subscription_limit_on_dynamodb() {
    let stack = MotoStack::create(MAX_RECEIVES).await;
    sequential_subscription_limit(&stack.subscriptions()).await;
}

/// A workspace whose subscriptions were written before its count item existed (a stack
/// deployed before the limit was kept atomically) is counted the first time a create or a
/// delete needs it: it can neither pass the limit nor drive its count below what it holds.
#[tokio::test]
async fn a_workspace_from_before_the_count_is_counted_when_first_needed() {
    let stack = MotoStack::create(MAX_RECEIVES).await;
    let store = stack.subscriptions();
    let ws = WorkspaceId::generate();
    let forget_count = || {
        stack
            .dynamodb
            .delete_item()
            .table_name(&stack.subscriptions_table)
            .key("pk", AttributeValue::S(ws.to_string()))
            .key("sk", AttributeValue::S("count".into()))
            .send()
    };
    let held: Vec<_> = (0..MAX_SUBSCRIPTIONS_PER_WORKSPACE)
        .map(|_| subscription(&ws, &["emails.sent"], true))
        .collect();
    for s in &held {
        assert_eq!(
            store.create_subscription(s).await.unwrap(),
            Created::Created
        );
    }
    forget_count().await.unwrap();
    let over = subscription(&ws, &["emails.sent"], true);
    assert_eq!(
        store.create_subscription(&over).await.unwrap(),
        Created::LimitReached,
        "the 51st is refused though the count item was missing"
    );
    forget_count().await.unwrap();
    assert!(store.delete_subscription(&held[0]).await.unwrap());
    assert_eq!(
        store.create_subscription(&over).await.unwrap(),
        Created::Created,
        "a delete made room for exactly one"
    );
    let next = subscription(&ws, &["emails.sent"], true);
    assert_eq!(
        store.create_subscription(&next).await.unwrap(),
        Created::LimitReached
    );
}

fn delivery_log(
    delivery: &Delivery,
    minute: u32,
    status: DeliveryStatus,
    expires_at: i64,
) -> DeliveryLog {
    let created_at = DateTime::parse_from_rfc3339(&format!("2026-03-01T10:{minute:02}:00Z"))
        .unwrap()
        .with_timezone(&Utc);
    DeliveryLog {
        id: format!("log-{minute}"),
        workspace_id: delivery.workspace_id.clone(),
        event_id: delivery.event_id.clone(),
        subscription_id: delivery.subscription_id.clone(),
        delivery_id: delivery.id.clone(),
        event_type: delivery.event_type.clone(),
        webhook_url: "https://hooks.example.com".into(),
        delivery_status: status,
        status_code: Some(if status == DeliveryStatus::Success {
            200
        } else {
            500
        }),
        response_body: "ok ✓".into(),
        delivered_event_obj: RawJson::from_value(&json!({"id": delivery.id})),
        created_at,
        attempt: minute,
        duration_ms: 12,
        error: None,
        expires_at,
        batch_id: None,
    }
}

async fn delivery_store_contract<D: DeliveryLookup, L: LogStore>(store: &D, log_store: &L) {
    let ws = WorkspaceId::generate();
    let event = event(&ws, "dedup-d");
    let sub_a = subscription(&ws, &["crm.deal_won"], true);
    let sub_b = subscription(&ws, &["crm.deal_won"], true);
    let now = Utc::now();
    let delivery = Delivery::new(&event, &sub_a, now);
    assert_eq!(store.create_delivery(&delivery).await.unwrap(), delivery);
    let again = Delivery::new(&event, &sub_a, now + chrono::Duration::seconds(5));
    assert_eq!(
        store.create_delivery(&again).await.unwrap(),
        delivery,
        "created once; the stored one is returned"
    );

    // Each attempt is claimed once; a finished attempt is never claimed again.
    let lease = Duration::from_secs(60);
    let (workspace, id) = (&ws, &delivery.id);
    let claim =
        move |attempt: u32, lease: Duration| store.claim_attempt(workspace, id, attempt, lease);
    let Claim::Claimed(claimed) = claim(1, lease).await.unwrap() else {
        panic!("attempt 1 of a new delivery is claimable");
    };
    assert_eq!(
        (
            claimed.id.clone(),
            claimed.subscription_id.clone(),
            claimed.state,
            claimed.attempts
        ),
        (
            delivery.id.clone(),
            sub_a.id.clone(),
            DeliveryState::Pending,
            1
        ),
        "the claim reads the delivery as stored after it"
    );
    assert_eq!(
        claim(1, lease).await.unwrap(),
        Claim::Unavailable,
        "held by another worker"
    );
    // Parked: the claim is given back and the delivery is listed under its subscription only.
    store.park_attempt(&delivery, 1).await.unwrap();
    let parked = |workspace: WorkspaceId, subscription: SubscriptionId| async move {
        store
            .parked_attempts(&workspace, &subscription, None, 10)
            .await
            .unwrap()
    };
    assert_eq!(
        parked(ws.clone(), sub_a.id.clone()).await,
        [(delivery.id.clone(), 1)]
    );
    assert_eq!(parked(ws.clone(), sub_b.id.clone()).await, []);
    assert_eq!(parked(WorkspaceId::generate(), sub_a.id.clone()).await, []);
    assert!(
        matches!(claim(1, lease).await.unwrap(), Claim::Claimed(_)),
        "a parked attempt is claimable at once"
    );
    assert_eq!(
        parked(ws.clone(), sub_a.id.clone()).await,
        [],
        "claiming unparks"
    );
    store
        .finish_attempt(&ws, &delivery.id, 1, DeliveryState::Pending)
        .await
        .unwrap();
    store.park_attempt(&delivery, 1).await.unwrap();
    assert_eq!(
        claim(1, lease).await.unwrap(),
        Claim::Unavailable,
        "attempt 1 is finished, and parking it changes nothing"
    );
    assert_eq!(parked(ws.clone(), sub_a.id.clone()).await, []);
    assert!(matches!(
        claim(2, Duration::ZERO).await.unwrap(),
        Claim::Claimed(_)
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        matches!(claim(2, lease).await.unwrap(), Claim::Claimed(_)),
        "a lapsed claim can be taken over"
    );
    store
        .finish_attempt(&ws, &delivery.id, 2, DeliveryState::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        claim(3, lease).await.unwrap(),
        Claim::Unavailable,
        "a delivered delivery is done"
    );
    assert_eq!(
        store
            .claim_attempt(&WorkspaceId::generate(), &delivery.id, 3, lease)
            .await
            .unwrap(),
        Claim::Missing,
        "another workspace has no such delivery"
    );

    // Parked work is read a page at a time, in delivery id order.
    let mut waiting = Vec::new();
    for n in 0..3 {
        let waiting_event = self::event(&ws, &format!("dedup-p{n}"));
        let parked_delivery = Delivery::new(&waiting_event, &sub_b, now);
        store.create_delivery(&parked_delivery).await.unwrap();
        let claimed = store
            .claim_attempt(&ws, &parked_delivery.id, 1, lease)
            .await
            .unwrap();
        assert!(matches!(claimed, Claim::Claimed(_)));
        store.park_attempt(&parked_delivery, 1).await.unwrap();
        waiting.push((parked_delivery.id, 1));
    }
    waiting.sort();
    let first = store
        .parked_attempts(&ws, &sub_b.id, None, 2)
        .await
        .unwrap();
    assert_eq!(first, waiting[..2]);
    let rest = store
        .parked_attempts(&ws, &sub_b.id, Some(&first[1].0), 2)
        .await
        .unwrap();
    assert_eq!(rest, waiting[2..]);
    let stored = store
        .get_delivery(&ws, &delivery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.state, stored.attempts, stored.completed),
        (DeliveryState::Succeeded, 2, 2)
    );
    assert_eq!(
        store
            .get_delivery(&WorkspaceId::generate(), &delivery.id)
            .await
            .unwrap(),
        None
    );

    // Logs: newest first, per subscription, within a window, never expired ones.
    let other = Delivery::new(&event, &sub_b, now);
    let live = now.timestamp() + 3600;
    for (minute, d, status) in [
        (1, &delivery, DeliveryStatus::Failed),
        (2, &other, DeliveryStatus::Success),
        (3, &delivery, DeliveryStatus::Success),
    ] {
        log_store
            .append_log(&delivery_log(d, minute, status, live))
            .await
            .unwrap();
    }
    log_store
        .append_log(&delivery_log(
            &delivery,
            4,
            DeliveryStatus::Success,
            now.timestamp() - 1,
        ))
        .await
        .unwrap();
    let ids = |logs: Vec<DeliveryLog>| logs.into_iter().map(|l| l.id).collect::<Vec<_>>();
    let everything = LogQuery::default();
    assert_eq!(
        ids(log_store.query_logs(&ws, &everything, 100).await.unwrap()),
        ["log-3", "log-2", "log-1"]
    );
    let first = log_store
        .query_logs(&ws, &everything, 100)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        first,
        delivery_log(&delivery, 3, DeliveryStatus::Success, live),
        "round-trips every field"
    );
    let only_a = LogQuery {
        subscription: Some(sub_a.id.clone()),
        ..LogQuery::default()
    };
    assert_eq!(
        ids(log_store.query_logs(&ws, &only_a, 100).await.unwrap()),
        ["log-3", "log-1"]
    );
    let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
    let window = LogQuery {
        from: at("2026-03-01T12:02:00+02:00"),
        to: at("2026-03-01T10:03:00Z"),
        ..LogQuery::default()
    };
    assert_eq!(
        ids(log_store.query_logs(&ws, &window, 100).await.unwrap()),
        ["log-3", "log-2"],
        "bounds are inclusive, any offset"
    );
    assert_eq!(
        ids(log_store.query_logs(&ws, &everything, 2).await.unwrap()),
        ["log-3", "log-2"]
    );
    assert!(log_store
        .query_logs(&WorkspaceId::generate(), &everything, 100)
        .await
        .unwrap()
        .is_empty());
}

async fn failure_counter_contract<S: FailureCounter>(store: &S) {
    let (ws, id) = (WorkspaceId::generate(), SubscriptionId::generate());
    for expected in 1..=3 {
        assert_eq!(store.record_failure(&ws, &id).await.unwrap(), expected);
    }
    store.reset_failures(&ws, &id).await.unwrap();
    assert_eq!(store.record_failure(&ws, &id).await.unwrap(), 1);
    assert_eq!(
        store
            .record_failure(&WorkspaceId::generate(), &id)
            .await
            .unwrap(),
        1,
        "counted per workspace"
    );
}

/// A claim given back unused is claimable again at once, not parked; a release never frees a
/// later attempt's claim nor reopens a finished attempt.
async fn released_attempt_contract<D: DeliveryStore>(store: &D) {
    let ws = WorkspaceId::generate();
    let sub = subscription(&ws, &["crm.deal_won"], true);
    let delivery = Delivery::new(&event(&ws, "dedup-r"), &sub, Utc::now());
    store.create_delivery(&delivery).await.unwrap();
    let lease = Duration::from_secs(60);
    let claim = |attempt: u32| store.claim_attempt(&ws, &delivery.id, attempt, lease);
    assert!(matches!(claim(1).await.unwrap(), Claim::Claimed(_)));
    assert_eq!(claim(1).await.unwrap(), Claim::Unavailable);
    store.release_attempt(&delivery, 1).await.unwrap();
    let Claim::Claimed(again) = claim(1).await.unwrap() else {
        panic!("a released attempt is claimed again");
    };
    assert_eq!(again.attempts, 1, "releasing used no attempt");
    assert_eq!(
        store.parked_attempts(&ws, &sub.id, None, 10).await.unwrap(),
        [],
        "released, not parked"
    );
    assert!(matches!(claim(2).await.unwrap(), Claim::Claimed(_)));
    store.release_attempt(&delivery, 1).await.unwrap();
    assert_eq!(
        claim(2).await.unwrap(),
        Claim::Unavailable,
        "an earlier attempt's release leaves the later claim held"
    );
    store
        .finish_attempt(&ws, &delivery.id, 2, DeliveryState::Succeeded)
        .await
        .unwrap();
    store.release_attempt(&delivery, 2).await.unwrap();
    assert_eq!(claim(2).await.unwrap(), Claim::Unavailable);
    assert_eq!(claim(3).await.unwrap(), Claim::Unavailable);
}

/// Every store applies `RateLimit::reserve`, whichever worker asks: slots follow the rule
/// through idle and busy spells and a worker whose last look is stale.
async fn rate_limiter_contract<R: RateLimiter>(one: &R, other: &R) {
    let (ws, id) = (WorkspaceId::generate(), SubscriptionId::generate());
    let limit = RateLimit::new(5).unwrap();
    let start = Slot::now();
    let idle_later = start + 10_000_000;
    let steps = [
        (one, start),
        (other, start + 10),
        (one, start + 20),
        (one, start + 30),
        (other, start + 40),
        (one, idle_later),
        (other, idle_later + 5),
    ];
    let mut next_free = None;
    for (step, (store, now)) in steps.into_iter().enumerate() {
        let (expected, next) = limit.reserve(next_free, now);
        next_free = Some(next);
        let reserved = store.reserve(&ws, &id, limit, now).await.unwrap();
        assert_eq!(reserved, expected, "reservation {step}");
    }
    let elsewhere = WorkspaceId::generate();
    let first = one.reserve(&elsewhere, &id, limit, start).await.unwrap();
    assert_eq!(first, Slot(start), "paced per workspace");
}

/// Concurrent reservations, from two workers at once, each get their own slot.
async fn concurrent_rate_limiter_contract<R: RateLimiter>(one: &R, other: &R) {
    let (ws, busy) = (WorkspaceId::generate(), SubscriptionId::generate());
    let start = Slot::now();
    let fifty = RateLimit::new(50).unwrap();
    let reservations = (0..12).map(|i| {
        let store = if i % 2 == 0 { one } else { other };
        store.reserve(&ws, &busy, fifty, start)
    });
    let mut slots: Vec<i64> = futures_util::future::join_all(reservations)
        .await
        .into_iter()
        .map(|slot| slot.unwrap().0)
        .collect();
    slots.sort_unstable();
    let expected: Vec<i64> = (0..12).map(|i| start + i * 20_000).collect();
    assert_eq!(slots, expected, "distinct slots, one interval apart");
}

/// DynamoDB keeps a subscription's send slots in one item whose TTL stays an hour or so past
/// its next free time, whichever worker wrote it last.
#[tokio::test]
async fn a_pace_item_expires_about_an_hour_after_its_next_free_time() {
    let stack = MotoStack::create(MAX_RECEIVES).await;
    let (one, other) = (stack.subscriptions(), stack.subscriptions());
    let (ws, id) = (WorkspaceId::generate(), SubscriptionId::generate());
    let limit = RateLimit::new(1).unwrap();
    let start = Slot::now();
    for n in 0..3 {
        let slot = one.reserve(&ws, &id, limit, start).await.unwrap();
        assert_eq!(slot, Slot(start + n * 1_000_000));
    }
    let slot = other.reserve(&ws, &id, limit, start).await.unwrap();
    assert_eq!(slot, Slot(start + 3_000_000), "a worker that never looked");
    let item = stack
        .dynamodb
        .get_item()
        .table_name(&stack.subscriptions_table)
        .key("pk", AttributeValue::S(ws.to_string()))
        .key("sk", AttributeValue::S(format!("pace#{id}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the pace item");
    let number = |name: &str| -> i64 { item[name].as_n().unwrap().parse().unwrap() };
    let next_free = start + 4_000_000;
    assert_eq!(number("next_free"), next_free);
    let kept = number("expires_at") - next_free / 1_000_000;
    assert!((3_600..=4_300).contains(&kept), "kept {kept} s past it");
}

pub fn custom_type(workspace: &WorkspaceId, name: &str) -> CustomEventType {
    let new = NewEventType {
        name: name.into(),
        description: "An invoice was paid ☕".into(),
        schema: Some(json!({"type": "object", "required": ["invoice_id"],
            "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "number"}}})),
        sample: Some(json!({"invoice_id": "inv_ü1", "amount": 12.5})),
    };
    CustomEventType::define(workspace.clone(), new, Utc::now()).unwrap()
}

fn type_name(raw: &str) -> EventTypeName {
    EventTypeName::parse(raw).unwrap()
}

async fn listed_names<T: EventTypeStore>(store: &T, ws: &WorkspaceId) -> Vec<String> {
    let listed = store.list_event_types(ws).await.unwrap();
    listed.into_iter().map(|t| t.name.to_string()).collect()
}

async fn event_type_store_contract<T: EventTypeStore>(store: &T) {
    let (ws, other_ws) = (WorkspaceId::generate(), WorkspaceId::generate());
    let paid = custom_type(&ws, "invoice.paid");
    for (workspace, name) in [
        (&ws, "invoice.paid"),
        (&ws, "billing.refund_issued"),
        (&ws, "invoice.overdue"),
        (&other_ws, "invoice.paid"),
    ] {
        let custom = if name == "invoice.paid" && workspace == &ws {
            paid.clone()
        } else {
            custom_type(workspace, name)
        };
        assert_eq!(
            store.create_event_type(&custom).await.unwrap(),
            Defined::Created
        );
    }
    assert_eq!(
        store
            .get_event_type(&ws, &type_name("invoice.paid"))
            .await
            .unwrap(),
        Some(paid.clone()),
        "stored exactly, schema and sample included"
    );
    assert_eq!(
        listed_names(store, &ws).await,
        ["billing.refund_issued", "invoice.overdue", "invoice.paid"],
        "in name order"
    );
    assert_eq!(listed_names(store, &other_ws).await, ["invoice.paid"]);
    assert_eq!(
        listed_names(store, &WorkspaceId::generate()).await,
        Vec::<String>::new()
    );

    // A name is taken once per workspace; the first definition stays.
    let mut again = custom_type(&ws, "invoice.paid");
    again.description = "another".into();
    assert_eq!(
        store.create_event_type(&again).await.unwrap(),
        Defined::NameTaken
    );
    let kept = store.get_event_type(&ws, &type_name("invoice.paid")).await;
    assert_eq!(kept.unwrap().unwrap().description, paid.description);

    // Keyed by workspace: another workspace's type is not there, and deleting it does nothing.
    let unknown = WorkspaceId::generate();
    assert_eq!(
        store
            .get_event_type(&unknown, &type_name("invoice.paid"))
            .await
            .unwrap(),
        None
    );
    assert!(!store
        .delete_event_type(&unknown, &type_name("invoice.paid"))
        .await
        .unwrap());
    assert!(store
        .delete_event_type(&ws, &type_name("invoice.paid"))
        .await
        .unwrap());
    assert!(!store
        .delete_event_type(&ws, &type_name("invoice.paid"))
        .await
        .unwrap());
    assert_eq!(
        store
            .get_event_type(&ws, &type_name("invoice.paid"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        listed_names(store, &other_ws).await,
        ["invoice.paid"],
        "the other workspace's type of that name is untouched"
    );
    // A deleted name may be defined again.
    assert_eq!(
        store.create_event_type(&again).await.unwrap(),
        Defined::Created
    );
}

async fn event_type_limit_contract<T: EventTypeStore>(store: &T) {
    event_type_limit_holds(store, true).await;
}

/// However creates interleave, exactly the workspace's room is created; a delete makes room
/// for exactly one more; a taken name is reported as such even when the workspace is full.
async fn event_type_limit_holds<T: EventTypeStore>(store: &T, concurrent: bool) {
    let ws = WorkspaceId::generate();
    let attempts: Vec<_> = (0..MAX_EVENT_TYPES_PER_WORKSPACE + 5)
        .map(|i| custom_type(&ws, &format!("generated.type_{i:03}")))
        .collect();
    let outcomes = if concurrent {
        futures_util::future::join_all(attempts.iter().map(|t| store.create_event_type(t))).await
    } else {
        let mut outcomes = Vec::new();
        for t in &attempts {
            outcomes.push(store.create_event_type(t).await);
        }
        outcomes
    };
    let count = |wanted: Defined| {
        outcomes
            .iter()
            .filter(|o| matches!(o, Ok(d) if *d == wanted))
            .count()
    };
    assert_eq!(count(Defined::Created), MAX_EVENT_TYPES_PER_WORKSPACE);
    assert_eq!(count(Defined::LimitReached), 5);
    assert_eq!(
        store.list_event_types(&ws).await.unwrap().len(),
        MAX_EVENT_TYPES_PER_WORKSPACE
    );
    let held = store.list_event_types(&ws).await.unwrap();
    assert_eq!(
        store.create_event_type(&held[0]).await.unwrap(),
        Defined::NameTaken
    );
    assert!(store.delete_event_type(&ws, &held[0].name).await.unwrap());
    let next = custom_type(&ws, "generated.next");
    assert_eq!(
        store.create_event_type(&next).await.unwrap(),
        Defined::Created
    );
    let over = custom_type(&ws, "generated.over");
    assert_eq!(
        store.create_event_type(&over).await.unwrap(),
        Defined::LimitReached
    );
}

/// See [`sequential_subscription_limit_on_dynamodb`].
#[tokio::test]
async fn sequential_event_type_limit_on_dynamodb() {
    let stack = MotoStack::create(MAX_RECEIVES).await;
    event_type_limit_holds(&stack.event_types(), false).await;
}

/// Types and subscriptions of a workspace share a table (DynamoDB) or a database (SQLite):
/// neither shows up among the other, nor counts against the other's limit.
async fn event_types_beside_subscriptions_contract<T: EventTypeStore, S: SubscriptionStore>(
    types: &T,
    subscriptions: &S,
) {
    let ws = WorkspaceId::generate();
    for i in 0..MAX_SUBSCRIPTIONS_PER_WORKSPACE {
        let custom = custom_type(&ws, &format!("beside.type_{i:02}"));
        assert_eq!(
            types.create_event_type(&custom).await.unwrap(),
            Defined::Created
        );
    }
    let sub = subscription(&ws, &["beside.type_00", "emails.sent"], true);
    assert_eq!(
        subscriptions.create_subscription(&sub).await.unwrap(),
        Created::Created,
        "types do not count as subscriptions"
    );
    assert_eq!(
        subscriptions.list_subscriptions(&ws).await.unwrap(),
        std::slice::from_ref(&sub)
    );
    assert_eq!(
        routed_ids(subscriptions, &ws, "beside.type_00").await,
        [sub.id.as_str()]
    );
    assert_eq!(
        types.list_event_types(&ws).await.unwrap().len(),
        MAX_SUBSCRIPTIONS_PER_WORKSPACE
    );
    assert!(subscriptions.delete_subscription(&sub).await.unwrap());
    assert!(types
        .delete_event_type(&ws, &type_name("beside.type_00"))
        .await
        .unwrap());
    assert_eq!(
        types.list_event_types(&ws).await.unwrap().len(),
        MAX_SUBSCRIPTIONS_PER_WORKSPACE - 1
    );
    assert!(subscriptions
        .list_subscriptions(&ws)
        .await
        .unwrap()
        .is_empty());
}

fn connection(workspace: &WorkspaceId, name: &str) -> Connection {
    let body = json!({"kind": "secret_in_body", "name": name});
    Connection::create(workspace.clone(), &body, Utc::now()).unwrap()
}

/// Connections are kept per workspace, found by id alone for deliveries, and never seen
/// through another workspace; they share a table with subscriptions without touching them.
async fn connection_store_contract<C: ConnectionStore, S: SubscriptionStore>(
    store: &C,
    subscriptions: &S,
) {
    let ws = WorkspaceId::generate();
    let other = WorkspaceId::generate();
    let first = connection(&ws, "leads");
    let second = connection(&ws, "coach");
    assert_eq!(
        store.create_connection(&first).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store.create_connection(&second).await.unwrap(),
        Created::Created
    );
    assert!(
        store.create_connection(&first).await.is_err(),
        "an id is created once"
    );

    assert_eq!(
        store.get_connection(&ws, &first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_connection(&other, &first.id).await.unwrap(), None);
    assert_eq!(
        store.find_connection(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store
            .find_connection(&ConnectionId::generate())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.list_connections(&ws).await.unwrap(),
        [first.clone(), second.clone()],
        "oldest first"
    );
    assert_eq!(store.list_connections(&other).await.unwrap(), []);
    assert_eq!(subscriptions.list_subscriptions(&ws).await.unwrap(), []);

    assert!(!store.delete_connection(&other, &first.id).await.unwrap());
    assert_eq!(
        store.find_connection(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert!(store.delete_connection(&ws, &first.id).await.unwrap());
    assert!(!store.delete_connection(&ws, &first.id).await.unwrap());
    assert_eq!(store.find_connection(&first.id).await.unwrap(), None);
    assert_eq!(store.get_connection(&ws, &first.id).await.unwrap(), None);
    assert_eq!(
        store.list_connections(&ws).await.unwrap(),
        std::slice::from_ref(&second)
    );

    // The limit counts what is held now: the deleted one left room.
    for i in 1..MAX_CONNECTIONS_PER_WORKSPACE {
        let more = connection(&ws, &format!("c{i}"));
        assert_eq!(
            store.create_connection(&more).await.unwrap(),
            Created::Created
        );
    }
    let over = connection(&ws, "over");
    assert_eq!(
        store.create_connection(&over).await.unwrap(),
        Created::LimitReached
    );
    assert_eq!(store.find_connection(&over.id).await.unwrap(), None);
    assert!(store.delete_connection(&ws, &second.id).await.unwrap());
    assert_eq!(
        store.create_connection(&over).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store
            .create_connection(&connection(&other, "elsewhere"))
            .await
            .unwrap(),
        Created::Created,
        "the limit is per workspace"
    );
}

every_backend!(batch_store => batch_store_contract(deliveries));

/// Gathering: an event is created inside exactly one batch; a full batch is sealed at once and
/// one without room for another event sealed when the next one opens a new batch; a gathering
/// batch cannot be claimed, a sealed one can, as a delivery of its own.
async fn batch_store_contract<D: DeliveryLookup + BatchStore>(store: &D) {
    let ws = WorkspaceId::generate();
    let sub = subscription(&ws, &["crm.deal_won"], true);
    let limits = BatchLimits {
        max_events: 3,
        max_wait: Duration::from_secs(60),
        max_bytes: 1_000,
    };
    let now = Utc::now();
    let events: Vec<Delivery> = (0..6)
        .map(|i| Delivery::new(&event(&ws, &format!("batched-{i}")), &sub, now))
        .collect();
    let member = |i: usize| events[i].clone();
    let gather = |i: usize, size: usize| {
        let member = member(i);
        async move { store.gather(&member, &limits, size, now).await.unwrap() }
    };
    let Gathered::Joined {
        batch: first,
        position: 1,
        opened: true,
        sealed,
    } = gather(0, 100).await
    else {
        panic!("the first event opens a batch");
    };
    assert!(sealed.is_empty());
    let record = store.get_delivery(&ws, &first).await.unwrap().unwrap();
    assert!(record.is_batch && record.state == DeliveryState::Gathering);
    assert_eq!(
        store
            .claim_attempt(&ws, &first, 1, Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Unavailable,
        "a gathering batch is not sent"
    );
    assert_eq!(
        gather(0, 100).await,
        Gathered::Already {
            batch: Some(first.clone())
        },
        "a repeated fan-out adds nothing"
    );
    let joined = store
        .get_delivery(&ws, &member(0).id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(joined.batch.as_ref(), Some(&first));
    assert!(matches!(
        gather(1, 100).await,
        Gathered::Joined {
            position: 2,
            opened: false,
            ..
        }
    ));
    let Gathered::Joined {
        batch,
        position: 3,
        sealed,
        ..
    } = gather(2, 100).await
    else {
        panic!("the third event fills the batch");
    };
    assert_eq!(
        (&batch, sealed),
        (&first, vec![first.clone()]),
        "a full batch is sealed at once"
    );
    let members = store.batch_members(&ws, &first).await.unwrap();
    let ids: Vec<_> = members.iter().map(|m| m.delivery_id.clone()).collect();
    assert_eq!(
        ids,
        [member(0).id, member(1).id, member(2).id],
        "in the order they joined"
    );

    // The next one opens another batch; a big one does not fit beside it and seals it.
    let Gathered::Joined {
        batch: second,
        opened: true,
        ..
    } = gather(3, 600).await
    else {
        panic!("a sealed batch takes no more events");
    };
    assert_ne!(second, first);
    let Gathered::Joined {
        batch: third,
        sealed,
        ..
    } = gather(4, 600).await
    else {
        panic!("an event that does not fit opens a batch");
    };
    assert_eq!(sealed, vec![second.clone()]);
    assert_ne!(third, second);
    // A flush seals a batch still gathering; sealing twice does nothing.
    store.seal_batch(&ws, &sub.id, &third).await.unwrap();
    store.seal_batch(&ws, &sub.id, &third).await.unwrap();
    let sealed = store.get_delivery(&ws, &third).await.unwrap().unwrap();
    assert_eq!(sealed.state, DeliveryState::Pending);
    assert!(matches!(
        store
            .claim_attempt(&ws, &third, 1, Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    let Gathered::Joined {
        batch: fourth,
        opened: true,
        ..
    } = gather(5, 10).await
    else {
        panic!("after a flush the next event opens a new batch");
    };
    assert_ne!(fourth, third);
    assert_eq!(store.batch_members(&ws, &third).await.unwrap().len(), 1);
    // Another subscription gathers on its own.
    let other = subscription(&ws, &["crm.deal_won"], true);
    let theirs = Delivery::new(&event(&ws, "batched-other"), &other, now);
    assert!(matches!(
        store.gather(&theirs, &limits, 10, now).await.unwrap(),
        Gathered::Joined {
            position: 1,
            opened: true,
            ..
        }
    ));
}

every_backend!(
    batch_concurrency => batch_concurrency_contract(deliveries),
    dynamodb: #[ignore = "moto does not serialize concurrent transactions"]
);

/// Events gathered at once by many workers each land in exactly one batch, at a position of
/// their own, and no batch holds more than its limit.
async fn batch_concurrency_contract<D: DeliveryLookup + BatchStore>(store: &D) {
    let ws = WorkspaceId::generate();
    let sub = subscription(&ws, &["crm.deal_won"], true);
    let limits = BatchLimits {
        max_events: 7,
        max_wait: Duration::from_secs(60),
        max_bytes: 1_000_000,
    };
    let now = Utc::now();
    let members: Vec<Delivery> = (0..40)
        .map(|i| Delivery::new(&event(&ws, &format!("together-{i}")), &sub, now))
        .collect();
    let gathered =
        futures_util::future::join_all(members.iter().map(|m| store.gather(m, &limits, 10, now)))
            .await;
    let mut batches = std::collections::HashSet::new();
    for result in gathered {
        let Gathered::Joined { batch, .. } = result.unwrap() else {
            panic!("every event is new");
        };
        batches.insert(batch);
    }
    let mut seen = std::collections::HashSet::new();
    for batch in &batches {
        let listed = store.batch_members(&ws, batch).await.unwrap();
        assert!(listed.len() <= 7, "{} members", listed.len());
        for member in listed {
            assert!(seen.insert(member.delivery_id), "in one batch only");
        }
    }
    assert_eq!(seen.len(), 40);
    assert_eq!(batches.len(), 6, "five full batches and one gathering");
}
