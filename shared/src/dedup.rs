//! Dedup ids: the caller's `eventId`, or a stable hash of the fields that identify the event.

use serde_json::Value;

use crate::Category;

/// Hex digits of the digest kept in a derived dedup id (128 bits).
const DIGEST_HEX_CHARS: usize = 32;
/// Characters of the transcript that take part in a call's derived dedup id.
const TRANSCRIPT_PREFIX_CHARS: usize = 100;

/// The top-level members [`derive`] reads for `category`; nothing else changes the id.
pub fn identifying_members(category: Category) -> &'static [&'static str] {
    match category {
        Category::Emails => &["from", "subject", "eventTimestamp", "to"],
        Category::Calls => &["title", "eventTimestamp", "participants", "transcript"],
        Category::Crm => &["opportunityId", "eventType"],
        Category::Social => &["from", "to", "body", "eventTimestamp", "eventType"],
    }
}

/// Computes the derived dedup id from a validated, normalized payload (its `eventTimestamp` is
/// already RFC 3339 UTC, so every accepted form of one instant gives the same key).
/// Fields are separated by a byte that cannot occur in JSON text, so `a|bc` never equals `ab|c`.
pub fn derive(category: Category, payload: &Value) -> String {
    let timestamp = str_at(payload, &["eventTimestamp"]);
    let mut hasher = blake3::Hasher::new();
    let mut feed = |part: &str| {
        hasher.update(part.as_bytes());
        hasher.update(&[0x1f]);
    };
    feed(category.as_str());
    match category {
        Category::Emails => {
            feed(str_at(payload, &["from", "email"]));
            feed(str_at(payload, &["subject"]));
            feed(timestamp);
            feed(str_at(&payload["to"][0], &["email"]));
        }
        Category::Calls => {
            feed(str_at(payload, &["title"]));
            feed(timestamp);
            feed(&participant_key(&payload["participants"][0]));
            feed(&transcript_prefix(&payload["transcript"]));
        }
        Category::Crm => {
            feed(str_at(payload, &["opportunityId"]));
            feed(str_at(payload, &["eventType"]));
        }
        Category::Social => {
            feed(&canonical(&payload["from"]));
            // The first recipient, as emails do; a lone party is its own first.
            let to = &payload["to"];
            feed(&canonical(if to.is_array() { &to[0] } else { to }));
            feed(&canonical(&payload["body"]));
            feed(timestamp);
            feed(str_at(payload, &["eventType"]));
        }
    }
    let hex = hasher.finalize().to_hex();
    let mut id = String::with_capacity(category.as_str().len() + 1 + DIGEST_HEX_CHARS);
    id.push_str(category.as_str());
    id.push('_');
    id.push_str(&hex[..DIGEST_HEX_CHARS]);
    id
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn participant_key(participant: &Value) -> String {
    match participant {
        Value::String(s) => s.clone(),
        Value::Object(map) => ["email", "name", "id"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))
            .unwrap_or("")
            .to_owned(),
        _ => String::new(),
    }
}

/// The first 100 characters of the transcript as the caller sent it, string or turns.
fn transcript_prefix(transcript: &Value) -> String {
    let text: String = match transcript {
        Value::String(s) => s.chars().take(TRANSCRIPT_PREFIX_CHARS).collect(),
        Value::Array(turns) => {
            let mut joined = String::new();
            for turn in turns {
                if joined.chars().count() >= TRANSCRIPT_PREFIX_CHARS {
                    break;
                }
                joined.push_str(str_at(turn, &["speaker"]));
                joined.push_str(": ");
                joined.push_str(str_at(turn, &["text"]));
                joined.push('\n');
            }
            joined.chars().take(TRANSCRIPT_PREFIX_CHARS).collect()
        }
        _ => String::new(),
    };
    text
}

/// serde_json's map is ordered by key, so this is stable for equal values.
fn canonical(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TS: &str = "2024-02-03T10:30:00+00:00";

    /// The payload as validation leaves it: with its normalized timestamp.
    fn derive(category: Category, payload: &Value, timestamp: &str) -> String {
        let mut normalized = payload.clone();
        normalized["eventTimestamp"] = json!(timestamp);
        super::derive(category, &normalized)
    }

    fn email(subject: &str, extra_cc: bool) -> Value {
        let mut v = json!({"eventType": "sent", "subject": subject, "from": {"email": "a@x.io"},
            "to": [{"email": "b@y.io"}, {"email": "c@y.io"}], "body": {"text": "hi"}});
        if extra_cc {
            v["cc"] = json!([{"email": "d@y.io"}]);
        }
        v
    }

    #[test]
    fn email_key_ignores_fields_outside_the_rule() {
        assert_eq!(
            derive(Category::Emails, &email("s", false), TS),
            derive(Category::Emails, &email("s", true), TS)
        );
        assert_ne!(
            derive(Category::Emails, &email("s", false), TS),
            derive(Category::Emails, &email("t", false), TS)
        );
        assert_ne!(
            derive(Category::Emails, &email("s", false), TS),
            derive(
                Category::Emails,
                &email("s", false),
                "2024-02-03T10:30:01+00:00"
            )
        );
    }

    #[test]
    fn crm_key_is_opportunity_and_type_only() {
        let a = json!({"opportunityId": "o1", "eventType": "deal_won", "opportunityName": "A"});
        let b = json!({"opportunityId": "o1", "eventType": "deal_won", "opportunityName": "B"});
        let c = json!({"opportunityId": "o1", "eventType": "deal_lost", "opportunityName": "A"});
        assert_eq!(
            derive(Category::Crm, &a, TS),
            derive(Category::Crm, &b, "other")
        );
        assert_ne!(derive(Category::Crm, &a, TS), derive(Category::Crm, &c, TS));
    }

    #[test]
    fn call_key_uses_only_the_first_100_transcript_chars() {
        let long = "x".repeat(100);
        let a = json!({"title": "t", "participants": ["p"], "transcript": format!("{long}tail-a")});
        let b = json!({"title": "t", "participants": ["p"], "transcript": format!("{long}tail-b")});
        assert_eq!(
            derive(Category::Calls, &a, TS),
            derive(Category::Calls, &b, TS)
        );
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let a = json!({"opportunityId": "ab", "eventType": "c"});
        let b = json!({"opportunityId": "a", "eventType": "bc"});
        assert_ne!(derive(Category::Crm, &a, TS), derive(Category::Crm, &b, TS));
    }

    #[test]
    fn categories_never_share_a_key() {
        let crm = derive(Category::Crm, &json!({}), TS);
        let social = derive(Category::Social, &json!({}), TS);
        assert_ne!(crm, social);
        assert!(crm.starts_with("crm_"));
    }
}
