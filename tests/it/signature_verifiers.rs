//! Real deliveries from `WebhookSender` checked by the official Standard Webhooks verifiers.

use std::path::Path;
use std::process::Command;

use hookline_shared::webhook::{AttemptOutcome, SenderConfig, WebhookSender};
use hookline_shared::SigningSecret;

use crate::receiver::{Behavior, Received, Receiver};

/// `scripts/test.sh` installs the PyPI `standardwebhooks` package into this venv.
const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/python");
/// `scripts/test.sh` installs the npm `standardwebhooks` package here.
const NODE_MODULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/.tools/node/node_modules/standardwebhooks"
);

/// Exit status the verifier scripts use for "signature rejected", so a broken script or a
/// missing package (exit 1, traceback) is never mistaken for a correct rejection.
const REJECTED: i32 = 3;

const PYTHON_VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
secret, body, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    Webhook(secret).verify(body, headers)
except WebhookVerificationError as e:
    print(f"rejected: {e}", file=sys.stderr)
    sys.exit(3)
"#;

const NODE_VERIFY: &str = r#"
const [modulePath, secret, body, headers] = process.argv.slice(1);
const { Webhook, WebhookVerificationError } = require(modulePath);
try {
  new Webhook(secret).verify(body, JSON.parse(headers));
} catch (e) {
  if (!(e instanceof WebhookVerificationError)) throw e;
  console.error(`rejected: ${e.message}`);
  process.exit(3);
}
"#;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Verified,
    Rejected,
}

/// Delivers `body` with `WebhookSender` to a local receiver and returns what arrived.
async fn deliver(body: &str, secrets: &[&str]) -> Received {
    let receiver = Receiver::start().await;
    let url = receiver.endpoint("hook", Behavior::Ok);
    // Loopback is a private target, allowed only by the development policy.
    let sender = WebhookSender::new(SenderConfig::local_development());
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    // Verifiers refuse timestamps more than five minutes from their clock.
    let timestamp = chrono::Utc::now().timestamp();
    let attempt = sender.send(&url, &id, timestamp, body, secrets).await;
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");

    let mut received = receiver.received("hook");
    assert_eq!(received.len(), 1);
    let delivery = received.remove(0);
    assert_eq!(delivery.body, body);
    assert_eq!(delivery.headers["webhook-id"], id.as_str());
    assert_eq!(
        delivery.headers["webhook-timestamp"],
        timestamp.to_string().as_str()
    );
    delivery
}

fn python_verify(secret: &str, body: &str, delivery: &Received) -> Verdict {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: scripts/test.sh creates it with the PyPI standardwebhooks package"
    );
    let mut command = Command::new(PYTHON);
    command
        .args(["-c", PYTHON_VERIFY, secret, body])
        .arg(serde_json::Value::Object(delivery.headers.clone()).to_string());
    run("Python standardwebhooks", command)
}

fn node_verify(secret: &str, body: &str, delivery: &Received) -> Verdict {
    assert!(
        Path::new(NODE_MODULE).exists(),
        "{NODE_MODULE} is missing: scripts/test.sh installs the npm standardwebhooks package there"
    );
    let mut command = Command::new("node");
    command
        .args(["-e", NODE_VERIFY, NODE_MODULE, secret, body])
        .arg(serde_json::Value::Object(delivery.headers.clone()).to_string());
    run("npm standardwebhooks", command)
}

fn run(verifier: &str, mut command: Command) -> Verdict {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run the {verifier} verifier: {e}"));
    match output.status.code() {
        Some(0) => Verdict::Verified,
        Some(REJECTED) => Verdict::Rejected,
        _ => panic!(
            "the {verifier} verifier failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

pub(crate) fn both_verify(secret: &str, body: &str, delivery: &Received) -> [Verdict; 2] {
    [
        python_verify(secret, body, delivery),
        node_verify(secret, body, delivery),
    ]
}

/// A delivery body in the envelope's shape, with non-ASCII text so the signed bytes are UTF-8.
fn envelope() -> String {
    serde_json::json!({
        "id": "evt_01J9Z",
        "event_type": "contact.created",
        "affect": "create",
        "version": 1,
        "timestamp": "2026-01-02T03:04:05Z",
        "workspace": { "id": "ws_1", "name": "Café ✓" },
        "source": { "id": "src_1", "type": "crm", "identifier": "a/b?c=d&e" },
        "data": { "name": "Zoë \"quoted\" \\ backslash", "n": 2432232314u64 },
        "subscription_created_by": "user_1",
        "subscription_updated_by": null,
    })
    .to_string()
}

#[tokio::test]
async fn official_verifiers_accept_a_real_delivery_and_reject_tampering() {
    let secret = SigningSecret::generate().value;
    let body = envelope();
    let delivery = deliver(&body, &[&secret]).await;

    assert_eq!(
        both_verify(&secret, &body, &delivery),
        [Verdict::Verified, Verdict::Verified]
    );

    let tampered = body.replace("contact.created", "contact.deleted");
    assert_ne!(tampered, body);
    assert_eq!(
        both_verify(&secret, &tampered, &delivery),
        [Verdict::Rejected, Verdict::Rejected]
    );

    let stranger = SigningSecret::generate().value;
    assert_eq!(
        both_verify(&stranger, &body, &delivery),
        [Verdict::Rejected, Verdict::Rejected]
    );
}

#[tokio::test]
async fn official_verifiers_accept_a_rotated_signature_list() {
    let old = SigningSecret::generate().value;
    let new = SigningSecret::generate().value;
    let body = envelope();
    let delivery = deliver(&body, &[&old, &new]).await;

    let signatures = delivery.headers["webhook-signature"].as_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");

    for secret in [&new, &old] {
        assert_eq!(
            both_verify(secret, &body, &delivery),
            [Verdict::Verified, Verdict::Verified]
        );
    }
    let stranger = SigningSecret::generate().value;
    assert_eq!(
        both_verify(&stranger, &body, &delivery),
        [Verdict::Rejected, Verdict::Rejected]
    );
}
