//! Custom event types: the types a workspace defines for itself beside the built-in catalog,
//! each with a description, an optional JSON Schema (draft 2020-12) its data must satisfy and an
//! optional sample that test sends deliver.
//!
//! A type is defined once and never edited: changing one is deleting it and defining it anew,
//! which gives it a new [`CustomEventType::schema_hash`] if its schema changed. The compiled-schema
//! cache ([`CustomTypes`]) keys on that hash, so no process ever validates against a stale schema.

mod cache;
mod references;
mod sample;
mod schema;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog;
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::EventTypeStore;
use crate::validation::ValidationErrors;

pub use cache::{Checked, CustomTypes};
pub use schema::{compile_schema, MAX_SCHEMA_BYTES};

/// Custom types one workspace may hold; every store enforces it atomically on create.
pub const MAX_EVENT_TYPES_PER_WORKSPACE: usize = 200;
/// Longest type name.
pub const MAX_NAME_LEN: usize = 128;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// The limit rule every store applies when it counts, inside the write that creates.
pub fn room_for_another(held: usize) -> bool {
    held < MAX_EVENT_TYPES_PER_WORKSPACE
}

/// A name of the shape `^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`, at most [`MAX_NAME_LEN`] long: what
/// a custom type may be called (built-in names have this shape too; [`CustomEventType::define`]
/// refuses those).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventTypeName(String);

impl EventTypeName {
    /// The name, or why `raw` is not one.
    pub fn check(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_NAME_LEN {
            return Err(format!("Must be at most {MAX_NAME_LEN} characters"));
        }
        let mut segments = raw.split('.');
        let first = segments.next().unwrap_or_default();
        let word = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let starts_with_letter = first.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        let rest: Vec<&str> = segments.collect();
        if starts_with_letter && word(first) && !rest.is_empty() && rest.iter().all(|s| word(s)) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(
                "Must be dot-separated lowercase words (a-z, 0-9, _) starting with a letter, \
                 with at least one dot, e.g. invoice.paid"
                    .to_owned(),
            )
        }
    }

    /// The name, if `raw` is one; a path segment that is not reads like an unknown type.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::check(raw).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EventTypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EventTypeName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::check(&raw).map_err(|why| format!("event type name {raw:?}: {why}"))
    }
}

impl From<EventTypeName> for String {
    fn from(name: EventTypeName) -> String {
        name.0
    }
}

/// What a caller defines a type with.
#[derive(Debug, Clone)]
pub struct NewEventType {
    pub name: String,
    pub description: String,
    pub schema: Option<Value>,
    pub sample: Option<Value>,
}

/// One event type a workspace defined for itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomEventType {
    pub workspace_id: WorkspaceId,
    pub name: EventTypeName,
    pub description: String,
    /// The JSON Schema (draft 2020-12) a published event's `data` must satisfy; none: any.
    pub schema: Option<Value>,
    /// What a test send delivers as `data`; it satisfies the schema.
    pub sample: Option<Value>,
    /// BLAKE3 of the schema as defined: what the compiled-schema cache is keyed on.
    pub schema_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a test send of a type delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum TestPayload {
    Ready(Value),
    /// Neither built in nor one of the workspace's types.
    Unknown,
    /// A custom type without a sample whose schema no generated instance satisfies.
    NeedsSample,
}

impl CustomEventType {
    /// A new type of `workspace`, or every fault of `new` (dotted paths from the body: `event_type`,
    /// `schema…`, `sample…`): the name rule, built-in names, the schema's size and compilation,
    /// and the sample against the schema.
    pub fn define(
        workspace: WorkspaceId,
        new: NewEventType,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = match EventTypeName::check(&new.name) {
            Ok(_) if catalog::contains(&new.name) => {
                errors.add(
                    "event_type".into(),
                    format!(
                        "{:?} is a built-in event type; choose another name",
                        new.name
                    ),
                );
                None
            }
            Ok(name) => Some(name),
            Err(why) => {
                errors.add("event_type".into(), why);
                None
            }
        };
        let validator = match &new.schema {
            Some(schema) => match compile_schema(schema) {
                Ok(validator) => Some(validator),
                Err(faults) => {
                    merge(&mut errors, faults);
                    None
                }
            },
            None => None,
        };
        if let (Some(validator), Some(sample)) = (&validator, &new.sample) {
            let faults = crate::validation::schema_errors(validator, sample);
            merge(&mut errors, nested("sample", faults));
        }
        match name {
            Some(name) if errors.is_empty() => Ok(Self {
                workspace_id: workspace,
                name,
                description: new.description,
                schema_hash: new.schema.as_ref().map(schema::hash),
                schema: new.schema,
                sample: new.sample,
                created_at: now,
            }),
            _ => Err(errors),
        }
    }

    /// The `data` a test send of this type delivers: its sample; else an instance generated
    /// from its schema (required members with values of their type, honouring `const`, `enum`,
    /// `default` and `examples`); else `{}` if the schema accepts it.
    pub fn test_payload(&self) -> Result<TestPayload, StoreError> {
        if let Some(sample) = &self.sample {
            return Ok(TestPayload::Ready(sample.clone()));
        }
        let Some(schema) = &self.schema else {
            return Ok(TestPayload::Ready(Value::Object(Default::default())));
        };
        let validator = compile_schema(schema).map_err(|_| self.corrupt_schema())?;
        let mut candidates = sample::minimal_instance(schema)
            .into_iter()
            .chain([Value::Object(Default::default())]);
        Ok(candidates
            .find(|candidate| validator.is_valid(candidate))
            .map_or(TestPayload::NeedsSample, TestPayload::Ready))
    }

    /// A stored schema that no longer compiles was not written by [`Self::define`].
    pub(crate) fn corrupt_schema(&self) -> StoreError {
        StoreError::Corrupt(format!(
            "the stored schema of event type {} of {} does not compile",
            self.name, self.workspace_id
        ))
    }
}

/// The `data` a test send of `name` delivers in `workspace`: a built-in type's catalog sample,
/// or a custom type's [`CustomEventType::test_payload`].
pub async fn test_payload<T: EventTypeStore>(
    store: &T,
    workspace: &WorkspaceId,
    name: &str,
) -> Result<TestPayload, StoreError> {
    if let Some(info) = catalog::find(name) {
        return Ok(TestPayload::Ready(info.sample.clone()));
    }
    let Some(name) = EventTypeName::parse(name) else {
        return Ok(TestPayload::Unknown);
    };
    match store.get_event_type(workspace, &name).await? {
        Some(custom) => custom.test_payload(),
        None => Ok(TestPayload::Unknown),
    }
}

/// The event types a workspace's subscriptions may name: the catalog's, and its own.
#[derive(Debug, Clone, Default)]
pub struct KnownTypes {
    own: HashSet<String>,
}

impl KnownTypes {
    /// What a subscription naming `wanted` may name; reads the workspace's own types only when
    /// `wanted` names one outside the catalog.
    pub async fn for_names<'a, T: EventTypeStore>(
        store: &T,
        workspace: &WorkspaceId,
        wanted: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, StoreError> {
        if wanted.into_iter().all(catalog::contains) {
            return Ok(Self::default());
        }
        let own = store.list_event_types(workspace).await?;
        Ok(Self {
            own: own.into_iter().map(|t| t.name.into()).collect(),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        catalog::contains(name) || self.own.contains(name)
    }
}

/// `errors` as faults of the member `at` of a body: `x.y` becomes `at.x.y`, a form error `at`.
pub fn nested(at: &str, errors: ValidationErrors) -> ValidationErrors {
    let mut out = ValidationErrors::default();
    for message in errors.form_errors {
        out.add(at.to_owned(), message);
    }
    for (path, messages) in errors.field_errors {
        for message in messages {
            out.add(format!("{at}.{path}"), message);
        }
    }
    out
}

fn merge(into: &mut ValidationErrors, from: ValidationErrors) {
    for message in from.form_errors {
        into.add(String::new(), message);
    }
    for (path, messages) in from.field_errors {
        for message in messages {
            into.add(path.clone(), message);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn new(name: &str, schema: Option<Value>, sample: Option<Value>) -> NewEventType {
        NewEventType {
            name: name.into(),
            description: "An invoice was paid".into(),
            schema,
            sample,
        }
    }

    fn define(new: NewEventType) -> Result<CustomEventType, ValidationErrors> {
        CustomEventType::define(WorkspaceId::generate(), new, Utc::now())
    }

    fn invoice_schema() -> Value {
        json!({"type": "object", "required": ["invoice_id", "amount"],
            "properties": {"invoice_id": {"type": "string", "minLength": 3},
                "amount": {"type": "number", "minimum": 1},
                "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}}}})
    }

    #[test]
    fn names_follow_the_documented_rule() {
        for good in [
            "invoice.paid",
            "a.b",
            "billing.invoice.paid_late",
            "x1_.2",
            "a._",
        ] {
            assert!(EventTypeName::parse(good).is_some(), "{good}");
        }
        let longest = format!("a.{}", "b".repeat(MAX_NAME_LEN - 2));
        assert!(EventTypeName::parse(&longest).is_some());
        for bad in [
            "",
            "invoice",
            "Invoice.paid",
            "1nvoice.paid",
            "_invoice.paid",
            "invoice.",
            ".paid",
            "invoice..paid",
            "invoice.Paid",
            "invoice.pa-id",
            "invoice paid.x",
            "invoïce.paid",
            "invoice.paid\n",
        ] {
            assert!(EventTypeName::parse(bad).is_none(), "{bad:?}");
        }
        let too_long = format!("a.{}", "b".repeat(MAX_NAME_LEN - 1));
        assert!(EventTypeName::check(&too_long)
            .unwrap_err()
            .contains("at most 128"));
    }

    #[test]
    fn a_type_with_a_schema_and_a_matching_sample_is_defined_with_its_hash() {
        let sample = json!({"invoice_id": "inv_1", "amount": 12.5});
        let defined = define(new(
            "invoice.paid",
            Some(invoice_schema()),
            Some(sample.clone()),
        ))
        .unwrap();
        assert_eq!(defined.name.as_str(), "invoice.paid");
        assert_eq!(defined.sample, Some(sample));
        let hash = defined.schema_hash.clone().unwrap();
        let again = define(new("invoice.paid", Some(invoice_schema()), None)).unwrap();
        assert_eq!(
            again.schema_hash,
            Some(hash.clone()),
            "the hash is of the content"
        );
        let other = define(new("invoice.paid", Some(json!({"type": "object"})), None)).unwrap();
        assert_ne!(other.schema_hash, Some(hash));
        assert_eq!(
            define(new("invoice.paid", None, None)).unwrap().schema_hash,
            None
        );
    }

    #[test]
    fn built_in_names_are_refused() {
        for built_in in ["emails.sent", "conversation.label.added", "call.new"] {
            let errors = define(new(built_in, None, None)).unwrap_err();
            assert!(
                errors.field_errors["event_type"][0].contains("built-in"),
                "{built_in}: {errors:?}"
            );
        }
    }

    #[test]
    fn every_fault_of_the_sample_is_named_with_a_dotted_path() {
        let sample = json!({"invoice_id": "x", "lines": [{"sku": "a"}, {}]});
        let errors = define(new("invoice.paid", Some(invoice_schema()), Some(sample))).unwrap_err();
        let paths: Vec<&str> = errors.field_errors.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            ["sample.amount", "sample.invoice_id", "sample.lines.1.sku"],
            "{errors:?}"
        );
        let errors = define(new(
            "invoice.paid",
            Some(invoice_schema()),
            Some(json!("text")),
        ))
        .unwrap_err();
        assert!(errors.field_errors.contains_key("sample"), "{errors:?}");
    }

    #[test]
    fn a_schema_that_does_not_compile_is_refused_saying_where_and_why() {
        let errors = define(new(
            "invoice.paid",
            Some(json!({"type": "object", "properties": {"amount": {"type": "money"}}})),
            Some(json!({})),
        ))
        .unwrap_err();
        let (path, messages) = errors.field_errors.iter().next().unwrap();
        assert!(path.starts_with("schema"), "{errors:?}");
        assert!(messages[0].contains("money"), "{errors:?}");
        assert_eq!(
            errors.field_errors.len(),
            1,
            "no sample check without a schema"
        );
    }

    #[test]
    fn several_faults_are_reported_together() {
        let errors = define(new("Bad", Some(json!({"minimum": "one"})), None)).unwrap_err();
        assert!(errors.field_errors.contains_key("event_type"), "{errors:?}");
        assert!(
            errors.field_errors.keys().any(|p| p.starts_with("schema")),
            "{errors:?}"
        );
    }

    #[test]
    fn the_test_payload_is_the_sample_then_a_generated_instance_then_an_empty_object() {
        let sample = json!({"invoice_id": "inv_1", "amount": 3});
        let with_sample = define(new(
            "invoice.paid",
            Some(invoice_schema()),
            Some(sample.clone()),
        ))
        .unwrap();
        assert_eq!(
            with_sample.test_payload().unwrap(),
            TestPayload::Ready(sample)
        );

        let generated = define(new("invoice.paid", Some(invoice_schema()), None)).unwrap();
        let TestPayload::Ready(payload) = generated.test_payload().unwrap() else {
            panic!("a payload is generated");
        };
        assert_eq!(payload, json!({"invoice_id": "xxx", "amount": 1}));

        let no_schema = define(new("invoice.paid", None, None)).unwrap();
        assert_eq!(
            no_schema.test_payload().unwrap(),
            TestPayload::Ready(json!({}))
        );

        let pattern = json!({"type": "object", "required": ["code"],
            "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}}});
        let unsatisfiable = define(new("invoice.paid", Some(pattern), None)).unwrap();
        assert_eq!(
            unsatisfiable.test_payload().unwrap(),
            TestPayload::NeedsSample
        );
    }

    #[test]
    fn nested_errors_keep_their_paths_under_the_member() {
        let mut errors = ValidationErrors::form("Expected a JSON object, received string");
        errors.add("a.0".into(), "Required".into());
        let nested = nested("data", errors);
        assert!(nested.form_errors.is_empty());
        assert_eq!(
            nested.field_errors["data"],
            ["Expected a JSON object, received string"]
        );
        assert_eq!(nested.field_errors["data.a.0"], ["Required"]);
    }
}
