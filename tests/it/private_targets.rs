//! A webhook URL delivery would refuse to connect to is refused when it is given: on create, on
//! a PATCH of `webhook_url` and on test-send, whichever notation spells the address, through
//! the notify router as a stack serves it.

use std::net::IpAddr;

use axum::body::Body;
use axum::Router;
use hookline::admin::{create_workspace, CreatedWorkspace};
use hookline_shared::webhook::{Lookup, SenderConfig, WebhookSender};
use lambda_http::http::Request;
use serde_json::{json, Value};
use subscriptions::{router, Notify};

use crate::ingest_api::answer;
use crate::support::MemoryStack;

/// The rule every refusal names, first.
const RULE: &str = "Delivery refuses private, loopback, link-local and metadata addresses";

/// Each URL a caller might give and the address fact its refusal states.
const REFUSED: [(&str, &str); 13] = [
    ("http://127.1/hook", ": 127.0.0.1 is a loopback address"),
    (
        "http://[::ffff:127.0.0.1]/hook",
        ": ::ffff:127.0.0.1 (IPv4 127.0.0.1) is a loopback address",
    ),
    (
        "http://169.254.169.254/latest/meta-data/",
        ": 169.254.169.254 is a cloud metadata address",
    ),
    (
        "http://localhost:8080/hook",
        ": localhost is a loopback host name",
    ),
    (
        "https://api.localhost/hook",
        ": api.localhost is a loopback host name",
    ),
    (
        "http://0x7f000001/hook",
        ": 127.0.0.1 is a loopback address",
    ),
    (
        "http://2130706433/hook",
        ": 127.0.0.1 is a loopback address",
    ),
    (
        "http://0177.0.0.1/hook",
        ": 127.0.0.1 is a loopback address",
    ),
    ("http://[::1]/hook", ": ::1 is a loopback address"),
    (
        "http://[fe80::1]/hook",
        ": fe80::1 is a link-local address (fe80::/10)",
    ),
    (
        "http://10.0.0.1/hook",
        ": 10.0.0.1 is a private address (RFC 1918)",
    ),
    (
        "https://metadata.google.internal/computeMetadata/v1/",
        ": metadata.google.internal resolves only to such addresses \
         (169.254.169.254 is a cloud metadata address)",
    ),
    (
        "https://intranet.example.com/hook",
        ": intranet.example.com resolves only to such addresses \
         (10.0.0.1 is a private address (RFC 1918))",
    ),
];

/// The notify router with the private-targets switch as given, plain http allowed (as
/// `AllowHttpWebhooks=true` does) so every spelling reaches the address rule, and one tenant.
/// Names resolve from a fixed table, never DNS: `metadata.google.internal` and
/// `intranet.example.com` lead only to refused addresses; no other name resolves.
struct Deployed {
    app: Router,
    tenant: CreatedWorkspace,
}

impl Deployed {
    async fn start(allow_private: bool) -> Self {
        let stack = MemoryStack::create(5);
        let tenant = create_workspace(&stack.workspaces(), "targets")
            .await
            .unwrap();
        let ip = |raw: &str| raw.parse::<IpAddr>().unwrap();
        let lookup = Lookup::hosts([
            ("metadata.google.internal", vec![ip("169.254.169.254")]),
            ("intranet.example.com", vec![ip("10.0.0.1"), ip("fd12::1")]),
        ]);
        let config = SenderConfig::production_allowing_private(allow_private);
        let notify = Notify::new(
            stack.workspaces(),
            stack.subscriptions(),
            stack.event_types(),
            stack.logs(),
            stack.queue(),
            WebhookSender::with_lookup(config, lookup),
            true,
        );
        Self {
            app: router(notify),
            tenant,
        }
    }

    /// `method` on `path` (under the tenant's workspace) as the tenant: status and JSON body.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let ws = &self.tenant.workspace.id;
        let req = Request::builder()
            .method(method)
            .uri(format!("/notify/api/v1/workspaces/{ws}{path}"))
            .header("x-api-key", self.tenant.api_key.expose())
            .header("content-type", "application/json")
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        let response = answer(&self.app, req).await;
        let text = response.body();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(text).unwrap()
        };
        (response.status().as_u16(), value)
    }

    async fn create(&self, url: &str) -> (u16, Value) {
        let body = json!({"webhook_url": url, "event_types": ["emails.sent"], "is_enabled": true});
        self.call("POST", "/subscription", Some(body)).await
    }

    async fn patch(&self, id: &str, url: &str) -> (u16, Value) {
        let body = json!({"webhook_url": url, "updated_by": "ops"});
        self.call("PATCH", &format!("/subscription/{id}"), Some(body))
            .await
    }

    async fn test_send(&self, url: &str) -> (u16, Value) {
        let body = json!({"event_type": "conversation.new", "webhook_url": url});
        self.call("POST", "/test", Some(body)).await
    }
}

/// A 400 whose only fault is `webhook_url`, naming the rule and then `fact`.
fn assert_refused(what: &str, (status, body): (u16, Value), fact: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["code"], "validation_error", "{what}: {body}");
    let expected = format!("{RULE}{fact}");
    assert_eq!(
        body["fieldErrors"],
        json!({ "webhook_url": [expected] }),
        "{what}"
    );
}

#[tokio::test]
async fn with_private_targets_refused_every_spelling_is_a_400_on_create_patch_and_test_send() {
    let deployed = Deployed::start(false).await;
    // A name that does not resolve now is left to the guard at connect time; a public address
    // passes.
    let (status, public) = deployed.create("https://hooks.example.com/hook").await;
    assert_eq!(status, 201, "{public}");
    let (status, literal) = deployed.create("http://93.184.215.14/hook").await;
    assert_eq!(status, 201, "{literal}");
    let id = public["id"].as_str().unwrap();

    for (url, fact) in REFUSED {
        assert_refused(&format!("create {url}"), deployed.create(url).await, fact);
        assert_refused(&format!("patch {url}"), deployed.patch(id, url).await, fact);
        assert_refused(
            &format!("test-send {url}"),
            deployed.test_send(url).await,
            fact,
        );
    }

    let (_, listed) = deployed.call("GET", "/subscription", None).await;
    let urls: Vec<&str> = listed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["webhook_url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 2, "nothing refused was stored: {listed}");
    assert!(urls.contains(&"https://hooks.example.com/hook"), "{urls:?}");
}

#[tokio::test]
async fn with_private_targets_allowed_every_spelling_but_a_metadata_address_is_accepted() {
    let deployed = Deployed::start(true).await;
    let (status, first) = deployed.create("https://hooks.example.com/hook").await;
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().unwrap();
    // Credentials live at the metadata address: refused whatever the switch says. A name is
    // not looked up where private targets are allowed; the connect-time guard refuses it.
    for (url, fact) in REFUSED {
        if fact.starts_with(": 169.254.169.254 is a cloud metadata address") {
            assert_refused(&format!("create {url}"), deployed.create(url).await, fact);
            assert_refused(&format!("patch {url}"), deployed.patch(id, url).await, fact);
            continue;
        }
        let (status, created) = deployed.create(url).await;
        assert_eq!(status, 201, "create {url}: {created}");
        let (status, patched) = deployed.patch(id, url).await;
        assert_eq!(status, 200, "patch {url}: {patched}");
    }
}
