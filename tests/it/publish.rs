//! The publish API in local mode: a workspace's own events reach subscribers signed and shaped
//! like ingested ones, once per idempotency key, and not before their `deliver_at`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::delivery::{serving_with_receiver, subscribe};
use crate::ingest_api::seed_email;
use crate::local_mode::client;
use crate::notify_api::Api;
use crate::receiver::Behavior;
use crate::signature_verifiers::{both_verify, Verdict};

/// POSTs `body` to the workspace's events, with an `Idempotency-Key` header if given.
async fn publish(api: &Api<'_>, body: &Value, header_key: Option<&str>) -> (u16, Value) {
    let serving = api.serving;
    let url = format!(
        "{}/notify/api/v1/workspaces/{}/events",
        serving.base, serving.workspace_id
    );
    let mut request = client()
        .post(url)
        .header("X-API-KEY", &serving.api_key)
        .json(body);
    if let Some(key) = header_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn conversation_sample() -> Value {
    hookline_shared::catalog::find("conversation.new")
        .unwrap()
        .sample
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_conversation_reaches_its_subscriber_once_per_idempotency_key() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("conversations", Behavior::Ok);
    let subscription = subscribe(&api, &url, &["conversation.new"]).await;

    let body = json!({"event_type": "conversation.new", "data": conversation_sample(),
        "affect": "change", "source": {"id": "crm-42", "type": "CRM", "identifier": "acme-crm"},
        "idempotency_key": "conv-789-created"});
    let (status, first) = publish(&api, &body, None).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["event_type"], "conversation.new");
    let got = receiver
        .wait_for("conversations", 1, Duration::from_secs(5))
        .await;
    assert_eq!(got.len(), 1, "delivered");
    let delivered: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(delivered["event_type"], "conversation.new");
    assert_eq!(delivered["affect"], "change");
    assert_eq!(delivered["data"], conversation_sample());
    assert_eq!(
        delivered["source"],
        json!({"id": "crm-42", "type": "CRM", "identifier": "acme-crm"})
    );
    assert_eq!(got[0].headers["webhook-id"], delivered["id"]);
    let secret = subscription["secret"].as_str().unwrap();
    assert_eq!(
        both_verify(secret, &got[0].body, &got[0]),
        [Verdict::Verified, Verdict::Verified]
    );

    // The same key again, in the body or the header: the original, nothing new sent.
    let (status, again) = publish(&api, &body, None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event_id"], first["event_id"]);
    let mut keyless = body.clone();
    keyless.as_object_mut().unwrap().remove("idempotency_key");
    let (status, by_header) = publish(&api, &keyless, Some("conv-789-created")).await;
    assert_eq!((status, &by_header["event_id"]), (200, &first["event_id"]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.received("conversations").len(), 1, "one POST");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_that_breaks_its_type_is_refused_naming_each_fault() {
    let (_receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let mut data = conversation_sample();
    data.as_object_mut().unwrap().remove("conversation_id");
    data["channel"] = json!(7);
    let (status, refused) = publish(
        &api,
        &json!({"event_type": "conversation.new", "data": data}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let faults = refused["fieldErrors"].as_object().unwrap();
    assert!(faults.contains_key("data.conversation_id"), "{refused}");
    assert!(faults.contains_key("data.channel"), "{refused}");

    let (status, unknown) = publish(
        &api,
        &json!({"event_type": "nobody.knows", "data": {}}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(unknown["fieldErrors"]["event_type"][0]
        .as_str()
        .unwrap()
        .contains("Unknown event type"));

    let ahead = (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339();
    let (status, too_far) = publish(
        &api,
        &json!({"event_type": "conversation.new", "data": conversation_sample(), "deliver_at": ahead}),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(too_far["fieldErrors"]["deliver_at"].is_array(), "{too_far}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generic_type_published_is_judged_and_delivered_as_if_ingested() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("emails", Behavior::Ok);
    subscribe(&api, &url, &["emails.sent"]).await;
    let mut email = seed_email();
    email.as_object_mut().unwrap().remove("eventType");
    let (status, published) = publish(
        &api,
        &json!({"event_type": "emails.sent", "data": email}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{published}");
    let got = receiver.wait_for("emails", 1, Duration::from_secs(5)).await;
    let delivered: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(delivered["data"]["eventType"], "sent");
    assert_eq!(delivered["data"]["subject"], seed_email()["subject"]);

    let mut broken = seed_email();
    broken["to"] = json!([]);
    let (status, refused) = publish(
        &api,
        &json!({"event_type": "emails.sent", "data": broken}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["fieldErrors"]["data.to"].is_array(), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_event_waits_for_its_deliver_at() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("later", Behavior::Ok);
    subscribe(&api, &url, &["conversation.new"]).await;
    let published_at = Instant::now();
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let (status, answer) = publish(
        &api,
        &json!({"event_type": "conversation.new", "data": conversation_sample(),
            "deliver_at": at.to_rfc3339()}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let got = receiver.wait_for("later", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let waited = got[0].at - published_at;
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(6),
        "delivered {waited:?} after publishing for 3 s ahead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_workspace_can_neither_publish_here_nor_share_an_idempotency_key() {
    let (receiver, dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let url = receiver.endpoint("alice", Behavior::Ok);
    subscribe(&api, &url, &["conversation.new"]).await;
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["workspace", "create", "--name", "mallory", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let mallory: Value = serde_json::from_slice(&created.stdout).unwrap();
    let mallory_key = mallory["api_key"].as_str().unwrap();
    let body = json!({"event_type": "conversation.new", "data": conversation_sample(),
        "idempotency_key": "shared-key"});
    let post = |workspace: &str| {
        client()
            .post(format!(
                "{}/notify/api/v1/workspaces/{workspace}/events",
                serving.base
            ))
            .header("X-API-KEY", mallory_key)
            .json(&body)
            .send()
    };

    let into_alice = post(&serving.workspace_id).await.unwrap();
    assert_eq!(
        into_alice.status(),
        403,
        "a key works on its own workspace only"
    );
    let (status, alice_first) = publish(&api, &body, None).await;
    assert_eq!(
        status, 202,
        "nothing of mallory's took alice's key: {alice_first}"
    );
    let own = post(mallory["workspace_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(own.status(), 202, "keys are scoped per workspace");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.received("alice").len(),
        1,
        "only alice's own event"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_type_refuses_a_publish_that_breaks_its_schema_and_delivers_one_that_matches() {
    let (receiver, dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let schema = json!({"type": "object", "required": ["invoice_id", "amount"],
        "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0}}});
    let (status, created) = api
        .send(
            "POST",
            "/workspaces/{ws}/event_types",
            Some(
                json!({"event_type": "billing.invoice.paid", "description": "An invoice was paid",
                "schema": schema}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let url = receiver.endpoint("billing", Behavior::Ok);
    subscribe(&api, &url, &["billing.invoice.paid"]).await;

    let (status, refused) = publish(
        &api,
        &json!({"event_type": "billing.invoice.paid", "data": {"amount": -5}}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let faults = refused["fieldErrors"].as_object().unwrap();
    assert!(faults.contains_key("data.invoice_id"), "{refused}");
    assert!(faults.contains_key("data.amount"), "{refused}");

    let paid = json!({"invoice_id": "inv-1", "amount": 120.5});
    let (status, published) = publish(
        &api,
        &json!({"event_type": "billing.invoice.paid", "data": paid}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{published}");
    let got = receiver
        .wait_for("billing", 1, Duration::from_secs(5))
        .await;
    assert_eq!(got.len(), 1);
    let delivered: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(delivered["event_type"], "billing.invoice.paid");
    assert_eq!(delivered["data"], paid);

    // Another workspace has no such type: it can neither publish it nor see it.
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["workspace", "create", "--name", "other", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let other: Value = serde_json::from_slice(&created.stdout).unwrap();
    let answer = client()
        .post(format!(
            "{}/notify/api/v1/workspaces/{}/events",
            serving.base,
            other["workspace_id"].as_str().unwrap()
        ))
        .header("X-API-KEY", other["api_key"].as_str().unwrap())
        .json(&json!({"event_type": "billing.invoice.paid", "data": paid}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert!(body["fieldErrors"]["event_type"].is_array(), "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("billing").len(), 1);
}
