//! The notify API: seed 002's subscription samples against local mode, and list ordering on
//! both adapters through the handler.

use axum::body::Body;
use axum::Router;
use chrono::{DateTime, Utc};
use hookline_shared::delivery::{DeliveryId, DeliveryLog, DeliveryStatus};
use hookline_shared::{
    EventId, EventTypeStore, LogStore, Queue, RawJson, SubscriptionId, SubscriptionStore,
    SubscriptionType, WorkspaceId, WorkspaceStore,
};
use lambda_http::http::{Request, StatusCode};
use serde_json::{json, Value};
use subscriptions::{router, Notify, ORDER_BY_VALUES};

use crate::backends::both_backends;
use crate::contract::subscription;
use crate::ingest_api::answer;
use crate::local_mode::{client, Serving};
use crate::support::{loopback_sender, MotoStack};

/// The notify API of a local-mode server, as its dev workspace's key; `{ws}` in a path is that
/// workspace.
pub(crate) struct Api<'a> {
    pub serving: &'a Serving,
}

impl Api<'_> {
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/notify/api/v1{path}", self.serving.base)
            .replace("{ws}", &self.serving.workspace_id);
        let mut request = client()
            .request(method.parse().unwrap(), url)
            .header("X-API-KEY", &self.serving.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }
}

/// One request through the notify router: its status and JSON body (`Null` when empty).
async fn serve(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let response = answer(app, req).await;
    let body = match response.body().is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(response.body()).expect("answers are JSON"),
    };
    (response.status(), body)
}

/// A GET through the notify router, as the holder of `key`.
async fn get(app: &Router, key: &str, uri: String) -> (StatusCode, Value) {
    let req = Request::builder()
        .uri(uri)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    serve(app, req).await
}

/// The notify router on these ports, as the Lambda builds it: https webhooks only, with a
/// sender that may reach loopback receivers.
pub(crate) fn notify_app<W, S, T, D, Q>(
    workspaces: W,
    subscriptions: S,
    event_types: T,
    logs: D,
    resumes: Q,
) -> Router
where
    W: WorkspaceStore + 'static,
    S: SubscriptionStore + 'static,
    T: EventTypeStore + 'static,
    D: LogStore + 'static,
    Q: Queue + 'static,
{
    router(Notify::new(
        workspaces,
        subscriptions,
        event_types,
        logs,
        resumes,
        loopback_sender(),
        false,
    ))
}

const SUBSCRIPTION_FIELDS: [&str; 9] = [
    "webhook_url",
    "event_types",
    "created_by",
    "is_enabled",
    "type",
    "id",
    "created_at",
    "updated_at",
    "updated_by",
];

fn assert_subscription_shape(value: &Value, with_secret: bool) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    for field in SUBSCRIPTION_FIELDS {
        assert!(object.contains_key(field), "{field} missing from {value}");
    }
    assert!(value["id"].as_str().unwrap().starts_with("sub_"));
    assert_eq!(object.contains_key("secret"), with_secret, "{value}");
}

#[tokio::test]
async fn seed_subscription_samples_answer_in_the_seed_shape() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let api = Api { serving: &serving };

    let seed_create = json!({"webhook_url": "https://api.example.com/webhook",
        "event_types": ["conversation.new", "message.new"], "created_by": "user_12345", "is_enabled": true, "type": "SEASALT"});
    let (status, created) = api
        .send("POST", "/workspaces/{ws}/subscription", Some(seed_create))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_subscription_shape(&created, true);
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        created["event_types"],
        json!(["conversation.new", "message.new"])
    );
    assert_eq!(created["type"], "SEASALT");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/workspaces/{{ws}}/subscription/{id}");

    let (status, fetched) = api.send("GET", &path, None).await;
    assert_eq!(status, 200);
    assert_subscription_shape(&fetched, false);

    let (status, listed) = api
        .send(
            "GET",
            "/workspaces/{ws}/subscription?order_by=created_at:asc&type=SEASALT",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);
    assert_subscription_shape(&listed["subscriptions"][0], false);
    let (_, zapier) = api
        .send("GET", "/workspaces/{ws}/subscription?type=ZAPIER", None)
        .await;
    assert_eq!(zapier, json!({"subscriptions": []}));

    let seed_patch = json!({"webhook_url": "https://api.example.com/webhook",
        "event_types": ["conversation.new", "message.new"], "updated_by": "user_12345", "is_enabled": true});
    let (status, patched) = api.send("PATCH", &path, Some(seed_patch)).await;
    assert_eq!(status, 200, "{patched}");
    assert_subscription_shape(&patched, false);
    assert_eq!(patched["updated_by"], "user_12345");

    let (status, refused) = api
        .send("PATCH", &path, Some(json!({"is_enabled": false})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(refused["fieldErrors"]["updated_by"], json!(["Required"]));
    assert_eq!(refused["code"], "validation_error");

    let (status, catalog) = api.send("GET", "/event_types", None).await;
    assert_eq!(status, 200);
    let catalog = catalog.as_array().unwrap();
    assert_eq!(catalog.len(), 31);
    assert!(catalog.contains(&json!({"event_type": "conversation.new",
        "description": "Triggered when a new conversation is created"})));

    let (status, rotated) = api
        .send("POST", &format!("{path}/secret/rotate"), None)
        .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    let (_, revealed) = api.send("GET", &format!("{path}/secret"), None).await;
    assert_eq!(revealed["secret"], rotated["secret"]);

    let (status, gone) = api.send("DELETE", &path, None).await;
    assert_eq!((status, gone), (204, Value::Null));
    let (status, again) = api.send("DELETE", &path, None).await;
    assert_eq!(status, 404, "{again}");
}

#[tokio::test]
async fn invalid_subscriptions_are_refused_with_every_fault_named() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let api = Api { serving: &serving };

    let body = json!({"webhook_url": "ftp://files.example.com", "event_types": ["emails.sent", "emails.forwarded", "fax.sent"],
        "is_enabled": "yes", "type": "SLACK", "color": "blue"});
    let (status, answer) = api
        .send("POST", "/workspaces/{ws}/subscription", Some(body))
        .await;
    assert_eq!(status, 400, "{answer}");
    let fields = answer["fieldErrors"].as_object().unwrap();
    for field in ["webhook_url", "event_types", "is_enabled", "type", "color"] {
        assert!(fields.contains_key(field), "{field} not named: {answer}");
    }
    assert!(answer["fieldErrors"]["event_types"][0]
        .as_str()
        .unwrap()
        .contains("emails.forwarded, fax.sent"));

    let (status, answer) = api
        .send(
            "POST",
            "/workspaces/{ws}/subscription",
            Some(json!({"event_types": []})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["fieldErrors"]["webhook_url"], json!(["Required"]));
    assert_eq!(answer["fieldErrors"]["is_enabled"], json!(["Required"]));
    assert!(answer["fieldErrors"]["event_types"].is_array());

    let long_url = format!("https://example.com/{}", "a".repeat(2048));
    let (status, answer) = api.send("POST", "/workspaces/{ws}/subscription",
        Some(json!({"webhook_url": long_url, "event_types": ["emails.sent"], "is_enabled": true}))).await;
    assert_eq!(status, 400);
    assert!(answer["fieldErrors"]["webhook_url"][0]
        .as_str()
        .unwrap()
        .contains("2048"));

    // Local mode allows plain http (a developer's receiver); repeats are folded.
    let (status, created) = api.send("POST", "/workspaces/{ws}/subscription", Some(json!({
        "webhook_url": "http://127.0.0.1:9999/hook", "event_types": ["emails.sent", "emails.sent"], "is_enabled": true}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["event_types"], json!(["emails.sent"]));

    let (status, answer) = api
        .send(
            "GET",
            "/workspaces/{ws}/subscription?order_by=name:asc",
            None,
        )
        .await;
    assert_eq!(status, 400);
    let message = answer["fieldErrors"]["order_by"][0].as_str().unwrap();
    for allowed in ORDER_BY_VALUES {
        assert!(
            message.contains(allowed),
            "{allowed} not listed in {message}"
        );
    }
}

/// Orders JSON scalars as the API promises: null first, then false < true, strings by bytes.
fn rank(value: &Value) -> (u8, String) {
    match value {
        Value::Null => (0, String::new()),
        Value::Bool(b) => (1, b.to_string()),
        other => (2, other.as_str().unwrap_or_default().to_owned()),
    }
}

async fn ordering_holds_for_every_order_by(
    workspaces: impl WorkspaceStore + 'static,
    store: impl SubscriptionStore + 'static,
    event_types: impl EventTypeStore + 'static,
    deliveries: impl LogStore + 'static,
    resumes: impl Queue + 'static,
) {
    let workspace = hookline::admin::create_workspace(&workspaces, "ordering")
        .await
        .unwrap();
    let ws: &WorkspaceId = &workspace.workspace.id;
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // Ties on every field: equal timestamps, equal and missing actors, both types and states.
    let specs = [
        (
            "2026-01-01T00:00:00Z",
            "2026-01-05T00:00:00Z",
            Some("bea"),
            None,
            true,
            SubscriptionType::Seasalt,
        ),
        (
            "2026-01-01T00:00:00Z",
            "2026-01-03T00:00:00Z",
            Some("ana"),
            Some("zoe"),
            false,
            SubscriptionType::Zapier,
        ),
        (
            "2026-01-02T00:00:00Z",
            "2026-01-05T00:00:00Z",
            None,
            Some("ana"),
            true,
            SubscriptionType::Zapier,
        ),
        (
            "2026-01-03T00:00:00Z",
            "2026-01-03T00:00:00Z",
            Some("ana"),
            Some("ana"),
            false,
            SubscriptionType::Seasalt,
        ),
        (
            "2026-01-03T00:00:00Z",
            "2026-01-04T00:00:00Z",
            Some("bea"),
            None,
            true,
            SubscriptionType::Seasalt,
        ),
    ];
    for (created, updated, created_by, updated_by, enabled, kind) in specs {
        let mut s = subscription(ws, &["emails.sent"], enabled);
        s.created_at = at(created);
        s.updated_at = at(updated);
        s.created_by = created_by.map(str::to_owned);
        s.updated_by = updated_by.map(str::to_owned);
        s.kind = kind;
        store.create_subscription(&s).await.unwrap();
    }
    let app = notify_app(workspaces, store, event_types, deliveries, resumes);
    let key = workspace.api_key.expose();
    let list = format!("/notify/api/v1/workspaces/{ws}/subscription");
    for order_by in ORDER_BY_VALUES {
        let (status, body) = get(&app, key, format!("{list}?order_by={order_by}")).await;
        assert_eq!(status, StatusCode::OK);
        let listed = body["subscriptions"].as_array().unwrap().clone();
        assert_eq!(listed.len(), specs.len());
        let (field, direction) = order_by.split_once(':').unwrap();
        for pair in listed.windows(2) {
            let key = |v: &Value| (rank(&v[field]), v["id"].as_str().unwrap().to_owned());
            let (first, second) = (key(&pair[0]), key(&pair[1]));
            match direction {
                "asc" => assert!(first < second, "{order_by}: {first:?} before {second:?}"),
                _ => assert!(first > second, "{order_by}: {first:?} before {second:?}"),
            }
        }
    }
    let (_, default) = get(&app, key, list).await;
    let created: Vec<&str> = default["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["created_at"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "default is created_at:desc: {created:?}"
    );
}

both_backends!(ordering_holds_for_every_order_by(
    workspaces,
    subscriptions,
    event_types,
    logs,
    queue
));

async fn logs_api_filters_orders_and_pages(
    workspaces: impl WorkspaceStore + 'static,
    subscriptions: impl SubscriptionStore + 'static,
    event_types: impl EventTypeStore + 'static,
    deliveries: impl LogStore + 'static,
    resumes: impl Queue + 'static,
) {
    let workspace = hookline::admin::create_workspace(&workspaces, "logs")
        .await
        .unwrap();
    let ws = workspace.workspace.id.clone();
    let sub = subscription(&ws, &["emails.sent"], true);
    let other_sub = subscription(&ws, &["emails.sent"], true);
    let live = Utc::now().timestamp() + 3600;
    let specs = [
        (1, &sub, "emails.sent", DeliveryStatus::Success, Some(200)),
        (2, &sub, "crm.deal_won", DeliveryStatus::Failed, Some(500)),
        (3, &other_sub, "emails.sent", DeliveryStatus::Failed, None),
        (4, &sub, "emails.sent", DeliveryStatus::Failed, Some(410)),
        (5, &sub, "calls.missed", DeliveryStatus::Success, Some(204)),
    ];
    for (minute, owner, event_type, status, code) in specs {
        let event_id = hookline_shared::EventId::generate();
        let delivery_id = hookline_shared::delivery::DeliveryId::for_pair(&event_id, &owner.id);
        let created_at = DateTime::parse_from_rfc3339(&format!("2026-03-01T10:0{minute}:00Z"))
            .unwrap()
            .with_timezone(&Utc);
        let log = DeliveryLog {
            id: format!("log-{minute}"),
            workspace_id: ws.clone(),
            event_id,
            subscription_id: owner.id.clone(),
            delivery_id,
            event_type: event_type.into(),
            webhook_url: owner.webhook_url.clone(),
            delivery_status: status,
            status_code: code,
            response_body: String::new(),
            delivered_event_obj: RawJson::from_value(&json!({})),
            created_at,
            attempt: 1,
            duration_ms: 5,
            error: code.is_none().then(|| "could not connect".to_owned()),
            expires_at: live,
            batch_id: None,
        };
        deliveries.append_log(&log).await.unwrap();
    }
    let app = notify_app(workspaces, subscriptions, event_types, deliveries, resumes);
    let get = |query: String| {
        let uri = format!("/notify/api/v1/workspaces/{ws}/logs{query}");
        let (app, key) = (&app, workspace.api_key.expose());
        async move {
            let (status, body) = get(app, key, uri).await;
            (status.as_u16(), body)
        }
    };
    let ids = |page: &Value| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let (status, page) = get(String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 5);
    assert_eq!(
        ids(&page),
        ["log-5", "log-4", "log-3", "log-2", "log-1"],
        "newest first by default"
    );
    assert_eq!(
        page["data"][0]["status_code"], "204",
        "status codes as text, as in the seed"
    );
    assert_eq!(page["data"][2]["status_code"], Value::Null);

    let (_, page) = get(format!(
        "/{}?delivery_status=failed&event_type=emails.sent",
        sub.id
    ))
    .await;
    assert_eq!(
        (page["total"].clone(), ids(&page)),
        (json!(1), vec!["log-4".to_owned()])
    );
    let (_, page) =
        get("?start_date=2026-03-01T12:02:00%2B02:00&end_date=2026-03-01T03:04:00-07:00".into())
            .await;
    assert_eq!(
        ids(&page),
        ["log-4", "log-3", "log-2"],
        "dates with any offset, inclusive"
    );
    let (_, page) = get("?limit=2&offset=1".into()).await;
    assert_eq!(
        (page["total"].clone(), ids(&page)),
        (json!(5), vec!["log-4".to_owned(), "log-3".to_owned()])
    );

    #[rustfmt::skip] // one row per order, as a table
    let expected: [(&str, [&str; 5]); 8] = [
        ("created_at:asc", ["log-1", "log-2", "log-3", "log-4", "log-5"]),
        ("created_at:desc", ["log-5", "log-4", "log-3", "log-2", "log-1"]),
        ("event_type:asc", ["log-5", "log-2", "log-1", "log-3", "log-4"]),
        ("event_type:desc", ["log-4", "log-3", "log-1", "log-2", "log-5"]),
        ("delivery_status:asc", ["log-2", "log-3", "log-4", "log-1", "log-5"]),
        ("delivery_status:desc", ["log-5", "log-1", "log-4", "log-3", "log-2"]),
        ("status_code:asc", ["log-3", "log-1", "log-5", "log-4", "log-2"]),
        ("status_code:desc", ["log-2", "log-4", "log-5", "log-1", "log-3"]),
    ];
    for (order_by, order) in expected {
        let (status, page) = get(format!("?order_by={order_by}")).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&page), order, "{order_by}");
    }
    let (status, page) =
        get("?order_by=webhook_url:asc&delivery_status=maybe&start_date=soon".into()).await;
    assert_eq!(status, 400, "{page}");
    let (status, _) = get("/sub_nope".into()).await;
    assert_eq!(status, 404);
}

both_backends!(logs_api_filters_orders_and_pages(
    workspaces,
    subscriptions,
    event_types,
    logs,
    queue
));

/// A successful attempt's log of a delivery to `subscription`, live for an hour.
pub(crate) fn delivery_log(
    workspace: &WorkspaceId,
    subscription: &SubscriptionId,
    webhook_url: &str,
) -> DeliveryLog {
    let event_id = EventId::generate();
    DeliveryLog {
        id: format!("log-{}", uuid::Uuid::new_v4().simple()),
        workspace_id: workspace.clone(),
        delivery_id: DeliveryId::for_pair(&event_id, subscription),
        event_id,
        subscription_id: subscription.clone(),
        event_type: "emails.sent".into(),
        webhook_url: webhook_url.into(),
        delivery_status: DeliveryStatus::Success,
        status_code: Some(200),
        response_body: String::new(),
        delivered_event_obj: RawJson::from_value(&json!({})),
        created_at: Utc::now(),
        attempt: 1,
        duration_ms: 5,
        error: None,
        expires_at: Utc::now().timestamp() + 3600,
        batch_id: None,
    }
}

/// `…/logs/{id}` answers for a subscription of the caller's that exists, or that was deleted
/// while its logs are still kept; any other id is the same 404 as every subscription not found.
async fn subscription_logs_are_found_while_the_subscription_or_its_logs_remain(
    workspaces: impl WorkspaceStore + 'static,
    subscriptions: impl SubscriptionStore + 'static,
    event_types: impl EventTypeStore + 'static,
    logs: impl LogStore + Clone + 'static,
    resumes: impl Queue + 'static,
) {
    let workspace = hookline::admin::create_workspace(&workspaces, "logs-of-one")
        .await
        .unwrap();
    let ws = workspace.workspace.id.clone();
    let app = notify_app(
        workspaces,
        subscriptions,
        event_types,
        logs.clone(),
        resumes,
    );
    let key = workspace.api_key.expose();
    let call = |method: &str, path: String| {
        let req = Request::builder()
            .method(method)
            .uri(format!("/notify/api/v1/workspaces/{ws}{path}"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(Body::empty())
            .unwrap();
        let app = &app;
        async move {
            let (status, body) = serve(app, req).await;
            (status.as_u16(), body)
        }
    };
    let mut ids = Vec::new();
    for name in ["logged", "quiet"] {
        let body = json!({"webhook_url": format!("https://{name}.example.com/hook"),
            "event_types": ["emails.sent"], "is_enabled": true});
        let req = Request::builder()
            .method("POST")
            .uri(format!("/notify/api/v1/workspaces/{ws}/subscription"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, created) = serve(&app, req).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (logged, quiet) = (&ids[0], &ids[1]);
    let log = delivery_log(
        &ws,
        &SubscriptionId::parse(logged).unwrap(),
        "https://logged.example.com/hook",
    );
    logs.append_log(&log).await.unwrap();

    let (status, page) = call("GET", format!("/logs/{logged}")).await;
    assert_eq!((status, page["total"].clone()), (200, json!(1)), "{page}");
    let (status, page) = call("GET", format!("/logs/{quiet}")).await;
    assert_eq!(status, 200, "an existing subscription without logs: {page}");
    assert_eq!(page, json!({"total": 0, "data": []}));

    let unknown = SubscriptionId::generate();
    let not_found = call("GET", format!("/subscription/{unknown}")).await;
    assert_eq!(not_found.0, 404);
    for id in [unknown.to_string(), "sub_nope".into(), "..".into()] {
        let answer = call("GET", format!("/logs/{id}")).await;
        assert_eq!(answer, not_found, "logs of {id}");
    }

    // Deleted a minute ago, its logs are still its owner's to read; with none left, it reads
    // like any unknown id, since nothing remains to tell it from one.
    for id in [logged, quiet] {
        let (status, _) = call("DELETE", format!("/subscription/{id}")).await;
        assert_eq!(status, 204);
    }
    let (status, page) = call("GET", format!("/logs/{logged}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], json!(log.id));
    let (status, page) = call("GET", format!("/logs/{logged}?event_type=calls.missed")).await;
    assert_eq!((status, page), (200, json!({"total": 0, "data": []})));
    assert_eq!(call("GET", format!("/logs/{quiet}")).await, not_found);
}

both_backends!(
    subscription_logs_are_found_while_the_subscription_or_its_logs_remain(
        workspaces,
        subscriptions,
        event_types,
        logs,
        queue
    )
);

/// Enabling is saved and answered even when its resume cannot be queued (here a queue that
/// does not exist): parked work then waits for its recheck rather than the caller for a retry.
#[tokio::test]
async fn enabling_succeeds_when_the_resume_cannot_be_queued() {
    let stack = MotoStack::create(5).await;
    let workspace = hookline::admin::create_workspace(&stack.workspaces(), "resume")
        .await
        .unwrap();
    let ws = &workspace.workspace.id;
    let paused = subscription(ws, &["emails.sent"], false);
    stack
        .subscriptions()
        .create_subscription(&paused)
        .await
        .unwrap();
    let missing_queue = format!("{}-missing", stack.queue_url);
    let app = notify_app(
        stack.workspaces(),
        stack.subscriptions(),
        stack.event_types(),
        stack.logs(),
        hookline_shared::adapters::SqsQueue::new(stack.sqs.clone(), missing_queue),
    );
    let req = Request::builder()
        .method("PATCH")
        .uri(format!(
            "/notify/api/v1/workspaces/{ws}/subscription/{}",
            paused.id
        ))
        .header("x-api-key", workspace.api_key.expose())
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"is_enabled": true, "updated_by": "ops"}).to_string(),
        ))
        .unwrap();
    let (status, body) = serve(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_enabled"], true);
    let stored = stack
        .subscriptions()
        .get_subscription(ws, &paused.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.is_enabled);
}
