//! Provider connections in local mode: a Svix sender signed by the official Standard Webhooks
//! library and a seed 003 sender with its secret in the body reach subscribers; replays are
//! duplicates; forged deliveries are 401 and store nothing.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::delivery::{serving_with_receiver, subscribe};
use crate::local_mode::{client, Serving};
use crate::notify_api::Api;
use crate::receiver::Behavior;

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/python");

/// Signs as a Svix sender does, with the PyPI `standardwebhooks` package (Svix's own
/// reference implementation of the scheme): prints the `svix-signature` value.
const PYTHON_SIGN: &str = r#"
import sys
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
secret, msg_id, timestamp, body = sys.argv[1:5]
print(Webhook(secret).sign(msg_id, datetime.fromtimestamp(int(timestamp), tz=timezone.utc), body))
"#;

fn python_sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> String {
    let output = Command::new(PYTHON)
        .args([
            "-c",
            PYTHON_SIGN,
            secret,
            msg_id,
            &timestamp.to_string(),
            body,
        ])
        .output()
        .expect("scripts/test.sh installs the PyPI standardwebhooks package in .tools/venv");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn create_connection(api: &Api<'_>, body: Value) -> Value {
    let (status, created) = api
        .send("POST", "/workspaces/{ws}/connections", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// POSTs `body` to the connection's ingest URL with `headers`.
async fn deliver(
    serving: &Serving,
    connection: &Value,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, Value) {
    let url = format!(
        "{}{}",
        serving.base,
        connection["ingest_url"].as_str().unwrap()
    );
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn svix_headers(id: &str, timestamp: i64, signature: String) -> Vec<(&'static str, String)> {
    vec![
        ("svix-id", id.to_owned()),
        ("svix-timestamp", timestamp.to_string()),
        ("svix-signature", signature),
    ]
}

/// Seed 004's `call.completed` message, with names in place of its placeholders.
fn seed_call_completed() -> String {
    json!({"id": "f58413db-86fb-41b0-ba62-a23721fe7ac4", "type": "call.completed",
        "timestamp": "2025-01-14T04:22:51.548857267",
        "payload": {"call": {
            "analysis": [{"analysisType": "string", "score": 2.5, "summary": "string"}],
            "createdAt": "2025-01-14T04:22:51.548816074",
            "id": "3ba53534-23fa-41d8-ada1-db7385e40276",
            "orgId": "329a670e-94bf-467c-b860-98acb547dd66",
            "prospects": [{"details": {"companyName": "Acme"},
                "id": "a2a6142d-75dc-4b26-9692-497ca7d554e7", "imageUrl": "uri", "name": "Pat Prospect"}],
            "stats": {"duration": 312.5},
            "title": "Discovery call with Acme",
            "transcript": [
                {"createdAt": "2025-01-14T04:22:51.548844471", "prospectId": "a2a6142d",
                 "prospectText": "We need better pipeline reporting.", "speakerName": "Pat Prospect"},
                {"createdAt": "2025-01-14T04:22:53.1", "prospectId": "a2a6142d",
                 "prospectText": "Can it export to our CRM?", "speakerName": "Sam Seller"}],
            "user": {"email": "email", "id": "1bb5caf1-75b6-41d2-bc4a-d144b40482e1", "name": "Sam Seller"},
            "userId": "cf4b22cb-6dd4-4ddb-b739-3f6993c66c56"}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_svix_signed_call_reaches_a_transcript_subscriber_once() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let connection = create_connection(&api, json!({"kind": "svix", "name": "coach"})).await;
    let secret = connection["secret"].as_str().unwrap().to_owned();
    subscribe(
        &api,
        &receiver.endpoint("calls", Behavior::Ok),
        &["calls.transcript"],
    )
    .await;

    let body = seed_call_completed();
    let now = chrono::Utc::now().timestamp();
    let signed = svix_headers(
        "msg_call_1",
        now,
        python_sign(&secret, "msg_call_1", now, &body),
    );
    let (status, first) = deliver(&serving, &connection, &signed, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["connection"]["providerName"], "COACH");
    assert_eq!(first["connection"]["connectionMethod"], "WEBHOOK");
    assert_eq!(first["additionalData"]["eventType"], "calls.transcript");
    assert_eq!(first["additionalData"]["duplicate"], false);

    let got = receiver.wait_for("calls", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "delivered");
    let delivered: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(delivered["event_type"], "calls.transcript");
    assert_eq!(delivered["source"]["type"], "CONNECTION");
    assert_eq!(delivered["source"]["identifier"], "coach");
    assert_eq!(delivered["data"]["title"], "Discovery call with Acme");
    assert_eq!(
        delivered["data"]["transcript"],
        json!([{"speaker": "Pat Prospect", "text": "We need better pipeline reporting."},
            {"speaker": "Sam Seller", "text": "Can it export to our CRM?"}])
    );
    assert_eq!(delivered["data"]["participants"][0]["name"], "Pat Prospect");

    // Svix retries carry the same message id: the original, nothing sent again.
    let (status, again) = deliver(&serving, &connection, &signed, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["additionalData"]["duplicate"], true);
    assert_eq!(
        again["additionalData"]["eventId"],
        first["additionalData"]["eventId"]
    );

    // Signed with another secret: refused, naming the header, and nothing kept: the same
    // message properly signed afterwards is new.
    let other = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let forged = svix_headers(
        "msg_call_2",
        now,
        python_sign(other, "msg_call_2", now, &body),
    );
    let (status, refused) = deliver(&serving, &connection, &forged, &body).await;
    assert_eq!(status, 401, "{refused}");
    assert!(
        refused["errors"]["fieldErrors"]["svix-signature"].is_array(),
        "{refused}"
    );
    assert!(!refused.to_string().contains(&secret));
    let (status, unsigned) = deliver(&serving, &connection, &[], &body).await;
    assert_eq!(status, 401, "{unsigned}");
    let genuine = svix_headers(
        "msg_call_2",
        now,
        python_sign(&secret, "msg_call_2", now, &body),
    );
    let (status, later) = deliver(&serving, &connection, &genuine, &body).await;
    assert_eq!(status, 200, "{later}");
    assert_eq!(
        later["additionalData"]["duplicate"], false,
        "the forgery stored nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seed_lead_with_the_right_secret_reaches_its_namespace_subscriber() {
    let (receiver, _dir, serving) = serving_with_receiver(&[]).await;
    let api = Api { serving: &serving };
    let secret = "wh_a46f35f22d9723a";
    let connection = create_connection(
        &api,
        json!({"kind": "secret_in_body", "name": "Leads", "secret": secret}),
    )
    .await;
    let payload = json!({"id": "e106db1f-aba3-40ba-97a7-507b54757ef8", "email": null,
        "created_at": "2023-04-29T11:13:55.021Z", "first_name": "Jean", "last_name": "remove",
        "is_deleted": false, "id_space": "eb8edc65-129a-4cb6-abbe-6bf8979c0658"});
    let envelope = |secret: &str| {
        json!({"id_space": "eb8edc65-129a-4cb6-abbe-6bf8979c0658", "event": "lead.create",
            "secret": secret, "payload": payload})
        .to_string()
    };

    let (status, refused) =
        deliver(&serving, &connection, &[], &envelope("wh_guessed_secret")).await;
    assert_eq!(status, 401, "{refused}");
    assert!(
        refused["errors"]["fieldErrors"]["secret"].is_array(),
        "{refused}"
    );
    assert!(!refused.to_string().contains("wh_guessed_secret"));

    let (status, accepted) = deliver(&serving, &connection, &[], &envelope(secret)).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["connection"]["providerName"], "LEADS");
    assert_eq!(accepted["additionalData"]["eventType"], "leads.lead.create");
    assert_eq!(
        accepted["additionalData"]["duplicate"], false,
        "the refusal stored nothing"
    );
    // The provider's own type was registered on its way in: listed, and subscribable.
    let (status, own) = api.send("GET", "/workspaces/{ws}/event_types", None).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(
        own["event_types"][0]["event_type"], "leads.lead.create",
        "{own}"
    );
    subscribe(
        &api,
        &receiver.endpoint("leads", Behavior::Ok),
        &["leads.lead.create"],
    )
    .await;
    let payload = json!({"id": "5c2b8f0e-1d2e-4f7a-9b61-3e8d0c4a7b21", "email": "ana@client.io",
        "created_at": "2023-04-29T11:20:01.000Z", "first_name": "Ana", "last_name": "Lima",
        "is_deleted": false, "id_space": "eb8edc65-129a-4cb6-abbe-6bf8979c0658"});
    let envelope = |secret: &str| {
        json!({"id_space": "eb8edc65-129a-4cb6-abbe-6bf8979c0658", "event": "lead.create",
            "secret": secret, "payload": payload})
        .to_string()
    };
    let (status, second) = deliver(&serving, &connection, &[], &envelope(secret)).await;
    assert_eq!(status, 200, "{second}");
    let got = receiver.wait_for("leads", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "delivered");
    let delivered: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(delivered["event_type"], "leads.lead.create");
    assert_eq!(delivered["data"], payload);
    assert!(
        !got[0].body.contains(secret),
        "the provider's secret is never delivered"
    );

    let (status, again) = deliver(&serving, &connection, &[], &envelope(secret)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["additionalData"]["duplicate"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_listed_without_secrets_revealed_one_by_one_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let api = Api { serving: &serving };
    let created = create_connection(&api, json!({"kind": "svix", "name": "coach"})).await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("con_"));
    assert_eq!(
        created["ingest_url"],
        format!("/api/v2/analytics/webhook/receive/connections/{id}")
    );
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let (status, listed) = api.send("GET", "/workspaces/{ws}/connections", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["connections"][0]["id"], created["id"]);
    assert!(listed["connections"][0].get("secret").is_none());
    let path = format!("/workspaces/{{ws}}/connections/{id}");
    let (status, one) = api.send("GET", &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(one, created);
    let (status, faults) = api
        .send(
            "POST",
            "/workspaces/{ws}/connections",
            Some(json!({"kind": "fax", "name": "a b"})),
        )
        .await;
    assert_eq!(status, 400);
    let named: Vec<&String> = faults["fieldErrors"].as_object().unwrap().keys().collect();
    assert_eq!(named, ["kind", "name"]);
    assert_eq!(api.send("DELETE", &path, None).await.0, 204);
    assert_eq!(api.send("GET", &path, None).await.0, 404);
    assert_eq!(api.send("DELETE", &path, None).await.0, 404);
    let (status, gone) = deliver(&serving, &created, &[], "{}").await;
    assert_eq!(
        status, 404,
        "a deleted connection takes no deliveries: {gone}"
    );
}
