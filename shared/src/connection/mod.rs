//! Provider connections: a workspace's endpoint for one provider's own webhooks, and the
//! secret that provider proves itself with (providers cannot send an API key).
//!
//! [`verify`] checks a delivery against a connection; [`mapping`] turns what it carried into
//! an [`crate::Event`].

pub mod mapping;
pub mod verify;

use std::fmt;
use std::sync::LazyLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonschema::Validator;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ids::{ConnectionId, WorkspaceId};
use crate::validation::{compile, schema_errors, ValidationErrors};

/// Connections one workspace may hold; every store enforces it on create.
pub const MAX_CONNECTIONS_PER_WORKSPACE: usize = 50;
pub const MAX_NAME_LEN: usize = 64;
/// Where a connection's provider posts; `{connection_id}` is the connection's id.
pub const INGEST_PATH_PREFIX: &str = "/api/v2/analytics/webhook/receive/connections/";
/// Random bytes behind a generated Svix secret (Svix's own are 24).
const SVIX_SECRET_BYTES: usize = 32;
/// The fewest key bytes a given Svix secret may decode to.
const MIN_SVIX_KEY_BYTES: usize = 24;
/// Random bytes behind a generated in-body secret: 43 URL-safe characters.
const BODY_SECRET_BYTES: usize = 32;
const MIN_BODY_SECRET_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 256;
const SVIX_PREFIX: &str = "whsec_";
const BODY_SECRET_PREFIX: &str = "wh_";

/// How a connection's provider authenticates its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// Svix (Standard Webhooks) headers signed with a `whsec_` secret.
    Svix,
    /// A shared secret inside the JSON body, beside the event and its payload.
    SecretInBody,
}

impl ConnectionKind {
    pub const ALL: [ConnectionKind; 2] = [ConnectionKind::Svix, ConnectionKind::SecretInBody];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Svix => "svix",
            ConnectionKind::SecretInBody => "secret_in_body",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// A connection's secret. Never printed by `Debug`, so no log line can carry it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionSecret(String);

impl ConnectionSecret {
    /// A fresh secret of the shape `kind` uses, from the OS CSPRNG.
    pub fn generate(kind: ConnectionKind) -> Self {
        match kind {
            ConnectionKind::Svix => {
                let mut bytes = [0u8; SVIX_SECRET_BYTES];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                Self(format!("{SVIX_PREFIX}{encoded}"))
            }
            ConnectionKind::SecretInBody => {
                let mut bytes = [0u8; BODY_SECRET_BYTES];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
                Self(format!("{BODY_SECRET_PREFIX}{encoded}"))
            }
        }
    }

    /// A secret the caller chose (the one the provider already shows), if it fits `kind`;
    /// else why not. The reason never repeats the secret.
    pub fn given(kind: ConnectionKind, raw: &str) -> Result<Self, &'static str> {
        if raw.len() > MAX_SECRET_LEN {
            return Err("At most 256 characters");
        }
        match kind {
            ConnectionKind::Svix => {
                let encoded = raw
                    .strip_prefix(SVIX_PREFIX)
                    .ok_or("A Svix secret starts with whsec_")?;
                let key = crate::webhook::signing::SECRET_ENGINE
                    .decode(encoded)
                    .map_err(|_| "A Svix secret is whsec_ followed by base64")?;
                if key.len() < MIN_SVIX_KEY_BYTES {
                    return Err("A Svix secret's key is at least 24 bytes");
                }
            }
            ConnectionKind::SecretInBody => {
                if raw.chars().count() < MIN_BODY_SECRET_LEN {
                    return Err("At least 16 characters");
                }
                if !raw.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err("Visible ASCII characters only");
                }
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConnectionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionSecret(<redacted>)")
    }
}

/// One provider's way into a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub workspace_id: WorkspaceId,
    pub kind: ConnectionKind,
    /// `[A-Za-z0-9_-]{1,64}`, starting with a letter: the answer's provider name (upper-cased)
    /// and, lower-cased, the namespace of the provider's own event types.
    pub name: String,
    pub secret: ConnectionSecret,
    pub created_at: DateTime<Utc>,
}

/// `POST …/connections`, its shape checked; fields are named as the body names them.
static REQUEST_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    compile(&json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["kind", "name"],
        "properties": {
            "kind": {"enum": ConnectionKind::ALL.map(ConnectionKind::as_str)},
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN,
                "pattern": "^[A-Za-z][A-Za-z0-9_-]*$"},
            "secret": {"type": "string", "minLength": 1},
        }
    }))
});

impl Connection {
    /// A new connection from a create request's body: its id minted, its secret the given one
    /// (checked for its kind) or a generated one.
    pub fn create(
        workspace_id: WorkspaceId,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = schema_errors(&REQUEST_SCHEMA, body);
        if errors.field_errors.contains_key("name") {
            // The schema's own words quote the pattern; say the rule plainly instead.
            errors.field_errors.insert(
                "name".into(),
                vec![format!(
                    "1 to {MAX_NAME_LEN} of A-Z, a-z, 0-9, _ and -, starting with a letter"
                )],
            );
        }
        if errors.field_errors.contains_key("secret") {
            errors
                .field_errors
                .insert("secret".into(), vec!["A non-empty string".into()]);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let text = |field: &str| body.get(field).and_then(Value::as_str);
        let kind =
            ConnectionKind::parse(text("kind").unwrap_or_default()).expect("checked by the schema");
        let secret = match text("secret") {
            Some(raw) => ConnectionSecret::given(kind, raw)
                .map_err(|why| ValidationErrors::field("secret", why))?,
            None => ConnectionSecret::generate(kind),
        };
        Ok(Self {
            id: ConnectionId::generate(),
            workspace_id,
            kind,
            name: text("name").unwrap_or_default().to_owned(),
            secret,
            created_at: now,
        })
    }

    /// The path its provider posts to (no API key: the secret authenticates).
    pub fn ingest_path(&self) -> String {
        format!("{INGEST_PATH_PREFIX}{}", self.id)
    }

    /// What the ingest answer calls the provider.
    pub fn provider_name(&self) -> String {
        self.name.to_ascii_uppercase()
    }

    /// The namespace of the provider's own event types: the name, lower-cased, `-` as `_`, so
    /// `{namespace}.{event}` is a valid custom type name.
    pub fn namespace(&self) -> String {
        self.name.to_ascii_lowercase().replace('-', "_")
    }
}

/// The limit rule every store applies inside the write that creates: one more fits.
pub fn room_for_another(held: usize) -> bool {
    held < MAX_CONNECTIONS_PER_WORKSPACE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: Value) -> Result<Connection, ValidationErrors> {
        Connection::create(WorkspaceId::generate(), &body, Utc::now())
    }

    fn faults(body: Value) -> Vec<String> {
        create(body).unwrap_err().field_errors.into_keys().collect()
    }

    #[test]
    fn a_svix_connection_gets_a_whsec_secret_of_at_least_24_bytes() {
        let connection = create(json!({"kind": "svix", "name": "Coach-AI_2"})).unwrap();
        assert!(connection.id.as_str().starts_with("con_"));
        let key = connection.secret.expose().strip_prefix("whsec_").unwrap();
        let key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert!(key.len() >= 24);
        assert_eq!(connection.provider_name(), "COACH-AI_2");
        assert_eq!(connection.namespace(), "coach_ai_2");
        assert_eq!(
            connection.ingest_path(),
            format!(
                "/api/v2/analytics/webhook/receive/connections/{}",
                connection.id
            )
        );
    }

    #[test]
    fn an_in_body_secret_is_generated_long_or_given_at_least_16_characters() {
        let generated = create(json!({"kind": "secret_in_body", "name": "leads"})).unwrap();
        assert!(generated.secret.expose().len() >= 32);
        let other = create(json!({"kind": "secret_in_body", "name": "leads"})).unwrap();
        assert_ne!(generated.secret, other.secret);
        let given = create(
            json!({"kind": "secret_in_body", "name": "leads", "secret": "wh_a46f35f22d9723a"}),
        )
        .unwrap();
        assert_eq!(given.secret.expose(), "wh_a46f35f22d9723a");
        assert_eq!(
            faults(json!({"kind": "secret_in_body", "name": "leads", "secret": "short"})),
            ["secret"]
        );
    }

    #[test]
    fn a_given_svix_secret_must_decode_to_a_long_enough_key() {
        let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(create(json!({"kind": "svix", "name": "s", "secret": good})).is_ok());
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_%%%",
            "whsec_AAAA",
        ] {
            let errors = create(json!({"kind": "svix", "name": "s", "secret": bad})).unwrap_err();
            assert_eq!(errors.field_errors.keys().collect::<Vec<_>>(), ["secret"]);
            assert!(
                !format!("{errors:?}").contains(bad),
                "the reason never repeats the secret"
            );
        }
    }

    #[test]
    fn every_fault_of_the_request_is_named() {
        assert_eq!(
            faults(json!({"kind": "zapier", "name": "has space", "extra": 1})),
            ["extra", "kind", "name"]
        );
        assert_eq!(faults(json!({})), ["kind", "name"]);
        assert_eq!(
            faults(json!({"kind": "svix", "name": "x".repeat(65)})),
            ["name"]
        );
        assert_eq!(faults(json!({"kind": "svix", "name": "9lives"})), ["name"]);
        assert_eq!(
            faults(json!({"kind": "svix", "name": "a", "secret": 5})),
            ["secret"]
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let connection = create(json!({"kind": "secret_in_body", "name": "leads"})).unwrap();
        assert!(!format!("{connection:?}").contains(connection.secret.expose()));
    }
}
