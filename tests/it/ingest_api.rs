//! The ingest handler end to end on real stores: DynamoDB/SQS on moto and the embedded store.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Body;
use axum::Router;
use hookline::admin::{create_workspace, CreatedWorkspace};
use hookline_shared::adapters::DynamoEvents;
use hookline_shared::aws_calls::CallLog;
use hookline_shared::test_support::{EventLookup as _, QueueDepth as _};
use hookline_shared::{Category, WorkspaceStore};
use ingest::{router, Ingest};
use lambda_http::http::{Request, Response, StatusCode};
use lambda_http::tower::ServiceExt as _;
use serde_json::{json, Value};

use crate::support::{aws_config, EmbeddedStack, MotoStack, Outbox as _};

const WINDOW: Duration = Duration::from_secs(86_400);

pub fn seed_email() -> Value {
    serde_json::from_str(include_str!("../../events/bodies/emails.json")).unwrap()
}

pub(crate) fn request(category: &str, key: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(format!(
            "/api/v2/analytics/webhook/receive/generic/{category}"
        ))
        .header("content-type", "application/json")
        .header("X-Api-Key", key)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// One request through an API's router, as the Lambda and local mode serve it.
pub async fn answer(app: &Router, req: Request<Body>) -> Response<axum::body::Bytes> {
    let response = app.clone().oneshot(req).await.expect("routers never fail");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("answers are in memory");
    Response::from_parts(parts, bytes)
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let response = answer(app, req).await;
    let status = response.status();
    let body = serde_json::from_slice(response.body()).expect("every answer is JSON");
    (status, body)
}

async fn workspace<S: WorkspaceStore>(store: &S) -> CreatedWorkspace {
    create_workspace(store, "acme").await.unwrap()
}

#[tokio::test]
async fn seed_email_is_stored_in_one_call_and_streamed_once_on_dynamodb() {
    let stack = MotoStack::create(5).await;
    let ws = workspace(&stack.workspaces()).await;
    // The events table's client records its calls; API keys resolve through another.
    let calls = CallLog::default();
    let events = DynamoEvents::new(calls.dynamodb(&aws_config().await), &stack.events_table);
    let deps = router(Ingest::new(stack.workspaces(), events, WINDOW));
    let key = ws.api_key.expose();

    let (status, first) = call(&deps, request("emails", key, &seed_email())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["received"], true);
    assert_eq!(
        first["connection"],
        json!({"providerName": "GENERIC", "shouldProcess": true, "connectionMethod": "WEBHOOK"})
    );
    assert_eq!(first["additionalData"]["duplicate"], false);
    let (status, second) = call(&deps, request("emails", key, &seed_email())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["additionalData"]["duplicate"], true);
    assert_eq!(
        second["additionalData"]["eventId"],
        first["additionalData"]["eventId"]
    );
    let one_put = BTreeMap::from([("DynamoDB.PutItem".to_owned(), 2)]);
    assert_eq!(
        calls.counts(),
        one_put,
        "one call per request, new or duplicate"
    );

    // Any DynamoDB client sees exactly one item, in the documented shape.
    let items = stack
        .dynamodb
        .query()
        .table_name(&stack.events_table)
        .key_condition_expression("pk = :ws")
        .expression_attribute_values(":ws", AttributeValue::S(ws.workspace.id.to_string()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(items.len(), 1, "the duplicate wrote no second item");
    let item = &items[0];
    assert_eq!(
        item["event_id"].as_s().unwrap(),
        first["additionalData"]["eventId"].as_str().unwrap()
    );
    assert_eq!(
        item["sk"].as_s().unwrap(),
        &format!(
            "dedup#{}",
            first["additionalData"]["dedupId"].as_str().unwrap()
        )
    );
    assert!(
        !item.contains_key("queued"),
        "no stored-but-not-queued state"
    );
    assert!(
        item["expires_at"].as_n().unwrap().parse::<i64>().unwrap() > chrono::Utc::now().timestamp()
    );
    let payload: Value = serde_json::from_str(item["payload"].as_s().unwrap()).unwrap();
    assert_eq!(payload["subject"], "Follow up on our conversation");

    // The table's stream carries it to the fan-out, once.
    let streamed = stack.outbox().fanned_out().await;
    assert_eq!(
        streamed.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
        [first["additionalData"]["eventId"].as_str().unwrap()]
    );
    assert!(
        stack.queued_messages().await.is_empty(),
        "ingest sends nothing to SQS"
    );
}

fn crm_body() -> Value {
    json!({"eventTimestamp": "1706956200", "eventType": "deal_won", "opportunityId": "opp-42", "opportunityName": "Acme"})
}

fn embedded_deps(stack: &EmbeddedStack) -> Router {
    router(Ingest::new(stack.db.clone(), stack.events(), WINDOW))
}

#[tokio::test]
async fn dedup_is_scoped_to_the_workspace_of_the_key() {
    let stack = EmbeddedStack::create(5);
    let deps = embedded_deps(&stack);
    let (a, b) = (workspace(&stack.db).await, workspace(&stack.db).await);
    let (_, from_a) = call(&deps, request("emails", a.api_key.expose(), &seed_email())).await;
    let (_, from_b) = call(&deps, request("emails", b.api_key.expose(), &seed_email())).await;
    assert_eq!(from_b["additionalData"]["duplicate"], false);
    assert_ne!(
        from_a["additionalData"]["eventId"],
        from_b["additionalData"]["eventId"]
    );
    assert_eq!(stack.queue.depth().await.unwrap(), 2);
}

#[tokio::test]
async fn every_required_field_left_out_is_named_by_the_handler() {
    let stack = EmbeddedStack::create(5);
    let deps = embedded_deps(&stack);
    let ws = workspace(&stack.db).await;
    let valid: [(Category, Value); 4] = [
        (Category::Emails, seed_email()),
        (
            Category::Calls,
            json!({"eventTimestamp": 1706956200000_i64, "eventType": "transcript", "title": "Sync",
            "transcript": "A: hi", "participants": ["A"]}),
        ),
        (Category::Crm, crm_body()),
        (
            Category::Social,
            json!({"eventTimestamp": "2024-02-03T10:30:00Z", "eventType": "message_sent",
            "body": {"text": "hi"}, "from": "a", "to": "b"}),
        ),
    ];
    // Every category requires its timestamp and type, then fields of its own.
    let required: [(Category, &[&str]); 4] = [
        (Category::Emails, &["subject", "body", "from", "to"]),
        (Category::Calls, &["title", "transcript", "participants"]),
        (Category::Crm, &["opportunityId", "opportunityName"]),
        (Category::Social, &["body", "from", "to"]),
    ];
    for ((category, body), (_, own)) in valid.iter().zip(required) {
        for field in ["eventTimestamp", "eventType"].iter().chain(own) {
            let mut without = body.clone();
            without.as_object_mut().unwrap().remove(*field);
            let (status, answer) = call(
                &deps,
                request(category.as_str(), ws.api_key.expose(), &without),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{category:?} without {field}"
            );
            assert_eq!(
                answer["errors"]["fieldErrors"][field],
                json!(["Required"]),
                "{category:?} without {field}: {answer}"
            );
        }
    }
    assert_eq!(
        stack.queue.depth().await.unwrap(),
        0,
        "nothing invalid was queued"
    );
}

#[tokio::test]
async fn five_faults_are_reported_together() {
    let stack = EmbeddedStack::create(5);
    let deps = embedded_deps(&stack);
    let ws = workspace(&stack.db).await;
    let body = json!({"eventTimestamp": "not-a-date", "eventType": "forwarded", "body": {"text": "x"},
        "from": {"email": "not-an-email"}, "to": []});
    let (status, answer) = call(&deps, request("emails", ws.api_key.expose(), &body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let named: Vec<&String> = answer["errors"]["fieldErrors"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        named,
        ["eventTimestamp", "eventType", "from.email", "subject", "to"]
    );
    assert_eq!(answer["received"], false);
    assert!(answer["_metadata"]["requestId"].is_string());
}

#[tokio::test]
async fn flat_transcripts_are_stored_as_speaker_turns() {
    let stack = EmbeddedStack::create(5);
    let deps = embedded_deps(&stack);
    let ws = workspace(&stack.db).await;
    let body = json!({"eventTimestamp": "2024-02-03T10:30:00Z", "eventType": "transcript", "title": "Sync",
        "transcript": "Sarah: Hi John\n[00:00:04] John: Hello", "participants": [{"name": "Sarah"}], "vendorField": 7});
    let (status, answer) = call(&deps, request("calls", ws.api_key.expose(), &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let event_id =
        hookline_shared::EventId::parse(answer["additionalData"]["eventId"].as_str().unwrap())
            .unwrap();
    let stored = stack
        .events
        .get_event(&ws.workspace.id, &event_id)
        .await
        .unwrap()
        .unwrap();
    let payload = stored.payload.to_value().unwrap();
    assert_eq!(
        payload["transcript"],
        json!([{"speaker": "Sarah", "text": "Hi John"}, {"speaker": "John", "text": "Hello", "start": 4}])
    );
    assert_eq!(
        payload["passthrough"],
        json!({"vendorField": 7}),
        "unknown fields are kept"
    );
    assert_eq!(stored.full_type(), "calls.transcript");
    assert!(stored.should_process);
}

fn raw_request(category: &str, key: &str, body: String) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(format!(
            "/api/v2/analytics/webhook/receive/generic/{category}"
        ))
        .header("content-type", "application/json")
        .header("X-Api-Key", key)
        .body(Body::from(body))
        .unwrap()
}

/// The crm body of these tests with one more member, written as JSON text.
fn crm_with(member: &str) -> String {
    let crm = crm_body().to_string();
    format!("{},{member}}}", &crm[..crm.len() - 1])
}

/// `levels` objects, each the only member `a` of the one around it.
fn nested_objects(levels: usize) -> String {
    format!(
        "{}{{}}{}",
        r#"{"a":"#.repeat(levels - 1),
        "}".repeat(levels - 1)
    )
}

#[tokio::test]
async fn bodies_beyond_the_json_limits_are_400s_naming_the_path() {
    let stack = EmbeddedStack::create(5);
    let deps = embedded_deps(&stack);
    let ws = workspace(&stack.db).await;
    let key = ws.api_key.expose();
    let cases = [
        (
            format!(r#""customMetadata": {}"#, nested_objects(10_000)),
            format!("customMetadata{}", ".a".repeat(31)),
            "Nested too deep",
        ),
        (
            format!(
                r#""vendorTrace": {}{}"#,
                "[".repeat(120_000),
                "]".repeat(120_000)
            ),
            format!("vendorTrace{}", ".0".repeat(31)),
            "Nested too deep",
        ),
        (
            r#""customMetadata": {"score": [1.5, 1e400]}"#.to_owned(),
            "customMetadata.score.1".to_owned(),
            "Number out of range",
        ),
        (
            format!(r#""vendorId": {}"#, "9".repeat(5_000)),
            "vendorId".to_owned(),
            "Number out of range",
        ),
        (
            r#""vendorNote": {"text": "half \ud800 a pair"}"#.to_owned(),
            "vendorNote.text".to_owned(),
            r"Text is not valid Unicode: lone surrogate escape \ud800",
        ),
    ];
    for (member, path, rule) in cases {
        let (status, answer) = call(&deps, raw_request("crm", key, crm_with(&member))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["received"], false);
        let fields = answer["errors"]["fieldErrors"].as_object().unwrap();
        assert_eq!(fields.keys().collect::<Vec<_>>(), [&path], "{answer}");
        let message = fields[&path][0].as_str().unwrap();
        assert!(message.starts_with(rule), "{path}: {message}");
    }
    assert_eq!(stack.queue.depth().await.unwrap(), 0, "nothing was queued");

    // The body, customMetadata, then 30 levels under it: exactly 32.
    let deepest = crm_with(&format!(r#""customMetadata": {}"#, nested_objects(30)));
    let (status, answer) = call(&deps, raw_request("crm", key, deepest)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(stack.queue.depth().await.unwrap(), 1);
}

fn social_to(to: Value) -> Value {
    json!({"eventTimestamp": "2024-02-03T12:30:00+02:00", "eventType": "message_sent",
        "body": {"text": "Hi John, great to connect!"}, "from": {"email": "sarah@acme.io", "name": "Sarah"},
        "to": to})
}

#[tokio::test]
async fn a_social_event_takes_its_recipients_as_emails_do_and_dedups_on_the_first() {
    let stack = EmbeddedStack::create(5);
    let deps = embedded_deps(&stack);
    let key = workspace(&stack.db).await.api_key;
    let key = key.expose();
    let two = json!([{"email": "john@client.io", "name": "John"}, {"email": "ann@client.io"}]);
    let (status, first) = call(&deps, request("social", key, &social_to(two))).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // The same first recipient, a different second one: the same event.
    let other_second =
        json!([{"email": "john@client.io", "name": "John"}, "https://www.linkedin.com/in/zed"]);
    let (_, again) = call(&deps, request("social", key, &social_to(other_second))).await;
    assert_eq!(again["additionalData"]["duplicate"], true, "{again}");
    assert_eq!(
        again["additionalData"]["eventId"],
        first["additionalData"]["eventId"]
    );
    // A lone party still works, object or string, and is its own first recipient.
    let (status, lone) = call(
        &deps,
        request(
            "social",
            key,
            &social_to(json!({"email": "john@client.io", "name": "John"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{lone}");
    assert_eq!(lone["additionalData"]["duplicate"], true, "{lone}");
    let (status, _) = call(
        &deps,
        request("social", key, &social_to(json!("https://x.io/in/j"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, empty) = call(&deps, request("social", key, &social_to(json!([])))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(empty["errors"]["fieldErrors"]["to"].is_array(), "{empty}");
    let (status, bad) = call(
        &deps,
        request(
            "social",
            key,
            &social_to(json!([{"email": "john@client.io"}, {"email": "nope"}])),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["errors"]["fieldErrors"]["to.1.email"].is_array(),
        "{bad}"
    );
}

#[tokio::test]
async fn an_explicit_event_id_dedups_every_category_crm_too() {
    let stack = EmbeddedStack::create(5);
    let deps = embedded_deps(&stack);
    let key = workspace(&stack.db).await.api_key;
    let key = key.expose();
    let mut first = crm_body();
    first["eventId"] = json!("deal-7");
    let mut second = crm_body();
    second["eventId"] = json!("deal-7");
    second["opportunityId"] = json!("opp-other");
    let (status, a) = call(&deps, request("crm", key, &first)).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let (_, b) = call(&deps, request("crm", key, &second)).await;
    assert_eq!(b["additionalData"]["duplicate"], true, "{b}");
    assert_eq!(b["additionalData"]["dedupId"], "deal-7");
    // Without one, two opportunities are two events.
    let mut third = crm_body();
    third["opportunityId"] = json!("opp-third");
    let (_, c) = call(&deps, request("crm", key, &third)).await;
    assert_eq!(c["additionalData"]["duplicate"], false);
}
