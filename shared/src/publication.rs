//! A publish API call: an event a workspace emits itself, checked, then made an [`Event`] that
//! flows like an ingested one.
//!
//! `data` is judged by its type: a generic type (`emails.sent`) by the ingest rules of its
//! category, a built-in conversation/call type by its catalog schema, a workspace's own type by
//! the schema it was created with. Every fault is named by its dotted path under `data`.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use jsonschema::Validator;
use serde_json::{json, Value};

use crate::event::{Affect, Event, EventSource, SourceRef};
use crate::ids::{EventId, WorkspaceId};
use crate::validation::{compile, schema_errors, validate, ValidationErrors};
use crate::{catalog, Category, RawJson};

/// How far ahead `deliver_at` may be.
pub const MAX_DELIVER_AHEAD_DAYS: i64 = 7;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// The dedup namespace of idempotency keys, apart from ingest's derived ids.
const KEY_PREFIX: &str = "key:";

static REQUEST_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    let text = json!({"type": "string", "minLength": 1, "maxLength": 256});
    compile(&json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["event_type", "data"],
        "properties": {
            "event_type": {"type": "string", "minLength": 1, "maxLength": 128},
            "data": {"type": "object"},
            "source": {"type": "object", "additionalProperties": false,
                "properties": {"id": text, "type": text, "identifier": text}},
            "affect": {"enum": ["add", "change", "delete"]},
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LEN},
            "deliver_at": {"type": "string", "format": "date-time"},
        }
    }))
});

/// The catalog's conversation/call schemas, compiled once.
static BUILT_IN: LazyLock<HashMap<&'static str, Validator>> = LazyLock::new(|| {
    catalog::all()
        .iter()
        .filter_map(|info| Some((info.name.as_str(), compile(info.schema.as_ref()?))))
        .collect()
});

/// What the caller asked to publish, its shape checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub event_type: String,
    pub data: Value,
    pub origin: Option<SourceRef>,
    pub affect: Affect,
    pub idempotency_key: Option<String>,
    pub deliver_at: Option<DateTime<Utc>>,
}

/// How a publication's `data` is judged, once its type is known.
pub enum TypeRules<'a> {
    /// One of the four ingest categories.
    Generic(Category, &'a str),
    /// A built-in or workspace type with a schema.
    Schema(&'a Validator),
    /// A workspace type created without a schema: any object.
    Any,
}

impl TypeRules<'static> {
    /// The rules of a built-in type, or `None` for a name the catalog does not know.
    pub fn built_in(event_type: &str) -> Option<Self> {
        if let Some((category, short)) = Category::split_type(event_type) {
            return Some(TypeRules::Generic(category, short));
        }
        let info = catalog::find(event_type)?;
        Some(match BUILT_IN.get(info.name.as_str()) {
            Some(validator) => TypeRules::Schema(validator),
            None => TypeRules::Any,
        })
    }
}

impl Publication {
    /// Checks the request body; `header_key` is the `Idempotency-Key` header, which must agree
    /// with the body's `idempotency_key` when both are sent.
    pub fn parse(
        body: Value,
        header_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = schema_errors(&REQUEST_SCHEMA, &body);
        let body_key = body.get("idempotency_key").and_then(Value::as_str);
        let idempotency_key = match (body_key, header_key) {
            (Some(body), Some(header)) if body != header => {
                errors.add(
                    "idempotency_key".into(),
                    "Differs from the Idempotency-Key header; send one or make them equal".into(),
                );
                None
            }
            (Some(key), _) => Some(key.to_owned()),
            (None, Some(header)) if header.is_empty() || header.len() > MAX_IDEMPOTENCY_KEY_LEN => {
                errors.add(
                    "Idempotency-Key".into(),
                    format!("Must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
                );
                None
            }
            (None, header) => header.map(str::to_owned),
        };
        if let Some(name) = body.get("event_type").and_then(Value::as_str) {
            if catalog::is_operational(name) {
                errors.add(
                    "event_type".into(),
                    format!("{name} is an operational event type that only Hookline emits"),
                );
            }
        }
        let deliver_at = match body.get("deliver_at").and_then(Value::as_str) {
            Some(raw) if !errors.field_errors.contains_key("deliver_at") => {
                match DateTime::parse_from_rfc3339(raw) {
                    Ok(at) => {
                        let at = at.with_timezone(&Utc);
                        if at > now + chrono::Duration::days(MAX_DELIVER_AHEAD_DAYS) {
                            errors.add(
                                "deliver_at".into(),
                                format!("At most {MAX_DELIVER_AHEAD_DAYS} days ahead"),
                            );
                        }
                        Some(at)
                    }
                    Err(e) => {
                        errors.add("deliver_at".into(), format!("Not an RFC 3339 time: {e}"));
                        None
                    }
                }
            }
            _ => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let origin = body
            .get("source")
            .map(|s| serde_json::from_value(s.clone()).expect("checked by the schema"));
        let affect = body
            .get("affect")
            .map(|a| serde_json::from_value(a.clone()).expect("checked by the schema"))
            .unwrap_or_default();
        let mut body = body;
        Ok(Self {
            event_type: body["event_type"].as_str().unwrap_or_default().to_owned(),
            data: body["data"].take(),
            origin,
            affect,
            idempotency_key,
            deliver_at,
        })
    }

    /// The event this publication becomes, its `data` judged by `rules`.
    pub fn into_event(
        self,
        workspace_id: WorkspaceId,
        rules: TypeRules<'_>,
        now: DateTime<Utc>,
    ) -> Result<Event, ValidationErrors> {
        let id = EventId::generate();
        let keyed = self.idempotency_key.map(|key| format!("{KEY_PREFIX}{key}"));
        let (dedup_id, timestamp, should_process, payload) = match rules {
            TypeRules::Generic(category, short) => {
                let mut data = self.data;
                match data.get("eventType") {
                    None => data["eventType"] = json!(short),
                    Some(given) if given != short => {
                        return Err(ValidationErrors::field(
                            "data.eventType",
                            format!("Must be {short:?} for {}, or left out", self.event_type),
                        ))
                    }
                    Some(_) => {}
                }
                let valid = validate(category, data, now).map_err(under_data)?;
                (
                    keyed.unwrap_or(valid.dedup_id),
                    valid.timestamp,
                    category.should_process(short),
                    valid.payload,
                )
            }
            TypeRules::Schema(validator) => {
                let errors = schema_errors(validator, &self.data);
                if !errors.is_empty() {
                    return Err(under_data(errors));
                }
                let dedup = keyed.unwrap_or_else(|| id.to_string());
                (dedup, now, true, RawJson::from_value(&self.data))
            }
            TypeRules::Any => {
                let dedup = keyed.unwrap_or_else(|| id.to_string());
                (dedup, now, true, RawJson::from_value(&self.data))
            }
        };
        Ok(Event {
            id,
            workspace_id,
            dedup_id,
            event_type: self.event_type,
            source: EventSource::Published {
                origin: self.origin,
            },
            affect: self.affect,
            timestamp,
            received_at: now,
            should_process,
            payload,
            deliver_at: self.deliver_at.filter(|at| *at > now),
        })
    }
}

/// Faults of `data` named from the request body's root.
fn under_data(errors: ValidationErrors) -> ValidationErrors {
    let mut named = ValidationErrors::default();
    for message in errors.form_errors {
        named.add("data".into(), message);
    }
    for (path, messages) in errors.field_errors {
        let path = if path.is_empty() {
            "data".to_owned()
        } else {
            format!("data.{path}")
        };
        for message in messages {
            named.add(path.clone(), message);
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn parsed(body: Value) -> Publication {
        Publication::parse(body, None, now()).unwrap()
    }

    fn faults(result: Result<impl std::fmt::Debug, ValidationErrors>) -> Vec<String> {
        result.unwrap_err().field_errors.into_keys().collect()
    }

    #[test]
    fn the_request_shape_is_checked_field_by_field() {
        let bad = json!({"data": [], "affect": "upsert", "extra": 1, "source": {"id": 5}});
        assert_eq!(
            faults(Publication::parse(bad, None, now())),
            ["affect", "data", "event_type", "extra", "source.id"]
        );
    }

    #[test]
    fn deliver_at_may_be_at_most_seven_days_ahead() {
        let at = |days: i64| (now() + chrono::Duration::days(days)).to_rfc3339();
        let body =
            |days| json!({"event_type": "conversation.new", "data": {}, "deliver_at": at(days)});
        assert!(Publication::parse(body(6), None, now()).is_ok());
        assert_eq!(
            faults(Publication::parse(body(8), None, now())),
            ["deliver_at"]
        );
        let garbled = json!({"event_type": "x.y", "data": {}, "deliver_at": "tomorrow"});
        assert_eq!(
            faults(Publication::parse(garbled, None, now())),
            ["deliver_at"]
        );
    }

    #[test]
    fn the_idempotency_key_comes_from_the_body_or_the_header_and_they_must_agree() {
        let body = json!({"event_type": "x.y", "data": {}, "idempotency_key": "k1"});
        let from_body = Publication::parse(body.clone(), None, now()).unwrap();
        assert_eq!(from_body.idempotency_key.as_deref(), Some("k1"));
        let plain = json!({"event_type": "x.y", "data": {}});
        let from_header = Publication::parse(plain, Some("k2"), now()).unwrap();
        assert_eq!(from_header.idempotency_key.as_deref(), Some("k2"));
        assert_eq!(
            faults(Publication::parse(body, Some("other"), now())),
            ["idempotency_key"]
        );
    }

    #[test]
    fn a_conversation_type_is_judged_by_its_schema_with_paths_under_data() {
        let publication = parsed(json!({"event_type": "conversation.new", "data": {"channel": 3}}));
        let rules = TypeRules::built_in("conversation.new").unwrap();
        let errors = faults(publication.into_event(WorkspaceId::generate(), rules, now()));
        assert!(
            errors.contains(&"data.conversation_id".to_owned()),
            "{errors:?}"
        );
        let sample = &catalog::find("conversation.new").unwrap().sample;
        let good = parsed(json!({"event_type": "conversation.new", "data": sample}));
        let rules = TypeRules::built_in("conversation.new").unwrap();
        let event = good
            .into_event(WorkspaceId::generate(), rules, now())
            .unwrap();
        assert_eq!(event.event_type, "conversation.new");
        assert!(matches!(event.source, EventSource::Published { .. }));
    }

    #[test]
    fn a_generic_type_is_judged_by_its_ingest_rules() {
        let publication = parsed(json!({"event_type": "crm.deal_won", "data": {
            "eventTimestamp": "2026-01-02T03:04:05Z", "opportunityName": "Big"}}));
        let rules = TypeRules::built_in("crm.deal_won").unwrap();
        assert_eq!(
            faults(publication.into_event(WorkspaceId::generate(), rules, now())),
            ["data.opportunityId"]
        );
        let wrong_type = parsed(json!({"event_type": "crm.deal_won", "data": {
            "eventType": "deal_lost", "eventTimestamp": "2026-01-02T03:04:05Z",
            "opportunityId": "o1", "opportunityName": "Big"}}));
        let rules = TypeRules::built_in("crm.deal_won").unwrap();
        assert_eq!(
            faults(wrong_type.into_event(WorkspaceId::generate(), rules, now())),
            ["data.eventType"]
        );
        let good = parsed(
            json!({"event_type": "crm.deal_won", "idempotency_key": "k", "data": {
            "eventTimestamp": "2026-01-02T03:04:05Z", "opportunityId": "o1", "opportunityName": "Big"}}),
        );
        let rules = TypeRules::built_in("crm.deal_won").unwrap();
        let event = good
            .into_event(WorkspaceId::generate(), rules, now())
            .unwrap();
        assert_eq!(event.dedup_id, "key:k");
        assert!(event
            .payload
            .as_json()
            .contains(r#""eventType":"deal_won""#));
    }

    #[test]
    fn operational_types_are_not_for_workspaces_to_publish() {
        let body = json!({"event_type": "subscription.paused", "data": {}});
        assert_eq!(
            faults(Publication::parse(body, None, now())),
            ["event_type"]
        );
    }

    #[test]
    fn names_the_catalog_does_not_know_have_no_built_in_rules() {
        assert!(TypeRules::built_in("acme.lead.create").is_none());
        assert!(TypeRules::built_in("emails.nope").is_none());
    }
}
