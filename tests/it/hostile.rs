//! Two workspaces and a caller who tries every route with the wrong key, foreign ids, ids of
//! the wrong shape and hostile values: nothing of the other workspace leaks, nothing is a 5xx.

use axum::body::Body;
use axum::Router;
use hookline::admin::{create_workspace, CreatedWorkspace};
use hookline_shared::{
    DeliveryStore, EventTypeStore, LogStore, Queue, SubscriptionId, SubscriptionStore, WorkspaceId,
    WorkspaceStore,
};
use serde_json::{json, Value};

use crate::backends::both_backends;
use crate::ingest_api::answer;
use crate::notify_api::{delivery_log, notify_app};

struct Caller {
    app: Router,
}

impl Caller {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, String) {
        let mut builder = lambda_http::http::Request::builder()
            .method(method)
            .uri(format!("/notify/api/v1{path}"));
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let req = builder
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = answer(&self.app, req).await;
        (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    }
}

async fn tenant_with_subscription<W: WorkspaceStore>(
    caller: &Caller,
    workspaces: &W,
    name: &str,
) -> (CreatedWorkspace, Value) {
    let tenant = create_workspace(workspaces, name).await.unwrap();
    let body = json!({"webhook_url": format!("https://{name}.example.com/hook"), "event_types": ["emails.sent"],
        "is_enabled": true, "created_by": format!("owner@{name}.example.com")});
    let (status, text) = caller
        .call(
            "POST",
            &format!("/workspaces/{}/subscription", tenant.workspace.id),
            Some(tenant.api_key.expose()),
            Some(&body),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    (tenant, serde_json::from_str(&text).unwrap())
}

/// Nothing of the other workspace leaks, nothing is a 5xx.
async fn hostile_caller<W, S, T, D, Q>(
    workspaces: W,
    subscriptions: S,
    event_types: T,
    deliveries: D,
    resumes: Q,
) where
    W: WorkspaceStore + Clone + 'static,
    S: SubscriptionStore + 'static,
    T: EventTypeStore + 'static,
    D: LogStore + Clone + 'static,
    Q: Queue + 'static,
{
    let caller = Caller {
        app: notify_app(
            workspaces.clone(),
            subscriptions,
            event_types,
            deliveries.clone(),
            resumes,
        ),
    };
    let (alice, alice_sub) = tenant_with_subscription(&caller, &workspaces, "alice").await;
    // Alice's subscription has a delivery log, so reading her logs would show something.
    let alice_log = delivery_log(
        &alice.workspace.id,
        &SubscriptionId::parse(alice_sub["id"].as_str().unwrap()).unwrap(),
        alice_sub["webhook_url"].as_str().unwrap(),
    );
    deliveries.append_log(&alice_log).await.unwrap();
    let (mallory, _) = tenant_with_subscription(&caller, &workspaces, "mallory").await;
    let (a_ws, a_sub) = (
        alice.workspace.id.to_string(),
        alice_sub["id"].as_str().unwrap().to_owned(),
    );
    let m_ws = mallory.workspace.id.to_string();
    let m_key = mallory.api_key.expose();
    let secrets = [alice_sub["secret"].as_str().unwrap().to_owned()];
    let patch = json!({"updated_by": "mallory", "webhook_url": "https://evil.example.com", "is_enabled": false});
    let routes = |ws: &str, id: &str| -> Vec<(&'static str, String, Option<Value>)> {
        vec![
            ("GET", format!("/workspaces/{ws}/subscription"), None),
            (
                "POST",
                format!("/workspaces/{ws}/subscription"),
                Some(
                    json!({"webhook_url": "https://evil.example.com", "event_types": ["emails.sent"], "is_enabled": true}),
                ),
            ),
            ("GET", format!("/workspaces/{ws}/subscription/{id}"), None),
            (
                "PATCH",
                format!("/workspaces/{ws}/subscription/{id}"),
                Some(patch.clone()),
            ),
            (
                "DELETE",
                format!("/workspaces/{ws}/subscription/{id}"),
                None,
            ),
            (
                "GET",
                format!("/workspaces/{ws}/subscription/{id}/secret"),
                None,
            ),
            (
                "POST",
                format!("/workspaces/{ws}/subscription/{id}/secret/rotate"),
                None,
            ),
            ("PUT", format!("/workspaces/{ws}/subscription/{id}"), None),
            ("GET", format!("/workspaces/{ws}/logs/{id}"), None),
        ]
    };
    let mut answers: Vec<(String, u16, String)> = Vec::new();
    let mut record = |what: String, status: u16, text: String| answers.push((what, status, text));

    // Mallory's key on Alice's workspace path: refused before any lookup.
    for (method, path, body) in routes(&a_ws, &a_sub) {
        let (status, text) = caller.call(method, &path, Some(m_key), body.as_ref()).await;
        assert_eq!(status, 403, "{method} {path}: {text}");
        record(format!("{method} {path} with a foreign key"), status, text);
    }
    // Mallory's key on her own path with Alice's subscription id: exactly like an unknown id.
    let unknown = SubscriptionId::generate().to_string();
    for ((method, path, body), (_, unknown_path, _)) in routes(&m_ws, &a_sub)
        .into_iter()
        .zip(routes(&m_ws, &unknown))
        .skip(2)
    {
        let (status, text) = caller.call(method, &path, Some(m_key), body.as_ref()).await;
        let (unknown_status, unknown_text) = caller
            .call(method, &unknown_path, Some(m_key), body.as_ref())
            .await;
        assert_eq!(status, unknown_status, "{method} {path}");
        let expected = if method == "PUT" { 405 } else { 404 };
        assert_eq!(status, expected, "{method} {path}: {text}");
        let strip = |t: &str| t.replace(&a_sub, "ID").replace(&unknown, "ID");
        assert_eq!(
            strip(&text),
            strip(&unknown_text),
            "a foreign id reads exactly like an unknown one"
        );
        record(format!("{method} {path} foreign id"), status, text);
    }
    // Ids and workspaces of every wrong shape, missing and bogus keys, on every route.
    let long = "x".repeat(10_000);
    let shapes = [
        "..",
        "sub_",
        "sub_ZZZZ",
        "süb_ü🙂",
        "%00",
        "sub_00000000000000000000000000000000%2F..",
        long.as_str(),
        "'; DROP TABLE subscriptions; --",
    ];
    for raw in shapes {
        // As a client sends it: percent-encoded into one path segment.
        let encoded: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
        let shape = encoded.as_str();
        for (method, path, body) in routes(&m_ws, shape)
            .into_iter()
            .chain(routes(shape, &a_sub))
        {
            let (status, text) = caller.call(method, &path, Some(m_key), body.as_ref()).await;
            record(
                format!("{method} {} (shape)", &path[..path.len().min(80)]),
                status,
                text,
            );
        }
    }
    for key in [
        None,
        Some(""),
        Some("hk_unknown"),
        Some(long.as_str()),
        Some("ключ🙂"),
    ] {
        for (method, path, body) in routes(&a_ws, &a_sub) {
            let (status, text) = caller.call(method, &path, key, body.as_ref()).await;
            assert!(
                matches!(status, 401 | 403),
                "{method} {path} with key {key:?}: {status}"
            );
            record(format!("{method} {path} key {key:?}"), status, text);
        }
    }
    // Hostile values in Mallory's own workspace are clear 4xx answers.
    let hostile_bodies = [
        json!({"webhook_url": "https://bücher.example/ß", "event_types": ["emails.sent"], "is_enabled": true, "created_by": long}),
        json!({"webhook_url": long, "event_types": ["emails.sent"], "is_enabled": true}),
        json!({"webhook_url": "https://x.io", "event_types": vec!["emails.sent"; 1000], "is_enabled": true}),
        json!({"webhook_url": "https://x.io", "event_types": ["🙂".repeat(200)], "is_enabled": true}),
        json!({"webhook_url": "javascript:alert(1)", "event_types": ["emails.sent"], "is_enabled": true}),
        json!({"webhook_url": "https://x.io", "event_types": ["emails.sent"], "is_enabled": true, "__proto__": {}}),
        json!(["not", "an", "object"]),
        json!({"webhook_url": "https://x.io", "event_types": ["emails.sent"], "is_enabled": true, "pad": "p".repeat(70_000)}),
    ];
    for body in &hostile_bodies {
        let (status, text) = caller
            .call(
                "POST",
                &format!("/workspaces/{m_ws}/subscription"),
                Some(m_key),
                Some(body),
            )
            .await;
        assert!(matches!(status, 400 | 413), "{status}: {text}");
        record("hostile create".into(), status, text);
    }

    for (what, status, text) in &answers {
        assert!(*status < 500, "{what}: {status} {text}");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} leaked Alice's secret"
            );
        }
        assert!(
            !text.contains("alice.example.com"),
            "{what} leaked Alice's data: {text}"
        );
        if !what.contains("foreign id") {
            assert!(
                !text.contains(&a_sub) || what.contains("(shape)"),
                "{what} leaked Alice's id: {text}"
            );
        }
    }
    // One subscription's logs: an id of any wrong shape, an unknown one and Alice's answer the
    // same 404 as every other subscription that is not found.
    let not_found = caller
        .call(
            "GET",
            &format!("/workspaces/{m_ws}/subscription/{unknown}"),
            Some(m_key),
            None,
        )
        .await;
    assert_eq!(not_found.0, 404);
    let encoded = shapes
        .iter()
        .map(|raw| url::form_urlencoded::byte_serialize(raw.as_bytes()).collect::<String>());
    for id in encoded.chain([unknown.clone(), a_sub.clone()]) {
        let path = format!("/workspaces/{m_ws}/logs/{id}");
        let answer = caller.call("GET", &path, Some(m_key), None).await;
        assert_eq!(answer, not_found, "GET {}", &path[..path.len().min(80)]);
    }
    assert_logs_readable(&caller, &alice.workspace.id, &a_sub, alice.api_key.expose()).await;

    // Alice's subscription is exactly as she left it.
    let (caller, alice_key) = (&caller, alice.api_key.expose());
    let alice_path = format!("/workspaces/{a_ws}/subscription/{a_sub}");
    let as_alice =
        |path: String| async move { caller.call("GET", &path, Some(alice_key), None).await };
    let (status, text) = as_alice(alice_path.clone()).await;
    assert_eq!(status, 200);
    let now: Value = serde_json::from_str(&text).unwrap();
    let mut before = alice_sub.clone();
    before.as_object_mut().unwrap().remove("secret");
    assert_eq!(now, before);
    let (_, secret) = as_alice(format!("{alice_path}/secret")).await;
    assert!(
        secret.contains(&secrets[0]),
        "Alice's secret was not rotated by anyone else"
    );
}

both_backends!(hostile_caller(
    workspaces,
    subscriptions,
    event_types,
    logs,
    queue
));

/// The owner still reads the log the hostile caller could not.
async fn assert_logs_readable(caller: &Caller, ws: &WorkspaceId, id: &str, key: &str) {
    let (status, text) = caller
        .call(
            "GET",
            &format!("/workspaces/{ws}/logs/{id}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["total"], 1, "{page}");
}

/// Another workspace's custom types are invisible: their names read exactly like names that do
/// not exist, they cannot be subscribed to or test-sent, and a foreign key on their paths is
/// refused before anything is looked up.
async fn hostile_tenant_and_custom_types<W, S, T, D, Q>(
    workspaces: W,
    subscriptions: S,
    event_types: T,
    deliveries: D,
    resumes: Q,
) where
    W: WorkspaceStore + Clone + 'static,
    S: SubscriptionStore + 'static,
    T: EventTypeStore + 'static,
    D: LogStore + 'static,
    Q: Queue + 'static,
{
    let caller = Caller {
        app: notify_app(
            workspaces.clone(),
            subscriptions,
            event_types,
            deliveries,
            resumes,
        ),
    };
    let alice = create_workspace(&workspaces, "alice").await.unwrap();
    let mallory = create_workspace(&workspaces, "mallory").await.unwrap();
    let (a_ws, a_key) = (alice.workspace.id.to_string(), alice.api_key.expose());
    let (m_ws, m_key) = (mallory.workspace.id.to_string(), mallory.api_key.expose());
    let secret_type = json!({"event_type": "payroll.run", "description": "Payroll ran at alice.example.com",
        "schema": {"type": "object", "properties": {"total": {"type": "number"}}},
        "sample": {"total": 123_456}});
    let types = |ws: &str| format!("/workspaces/{ws}/event_types");
    let (status, text) = caller
        .call("POST", &types(&a_ws), Some(a_key), Some(&secret_type))
        .await;
    assert_eq!(status, 201, "{text}");
    let mut answers: Vec<(String, u16, String)> = Vec::new();

    // Mallory's key on Alice's paths: refused before any lookup.
    let one = |ws: &str, name: &str| format!("/workspaces/{ws}/event_types/{name}");
    for (method, path, body) in [
        ("GET", types(&a_ws), None),
        ("POST", types(&a_ws), Some(&secret_type)),
        ("GET", one(&a_ws, "payroll.run"), None),
        ("DELETE", one(&a_ws, "payroll.run"), None),
    ] {
        let (status, text) = caller.call(method, &path, Some(m_key), body).await;
        assert_eq!(status, 403, "{method} {path}: {text}");
        answers.push((format!("{method} {path} foreign key"), status, text));
    }
    // Alice's type name on Mallory's own path reads exactly like a name nobody defined.
    for method in ["GET", "DELETE"] {
        let (status, text) = caller
            .call(method, &one(&m_ws, "payroll.run"), Some(m_key), None)
            .await;
        let (unknown_status, unknown_text) = caller
            .call(method, &one(&m_ws, "payroll.never"), Some(m_key), None)
            .await;
        assert_eq!((status, &text), (unknown_status, &unknown_text), "{method}");
        assert_eq!(status, 404);
        answers.push((format!("{method} foreign type name"), status, text));
    }
    let (status, text) = caller.call("GET", &types(&m_ws), Some(m_key), None).await;
    assert_eq!((status, text.as_str()), (200, r#"{"event_types":[]}"#));
    let (status, text) = caller.call("GET", "/event_types", Some(m_key), None).await;
    assert_eq!(status, 200);
    answers.push(("GET /event_types".into(), status, text));
    // Nor can she subscribe to it, or have it test-sent.
    let subscribe = json!({"webhook_url": "https://mallory.example.com/hook",
        "event_types": ["payroll.run"], "is_enabled": true});
    let (status, text) = caller
        .call(
            "POST",
            &format!("/workspaces/{m_ws}/subscription"),
            Some(m_key),
            Some(&subscribe),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Unknown event types: payroll.run"), "{text}");
    answers.push(("subscribe to a foreign type".into(), status, text));
    let test =
        json!({"event_type": "payroll.run", "webhook_url": "https://mallory.example.com/hook"});
    let (status, text) = caller
        .call(
            "POST",
            &format!("/workspaces/{m_ws}/test"),
            Some(m_key),
            Some(&test),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    answers.push(("test-send a foreign type".into(), status, text));
    // Defining the same name in her own workspace is hers alone.
    let (status, text) = caller
        .call(
            "POST",
            &types(&m_ws),
            Some(m_key),
            Some(&json!({"event_type": "payroll.run", "description": "mine"})),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    // Names of every wrong shape, on her own paths.
    let long = "x".repeat(10_000);
    for raw in [
        "..",
        "PAYROLL.RUN",
        "payroll.run/../x",
        "%00",
        "payroll.🙂",
        long.as_str(),
        "'; DROP TABLE event_types; --",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
        for method in ["GET", "DELETE"] {
            let (status, text) = caller
                .call(method, &one(&m_ws, &encoded), Some(m_key), None)
                .await;
            assert_eq!(status, 404, "{method} {raw:?}: {text}");
            answers.push((format!("{method} shape"), status, text));
        }
    }
    for (what, status, text) in &answers {
        assert!(*status < 500, "{what}: {status} {text}");
        assert!(
            !text.contains("alice.example.com") && !text.contains("123456"),
            "{what} leaked Alice's type: {text}"
        );
        assert!(
            !text.contains(&a_ws),
            "{what} leaked Alice's workspace: {text}"
        );
    }
    // Alice's type is exactly as she defined it.
    let (status, text) = caller
        .call("GET", &one(&a_ws, "payroll.run"), Some(a_key), None)
        .await;
    assert_eq!(status, 200);
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["description"], secret_type["description"]);
    assert_eq!(stored["sample"], secret_type["sample"]);
}

both_backends!(hostile_tenant_and_custom_types(
    workspaces,
    subscriptions,
    event_types,
    logs,
    queue
));

/// Provider connections under a hostile tenant: Mallory's key never reaches Alice's
/// connections, her ids read like unknown ones, and the ingest URL of Alice's connection takes
/// nothing without Alice's secret; no answer carries it.
async fn hostile_connections<W, C>(workspaces: W, connections: C)
where
    W: WorkspaceStore + Clone + 'static,
    C: hookline_shared::ConnectionStore + Clone + 'static,
{
    use hookline_shared::adapters::memory::MemoryEvents;
    use subscriptions::connections::router;
    use subscriptions::ConnectionsApi;

    let caller = Caller {
        app: router(ConnectionsApi::new(workspaces.clone(), connections.clone())),
    };
    let alice = create_workspace(&workspaces, "alice").await.unwrap();
    let mallory = create_workspace(&workspaces, "mallory").await.unwrap();
    let (a_ws, m_ws) = (
        alice.workspace.id.to_string(),
        mallory.workspace.id.to_string(),
    );
    let (a_key, m_key) = (alice.api_key.expose(), mallory.api_key.expose());
    let body = json!({"kind": "secret_in_body", "name": "alice-leads"});
    let (status, text) = caller
        .call(
            "POST",
            &format!("/workspaces/{a_ws}/connections"),
            Some(a_key),
            Some(&body),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    let (a_con, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    let unknown = hookline_shared::ConnectionId::generate().to_string();
    let mut answers = Vec::new();
    for (method, tail) in [("GET", ""), ("POST", ""), ("GET", "/ID"), ("DELETE", "/ID")] {
        let path =
            |ws: &str, id: &str| format!("/workspaces/{ws}/connections{}", tail.replace("ID", id));
        let (status, text) = caller
            .call(method, &path(&a_ws, &a_con), Some(m_key), Some(&body))
            .await;
        assert_eq!(status, 403, "{method} {tail} on Alice's workspace: {text}");
        answers.push(text);
        if tail.is_empty() {
            continue;
        }
        let (status, text) = caller
            .call(method, &path(&m_ws, &a_con), Some(m_key), None)
            .await;
        let (unknown_status, unknown_text) = caller
            .call(method, &path(&m_ws, &unknown), Some(m_key), None)
            .await;
        assert_eq!((status, unknown_status), (404, 404), "{method}: {text}");
        assert_eq!(
            text, unknown_text,
            "a foreign id reads exactly like an unknown one"
        );
        answers.push(text);
        for shape in [
            "..",
            "con_",
            "con_ZZ",
            "%00",
            "'; DROP TABLE connections; --",
        ] {
            let encoded: String = url::form_urlencoded::byte_serialize(shape.as_bytes()).collect();
            let (status, text) = caller
                .call(method, &path(&m_ws, &encoded), Some(m_key), None)
                .await;
            assert_eq!(status, 404, "{method} {shape}: {text}");
        }
    }
    let (status, listed) = caller
        .call(
            "GET",
            &format!("/workspaces/{m_ws}/connections"),
            Some(m_key),
            None,
        )
        .await;
    assert_eq!((status, listed.as_str()), (200, r#"{"connections":[]}"#));

    // The ingest URL: guessed, missing or Mallory's secrets are refused; nothing is queued.
    let events = MemoryEvents::default();
    let ingest = ingest::connections::router(ingest::connections::Connections::new(
        connections.clone(),
        events.clone(),
        hookline_shared::adapters::memory::MemoryEventTypes::default(),
        std::time::Duration::from_secs(3600),
    ));
    let deliver = |id: String, body: Value| {
        let ingest = ingest.clone();
        async move {
            let req = lambda_http::http::Request::post(format!(
                "/api/v2/analytics/webhook/receive/connections/{id}"
            ))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
            let response = answer(&ingest, req).await;
            (
                response.status().as_u16(),
                String::from_utf8_lossy(response.body()).into_owned(),
            )
        }
    };
    let envelope = |secret: &str| json!({"event": "lead.create", "secret": secret, "payload": {}});
    for wrong in [
        json!({"event": "lead.create", "payload": {}}),
        envelope(""),
        envelope("wh_a"),
        envelope(&secret[..secret.len() - 1]),
    ] {
        let (status, text) = deliver(a_con.clone(), wrong).await;
        assert_eq!(status, 401, "{text}");
        answers.push(text);
    }
    let (status, text) = deliver(unknown.clone(), envelope(&secret)).await;
    assert_eq!(status, 404, "{text}");
    let (status, text) = deliver("con_..%2F..".into(), envelope(&secret)).await;
    assert_eq!(status, 404, "{text}");
    assert_eq!(events.outbox().depth(), 0, "nothing refused was queued");
    for text in &answers {
        assert!(
            !text.contains(&secret),
            "an answer leaked Alice's secret: {text}"
        );
    }
    let (status, mine) = deliver(a_con.clone(), envelope(&secret)).await;
    assert_eq!(status, 200, "{mine}");
}

both_backends!(hostile_connections(workspaces, connections));

/// Replay and recover across workspaces: another workspace's log or subscription id reads
/// exactly like an unknown or malformed one, and a foreign key is refused before any lookup.
async fn hostile_redelivery<W, S, T, L, D, Q>(
    workspaces: W,
    subscriptions: S,
    event_types: T,
    logs: L,
    deliveries: D,
    queue: Q,
) where
    W: WorkspaceStore + Clone + 'static,
    S: SubscriptionStore + Clone + 'static,
    T: EventTypeStore + 'static,
    L: LogStore + Clone + 'static,
    D: DeliveryStore + Clone + 'static,
    Q: Queue + Clone + 'static,
{
    use hookline_shared::delivery::{Delivery, DeliveryState};
    use subscriptions::redelivery::{self, Redelivery};

    let notify = notify_app(
        workspaces.clone(),
        subscriptions.clone(),
        event_types,
        logs.clone(),
        queue.clone(),
    );
    let retention = std::time::Duration::from_secs(30 * 86_400);
    let seeded = deliveries.clone();
    let redeliveries = Redelivery::new(
        workspaces.clone(),
        subscriptions,
        logs.clone(),
        deliveries,
        queue,
        retention,
    );
    let caller = Caller {
        app: notify.merge(redelivery::router(redeliveries)),
    };
    let (alice, alice_sub) = tenant_with_subscription(&caller, &workspaces, "alice").await;
    let a_sub_id = SubscriptionId::parse(alice_sub["id"].as_str().unwrap()).unwrap();
    let mut alice_log = delivery_log(
        &alice.workspace.id,
        &a_sub_id,
        alice_sub["webhook_url"].as_str().unwrap(),
    );
    alice_log.id = uuid::Uuid::now_v7().simple().to_string();
    logs.append_log(&alice_log).await.unwrap();
    let now = chrono::Utc::now();
    let gave_up = Delivery {
        id: alice_log.delivery_id.clone(),
        workspace_id: alice.workspace.id.clone(),
        event_id: alice_log.event_id.clone(),
        event_dedup_id: "d".into(),
        subscription_id: a_sub_id.clone(),
        event_type: "emails.sent".into(),
        state: DeliveryState::GaveUp,
        attempts: 8,
        completed: 8,
        created_at: now,
        updated_at: now,
        batch: None,
        is_batch: false,
    };
    seeded.create_delivery(&gave_up).await.unwrap();
    let (mallory, _) = tenant_with_subscription(&caller, &workspaces, "mallory").await;
    let (a_ws, m_ws, m_key) = (
        alice.workspace.id.to_string(),
        mallory.workspace.id.to_string(),
        mallory.api_key.expose(),
    );
    let (a_log, a_sub) = (alice_log.id.as_str(), a_sub_id.as_str());
    let window = json!({"since": (now - chrono::Duration::hours(1)).to_rfc3339()});
    let replay = |ws: &str, log: &str| format!("/workspaces/{ws}/logs/{log}/replay");
    let recover = |ws: &str, sub: &str| format!("/workspaces/{ws}/subscription/{sub}/recover");

    // A foreign key on Alice's paths: refused before anything is looked up.
    for path in [replay(&a_ws, a_log), recover(&a_ws, a_sub)] {
        let (status, text) = caller.call("POST", &path, Some(m_key), Some(&window)).await;
        assert_eq!(status, 403, "{path}: {text}");
    }
    // On her own path, Alice's ids read exactly like unknown and malformed ones.
    let unknown_log = uuid::Uuid::now_v7().simple().to_string();
    let (status, unknown) = caller
        .call("POST", &replay(&m_ws, &unknown_log), Some(m_key), None)
        .await;
    assert_eq!(status, 404, "{unknown}");
    for log in [a_log, "..", "0", "log-x", &"f".repeat(33), "%00"] {
        let answer = caller
            .call("POST", &replay(&m_ws, log), Some(m_key), None)
            .await;
        assert_eq!(answer, (404, unknown.clone()), "replay of {log:?}");
    }
    let unknown_sub = SubscriptionId::generate().to_string();
    let (status, not_found) = caller
        .call(
            "POST",
            &recover(&m_ws, &unknown_sub),
            Some(m_key),
            Some(&window),
        )
        .await;
    assert_eq!(status, 404, "{not_found}");
    for sub in [a_sub, "sub_", "..", "%00"] {
        let answer = caller
            .call("POST", &recover(&m_ws, sub), Some(m_key), Some(&window))
            .await;
        assert_eq!(answer, (404, not_found.clone()), "recover of {sub:?}");
    }
    // Alice herself replays her log: it was found, and only for her.
    let alice_key = alice.api_key.expose();
    let (status, text) = caller
        .call("POST", &replay(&a_ws, a_log), Some(alice_key), None)
        .await;
    assert_eq!(status, 202, "{text}");
    assert!(!text.contains("alice.example.com"), "{text}");
}

both_backends!(hostile_redelivery(
    workspaces,
    subscriptions,
    event_types,
    logs,
    deliveries,
    queue
));

/// Mallory asks for Alice's export job by id: exactly the answer an unknown id gets, and
/// nothing of the job (its state, its rows, its link) shows.
async fn hostile_export_jobs<W, J>(workspaces: W, jobs: J)
where
    W: WorkspaceStore + Clone + 'static,
    J: hookline_shared::export::ExportJobStore + 'static,
{
    let queue = hookline_shared::adapters::memory::MemoryQueue::default();
    let caller = Caller {
        app: subscriptions::export::router(subscriptions::ExportsApi::new(
            workspaces.clone(),
            jobs,
            queue,
        )),
    };
    let alice = create_workspace(&workspaces, "alice").await.unwrap();
    let mallory = create_workspace(&workspaces, "mallory").await.unwrap();
    let (a_ws, m_ws) = (
        alice.workspace.id.to_string(),
        mallory.workspace.id.to_string(),
    );
    let (status, queued) = caller
        .call(
            "POST",
            &format!("/workspaces/{a_ws}/logs/export"),
            Some(alice.api_key.expose()),
            Some(&json!({"email": "alice@example.com"})),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    let job: Value = serde_json::from_str(&queued).unwrap();
    let job = job["job_id"].as_str().unwrap();
    let unknown = hookline_shared::ExportJobId::generate().to_string();
    let m_key = Some(mallory.api_key.expose());
    let (status, foreign) = caller
        .call(
            "GET",
            &format!("/workspaces/{m_ws}/logs/export/{job}"),
            m_key,
            None,
        )
        .await;
    let (unknown_status, unknown_text) = caller
        .call(
            "GET",
            &format!("/workspaces/{m_ws}/logs/export/{unknown}"),
            m_key,
            None,
        )
        .await;
    assert_eq!((status, unknown_status), (404, 404), "{foreign}");
    assert_eq!(
        foreign, unknown_text,
        "a foreign job reads exactly like an unknown one"
    );
    assert!(!foreign.contains("alice") && !foreign.contains(job));
    // Her key on Alice's path is refused before any lookup.
    let (status, _) = caller
        .call(
            "GET",
            &format!("/workspaces/{a_ws}/logs/export/{job}"),
            m_key,
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Alice's running export does not hold Mallory's workspace.
    let (status, text) = caller
        .call(
            "POST",
            &format!("/workspaces/{m_ws}/logs/export"),
            m_key,
            Some(&json!({"email": "mallory@example.com"})),
        )
        .await;
    assert_eq!(status, 202, "{text}");
}

both_backends!(hostile_export_jobs(workspaces, exports));
