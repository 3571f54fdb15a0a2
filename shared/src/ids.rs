//! Prefixed identifiers and API key material.

use std::fmt;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A string id: a prefix and 32 lowercase hex digits, checked wherever one is read.
macro_rules! prefixed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        /// Written as the string it holds, without the copy `into = "String"` would make.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Accepts only ids of the shape this type generates, so a malformed path segment
            /// never reaches a store.
            pub fn parse(raw: &str) -> Option<Self> {
                let hex = raw.strip_prefix($prefix)?;
                let well_formed = hex.len() == 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                well_formed.then(|| Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw).ok_or_else(|| format!("not a valid {}: {raw}", stringify!($name)))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

pub(crate) use prefixed_id;

/// A [`prefixed_id!`] that Hookline mints itself.
macro_rules! generated_id {
    ($name:ident, $prefix:literal) => {
        prefixed_id!($name, $prefix);

        impl $name {
            /// A new, time-ordered id (UUID v7 under the prefix).
            pub fn generate() -> Self {
                Self(prefixed_uuid($prefix, uuid::Uuid::now_v7()))
            }
        }
    };
}

/// `prefix` and the UUID's 32 lowercase hex digits, written straight into one allocation.
fn prefixed_uuid(prefix: &str, uuid: uuid::Uuid) -> String {
    let mut id = String::with_capacity(prefix.len() + uuid::fmt::Simple::LENGTH);
    id.push_str(prefix);
    id.push_str(uuid.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
    id
}

generated_id!(WorkspaceId, "ws_");
generated_id!(EventId, "evt_");
generated_id!(SubscriptionId, "sub_");
// One recovery of a subscription's failed deliveries, named in its answer and its log lines.
generated_id!(RecoveryId, "rcv_");
generated_id!(ConnectionId, "con_");
generated_id!(ExportJobId, "exp_");

/// A plaintext API key. Shown once at creation; only its hash is ever stored or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    const PREFIX: &'static str = "hk_";
    /// Longer values are rejected before hashing so a header cannot make us hash megabytes.
    pub const MAX_LEN: usize = 256;

    /// 32 bytes from the OS CSPRNG, URL-safe base64.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!(
            "{}{}",
            Self::PREFIX,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Wraps a key presented by a caller; `None` when it is empty or absurdly long.
    pub fn presented(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        (!trimmed.is_empty() && trimmed.len() <= Self::MAX_LEN).then(|| Self(trimmed.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Keys carry 256 bits of entropy, so a plain SHA-256 is a sufficient one-way lookup key.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash::of_digest(&self.digest())
    }

    /// The SHA-256 of the key, as bytes (what [`ApiKey::hash`] stores, before hex).
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Hex SHA-256 of an API key: the only form in which keys are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(pub String);

impl ApiKeyHash {
    pub fn of_digest(digest: &[u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_through_parse() {
        let id = WorkspaceId::generate();
        assert_eq!(WorkspaceId::parse(id.as_str()), Some(id.clone()));
        assert!(id.as_str().starts_with("ws_"));
    }

    #[test]
    fn parse_rejects_wrong_prefix_length_and_case() {
        let id = EventId::generate();
        assert!(WorkspaceId::parse(id.as_str()).is_none());
        assert!(EventId::parse("evt_123").is_none());
        assert!(EventId::parse(&id.as_str().to_uppercase()).is_none());
        assert!(EventId::parse("evt_../../../../etc/passwd000000000000").is_none());
    }

    #[test]
    fn api_keys_are_unique_and_hash_stably() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), ApiKey::presented(a.expose()).unwrap().hash());
        assert_eq!(a.hash().as_str().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn presented_rejects_empty_and_oversized_keys() {
        assert!(ApiKey::presented("  ").is_none());
        assert!(ApiKey::presented(&"k".repeat(ApiKey::MAX_LEN + 1)).is_none());
    }
}
