//! Custom event types through the notify router: defining, listing, reading and deleting them,
//! the catalog listing them beside the built-ins, subscriptions and test sends naming them.

use axum::body::Body;
use axum::Router;
use hookline::admin::{create_workspace, CreatedWorkspace};
use hookline_shared::adapters::memory::{
    MemoryEventTypes, MemoryLogs, MemoryQueue, MemorySubscriptions, MemoryWorkspaces,
};
use hookline_shared::{
    EventTypeStore, LogStore, Queue, SubscriptionStore, WorkspaceStore,
    MAX_EVENT_TYPES_PER_WORKSPACE,
};
use lambda_http::http::Request;
use serde_json::{json, Value};
use subscriptions::{router, Notify};

use crate::backends::both_backends;
use crate::ingest_api::answer;
use crate::notify_api::notify_app;
use crate::receiver::{Behavior, Receiver};
use crate::support::loopback_sender;

/// A workspace's key on a notify router; `{ws}` in a path is its workspace.
pub(crate) struct Tenant<'a> {
    pub app: &'a Router,
    pub created: CreatedWorkspace,
}

impl Tenant<'_> {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = path.replace("{ws}", self.created.workspace.id.as_str());
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/notify/api/v1{path}"))
            .header("x-api-key", self.created.api_key.expose());
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let response = answer(self.app, builder.body(body).unwrap()).await;
        let value = match response.body().is_empty() {
            true => Value::Null,
            false => serde_json::from_slice(response.body()).expect("answers are JSON"),
        };
        (response.status().as_u16(), value)
    }
}

pub(crate) fn invoice_paid() -> Value {
    json!({"event_type": "invoice.paid", "description": "An invoice was paid",
        "schema": {"type": "object", "required": ["invoice_id", "amount"],
            "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0},
                "currency": {"enum": ["EUR", "USD"]}}},
        "sample": {"invoice_id": "inv_1", "amount": 12.5, "currency": "EUR"}})
}

async fn custom_types_are_defined_listed_read_and_deleted<W, S, T, D, Q>(
    workspaces: W,
    subscriptions: S,
    event_types: T,
    logs: D,
    resumes: Q,
) where
    W: WorkspaceStore + 'static,
    S: SubscriptionStore + 'static,
    T: EventTypeStore + 'static,
    D: LogStore + 'static,
    Q: Queue + 'static,
{
    let created = create_workspace(&workspaces, "types").await.unwrap();
    let app = notify_app(workspaces, subscriptions, event_types, logs, resumes);
    let tenant = Tenant { app: &app, created };

    let (status, defined) = tenant
        .call("POST", "/workspaces/{ws}/event_types", Some(invoice_paid()))
        .await;
    assert_eq!(status, 201, "{defined}");
    assert_eq!(defined["event_type"], "invoice.paid");
    assert_eq!(defined["custom"], true);
    assert_eq!(defined["schema"], invoice_paid()["schema"]);
    assert_eq!(defined["sample"], invoice_paid()["sample"]);
    assert!(defined["created_at"].is_string());
    let bare = json!({"event_type": "ticket.closed", "description": "A support ticket was closed"});
    let (status, _) = tenant
        .call("POST", "/workspaces/{ws}/event_types", Some(bare))
        .await;
    assert_eq!(status, 201);

    let (status, own) = tenant
        .call("GET", "/workspaces/{ws}/event_types", None)
        .await;
    assert_eq!(status, 200);
    let own = own["event_types"].as_array().unwrap();
    let names: Vec<&str> = own
        .iter()
        .map(|t| t["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["invoice.paid", "ticket.closed"]);
    assert_eq!(own[0]["has_schema"], true);
    assert_eq!(own[1]["has_sample"], false);
    assert!(
        own[0].get("schema").is_none(),
        "the list leaves schemas out"
    );

    let (status, one) = tenant
        .call("GET", "/workspaces/{ws}/event_types/invoice.paid", None)
        .await;
    assert_eq!((status, &one), (200, &defined));

    // The catalog with a key: the 31 built-ins as before, then the workspace's own.
    let (status, catalog) = tenant.call("GET", "/event_types", None).await;
    assert_eq!(status, 200);
    let catalog = catalog.as_array().unwrap();
    assert_eq!(catalog.len(), 33);
    assert_eq!(
        catalog[0],
        json!({"event_type": "emails.sent", "description": "An email was sent (processed for analytics)."})
    );
    assert_eq!(
        catalog[31],
        json!({"event_type": "invoice.paid", "description": "An invoice was paid", "custom": true})
    );

    // Subscriptions may name the workspace's own types; unknown ones are still refused.
    let subscribe = json!({"webhook_url": "https://hooks.example.com/in",
        "event_types": ["invoice.paid", "emails.sent"], "is_enabled": true});
    let (status, subscription) = tenant
        .call("POST", "/workspaces/{ws}/subscription", Some(subscribe))
        .await;
    assert_eq!(status, 201, "{subscription}");
    let path = format!(
        "/workspaces/{{ws}}/subscription/{}",
        subscription["id"].as_str().unwrap()
    );
    let patch =
        json!({"updated_by": "ana", "event_types": ["ticket.closed", "invoice.void", "fax.sent"]});
    let (status, refused) = tenant.call("PATCH", &path, Some(patch)).await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["fieldErrors"]["event_types"],
        json!(["Unknown event types: invoice.void, fax.sent; see GET /notify/api/v1/event_types"])
    );
    let patch = json!({"updated_by": "ana", "event_types": ["ticket.closed"]});
    let (status, patched) = tenant.call("PATCH", &path, Some(patch)).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["event_types"], json!(["ticket.closed"]));

    // A name is taken once.
    let (status, taken) = tenant
        .call("POST", "/workspaces/{ws}/event_types", Some(invoice_paid()))
        .await;
    assert_eq!((status, taken["code"].as_str()), (409, Some("conflict")));

    let (status, gone) = tenant
        .call("DELETE", "/workspaces/{ws}/event_types/invoice.paid", None)
        .await;
    assert_eq!((status, gone), (204, Value::Null));
    for method in ["GET", "DELETE"] {
        let (status, missing) = tenant
            .call(method, "/workspaces/{ws}/event_types/invoice.paid", None)
            .await;
        assert_eq!(status, 404, "{method}: {missing}");
        assert_eq!(missing["code"], "not_found");
    }
    let (_, catalog) = tenant.call("GET", "/event_types", None).await;
    assert_eq!(catalog.as_array().unwrap().len(), 32);
}

both_backends!(custom_types_are_defined_listed_read_and_deleted(
    workspaces,
    subscriptions,
    event_types,
    logs,
    queue
));

/// The notify router on in-memory ports (plain-http webhooks allowed when `allow_http`), and
/// one workspace's key.
async fn memory_tenant(allow_http: bool) -> (Router, CreatedWorkspace) {
    let workspaces = MemoryWorkspaces::default();
    let created = create_workspace(&workspaces, "memory").await.unwrap();
    let app = router(Notify::new(
        workspaces,
        MemorySubscriptions::default(),
        MemoryEventTypes::default(),
        MemoryLogs::default(),
        MemoryQueue::default(),
        loopback_sender(),
        allow_http,
    ));
    (app, created)
}

#[tokio::test]
async fn invalid_types_are_refused_with_every_fault_named() {
    let (app, created) = memory_tenant(false).await;
    let tenant = Tenant { app: &app, created };
    let define = |body: Value| {
        let tenant = &tenant;
        async move {
            let (status, answer) = tenant
                .call("POST", "/workspaces/{ws}/event_types", Some(body))
                .await;
            assert_eq!(status, 400, "{answer}");
            assert_eq!(answer["code"], "validation_error");
            answer["fieldErrors"].clone()
        }
    };

    let faults = define(json!({"event_type": 7, "color": "blue", "schema": "string"})).await;
    for field in ["event_type", "description", "color", "schema"] {
        assert!(faults.get(field).is_some(), "{field} in {faults}");
    }
    for (name, says) in [
        ("Invoice.Paid", "lowercase"),
        ("invoice", "at least one dot"),
        ("emails.sent", "built-in"),
        ("call.ended", "built-in"),
    ] {
        let faults = define(json!({"event_type": name, "description": "d"})).await;
        let message = faults["event_type"][0].as_str().unwrap();
        assert!(message.contains(says), "{name}: {message}");
    }
    let too_long = format!("a.{}", "b".repeat(127));
    let faults = define(json!({"event_type": too_long, "description": "d"})).await;
    assert_eq!(
        faults["event_type"],
        json!(["Must be at most 128 characters"])
    );

    let faults = define(json!({"event_type": "invoice.paid", "description": "d",
        "schema": {"type": "object", "properties": {"amount": {"type": "money"}}}}))
    .await;
    let (path, messages) = faults.as_object().unwrap().iter().next().unwrap();
    assert!(path.starts_with("schema.properties.amount"), "{faults}");
    assert!(messages[0].as_str().unwrap().contains("money"), "{faults}");

    let faults = define(json!({"event_type": "invoice.paid", "description": "d",
        "schema": {"$ref": "http://169.254.169.254/latest/meta-data/"}}))
    .await;
    let message = faults["schema.$ref"][0].as_str().unwrap_or_default();
    assert!(message.contains("outside the schema"), "{faults}");

    let faults = define(json!({"event_type": "invoice.paid", "description": "d",
        "schema": {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}}))
    .await;
    assert!(faults.to_string().contains("loops back"), "{faults}");

    let mut bad_sample = invoice_paid();
    bad_sample["sample"] = json!({"amount": -1, "currency": "GBP"});
    let faults = define(bad_sample).await;
    let paths: Vec<&String> = faults.as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        ["sample.amount", "sample.currency", "sample.invoice_id"],
        "{faults}"
    );
    let (_, catalog) = tenant.call("GET", "/event_types", None).await;
    assert_eq!(catalog.as_array().unwrap().len(), 31, "nothing was defined");
}

/// As before custom types: the catalog answers callers with a key only.
#[tokio::test]
async fn the_catalog_still_needs_a_key() {
    let (app, _) = memory_tenant(false).await;
    let req = Request::get("/notify/api/v1/event_types")
        .body(Body::empty())
        .unwrap();
    let response = answer(&app, req).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_workspace_holds_at_most_200_custom_types() {
    let (app, created) = memory_tenant(false).await;
    let tenant = Tenant { app: &app, created };
    for i in 0..MAX_EVENT_TYPES_PER_WORKSPACE {
        let body = json!({"event_type": format!("bulk.type_{i}"), "description": "d"});
        let (status, answer) = tenant
            .call("POST", "/workspaces/{ws}/event_types", Some(body))
            .await;
        assert_eq!(status, 201, "{i}: {answer}");
    }
    let body = json!({"event_type": "bulk.one_too_many", "description": "d"});
    let (status, refused) = tenant
        .call("POST", "/workspaces/{ws}/event_types", Some(body.clone()))
        .await;
    assert_eq!(status, 409);
    assert_eq!(refused["code"], "limit_exceeded");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("200 custom event types"), "{message}");
    let (status, _) = tenant
        .call("DELETE", "/workspaces/{ws}/event_types/bulk.type_7", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = tenant
        .call("POST", "/workspaces/{ws}/event_types", Some(body))
        .await;
    assert_eq!(status, 201, "a delete made room");
    // A subscription may name every type the workspace holds, and built-ins beside them.
    let mut every: Vec<String> = (0..MAX_EVENT_TYPES_PER_WORKSPACE)
        .filter(|i| *i != 7)
        .map(|i| format!("bulk.type_{i}"))
        .collect();
    every.extend(["bulk.one_too_many".into(), "emails.sent".into()]);
    let subscribe = json!({"webhook_url": "https://hooks.example.com/in",
        "event_types": every, "is_enabled": true});
    let (status, answer) = tenant
        .call("POST", "/workspaces/{ws}/subscription", Some(subscribe))
        .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn test_send_delivers_the_sample_or_an_instance_generated_from_the_schema() {
    let receiver = Receiver::start().await;
    let url = receiver.endpoint("custom", Behavior::Ok);
    let (app, created) = memory_tenant(true).await;
    let tenant = Tenant { app: &app, created };
    let generated = json!({"event_type": "order.shipped", "description": "An order left the warehouse",
        "schema": {"type": "object", "required": ["order_id", "carrier", "parcels", "shipped_at"],
            "properties": {"order_id": {"type": "string", "minLength": 4},
                "carrier": {"enum": ["dhl", "ups"]}, "parcels": {"type": "integer", "minimum": 1},
                "shipped_at": {"type": "string", "format": "date-time"}, "note": {"type": "string"}}}});
    let needs_sample = json!({"event_type": "order.coded", "description": "An order got a code",
        "schema": {"type": "object", "required": ["code"],
            "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{6}$"}}}});
    for body in [invoice_paid(), generated, needs_sample] {
        let (status, answer) = tenant
            .call("POST", "/workspaces/{ws}/event_types", Some(body))
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let send = |event_type: &str| {
        let body = json!({"event_type": event_type, "webhook_url": url});
        let tenant = &tenant;
        async move {
            tenant
                .call("POST", "/workspaces/{ws}/test", Some(body))
                .await
        }
    };

    let (status, outcome) = send("invoice.paid").await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["success"], true, "{outcome}");
    assert_eq!(outcome["payload"]["event_type"], "invoice.paid");
    assert_eq!(outcome["payload"]["data"], invoice_paid()["sample"]);
    let delivered = receiver.received("custom");
    assert_eq!(delivered.len(), 1);
    let body: Value = serde_json::from_str(&delivered[0].body).unwrap();
    assert_eq!(body["data"], invoice_paid()["sample"]);

    let (status, outcome) = send("order.shipped").await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(
        outcome["payload"]["data"],
        json!({"order_id": "xxxx", "carrier": "dhl", "parcels": 1, "shipped_at": "2026-01-01T00:00:00Z"})
    );

    let (status, refused) = send("order.coded").await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["fieldErrors"]["event_type"][0].as_str().unwrap();
    assert!(message.contains("needs a sample"), "{message}");
    let (status, refused) = send("order.unknown").await;
    assert_eq!(status, 400);
    let message = refused["fieldErrors"]["event_type"][0].as_str().unwrap();
    assert!(message.starts_with("Unknown event type"), "{message}");
    assert_eq!(
        receiver.received("custom").len(),
        2,
        "refused sends send nothing"
    );
}
