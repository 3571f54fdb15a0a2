//! JSON text kept as written.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// JSON text kept as written (an accepted event's normalized body, a delivered envelope): stored,
/// read back and sent as it is, so no stage after validation pays to parse or rebuild it.
/// Every constructor either checks the text or builds it from checked JSON.
#[derive(Debug, Clone)]
pub struct RawJson(String);

impl RawJson {
    /// Serializes `value`.
    pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self)
    }

    /// Checks that `text` is one JSON value (stores hand back what they were given).
    pub fn from_json(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<&RawValue>(&text)?;
        Ok(Self(text))
    }

    /// Text the caller assembled from checked JSON fragments; tests parse what it builds.
    pub(crate) fn assembled(text: String) -> Self {
        debug_assert!(
            serde_json::from_str::<&RawValue>(&text).is_ok(),
            "assembled JSON is valid: {text}"
        );
        Self(text)
    }

    pub fn from_value(value: &Value) -> Self {
        Self::to_json(value).expect("a Value always serializes")
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The text as a `RawValue`, to embed in other JSON (one scan, no parse into values).
    /// Every constructor keeps the text valid, so an error here is a bug, reported not panicked.
    pub fn as_raw(&self) -> Result<&RawValue, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The text as a `Value`; `None` only for text a `Value` cannot hold (a number beyond `f64`
    /// or an unpaired surrogate escape, which JSON's grammar allows: ingest refuses them now, but
    /// events stored before it did may hold them).
    pub fn to_value(&self) -> Option<Value> {
        serde_json::from_str(&self.0).ok()
    }
}

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_raw()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self(Box::<str>::from(raw).into_string()))
    }
}

/// Equal when they hold the same JSON value, whatever the key order or spacing.
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
            || matches!((self.to_value(), other.to_value()), (Some(a), Some(b)) if a == b)
    }
}
