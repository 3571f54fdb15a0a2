//! Proof that a delivery comes from a connection's provider: a Svix signature, or the shared
//! secret in the body. Comparisons run in constant time; a refusal names what failed and
//! never repeats what was sent.

use chrono::{DateTime, Utc};
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use super::{Connection, ConnectionKind};
use crate::webhook::sign;

/// How far a Svix timestamp may be from our clock, either way (Svix's own tolerance).
pub const SVIX_TOLERANCE_SECS: i64 = 5 * 60;
/// Longest message id accepted; it becomes part of the event's dedup id.
const MAX_MESSAGE_ID_LEN: usize = 256;

/// Why a delivery was refused: the header or body field, and what was wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub field: &'static str,
    pub reason: &'static str,
}

/// The three Svix headers under both of their names: Svix's own, and Standard Webhooks'.
const HEADER_FAMILIES: [[&str; 3]; 2] = [
    ["svix-id", "svix-timestamp", "svix-signature"],
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
];

/// A verified Svix delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvixMessage {
    /// The sender's message id: the same on every retry of one message.
    pub id: String,
    pub timestamp: i64,
}

/// What a verified in-body delivery carried beside its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyMessage {
    pub event: String,
    pub payload: Value,
    pub id_space: Option<String>,
}

impl Connection {
    /// Checks a Svix-signed delivery: `header` reads one request header by lower-case name.
    /// The signature is the project's own signer over `{id}.{timestamp}.{body}` with this
    /// connection's secret, compared in constant time with each `v1,` signature sent.
    pub fn verify_svix<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<SvixMessage, Refused> {
        debug_assert_eq!(self.kind, ConnectionKind::Svix);
        // The family whose id header is present names the faults; Svix's by default.
        let [id_name, timestamp_name, signature_name] = HEADER_FAMILIES
            .into_iter()
            .find(|[id, _, _]| header(id).is_some())
            .unwrap_or(HEADER_FAMILIES[0]);
        let refused = |field, reason| Refused { field, reason };
        let id = header(id_name)
            .filter(|id| !id.is_empty())
            .ok_or(refused(id_name, "Required"))?;
        if id.len() > MAX_MESSAGE_ID_LEN {
            return Err(refused(id_name, "At most 256 characters"));
        }
        let timestamp: i64 = header(timestamp_name)
            .ok_or(refused(timestamp_name, "Required"))?
            .trim()
            .parse()
            .map_err(|_| refused(timestamp_name, "Unix seconds expected"))?;
        if (now.timestamp() - timestamp).abs() > SVIX_TOLERANCE_SECS {
            return Err(refused(
                timestamp_name,
                "More than 5 minutes from now; replayed or the sender's clock is off",
            ));
        }
        let presented = header(signature_name).ok_or(refused(signature_name, "Required"))?;
        let mismatch = refused(
            signature_name,
            "No signature matches this connection's secret",
        );
        // A body that is not text cannot have been signed by a JSON sender.
        let body = std::str::from_utf8(body).map_err(|_| mismatch)?;
        let expected = sign(&[self.secret.expose()], id, timestamp, body);
        if expected.is_empty() {
            return Err(mismatch);
        }
        // Every presented signature is compared, so the time taken says nothing of which one
        // (or how much of one) matched.
        let matched = presented
            .split(' ')
            .filter(|candidate| candidate.starts_with("v1,"))
            .fold(subtle::Choice::from(0), |found, candidate| {
                found | candidate.as_bytes().ct_eq(expected.as_bytes())
            });
        if !bool::from(matched) {
            return Err(mismatch);
        }
        Ok(SvixMessage {
            id: id.to_owned(),
            timestamp,
        })
    }

    /// Checks an in-body delivery `{id_space, event, secret, payload}`, already parsed: its
    /// `secret` must equal this connection's, compared in constant time.
    pub fn verify_secret_in_body(&self, body: &Value) -> Result<BodyMessage, Refused> {
        debug_assert_eq!(self.kind, ConnectionKind::SecretInBody);
        let presented = body.get("secret").and_then(Value::as_str).ok_or(Refused {
            field: "secret",
            reason: "Required: the connection's secret, as a string",
        })?;
        let matches: bool = presented
            .as_bytes()
            .ct_eq(self.secret.expose().as_bytes())
            .into();
        if !matches {
            return Err(Refused {
                field: "secret",
                reason: "Does not match this connection's secret",
            });
        }
        Ok(BodyMessage {
            event: body
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            payload: body.get("payload").cloned().unwrap_or(Value::Null),
            id_space: body
                .get("id_space")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// Hex digits of the digest kept in an in-body delivery's dedup id (128 bits).
const DIGEST_HEX_CHARS: usize = 32;

impl SvixMessage {
    /// The sender's message id, scoped to the connection so two providers of one workspace
    /// (or a generic `eventId`) never collide.
    pub fn dedup_id(&self, connection: &Connection) -> String {
        format!("{}:{}", connection.id, self.id)
    }
}

impl BodyMessage {
    /// A stable hash of the event name and the payload in canonical form (object members
    /// sorted), scoped to the connection: a provider's replay of one message is one event.
    pub fn dedup_id(&self, connection: &Connection) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.event.as_bytes());
        // A byte JSON text never holds, so `a` + `bc` never hashes like `ab` + `c`.
        hasher.update(&[0x1f]);
        write_canonical(&self.payload, &mut hasher);
        let hex = hasher.finalize().to_hex();
        format!("{}:{}", connection.id, &hex[..DIGEST_HEX_CHARS])
    }
}

/// `value` as JSON text with every object's members in key order, whatever order the map
/// type keeps them in.
fn write_canonical(value: &Value, hasher: &mut blake3::Hasher) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                write_canonical(&map[key], hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                write_canonical(item, hasher);
            }
            hasher.update(b"]");
        }
        scalar => {
            hasher.update(scalar.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::connection::ConnectionSecret;
    use crate::ids::{ConnectionId, WorkspaceId};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &str = r#"{"type":"org.updated","payload":{}}"#;

    fn connection(kind: ConnectionKind, secret: &str) -> Connection {
        Connection {
            id: ConnectionId::generate(),
            workspace_id: WorkspaceId::generate(),
            kind,
            name: "coach".into(),
            secret: ConnectionSecret(secret.into()),
            created_at: Utc::now(),
        }
    }

    fn headers(prefix: &str, id: &str, at: i64, signature: &str) -> HashMap<String, String> {
        HashMap::from([
            (format!("{prefix}-id"), id.to_owned()),
            (format!("{prefix}-timestamp"), at.to_string()),
            (format!("{prefix}-signature"), signature.to_owned()),
        ])
    }

    fn verify(headers: &HashMap<String, String>, body: &str) -> Result<SvixMessage, Refused> {
        connection(ConnectionKind::Svix, SECRET).verify_svix(
            |name| headers.get(name).map(String::as_str),
            body.as_bytes(),
            Utc::now(),
        )
    }

    #[test]
    fn a_signature_by_the_connections_secret_verifies_under_either_header_family() {
        let now = Utc::now().timestamp();
        let signature = sign(&[SECRET], "msg_1", now, BODY);
        for prefix in ["svix", "webhook"] {
            let message = verify(&headers(prefix, "msg_1", now, &signature), BODY).unwrap();
            assert_eq!(message.id, "msg_1");
        }
        let rotated = format!("v1,bm90IGl0 {signature}");
        assert!(verify(&headers("svix", "msg_1", now, &rotated), BODY).is_ok());
    }

    #[test]
    fn another_secret_body_id_or_a_stale_timestamp_is_refused_by_name() {
        let now = Utc::now().timestamp();
        let other = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let field = |h: &HashMap<String, String>, body| verify(h, body).unwrap_err().field;
        let foreign = sign(&[other], "msg_1", now, BODY);
        assert_eq!(
            field(&headers("svix", "msg_1", now, &foreign), BODY),
            "svix-signature"
        );
        let good = sign(&[SECRET], "msg_1", now, BODY);
        assert_eq!(
            field(&headers("svix", "msg_1", now, &good), "{}"),
            "svix-signature"
        );
        assert_eq!(
            field(&headers("svix", "msg_2", now, &good), BODY),
            "svix-signature"
        );
        let old = now - SVIX_TOLERANCE_SECS - 1;
        let stale = sign(&[SECRET], "msg_1", old, BODY);
        assert_eq!(
            field(&headers("webhook", "msg_1", old, &stale), BODY),
            "webhook-timestamp"
        );
        assert_eq!(field(&HashMap::new(), BODY), "svix-id");
        let mut unsigned = headers("svix", "msg_1", now, &good);
        unsigned.remove("svix-signature");
        assert_eq!(field(&unsigned, BODY), "svix-signature");
        let bare = good.trim_start_matches("v1,").to_owned();
        assert_eq!(
            field(&headers("svix", "msg_1", now, &bare), BODY),
            "svix-signature"
        );
    }

    #[test]
    fn the_in_body_secret_must_match_exactly() {
        let connection = connection(ConnectionKind::SecretInBody, "wh_a46f35f22d9723a");
        let body = json!({"id_space": "s1", "event": "lead.create", "secret": "wh_a46f35f22d9723a",
            "payload": {"id": "l1"}});
        let message = connection.verify_secret_in_body(&body).unwrap();
        assert_eq!(message.event, "lead.create");
        assert_eq!(message.payload, json!({"id": "l1"}));
        assert_eq!(message.id_space.as_deref(), Some("s1"));
        for wrong in [
            json!("wh_a46f35f22d9723"),
            json!("wh_a46f35f22d9723ab"),
            json!(5),
        ] {
            let mut body = body.clone();
            body["secret"] = wrong;
            assert_eq!(
                connection.verify_secret_in_body(&body).unwrap_err().field,
                "secret"
            );
        }
        let mut missing = body.clone();
        missing.as_object_mut().unwrap().remove("secret");
        assert_eq!(
            connection
                .verify_secret_in_body(&missing)
                .unwrap_err()
                .field,
            "secret"
        );
    }

    #[test]
    fn an_in_body_dedup_id_depends_on_event_and_payload_not_member_order() {
        let connection = connection(ConnectionKind::SecretInBody, "wh_a46f35f22d9723a");
        let message = |event: &str, payload: Value| BodyMessage {
            event: event.into(),
            payload,
            id_space: None,
        };
        let a: Value = serde_json::from_str(r#"{"id": "l1", "n": {"x": 1, "y": [2]}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"n": {"y": [2], "x": 1}, "id": "l1"}"#).unwrap();
        let id = message("lead.create", a.clone()).dedup_id(&connection);
        assert_eq!(id, message("lead.create", b).dedup_id(&connection));
        assert!(id.starts_with(&format!("{}:", connection.id)));
        assert_ne!(id, message("lead.update", a).dedup_id(&connection));
        assert_ne!(
            id,
            message("lead.create", json!({"id": "l2"})).dedup_id(&connection)
        );
    }
}
