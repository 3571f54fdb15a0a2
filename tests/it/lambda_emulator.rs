//! The real Lambda binaries under cargo-lambda's runtime emulator, fed the `events/` fixtures,
//! against DynamoDB and SQS on moto.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookline_shared::{
    ApiKey, Category, Event, EventId, EventStore, NewSubscription, RawJson, Subscription,
    SubscriptionId, SubscriptionStore, SubscriptionType, Workspace, WorkspaceId, WorkspaceStore,
};
use serde_json::{json, Value};

use crate::ingest_api::seed_email;
use crate::receiver::{Behavior, Receiver};
use crate::support::{moto_url, MotoStack, Outbox as _};

/// The key every authenticated fixture in `events/` sends.
const FIXTURE_KEY: &str = "hk_fixture_0123456789abcdefghijklmnopqrstuv";
const FIXTURE_WORKSPACE: &str = "ws_00000000000000000000000000000001";
const FIXTURE_SUBSCRIPTION: &str = "sub_00000000000000000000000000000001";

/// Kills the child when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One function binary running against cargo-lambda's runtime API emulator.
struct Emulated {
    port: u16,
    fixtures: PathBuf,
    _emulator: Reaped,
    _function: Reaped,
}

impl Emulated {
    /// Function `name` fed the fixtures in `events/{name}`. `cargo test --workspace` builds
    /// each function binary beside ours (their packages have tests), so the binary under
    /// test is the one the Lambda would run.
    fn start(name: &str, env: &[(&str, impl AsRef<str>)]) -> Self {
        let path = Path::new(env!("CARGO_BIN_EXE_hookline")).with_file_name(name);
        assert!(
            path.exists(),
            "{} missing: run the workspace tests (scripts/test.sh)",
            path.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let emulator = Reaped(
            Command::new("cargo")
                .args(["lambda", "watch", "--only-lambda-apis", "--timeout", "30"])
                .args([
                    "--invoke-address",
                    "127.0.0.1",
                    "--invoke-port",
                    &port.to_string(),
                ])
                .current_dir(repo_root())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cargo lambda is on PATH (scripts/test.sh installs it)"),
        );
        wait_for_port(port);
        let function = Reaped(
            Command::new(path)
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", "_")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_ENDPOINT_URL", moto_url())
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("RUST_LOG", "warn")
                .envs(env.iter().map(|(key, value)| (key, value.as_ref())))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        Self {
            port,
            fixtures: repo_root().join("events").join(name),
            _emulator: emulator,
            _function: function,
        }
    }

    /// Invokes with one fixture; returns the response and, for HTTP answers, the parsed body.
    async fn invoke(&self, fixture: &str) -> (Value, Value) {
        self.invoke_file(self.fixtures.join(fixture)).await
    }

    /// Invokes with one fixture, which must answer `status` with a body that mentions
    /// `mentions`; returns that body.
    async fn answers(&self, fixture: &str, status: u16, mentions: &str) -> Value {
        let (response, body) = self.invoke(fixture).await;
        assert_eq!(response["statusCode"], status, "{fixture}: {response}");
        assert!(
            body.to_string().contains(mentions),
            "{fixture} mentions {mentions}: {body}"
        );
        body
    }

    async fn invoke_file(&self, file: PathBuf) -> (Value, Value) {
        let port = self.port;
        let fixture = file.display().to_string();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("cargo")
                .args([
                    "lambda",
                    "invoke",
                    "--invoke-address",
                    "127.0.0.1",
                    "--invoke-port",
                    &port.to_string(),
                ])
                .args(["--output-format", "json", "--data-file"])
                .arg(file)
                .output()
                .expect("cargo lambda is on PATH (scripts/test.sh installs it)");
            assert!(
                out.status.success(),
                "invoke {fixture}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let response: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("{fixture}: {e}: {}", String::from_utf8_lossy(&out.stdout))
            });
            let body = response["body"]
                .as_str()
                .filter(|b| !b.is_empty())
                .map_or(Value::Null, |b| serde_json::from_str(b).unwrap());
            (response, body)
        })
        .await
        .unwrap()
    }
}

fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cargo lambda emulator did not listen on {port} within 30 s");
}

/// The fixtures' workspace, with the fixture key, created on moto.
async fn fixture_workspace(stack: &MotoStack) -> WorkspaceId {
    let store = stack.workspaces();
    let id = WorkspaceId::parse(FIXTURE_WORKSPACE).unwrap();
    let workspace = Workspace {
        id: id.clone(),
        name: "fixtures".into(),
        created_at: chrono::Utc::now(),
    };
    store.create_workspace(&workspace).await.unwrap();
    store
        .add_api_key(&id, &ApiKey::presented(FIXTURE_KEY).unwrap().hash())
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_binary_answers_every_fixture_under_the_emulator() {
    let stack = MotoStack::create(5).await;
    fixture_workspace(&stack).await;
    let function = Emulated::start(
        "ingest",
        &[
            ("HOOKLINE_WORKSPACES_TABLE", &stack.workspaces_table),
            ("HOOKLINE_EVENTS_TABLE", &stack.events_table),
            ("HOOKLINE_SUBSCRIPTIONS_TABLE", &stack.subscriptions_table),
        ],
    );
    let expectations: [(&str, u16, &str); 10] = [
        ("emails-valid.json", 200, "received"),
        ("emails-duplicate.json", 200, "duplicate"),
        ("calls-valid.json", 200, "received"),
        ("crm-valid.json", 200, "received"),
        ("social-valid.json", 200, "received"),
        ("emails-missing-fields.json", 400, "subject"),
        ("emails-five-faults.json", 400, "from.email"),
        ("crm-bad-timestamp.json", 400, "eventTimestamp"),
        ("emails-no-key.json", 401, "api_key"),
        ("unknown-category.json", 404, "eventType"),
    ];
    let mut first_email_id = Value::Null;
    for (fixture, status, mentions) in expectations {
        let body = function.answers(fixture, status, mentions).await;
        match fixture {
            "emails-valid.json" => first_email_id = body["additionalData"]["eventId"].clone(),
            "emails-duplicate.json" => {
                assert_eq!(body["additionalData"]["duplicate"], true);
                assert_eq!(body["additionalData"]["eventId"], first_email_id);
            }
            "emails-five-faults.json" => {
                assert_eq!(
                    body["errors"]["fieldErrors"].as_object().unwrap().len(),
                    5,
                    "{body}"
                )
            }
            _ => {}
        }
    }
    assert_eq!(
        stack.outbox().fanned_out().await.len(),
        4,
        "one stream record per accepted, non-duplicate fixture"
    );
    assert!(
        stack.queued_messages().await.is_empty(),
        "ingest sends nothing to SQS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_binary_answers_every_fixture_under_the_emulator() {
    let stack = MotoStack::create(5).await;
    let workspace = fixture_workspace(&stack).await;
    let seed = NewSubscription {
        webhook_url: "https://api.example.com/webhook".into(),
        event_types: vec!["conversation.new".into()],
        is_enabled: true,
        kind: SubscriptionType::Seasalt,
        created_by: Some("user_12345".into()),
        ..Default::default()
    };
    let existing = Subscription {
        id: SubscriptionId::parse(FIXTURE_SUBSCRIPTION).unwrap(),
        ..Subscription::new(workspace.clone(), seed, chrono::Utc::now())
    };
    stack
        .subscriptions()
        .create_subscription(&existing)
        .await
        .unwrap();
    let function = Emulated::start(
        "subscriptions",
        &[
            ("HOOKLINE_WORKSPACES_TABLE", &stack.workspaces_table),
            ("HOOKLINE_SUBSCRIPTIONS_TABLE", &stack.subscriptions_table),
            ("HOOKLINE_LOGS_TABLE", &stack.logs_table),
            ("HOOKLINE_DELIVERIES_TABLE", &stack.deliveries_table),
            ("HOOKLINE_DELIVERIES_QUEUE_URL", &stack.queue_url),
            ("HOOKLINE_EVENTS_TABLE", &stack.events_table),
            ("HOOKLINE_EXPORTS_TABLE", &stack.exports_table),
            ("HOOKLINE_EXPORTS_QUEUE_URL", &stack.queue_url),
        ],
    );
    // delete.json goes last: it removes the fixture subscription.
    let expectations: [(&str, u16, &str); 18] = [
        ("event-types.json", 200, "conversation.label.added"),
        ("create-event-type.json", 201, "billing.invoice.paid"),
        ("get-event-type.json", 200, "inv-1"),
        ("publish-custom.json", 400, "data.invoice_id"),
        ("publish.json", 202, "conversation.new"),
        ("publish.json", 200, r#""duplicate":true"#),
        ("publish-invalid.json", 400, "data.conversation_id"),
        ("create.json", 201, "whsec_"),
        ("get.json", 200, FIXTURE_SUBSCRIPTION),
        ("list.json", 200, "subscriptions"),
        ("patch.json", 200, "message.new"),
        ("patch-missing-updated-by.json", 400, "updated_by"),
        ("rotate-secret.json", 200, "whsec_"),
        ("reveal-secret.json", 200, "previous_secret_expires_at"),
        ("foreign-workspace.json", 403, "forbidden"),
        ("list-bad-order.json", 400, "created_at:desc"),
        ("no-key.json", 401, "X-API-KEY"),
        ("delete.json", 204, ""),
    ];
    for (fixture, status, mentions) in expectations {
        function.answers(fixture, status, mentions).await;
    }
    // patch.json enables the subscription, which asks the delivery worker to resume its work;
    // the published event reaches its fan-out on the stream (once, though published twice).
    let queued: Vec<Value> = stack
        .queued_messages()
        .await
        .iter()
        .map(|m| serde_json::from_str::<Value>(&m.body).unwrap())
        .collect();
    assert_eq!(stack.outbox().fanned_out().await.len(), 1);
    assert_eq!(
        queued,
        [
            json!({"kind": "resume", "workspace_id": workspace.as_str(), "subscription_id": FIXTURE_SUBSCRIPTION})
        ],
    );
    let listed = stack
        .subscriptions()
        .list_subscriptions(&workspace)
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the created one remains, the fixture one was deleted"
    );
    assert_ne!(listed[0].id, existing.id);
    let routed = stack
        .subscriptions()
        .enabled_subscriptions_for(&workspace, "message.new")
        .await
        .unwrap();
    assert_eq!(
        routed.len(),
        1,
        "the created subscription is routed for message.new"
    );
}

/// An SQS event with one record, as Lambda would pass a message of the deliveries queue.
fn sqs_event(dir: &Path, message_id: &str, body: &str) -> PathBuf {
    let event = serde_json::json!({"Records": [{
        "messageId": message_id, "receiptHandle": format!("receipt-{message_id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225601000",
            "SenderId": "AROAEXAMPLE:delivery", "ApproximateFirstReceiveTimestamp": "1767225601005"},
        "messageAttributes": {}, "md5OfBody": "00000000000000000000000000000000", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hookline-deliveries", "awsRegion": "us-east-1"}]});
    let path = dir.join(format!("{message_id}.json"));
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

async fn fixture_event(stack: &MotoStack, workspace: &WorkspaceId, id: &str, dedup_id: &str) {
    let now = chrono::Utc::now();
    let event = Event::generic(
        EventId::parse(id).unwrap(),
        workspace.clone(),
        dedup_id.into(),
        Category::Emails,
        "sent",
        now,
        now,
        RawJson::from_value(&seed_email()),
    );
    stack
        .events()
        .insert_if_absent(&event, now.timestamp() + 3600)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_binary_fans_out_delivers_and_reports_batch_failures_under_the_emulator() {
    let stack = MotoStack::create(5).await;
    let workspace = fixture_workspace(&stack).await;
    fixture_event(
        &stack,
        &workspace,
        "evt_00000000000000000000000000000001",
        "fixture-dedup-1",
    )
    .await;
    fixture_event(
        &stack,
        &workspace,
        "evt_00000000000000000000000000000002",
        "fixture-dedup-2",
    )
    .await;
    fixture_event(
        &stack,
        &workspace,
        "evt_00000000000000000000000000000003",
        "fixture-dedup-3",
    )
    .await;
    let receiver = Receiver::start().await;
    let new = NewSubscription {
        webhook_url: receiver.endpoint("hook", Behavior::Ok),
        event_types: vec!["emails.sent".into()],
        is_enabled: true,
        kind: SubscriptionType::Seasalt,
        created_by: None,
        ..Default::default()
    };
    let subscription = Subscription::new(workspace.clone(), new, chrono::Utc::now());
    stack
        .subscriptions()
        .create_subscription(&subscription)
        .await
        .unwrap();
    let env = |queue_url: &str| -> Vec<(&'static str, String)> {
        vec![
            ("HOOKLINE_WORKSPACES_TABLE", stack.workspaces_table.clone()),
            ("HOOKLINE_EVENTS_TABLE", stack.events_table.clone()),
            (
                "HOOKLINE_SUBSCRIPTIONS_TABLE",
                stack.subscriptions_table.clone(),
            ),
            ("HOOKLINE_DELIVERIES_TABLE", stack.deliveries_table.clone()),
            ("HOOKLINE_LOGS_TABLE", stack.logs_table.clone()),
            ("HOOKLINE_DELIVERIES_QUEUE_URL", queue_url.to_owned()),
            ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
        ]
    };

    // A queue that does not exist: the fan-out cannot queue its attempt, so SQS must retry
    // the message, and the stream its record (by sequence number; the REMOVE beside it is
    // nothing to retry).
    {
        let broken = Emulated::start("delivery", &env(&format!("{}-missing", stack.queue_url)));
        let (response, _) = broken.invoke("event-accepted.json").await;
        assert_eq!(
            response,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "fixture-msg-1"}]})
        );
        let (response, _) = broken.invoke("stream-insert.json").await;
        assert_eq!(
            response,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "111100000000000000000001"}]})
        );
    }

    let function = Emulated::start("delivery", &env(&stack.queue_url));
    let (response, _) = function.invoke("event-accepted.json").await;
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": []}),
        "fan-out acknowledged"
    );
    let tasks = stack.queued_messages().await;
    assert_eq!(
        tasks.len(),
        1,
        "one delivery task for the one matching subscription"
    );

    let dir = tempfile::tempdir().unwrap();
    let deliver = sqs_event(dir.path(), "deliver-1", &tasks[0].body);
    let (response, _) = function.invoke_file(deliver.clone()).await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    assert_eq!(
        receiver
            .wait_for("hook", 1, Duration::from_secs(5))
            .await
            .len(),
        1,
        "delivered"
    );
    let (response, _) = function.invoke_file(deliver).await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received("hook").len(),
        1,
        "a redelivered message does not deliver twice"
    );

    let (response, _) = function.invoke("event-accepted.json").await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    assert!(
        stack.queued_messages().await.is_empty(),
        "a repeated fan-out queues nothing new"
    );

    let (response, _) = function.invoke("batch-with-poison.json").await;
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": []}),
        "poison is acknowledged, not retried"
    );
    assert_eq!(
        stack.queued_messages().await.len(),
        1,
        "the valid record of the batch fanned out"
    );

    // The events table's stream: its INSERT fans out like an event_accepted message.
    let (response, _) = function.invoke("stream-insert.json").await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    let tasks = stack.queued_messages().await;
    assert_eq!(tasks.len(), 1, "one delivery task for the streamed event");
    let task: Value = serde_json::from_str(&tasks[0].body).unwrap();
    assert_eq!(task["kind"], "deliver", "{task}");
}

const FIXTURE_SVIX_CONNECTION: &str = "con_00000000000000000000000000000001";
const FIXTURE_SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const FIXTURE_BODY_CONNECTION: &str = "con_00000000000000000000000000000002";
const FIXTURE_BODY_SECRET: &str = "wh_fixture_0123456789abcdef";

/// The fixture workspace's two provider connections, as the notify API would have stored them.
async fn fixture_connections(stack: &MotoStack, workspace: &WorkspaceId) {
    use hookline_shared::{Connection, ConnectionId, ConnectionKind, ConnectionSecret};
    for (id, kind, name, secret) in [
        (
            FIXTURE_SVIX_CONNECTION,
            ConnectionKind::Svix,
            "coach",
            FIXTURE_SVIX_SECRET,
        ),
        (
            FIXTURE_BODY_CONNECTION,
            ConnectionKind::SecretInBody,
            "leads",
            FIXTURE_BODY_SECRET,
        ),
    ] {
        let connection = Connection {
            id: ConnectionId::parse(id).unwrap(),
            workspace_id: workspace.clone(),
            kind,
            name: name.into(),
            secret: ConnectionSecret::given(kind, secret).unwrap(),
            created_at: chrono::Utc::now(),
        };
        use hookline_shared::ConnectionStore as _;
        stack
            .connections()
            .create_connection(&connection)
            .await
            .unwrap();
    }
}

/// A Svix fixture as its sender would send it now: the timestamp current, and (`sign`) the
/// signature the fixture connection's secret makes. Written beside `dir`.
fn refreshed_svix_fixture(function: &Emulated, fixture: &str, sign: bool, dir: &Path) -> PathBuf {
    let raw = std::fs::read_to_string(function.fixtures.join(fixture)).unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    let now = chrono::Utc::now().timestamp();
    event["headers"]["svix-timestamp"] = json!(now.to_string());
    if sign {
        let id = event["headers"]["svix-id"].as_str().unwrap().to_owned();
        let body = event["body"].as_str().unwrap().to_owned();
        let signature = hookline_shared::webhook::sign(&[FIXTURE_SVIX_SECRET], &id, now, &body);
        event["headers"]["svix-signature"] = json!(signature);
    }
    let path = dir.join(fixture);
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_connections_reach_the_ingest_binary_under_the_emulator() {
    let stack = MotoStack::create(5).await;
    let workspace = fixture_workspace(&stack).await;
    fixture_connections(&stack, &workspace).await;
    let function = Emulated::start(
        "ingest",
        &[
            ("HOOKLINE_WORKSPACES_TABLE", &stack.workspaces_table),
            ("HOOKLINE_EVENTS_TABLE", &stack.events_table),
            ("HOOKLINE_SUBSCRIPTIONS_TABLE", &stack.subscriptions_table),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let signed = refreshed_svix_fixture(
        &function,
        "connection-svix-call-completed.json",
        true,
        dir.path(),
    );
    let (response, body) = function.invoke_file(signed.clone()).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(
        body["additionalData"]["eventType"], "calls.transcript",
        "{body}"
    );
    assert_eq!(body["connection"]["providerName"], "COACH");
    let (_, again) = function.invoke_file(signed).await;
    assert_eq!(again["additionalData"]["duplicate"], true, "{again}");
    let forged = refreshed_svix_fixture(
        &function,
        "connection-svix-bad-signature.json",
        false,
        dir.path(),
    );
    let (response, body) = function.invoke_file(forged).await;
    assert_eq!(response["statusCode"], 401, "{response}");
    assert!(body.to_string().contains("svix-signature"), "{body}");

    let lead = function
        .answers(
            "connection-in-body-lead-create.json",
            200,
            "leads.lead.create",
        )
        .await;
    assert_eq!(lead["connection"]["providerName"], "LEADS");
    let refused = function
        .answers("connection-in-body-wrong-secret.json", 401, "secret")
        .await;
    assert!(!refused.to_string().contains(FIXTURE_BODY_SECRET));
    function
        .answers("connection-unknown.json", 404, "connection_id")
        .await;
    assert_eq!(
        stack.outbox().fanned_out().await.len(),
        2,
        "one stream record per accepted, non-duplicate delivery"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_binary_gathers_a_batch_on_dynamodb_and_sends_it_once_under_the_emulator() {
    let stack = MotoStack::create(5).await;
    let workspace = fixture_workspace(&stack).await;
    for (id, dedup) in [
        ("evt_00000000000000000000000000000001", "fixture-dedup-1"),
        ("evt_00000000000000000000000000000002", "fixture-dedup-2"),
    ] {
        fixture_event(&stack, &workspace, id, dedup).await;
    }
    let receiver = Receiver::start().await;
    let new = NewSubscription {
        webhook_url: receiver.endpoint("batches", Behavior::Ok),
        event_types: vec!["emails.sent".into()],
        is_enabled: true,
        delivery_mode: hookline_shared::delivery_control::DeliveryMode::Batched {
            max_events: 2,
            max_wait_seconds: 3600,
        },
        ..Default::default()
    };
    let subscription = Subscription::new(workspace.clone(), new, chrono::Utc::now());
    stack
        .subscriptions()
        .create_subscription(&subscription)
        .await
        .unwrap();
    let env = vec![
        ("HOOKLINE_WORKSPACES_TABLE", stack.workspaces_table.clone()),
        ("HOOKLINE_EVENTS_TABLE", stack.events_table.clone()),
        (
            "HOOKLINE_SUBSCRIPTIONS_TABLE",
            stack.subscriptions_table.clone(),
        ),
        ("HOOKLINE_DELIVERIES_TABLE", stack.deliveries_table.clone()),
        ("HOOKLINE_LOGS_TABLE", stack.logs_table.clone()),
        ("HOOKLINE_DELIVERIES_QUEUE_URL", stack.queue_url.clone()),
        ("HOOKLINE_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
    ];
    let function = Emulated::start("delivery", &env);
    let dir = tempfile::tempdir().unwrap();
    let accepted = |n: u32| {
        let body = serde_json::json!({"kind": "event_accepted", "workspace_id": workspace,
            "event_id": format!("evt_0000000000000000000000000000000{n}"),
            "dedup_id": format!("fixture-dedup-{n}")});
        sqs_event(dir.path(), &format!("accepted-{n}"), &body.to_string())
    };
    let (response, _) = function.invoke_file(accepted(1)).await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    // The first event opened the batch; its flush waits out the hour (chained delays).
    assert!(stack.queued_messages().await.is_empty(), "nothing due yet");
    let (response, _) = function.invoke_file(accepted(2)).await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    let due = stack.queued_messages().await;
    assert_eq!(
        due.len(),
        1,
        "the full batch's flush is due at once: {due:?}"
    );
    assert!(due[0].body.contains("flush_batch"), "{}", due[0].body);
    let flush = sqs_event(dir.path(), "flush", &due[0].body);
    let (response, _) = function.invoke_file(flush.clone()).await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    let got = receiver
        .wait_for("batches", 1, Duration::from_secs(5))
        .await;
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["events"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(got[0].headers["webhook-id"], body["id"]);
    // A repeated flush, and a repeated fan-out, send nothing more.
    let (response, _) = function.invoke_file(flush).await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    let (response, _) = function.invoke_file(accepted(2)).await;
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received("batches").len(), 1, "sent once");
}

/// The exports binary under the emulator with `events/exports/export-job.json`: the job the
/// fixture names is run, its file written to the bucket and its link emailed, and the record
/// is acknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn exports_binary_runs_the_fixtures_job() {
    use hookline_shared::export::{ExportJob, ExportJobStore as _, ExportRequest, ExportStatus};
    use hookline_shared::LogStore as _;
    let stack = MotoStack::create(5).await;
    let workspace = fixture_workspace(&stack).await;
    let config = crate::support::aws_config().await;
    // S3 on a moto of its own: an object the emulated binary uploads in parts leaves moto's
    // state dump (`/moto-api/data.json`, where other tests read the emails SES recorded)
    // failing for the rest of that server's life.
    let private = PrivateMoto::start();
    let bucket = crate::support::unique("hl-exports");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .endpoint_url(&private.url)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let sender = format!("{}@example.com", crate::support::unique("exports"));
    aws_sdk_sesv2::Client::new(&config)
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    let subscription = SubscriptionId::parse(FIXTURE_SUBSCRIPTION).unwrap();
    for _ in 0..3 {
        let log = crate::notify_api::delivery_log(&workspace, &subscription, "https://x.example");
        stack.logs().append_log(&log).await.unwrap();
    }
    let request = ExportRequest::parse(&json!({"email": "ops@example.com"})).unwrap();
    let job = ExportJob {
        id: hookline_shared::ExportJobId::parse("exp_00000000000000000000000000000001").unwrap(),
        ..ExportJob::new(workspace.clone(), request, chrono::Utc::now())
    };
    stack.exports().create_job(&job).await.unwrap();
    let function = Emulated::start(
        "exports",
        &[
            ("HOOKLINE_EXPORTS_TABLE", stack.exports_table.as_str()),
            ("HOOKLINE_LOGS_TABLE", stack.logs_table.as_str()),
            ("HOOKLINE_EXPORTS_BUCKET", bucket.as_str()),
            ("HOOKLINE_EXPORT_SENDER", sender.as_str()),
            ("HOOKLINE_S3_FORCE_PATH_STYLE", "true"),
            ("AWS_ENDPOINT_URL_S3", private.url.as_str()),
        ],
    );
    let (response, _) = function.invoke("export-job.json").await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let done = stack
        .exports()
        .get_job(&workspace, &job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ExportStatus::Done, "{done:?}");
    assert_eq!(done.rows, 3);
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(format!("exports/{workspace}/{}.csv", job.id))
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(
        bytes.iter().filter(|b| **b == b'\n').count(),
        4,
        "a header and 3 rows"
    );
}

/// A moto server of one test's own on a free loopback port, stopped when dropped.
struct PrivateMoto {
    url: String,
    child: std::process::Child,
}

impl PrivateMoto {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/moto_server");
        let child = std::process::Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server starts (scripts/test.sh installs it)");
        let moto = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on {port} within 30 s");
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
