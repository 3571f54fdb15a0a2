//! Per-category validation and normalization of ingest bodies, faults in Zod's `flatten()` shape.

mod fast;
pub mod json_limits;
#[cfg(test)]
mod properties;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::dedup;
use crate::timestamp::parse_event_timestamp;
use crate::transcript::split_turns;
use crate::{Category, RawJson};

/// Unknown top-level fields are kept under this key instead of being dropped.
pub const PASSTHROUGH_KEY: &str = "passthrough";

/// Zod `flatten()`-shaped errors: form-level messages and messages per dotted field path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationErrors {
    pub form_errors: Vec<String>,
    pub field_errors: BTreeMap<String, Vec<String>>,
}

impl ValidationErrors {
    pub fn form(message: impl Into<String>) -> Self {
        Self {
            form_errors: vec![message.into()],
            ..Self::default()
        }
    }

    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(path.into(), message.into());
        errors
    }

    /// Adds a message for a dotted field path (an empty path is a form-level error).
    pub fn add(&mut self, path: String, message: String) {
        if path.is_empty() {
            self.form_errors.push(message);
        } else {
            let messages = self.field_errors.entry(path).or_default();
            if !messages.contains(&message) {
                messages.push(message);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.form_errors.is_empty() && self.field_errors.is_empty()
    }

    /// Number of distinct faults, for logs.
    pub fn count(&self) -> usize {
        self.form_errors.len() + self.field_errors.values().map(Vec::len).sum::<usize>()
    }
}

/// A body that passed validation, normalized for storage.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedEvent {
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    /// The caller's `eventId`, else the id derived from the members that identify the event.
    pub dedup_id: String,
    /// The body with the timestamp as RFC 3339 UTC, flat transcripts split into turns and
    /// unknown top-level members moved under [`PASSTHROUGH_KEY`].
    pub payload: RawJson,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// Not JSON at all; serde_json's message.
    Malformed(String),
    Invalid(ValidationErrors),
}

/// Validates the raw request body for `category` and normalizes it.
///
/// The [JSON limits](json_limits) come first, for every member alike. Valid bodies then take a
/// path that leaves members unparsed unless a rule reads them; anything else is parsed whole
/// and checked by the category's schema, which names every fault.
pub fn validate_body(
    category: Category,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<ValidatedEvent, Rejection> {
    json_limits::check(body).map_err(|violation| Rejection::Invalid(violation.into()))?;
    let schema = &SCHEMAS[category as usize];
    if let Some(valid) = fast::validate(category, &schema.fast, body, now) {
        return Ok(valid);
    }
    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
    validate(category, parsed, now).map_err(Rejection::Invalid)
}

/// Validates a parsed `body` for `category` against its schema and normalizes it; on failure
/// returns every fault found. Whoever parsed `body` has checked the [JSON limits](json_limits)
/// on its bytes already ([`validate_body`], or `JsonBody::value` for a published event's
/// data): a `Value` holds only numbers and text within them, but may nest deeper.
pub(crate) fn validate(
    category: Category,
    body: Value,
    now: DateTime<Utc>,
) -> Result<ValidatedEvent, ValidationErrors> {
    let schema = &SCHEMAS[category as usize];
    let mut errors = schema_errors(&schema.validator, &body);
    let Value::Object(mut fields) = body else {
        return Err(errors);
    };
    let timestamp = match fields.get("eventTimestamp") {
        Some(raw) if !errors.field_errors.contains_key("eventTimestamp") => {
            match parse_event_timestamp(raw, now) {
                Ok(ts) => Some(ts),
                Err(fault) => {
                    errors.add("eventTimestamp".into(), fault.message().into());
                    None
                }
            }
        }
        _ => None,
    };
    let Some(timestamp) = timestamp.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };

    fields.insert(
        "eventTimestamp".into(),
        Value::String(timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    if let Some(Value::String(flat)) = fields.get("transcript") {
        let turns = serde_json::to_value(split_turns(flat)).expect("turns serialize");
        fields.insert("transcript".into(), turns);
    }
    let unknown: Vec<String> = fields
        .keys()
        .filter(|k| !schema.fast.is_known(k))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        let mut passthrough = Map::new();
        for key in unknown {
            if let Some(value) = fields.remove(&key) {
                passthrough.insert(key, value);
            }
        }
        fields.insert(PASSTHROUGH_KEY.into(), Value::Object(passthrough));
    }
    let event_type = fields["eventType"].as_str().unwrap_or_default().to_owned();
    let explicit_id = fields
        .get("eventId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let payload = Value::Object(fields);
    Ok(ValidatedEvent {
        event_type,
        timestamp,
        dedup_id: explicit_id.unwrap_or_else(|| dedup::derive(category, &payload)),
        payload: RawJson::from_value(&payload),
    })
}

struct CategorySchema {
    validator: Validator,
    fast: fast::FastSpec,
}

/// Indexed by `Category as usize`; compiled once per process.
static SCHEMAS: LazyLock<Vec<CategorySchema>> = LazyLock::new(|| {
    Category::ALL
        .into_iter()
        .map(|category| {
            let schema = schema_for(category);
            CategorySchema {
                validator: compile(&schema),
                fast: fast::FastSpec::from_schema(&schema),
            }
        })
        .collect()
});

/// The one way Hookline compiles a JSON Schema: draft 2020-12 with `format` checked, so every
/// schema (ingest's categories, the notify API's bodies) judges formats alike.
pub fn compile(schema: &Value) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("built-in schemas compile")
}

const SHORT_TEXT: usize = 256;
const LONG_TEXT: usize = 2048;

fn short_string() -> Value {
    json!({"type": "string", "maxLength": SHORT_TEXT})
}

fn required_string(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max})
}

fn email_string() -> Value {
    json!({"type": "string", "format": "email", "maxLength": 320})
}

fn person() -> Value {
    json!({"type": "object", "required": ["email"],
        "properties": {"email": email_string(), "name": short_string()}})
}

fn message_body() -> Value {
    json!({"type": "object",
        "properties": {"text": {"type": "string"}, "html": {"type": "string"}},
        "anyOf": [{"required": ["text"]}, {"required": ["html"]}]})
}

/// A name, handle, URL or a small object describing a party.
fn party() -> Value {
    json!({"type": ["string", "object"], "minLength": 1, "maxLength": LONG_TEXT, "minProperties": 1,
        "properties": {"email": email_string(), "name": short_string()}})
}

/// A social event's `to`: one party (an object or a string) or a non-empty array of them, the
/// shape emails use. Each keyword binds only its own type, so one schema names every fault.
fn recipients() -> Value {
    let mut schema = party();
    schema["type"] = json!(["string", "object", "array"]);
    schema["minItems"] = json!(1);
    schema["items"] = party();
    schema
}

fn schema_for(category: Category) -> Value {
    let mut properties = json!({
        "eventTimestamp": {"type": ["string", "number"]},
        "eventType": {"type": "string", "enum": category.event_types()},
        "customMetadata": {"type": "object"},
    });
    let mut add = |name: &str, schema: Value| {
        properties[name] = schema;
    };
    let required: &[&str] = match category {
        Category::Emails => {
            add("subject", json!({"type": "string", "maxLength": LONG_TEXT}));
            add("body", message_body());
            add("from", person());
            add(
                "to",
                json!({"type": "array", "minItems": 1, "items": person()}),
            );
            add("cc", json!({"type": "array", "items": person()}));
            add("bcc", json!({"type": "array", "items": person()}));
            for optional in ["eventId", "conversationId", "campaignId", "octaveRequestId"] {
                add(optional, required_string(SHORT_TEXT));
            }
            &[
                "eventTimestamp",
                "eventType",
                "subject",
                "body",
                "from",
                "to",
            ]
        }
        Category::Calls => {
            add("title", required_string(LONG_TEXT));
            add(
                "transcript",
                json!({"type": ["string", "array"], "minLength": 1, "minItems": 1,
                "items": {"type": "object", "required": ["speaker", "text"], "properties": {
                    "speaker": {"type": "string"}, "text": {"type": "string"},
                    "start": {"type": ["number", "string"]}, "end": {"type": ["number", "string"]}}}}),
            );
            add(
                "participants",
                json!({"type": "array", "minItems": 1, "items": party()}),
            );
            add("duration", json!({"type": "number", "minimum": 0}));
            add(
                "recordingUrl",
                json!({"type": "string", "format": "uri", "maxLength": LONG_TEXT}),
            );
            add("meetingPlatform", short_string());
            for optional in ["eventId", "conversationId"] {
                add(optional, required_string(SHORT_TEXT));
            }
            &[
                "eventTimestamp",
                "eventType",
                "title",
                "transcript",
                "participants",
            ]
        }
        Category::Crm => {
            add("opportunityId", required_string(SHORT_TEXT));
            add("opportunityName", required_string(LONG_TEXT));
            add("amount", json!({"type": "number"}));
            for optional in ["stage", "accountName", "contactName", "closeDate"] {
                add(optional, short_string());
            }
            add("contactEmail", email_string());
            add("eventId", required_string(SHORT_TEXT));
            &[
                "eventTimestamp",
                "eventType",
                "opportunityId",
                "opportunityName",
            ]
        }
        Category::Social => {
            add("body", message_body());
            add("from", party());
            add("to", recipients());
            add("subject", json!({"type": "string", "maxLength": LONG_TEXT}));
            for optional in ["eventId", "conversationId", "campaignId"] {
                add(optional, required_string(SHORT_TEXT));
            }
            for optional in ["messageType", "campaignName"] {
                add(optional, short_string());
            }
            &["eventTimestamp", "eventType", "body", "from", "to"]
        }
    };
    json!({"type": "object", "required": required, "properties": properties})
}

/// Every violation of `validator` in `instance`, in the flatten shape. Unknown properties
/// (where a schema forbids them) are named one by one.
pub fn schema_errors(validator: &Validator, instance: &Value) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    for error in validator.iter_errors(instance) {
        if let ValidationErrorKind::AdditionalProperties { unexpected } = &error.kind {
            let parent = dotted(error.instance_path.as_str());
            for name in unexpected {
                let path = if parent.is_empty() {
                    name.clone()
                } else {
                    format!("{parent}.{name}")
                };
                errors.add(path, "Unknown field".to_owned());
            }
            continue;
        }
        let (path, message) = describe(&error);
        errors.add(path, message);
    }
    errors
}

/// Turns one schema violation into a dotted path and a message a caller can act on.
fn describe(error: &ValidationError<'_>) -> (String, String) {
    let path = dotted(error.instance_path.as_str());
    let join = |child: &str| {
        if path.is_empty() {
            child.to_owned()
        } else {
            format!("{path}.{child}")
        }
    };
    match &error.kind {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            (join(name), "Required".to_owned())
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let message = if path.is_empty() {
                format!(
                    "Expected a JSON object, received {}",
                    json_type(&error.instance)
                )
            } else {
                format!(
                    "Expected {expected}, received {}",
                    json_type(&error.instance)
                )
            };
            (path, message)
        }
        ValidationErrorKind::Enum { options } => {
            let allowed = options
                .as_array()
                .map(|o| {
                    o.iter()
                        .map(|v| format!("'{}'", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .unwrap_or_default();
            let message = format!(
                "Invalid enum value. Expected {allowed}, received {}",
                error.instance
            );
            (path, message)
        }
        ValidationErrorKind::Format { format } if format == "email" => {
            (path, "Invalid email address".into())
        }
        ValidationErrorKind::Format { format } if format == "uri" => (path, "Invalid URL".into()),
        ValidationErrorKind::MinItems { limit } => {
            let message = match path.as_str() {
                "to" => "At least one recipient is required".to_owned(),
                "participants" => "At least one participant is required".to_owned(),
                _ => format!("Must contain at least {limit} item(s)"),
            };
            (path, message)
        }
        ValidationErrorKind::MinLength { .. } | ValidationErrorKind::MinProperties { .. } => {
            (path, "Must not be empty".into())
        }
        ValidationErrorKind::MaxLength { limit } => {
            (path, format!("Must be at most {limit} characters"))
        }
        ValidationErrorKind::Minimum { limit } => {
            (path, format!("Must be greater than or equal to {limit}"))
        }
        ValidationErrorKind::AnyOf if path.ends_with("body") => {
            (path, "At least one of text or html must be provided".into())
        }
        _ => {
            let message = error.to_string();
            (path, message)
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `/to/0/email` → `to.0.email`, undoing JSON Pointer escapes.
fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::test_now as now;

    fn valid(category: Category) -> Value {
        match category {
            Category::Emails => {
                json!({"eventTimestamp": "2024-02-03T10:30:00Z", "eventType": "sent",
                "subject": "Hi", "body": {"text": "t"}, "from": {"email": "a@x.io"}, "to": [{"email": "b@y.io"}]})
            }
            Category::Calls => {
                json!({"eventTimestamp": 1706956200000_i64, "eventType": "transcript",
                "title": "Sync", "transcript": "A: hi\nB: yo", "participants": ["A", {"name": "B"}]})
            }
            Category::Crm => json!({"eventTimestamp": "1706956200", "eventType": "deal_won",
                "opportunityId": "o1", "opportunityName": "Big"}),
            Category::Social => {
                json!({"eventTimestamp": "2024-02-03T12:30:00+02:00", "eventType": "message_sent",
                "body": {"html": "<p>x</p>"}, "from": "https://linkedin.com/in/a", "to": {"name": "B"}})
            }
        }
    }

    /// Validates through both doors, the request bytes and a parsed `Value`, and checks that
    /// they agree: the same normalized event, or the same faults.
    fn validate(
        category: Category,
        body: Value,
        now: DateTime<Utc>,
    ) -> Result<ValidatedEvent, ValidationErrors> {
        let bytes = serde_json::to_vec(&body).unwrap();
        let from_bytes = validate_body(category, &bytes, now);
        let from_value = super::validate(category, body, now);
        match (&from_bytes, &from_value) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{category:?}: both paths normalize alike"),
            (Err(Rejection::Invalid(a)), Err(b)) => assert_eq!(a, b, "{category:?}: same faults"),
            _ => panic!("{category:?}: paths disagree: {from_bytes:?} vs {from_value:?}"),
        }
        from_value
    }

    fn payload(event: &ValidatedEvent) -> Value {
        event.payload.to_value().unwrap()
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.field_errors.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_valid_body_of_every_category_passes_and_normalizes_the_timestamp() {
        for category in Category::ALL {
            let event = validate(category, valid(category), now())
                .unwrap_or_else(|e| panic!("{category:?}: {e:?}"));
            assert_eq!(
                payload(&event)["eventTimestamp"],
                "2024-02-03T10:30:00.000Z",
                "{category:?}"
            );
        }
    }

    #[test]
    fn every_required_field_left_out_is_named() {
        for category in Category::ALL {
            let body = valid(category);
            for field in body.as_object().unwrap().keys() {
                let optional = matches!(field.as_str(), "eventId" | "cc");
                if optional {
                    continue;
                }
                let mut without = body.clone();
                without.as_object_mut().unwrap().remove(field);
                let errors = validate(category, without, now()).unwrap_err();
                assert_eq!(
                    errors.field_errors.get(field.as_str()),
                    Some(&vec!["Required".to_owned()]),
                    "{category:?} {field}"
                );
            }
        }
    }

    #[test]
    fn five_faults_are_all_reported() {
        let body = json!({"eventTimestamp": "not-a-date", "eventType": "forwarded",
            "body": {"text": "x"}, "from": {"email": "not-an-email"}, "to": []});
        let errors = validate(Category::Emails, body, now()).unwrap_err();
        assert_eq!(
            fields(&errors),
            ["eventTimestamp", "eventType", "from.email", "subject", "to"]
        );
        assert_eq!(
            errors.field_errors["to"],
            ["At least one recipient is required"]
        );
        assert!(errors.field_errors["eventType"][0].contains("'sent' | 'reply'"));
    }

    #[test]
    fn nested_paths_are_dotted() {
        let mut body = valid(Category::Emails);
        body["to"] = json!([{"email": "b@y.io"}, {"name": "no email"}, {"email": 5}]);
        body["body"] = json!({});
        let errors = validate(Category::Emails, body, now()).unwrap_err();
        assert_eq!(fields(&errors), ["body", "to.1.email", "to.2.email"]);
        assert_eq!(
            errors.field_errors["to.2.email"],
            ["Expected string, received number"]
        );
    }

    #[test]
    fn non_object_bodies_are_form_errors() {
        let errors = validate(Category::Crm, json!([1, 2]), now()).unwrap_err();
        assert_eq!(
            errors.form_errors,
            ["Expected a JSON object, received array"]
        );
    }

    #[test]
    fn unknown_fields_are_kept_under_passthrough() {
        let mut body = valid(Category::Crm);
        body["hubspotPortal"] = json!(42);
        let event = validate(Category::Crm, body, now()).unwrap();
        assert_eq!(
            payload(&event)[PASSTHROUGH_KEY],
            json!({"hubspotPortal": 42})
        );
        assert!(payload(&event).get("hubspotPortal").is_none());
    }

    #[test]
    fn flat_transcripts_become_turns_and_arrays_stay_as_sent() {
        let event = validate(Category::Calls, valid(Category::Calls), now()).unwrap();
        assert_eq!(
            payload(&event)["transcript"],
            json!([{"speaker": "A", "text": "hi"}, {"speaker": "B", "text": "yo"}])
        );
        let mut body = valid(Category::Calls);
        body["transcript"] = json!([{"speaker": "A", "text": "hi", "start": 1.5}]);
        let event = validate(Category::Calls, body.clone(), now()).unwrap();
        assert_eq!(payload(&event)["transcript"], body["transcript"]);
    }

    #[test]
    fn timestamp_window_is_a_field_error() {
        let mut body = valid(Category::Crm);
        body["eventTimestamp"] = json!("1800-01-01T00:00:00Z");
        let errors = validate(Category::Crm, body, now()).unwrap_err();
        assert_eq!(fields(&errors), ["eventTimestamp"]);
        assert!(errors.field_errors["eventTimestamp"][0].contains("50 years"));
    }

    #[test]
    fn explicit_event_id_is_returned() {
        let mut body = valid(Category::Emails);
        body["eventId"] = json!("deal-001-email-sent-1");
        let event = validate(Category::Emails, body, now()).unwrap();
        assert_eq!(event.dedup_id, "deal-001-email-sent-1");
    }

    /// Values a mutation puts in a member: every JSON type, edge lengths, formats, timestamps and
    /// transcripts with escapes.
    fn pool() -> Vec<Value> {
        let mut values = vec![
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(1e300),
            json!(""),
            json!(" "),
            json!("x"),
            json!("a@b.io"),
            json!("not-an-email"),
            json!("x".repeat(SHORT_TEXT + 1)),
            json!("x".repeat(LONG_TEXT + 1)),
            // At and over a length limit in characters of two bytes, or escaped ones.
            json!("ü".repeat(SHORT_TEXT)),
            json!("ü".repeat(SHORT_TEXT + 1)),
            json!("\"".repeat(SHORT_TEXT)),
            json!(-0.0),
            json!(u64::MAX),
            json!([]),
            json!([{}]),
            json!([{"email": "a@b.io"}]),
            json!(["A", {"name": "B"}]),
            json!({}),
            json!({"text": "t"}),
            json!({"html": null}),
            json!({"text": 1}),
            json!({"email": "c@d.io", "extra": [1, {"deep": "ü"}]}),
            json!("2024-02-03T10:30:00Z"),
            json!(1706956200000_i64),
            json!("1706956200"),
            json!("1800-01-01T00:00:00Z"),
            json!("https://example.com/rec"),
            json!("sent"),
            json!("transcript"),
            json!("deal_won"),
            json!("message_sent"),
            json!([{"speaker": "A", "text": "hi", "start": 1.5}]),
            json!([{"speaker": "A"}]),
        ];
        for flat in [
            "A: hi\nB: yo",
            "[00:01] A: x\r\nB: y",
            "\"Q\": \\ tricky\nR: \"quoted\"",
            "Ünïcødé: ok\n\tB: tab",
            "12: digits\nhttp://x: url",
            "A\\B: backslash name\nC: z",
            "\u{3000}A: wide space\u{a0}\n\n",
        ] {
            values.push(json!(flat));
        }
        values.push(json!(format!("{}: long name\nB: y", "n".repeat(70))));
        values
    }

    /// What the fast path and the schema path make of `bytes`.
    fn both_paths(
        category: Category,
        bytes: &[u8],
    ) -> (Option<ValidatedEvent>, Result<ValidatedEvent, String>) {
        let fast = fast::validate(category, &SCHEMAS[category as usize].fast, bytes, now());
        let slow = serde_json::from_slice(bytes)
            .map_err(|e: serde_json::Error| e.to_string())
            .and_then(|value| {
                super::validate(category, value, now()).map_err(|e| format!("{e:?}"))
            });
        (fast, slow)
    }

    /// Literals a `Value` never serializes to: escaped enum values and length-limited text,
    /// numbers beyond `f64`, negative zero, lone surrogates. Both paths judge each alike.
    #[test]
    fn escaped_and_edge_literals_are_judged_alike_on_both_paths() {
        let call = |member: &str| {
            let event_type = if member.starts_with(r#""eventType""#) {
                ""
            } else {
                r#""eventType": "transcript","#
            };
            format!(
                r##"{{"eventTimestamp": 1706956200, {event_type} "title": "t",
                "transcript": "A: hi", "participants": ["A"], {member}}}"##
            )
        };
        let cases = [
            (call(r##""eventId": "e\u0031""##), true),
            (call(r##""eventType": "tr\u0061nscript""##), true),
            (call(r##""eventType": "tr\u0061nscripts""##), false),
            (call(r##""meetingPlatform": "\u00fc\"""##), true),
            (
                call(&format!(
                    r##""eventId": "{}""##,
                    r"\u00fc".repeat(SHORT_TEXT)
                )),
                true,
            ),
            (
                call(&format!(
                    r##""eventId": "{}""##,
                    r"\u00fc".repeat(SHORT_TEXT + 1)
                )),
                false,
            ),
            (call(r##""eventId": """##), false),
            (call(r##""eventId": "\ud800""##), false),
            (call(r##""duration": -0"##), true),
            (call(r##""duration": -0.0"##), true),
            (call(r##""duration": 1E+3"##), true),
            (call(r##""duration": -1e-9"##), false),
            (call(r##""duration": 1e400"##), false),
            (
                call(r##""duration": 123456789012345678901234567890"##),
                true,
            ),
        ];
        for (body, valid) in cases {
            match both_paths(Category::Calls, body.as_bytes()) {
                (Some(fast), Ok(slow)) => {
                    assert!(valid, "accepted: {body}");
                    assert_eq!(fast, slow, "{body}");
                }
                (None, Err(_)) => assert!(!valid, "refused: {body}"),
                (fast, slow) => panic!("the paths differ on {body}: {fast:?} vs {slow:?}"),
            }
        }
    }

    /// Mutated bodies of every category go through both paths: whenever the fast one answers
    /// it answers like the schema, and it answers for every body the schema accepts.
    #[test]
    fn the_fast_path_agrees_with_the_schema_on_mutated_bodies() {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pool = pool();
        let (mut accepted, mut total) = (0, 0);
        for category in Category::ALL {
            let mut names: Vec<String> = schema_for(category)["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            names.extend([
                "passthrough".to_owned(),
                "vendor\"Field".to_owned(),
                "ü".to_owned(),
            ]);
            for _ in 0..3_000 {
                let mut body = valid(category);
                for _ in 0..rng.gen_range(0..4) {
                    let name = names.choose(&mut rng).unwrap().clone();
                    let value = pool.choose(&mut rng).unwrap().clone();
                    match rng.gen_range(0..4) {
                        0 => {
                            body.as_object_mut().unwrap().remove(&name);
                        }
                        1 => {
                            if let Some(Value::Object(inner)) = body.get_mut(&name) {
                                let key = ["text", "html", "email", "name"].choose(&mut rng);
                                inner.insert(key.unwrap().to_string(), value);
                            }
                        }
                        _ => body[name.as_str()] = value,
                    }
                }
                let mut bytes = serde_json::to_vec(&body).unwrap();
                if rng.gen_ratio(1, 20) {
                    // A repeated member, which a `Value` cannot hold: last one wins in the schema.
                    let name = names.choose(&mut rng).unwrap();
                    let tail = format!(",{}:\"again\"}}", serde_json::to_string(name).unwrap());
                    bytes.pop();
                    bytes.extend_from_slice(tail.as_bytes());
                }
                let (fast, slow) = both_paths(category, &bytes);
                total += 1;
                let body_text = String::from_utf8_lossy(&bytes);
                match (&fast, &slow) {
                    (Some(f), Ok(s)) => {
                        accepted += 1;
                        assert_eq!(f, s, "{category:?} {body_text}");
                    }
                    (Some(f), Err(e)) => {
                        panic!("{category:?}: fast accepted {f:?}, schema said {e} for {body_text}")
                    }
                    (None, Ok(_)) => {
                        let repeated = serde_json::from_slice::<Value>(&bytes).is_ok()
                            && body_text.matches("again").count() > 0;
                        assert!(
                            repeated,
                            "{category:?}: fast path declined a valid {body_text}"
                        );
                    }
                    (None, Err(_)) => {}
                }
            }
        }
        assert!(
            accepted * 5 > total,
            "only {accepted} of {total} mutated bodies were valid"
        );
    }

    #[test]
    fn valid_bodies_and_catalog_samples_take_the_fast_path() {
        let samples = crate::catalog::all().iter().filter_map(|info| {
            let (category, event_type) = info.name.split_once('.')?;
            let category = Category::parse(category)?;
            category
                .event_types()
                .contains(&event_type)
                .then(|| (category, info.sample.clone()))
        });
        let bodies = Category::ALL
            .into_iter()
            .map(|category| (category, valid(category)))
            .chain(samples);
        for (category, body) in bodies {
            let bytes = serde_json::to_vec(&body).unwrap();
            let spec = &SCHEMAS[category as usize].fast;
            assert!(
                fast::validate(category, spec, &bytes, now()).is_some(),
                "{category:?}: {body}"
            );
        }
    }

    /// `levels` objects, each the only member `a` of the one around it.
    fn nested_objects(levels: usize) -> String {
        format!(
            "{}{{}}{}",
            r#"{"a":"#.repeat(levels - 1),
            "}".repeat(levels - 1)
        )
    }

    fn crm_with(member: &str) -> String {
        format!(
            r#"{{"eventTimestamp": "1706956200", "eventType": "deal_won",
            "opportunityId": "o1", "opportunityName": "Big", {member}}}"#
        )
    }

    /// Members no other rule reads are still bound by the JSON limits, on both paths: each
    /// breach is one field error naming where it is.
    #[test]
    fn the_json_limits_bind_members_no_rule_reads() {
        let cases = [
            (
                format!(r#""customMetadata": {}"#, nested_objects(10_000)),
                format!("customMetadata{}", ".a".repeat(json_limits::MAX_DEPTH - 1)),
                "Nested too deep",
            ),
            (
                format!(
                    r#""vendor": {}{}"#,
                    "[".repeat(120_000),
                    "]".repeat(120_000)
                ),
                format!("vendor{}", ".0".repeat(json_limits::MAX_DEPTH - 1)),
                "Nested too deep",
            ),
            (
                r#""customMetadata": {"big": 1e400}"#.to_owned(),
                "customMetadata.big".to_owned(),
                "Number out of range",
            ),
            (
                format!(r#""vendor": {}"#, "7".repeat(5_000)),
                "vendor".to_owned(),
                "Number out of range",
            ),
            (
                r#""vendor": ["fine", "\ud800"]"#.to_owned(),
                "vendor.1".to_owned(),
                "Text is not valid Unicode",
            ),
            (
                r#""customMetadata": {"half\udc00": true}"#.to_owned(),
                r"customMetadata.half\udc00".to_owned(),
                "Key is not valid Unicode",
            ),
        ];
        for (member, path, rule) in cases {
            let body = crm_with(&member);
            let Err(Rejection::Invalid(errors)) =
                validate_body(Category::Crm, body.as_bytes(), now())
            else {
                panic!("accepted or malformed: {}", &body[..body.len().min(200)]);
            };
            assert_eq!(fields(&errors), [path.as_str()], "{rule}");
            assert!(
                errors.field_errors[&path][0].starts_with(rule),
                "{errors:?}"
            );
            assert!(errors.form_errors.is_empty());
        }
    }

    /// Within the limits, such members are stored exactly as sent: numbers keep their digits.
    #[test]
    fn members_no_rule_reads_are_kept_verbatim_within_the_limits() {
        // customMetadata is level 2, so its member may hold 30 levels.
        let deepest = nested_objects(json_limits::MAX_DEPTH - 2);
        let metadata = format!(r#"{{"big": 1e300, "pair": "\ud83d\ude00", "deep": {deepest}}}"#);
        let body = crm_with(&format!(
            r#""customMetadata": {metadata}, "vendor": 123456789012345678901234567890"#
        ));
        let event = validate_body(Category::Crm, body.as_bytes(), now()).unwrap();
        let text = event.payload.as_json();
        assert!(
            text.contains(&format!(r#""customMetadata":{metadata}"#)),
            "{text}"
        );
        assert!(
            text.contains(r#""passthrough":{"vendor":123456789012345678901234567890}"#),
            "{text}"
        );
        assert_eq!(event.payload.as_raw().unwrap().get(), text);
        assert!(event.payload.to_value().is_some());
    }
}
