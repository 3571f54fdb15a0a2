//! Real deliveries from `WebhookSender` checked by the official Standard Webhooks verifiers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::thread;

use hookline_shared::webhook::{AttemptOutcome, SenderConfig, WebhookSender};
use hookline_shared::SigningSecret;

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

/// A delivery as a receiver saw it on the wire.
pub(crate) struct Delivery {
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: String,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Verified,
    Rejected,
}

/// Delivers `body` with `WebhookSender` to a one-shot local receiver and returns what arrived.
async fn deliver(body: &str, secrets: &[&str]) -> Delivery {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let delivery = read_request(&mut stream);
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        delivery
    });

    // Loopback is a private target, allowed only by the development policy.
    let sender = WebhookSender::new(SenderConfig::local_development());
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    // Verifiers refuse timestamps more than five minutes from their clock.
    let timestamp = chrono::Utc::now().timestamp();
    let attempt = sender.send(&url, &id, timestamp, body, secrets).await;
    assert_eq!(attempt.outcome, AttemptOutcome::Success, "{attempt:?}");

    let delivery = receiver.join().expect("the receiver thread panicked");
    assert_eq!(delivery.body, body);
    assert_eq!(delivery.headers["webhook-id"], id.as_str());
    assert_eq!(
        delivery.headers["webhook-timestamp"],
        timestamp.to_string().as_str()
    );
    delivery
}

fn read_request(stream: &mut impl Read) -> Delivery {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the request head ended");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut headers = serde_json::Map::new();
    let mut length = 0;
    for line in head.split("\r\n").skip(1) {
        let (name, value) = line.split_once(':').unwrap();
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = value.parse().unwrap();
        }
        headers.insert(name, value.into());
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the body ended");
        body.extend_from_slice(&chunk[..n]);
    }
    Delivery {
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn python_verify(secret: &str, body: &str, delivery: &Delivery) -> Verdict {
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

fn node_verify(secret: &str, body: &str, delivery: &Delivery) -> Verdict {
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

pub(crate) fn both_verify(secret: &str, body: &str, delivery: &Delivery) -> [Verdict; 2] {
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
