//! The event-type catalog: every type a subscription may name, with a description and a sample.
//!
//! Each entry is a file `shared/catalog/{name}.json` of the shape
//! `{"description": "...", "sample": {...}}`, embedded at build time and parsed once.
//!
//! - Generic ingest types (`{category}.{eventType}`): the sample is a body as the ingest API
//!   stores it after normalization (RFC 3339 UTC timestamp with milliseconds, transcripts as
//!   speaker turns, no unknown fields); the description is one sentence saying what happened and
//!   whether analytics processes it.
//! - Conversation/call types of the notify API: the description as `GET /event_types` gives it,
//!   and the `data` object of the reference example. Fixes to the reference's JSON: trailing
//!   commas dropped, Python `False` → `false`, the string `"null"` → `null`,
//!   `Zapier.get_base_sample_data()[0]` → the example's workspace id, the unkeyed array under
//!   `current` keyed as `labels`, and duplicate keys resolved as a parser would (last one wins).
//!
//! The conversation/call types also carry a JSON Schema (draft 2020-12) of their `data`, in
//! `shared/catalog/{name}.schema.json`, written from the notify seed's field tables: listed
//! fields typed as listed, null allowed where the reference shows null or calls a field
//! optional, unknown members allowed, and only the object's own ids required (every event's
//! `conversation_id`, plus `message_id` of `message.new` and `call_id` of `call.updated`, which
//! the reference's table calls optional but which names the call the event is about), since the
//! reference marks no other field as always sent. Timestamps are a pattern rather than
//! `format: date-time`: the reference's values (`2025-06-20T23:44:00.000000`) carry no offset,
//! which RFC 3339 requires. Generic ingest types have no schema file: their bodies are judged
//! by the ingest rules of their category (`validation::validate`).

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

/// One event type a webhook subscription may name.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTypeInfo {
    /// The catalog name, e.g. `emails.sent` or `conversation.new`.
    pub name: String,
    pub description: String,
    /// The `data` a delivery of this type carries.
    pub sample: Value,
    /// The JSON Schema its `data` must meet; `None` for generic ingest types, which their
    /// category's ingest rules judge instead.
    pub schema: Option<Value>,
}

/// All entries, generic ingest types first (category order, then event-type order), then the 9
/// conversation/call types in the seed's order, then the 4 [operational](OPERATIONAL_TYPES) ones.
pub fn all() -> &'static [EventTypeInfo] {
    &CATALOG
}

/// The entry named exactly `name` (case-sensitive), if any.
pub fn find(name: &str) -> Option<&'static EventTypeInfo> {
    all().iter().find(|info| info.name == name)
}

/// The types Hookline emits itself about a workspace's own subscriptions and deliveries. They
/// reach the workspace's subscriptions to them, never the subscription they are about, and no
/// workspace may publish them.
pub const OPERATIONAL_TYPES: [&str; 4] = [
    "subscription.paused",
    "delivery.failing",
    "delivery.exhausted",
    "subscription.recovered",
];

/// Whether `name` is one of the [`OPERATIONAL_TYPES`].
pub fn is_operational(name: &str) -> bool {
    OPERATIONAL_TYPES.contains(&name)
}

/// Whether a subscription may name `name`.
pub fn contains(name: &str) -> bool {
    find(name).is_some()
}

/// `(name, contents of shared/catalog/{name}.json)` for each listed name, in the order given.
macro_rules! catalog_files {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../catalog/", $name, ".json")))),*]
    };
}

/// The catalog's order is this list's order.
static FILES: [(&str, &str); 31] = catalog_files![
    "emails.sent",
    "emails.reply",
    "emails.opened",
    "emails.clicked",
    "emails.bounced",
    "emails.unsubscribed",
    "calls.transcript",
    "calls.scheduled",
    "calls.completed",
    "calls.missed",
    "crm.opportunity_created",
    "crm.deal_won",
    "crm.deal_lost",
    "crm.meeting_booked",
    "social.connection_sent",
    "social.connection_accepted",
    "social.message_sent",
    "social.message_received",
    "conversation.new",
    "conversation.updated",
    "conversation.ended",
    "message.new",
    "conversation.label.added",
    "conversation.label.deleted",
    "call.new",
    "call.ended",
    "call.updated",
    "subscription.paused",
    "delivery.failing",
    "delivery.exhausted",
    "subscription.recovered",
];

/// `(name, contents of shared/catalog/{name}.schema.json)` for each listed name.
macro_rules! schema_files {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../catalog/", $name, ".schema.json")))),*]
    };
}

/// The types with a schema of their own: the notify API's conversation/call types, and the
/// operational types.
static SCHEMA_FILES: [(&str, &str); 13] = schema_files![
    "conversation.new",
    "conversation.updated",
    "conversation.ended",
    "message.new",
    "conversation.label.added",
    "conversation.label.deleted",
    "call.new",
    "call.ended",
    "call.updated",
    "subscription.paused",
    "delivery.failing",
    "delivery.exhausted",
    "subscription.recovered",
];

/// The shape of one catalog file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    description: String,
    sample: Value,
}

static CATALOG: LazyLock<Vec<EventTypeInfo>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, text)| {
            let file: CatalogFile = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("shared/catalog/{name}.json: {e}"));
            let schema = SCHEMA_FILES
                .iter()
                .find(|&&(schema_name, _)| schema_name == name)
                .map(|&(_, text)| {
                    serde_json::from_str(text)
                        .unwrap_or_else(|e| panic!("shared/catalog/{name}.schema.json: {e}"))
                });
            EventTypeInfo {
                name: name.to_owned(),
                description: file.description,
                sample: file.sample,
                schema,
            }
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Utc;

    use super::*;
    use crate::validation::{compile, schema_errors, validate, ValidationErrors, PASSTHROUGH_KEY};
    use crate::Category;

    /// The notify seed's conversation/call types in its order, written out independently of
    /// the file list so a reordering there is caught.
    #[rustfmt::skip]
    const CONVERSATION_TYPES: [&str; 9] = [
        "conversation.new", "conversation.updated", "conversation.ended", "message.new",
        "conversation.label.added", "conversation.label.deleted", "call.new", "call.ended",
        "call.updated",
    ];

    fn generic_entries() -> impl Iterator<Item = (Category, &'static str, &'static EventTypeInfo)> {
        Category::ALL.into_iter().flat_map(|category| {
            category.event_types().iter().map(move |&event_type| {
                let name = format!("{}.{event_type}", category.as_str());
                let info = find(&name).unwrap_or_else(|| panic!("{name} is missing"));
                (category, event_type, info)
            })
        })
    }

    #[test]
    fn has_31_uniquely_named_entries_in_the_documented_order() {
        assert_eq!(all().len(), 31);
        let names: Vec<&str> = all().iter().map(|info| info.name.as_str()).collect();
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
        assert_eq!(
            &names[..3],
            ["emails.sent", "emails.reply", "emails.opened"]
        );
        assert_eq!(names[6], "calls.transcript");
        assert_eq!(names[17], "social.message_received");
        assert_eq!(&names[18..27], CONVERSATION_TYPES);
        assert_eq!(&names[27..], OPERATIONAL_TYPES);
    }

    #[test]
    fn generic_entries_are_every_category_type_in_category_order() {
        let expected: Vec<String> = Category::ALL
            .into_iter()
            .flat_map(|category| {
                category
                    .event_types()
                    .iter()
                    .map(move |event_type| format!("{}.{event_type}", category.as_str()))
            })
            .collect();
        let names: Vec<&str> = all().iter().map(|info| info.name.as_str()).collect();
        assert_eq!(names[..expected.len()], expected);
    }

    #[test]
    fn every_file_in_the_catalog_folder_is_listed() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES
            .iter()
            .map(|(name, _)| format!("{name}.json"))
            .chain(
                SCHEMA_FILES
                    .iter()
                    .map(|(name, _)| format!("{name}.schema.json")),
            )
            .collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn find_and_contains_accept_exact_names_only() {
        for info in all() {
            assert!(std::ptr::eq(find(&info.name).unwrap(), info));
            assert!(contains(&info.name));
        }
        for unknown in [
            "emails.forwarded",
            "",
            "EMAILS.SENT",
            "emails",
            "sent",
            " emails.sent",
            "conversation",
            "call.new.extra",
        ] {
            assert!(find(unknown).is_none(), "{unknown:?}");
            assert!(!contains(unknown), "{unknown:?}");
        }
    }

    #[test]
    fn every_generic_sample_validates_for_its_category_and_is_already_normalized() {
        let now = Utc::now();
        let mut count = 0;
        for (category, event_type, info) in generic_entries() {
            assert_eq!(info.sample["eventType"], event_type, "{}", info.name);
            let event = validate(category, info.sample.clone(), now)
                .unwrap_or_else(|e| panic!("{}: {e:?}", info.name));
            assert_eq!(event.event_type, event_type);
            let payload = event
                .payload
                .to_value()
                .expect("catalog samples are plain JSON");
            assert!(payload.get(PASSTHROUGH_KEY).is_none(), "{}", info.name);
            assert_eq!(
                payload, info.sample,
                "{} changes when normalized",
                info.name
            );
            count += 1;
        }
        assert_eq!(count, 18);
    }

    #[test]
    fn generic_descriptions_say_whether_analytics_processes_the_type() {
        for (category, event_type, info) in generic_entries() {
            let processed = category.should_process(event_type);
            let says_not = info.description.contains("not processed for analytics");
            let says_processed = info.description.contains("processed for analytics");
            assert!(says_processed, "{}", info.name);
            assert_eq!(says_not, !processed, "{}: {}", info.name, info.description);
            assert!(info.description.ends_with('.'), "{}", info.name);
        }
        assert_eq!(
            find("emails.sent").unwrap().description,
            "An email was sent (processed for analytics)."
        );
    }

    #[test]
    fn conversation_descriptions_match_the_notify_api() {
        assert_eq!(
            find("conversation.new").unwrap().description,
            "Triggered when a new conversation is created"
        );
        assert_eq!(
            find("call.updated").unwrap().description,
            "Triggered when a call summary is generated"
        );
    }

    #[test]
    fn every_sample_is_an_object_and_every_description_is_filled_in() {
        for info in all() {
            assert!(info.sample.is_object(), "{}", info.name);
            assert!(
                !info.sample.as_object().unwrap().is_empty(),
                "{}",
                info.name
            );
            assert!(!info.description.trim().is_empty(), "{}", info.name);
        }
    }

    #[test]
    fn conversation_samples_keep_the_reference_shape() {
        for name in CONVERSATION_TYPES {
            let sample = &find(name).unwrap().sample;
            assert!(sample["conversation_id"].is_string(), "{name}");
        }
        let deleted = &find("conversation.label.deleted").unwrap().sample;
        assert_eq!(deleted["previous"]["labels"].as_array().unwrap().len(), 2);
        assert_eq!(deleted["current"]["labels"].as_array().unwrap().len(), 1);
        assert_eq!(deleted["labels"][0]["is_system"], false);
        assert!(find("conversation.ended").unwrap().sample["previous"].is_null());
    }

    /// The schema of a conversation/call type.
    fn schema_of(name: &str) -> &'static Value {
        find(name)
            .and_then(|info| info.schema.as_ref())
            .unwrap_or_else(|| panic!("{name} has no schema"))
    }

    /// What `name`'s schema finds wrong with `data`.
    fn faults(name: &str, data: &Value) -> ValidationErrors {
        schema_errors(&compile(schema_of(name)), data)
    }

    /// Whether any subschema of `schema` forbids unknown members.
    fn forbids_unknown_members(schema: &Value) -> bool {
        match schema {
            Value::Object(members) => {
                members.get("additionalProperties") == Some(&Value::Bool(false))
                    || members.get("unevaluatedProperties") == Some(&Value::Bool(false))
                    || members.values().any(forbids_unknown_members)
            }
            Value::Array(items) => items.iter().any(forbids_unknown_members),
            _ => false,
        }
    }

    #[test]
    fn exactly_the_conversation_and_operational_types_have_a_schema() {
        for info in all() {
            let name = info.name.as_str();
            assert_eq!(
                info.schema.is_some(),
                CONVERSATION_TYPES.contains(&name) || is_operational(name),
                "{name}"
            );
        }
    }

    #[test]
    fn every_operational_sample_meets_its_schema_and_names_its_subscription() {
        for name in OPERATIONAL_TYPES {
            let schema = schema_of(name);
            jsonschema::draft202012::meta::validate(schema)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(schema["title"], name);
            let info = find(name).unwrap();
            let errors = faults(name, &info.sample);
            assert!(errors.is_empty(), "{name}: {errors:?}");
            let mut unnamed = info.sample.clone();
            unnamed.as_object_mut().unwrap().remove("subscription_id");
            assert_eq!(
                faults(name, &unnamed).field_errors["subscription_id"],
                ["Required"]
            );
        }
        assert!(is_operational("subscription.paused"));
        assert!(!is_operational("conversation.new"));
    }

    #[test]
    fn every_schema_is_a_described_draft_2020_12_schema_that_compiles() {
        for name in CONVERSATION_TYPES {
            let schema = schema_of(name);
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{name}"
            );
            assert_eq!(
                schema["$id"],
                format!("https://hookline.dev/schemas/{name}.json")
            );
            assert_eq!(schema["title"], name);
            assert!(
                schema["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{name}"
            );
            assert_eq!(schema["type"], "object", "{name}");
            jsonschema::draft202012::meta::validate(schema)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            compile(schema);
            assert!(!forbids_unknown_members(schema), "{name}");
        }
    }

    #[test]
    fn every_schema_requires_its_own_ids_and_nothing_else() {
        let required = |name: &str| -> Vec<&str> {
            schema_of(name)["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect()
        };
        for name in CONVERSATION_TYPES {
            let expected: &[&str] = match name {
                "message.new" => &["conversation_id", "message_id"],
                "call.updated" => &["conversation_id", "call_id"],
                _ => &["conversation_id"],
            };
            assert_eq!(required(name), expected, "{name}");
        }
    }

    #[test]
    fn every_conversation_sample_meets_its_schema() {
        for name in CONVERSATION_TYPES {
            let errors = faults(name, &find(name).unwrap().sample);
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
    }

    #[test]
    fn unknown_members_are_allowed_at_every_level() {
        for name in CONVERSATION_TYPES {
            let mut data = find(name).unwrap().sample.clone();
            let members = data.as_object_mut().unwrap();
            for value in members.values_mut() {
                if let Value::Object(inner) = value {
                    inner.insert("vendor_extra".into(), serde_json::json!([1, {"x": null}]));
                }
            }
            members.insert("vendor_extra".into(), serde_json::json!({"deep": true}));
            let errors = faults(name, &data);
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
    }

    /// A missing id and a mistyped field of each type, each named by its dotted path alone.
    #[test]
    fn a_missing_id_or_a_mistyped_field_is_refused_by_its_path() {
        use serde_json::json;
        // (type, JSON pointer into the sample, the value put there or None to remove it, path)
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
            ("conversation.new", "/conversation_id", None, "conversation_id"),
            ("conversation.new", "/conversation_id", Some(json!(789)), "conversation_id"),
            ("conversation.new", "/customer/email", Some(json!(5)), "customer.email"),
            ("conversation.new", "/latest_inbound_message/text", Some(json!(["hi"])), "latest_inbound_message.text"),
            ("conversation.new", "/latest_outbound_message/created_at", Some(json!("yesterday")), "latest_outbound_message.created_at"),
            ("conversation.updated", "/conversation_id", None, "conversation_id"),
            ("conversation.updated", "/updated_fields/0", Some(json!(1)), "updated_fields.0"),
            ("conversation.updated", "/previous", Some(json!("false")), "previous"),
            ("conversation.updated", "/updated_at", Some(json!("2025-06-20")), "updated_at"),
            ("conversation.ended", "/conversation_id", None, "conversation_id"),
            ("conversation.ended", "/current", Some(json!(null)), "current"),
            ("conversation.ended", "/updated_by/type", Some(json!(1)), "updated_by.type"),
            ("message.new", "/message_id", None, "message_id"),
            ("message.new", "/conversation_id", None, "conversation_id"),
            ("message.new", "/content/text", Some(json!(5)), "content.text"),
            ("message.new", "/content/data", Some(json!("img.png")), "content.data"),
            ("message.new", "/sender/id", Some(json!(null)), "sender.id"),
            ("conversation.label.added", "/conversation_id", None, "conversation_id"),
            ("conversation.label.added", "/labels/0", Some(json!("solved")), "labels.0"),
            ("conversation.label.added", "/added_at", Some(json!(1750463400)), "added_at"),
            ("conversation.label.deleted", "/conversation_id", None, "conversation_id"),
            ("conversation.label.deleted", "/labels", Some(json!({"id": "x"})), "labels"),
            ("conversation.label.deleted", "/removed_by", Some(json!("agent")), "removed_by"),
            ("call.new", "/conversation_id", None, "conversation_id"),
            ("call.new", "/call_from/address", Some(json!(123456789)), "call_from.address"),
            ("call.new", "/started_at", Some(json!("2025-06-21 09:00")), "started_at"),
            ("call.ended", "/conversation_id", None, "conversation_id"),
            ("call.ended", "/duration_seconds", Some(json!(300.5)), "duration_seconds"),
            ("call.ended", "/recording_available", Some(json!("true")), "recording_available"),
            ("call.ended", "/recording_url", Some(json!("recording1234.mp3")), "recording_url"),
            ("call.updated", "/call_id", None, "call_id"),
            ("call.updated", "/conversation_id", None, "conversation_id"),
            ("call.updated", "/resources", Some(json!([])), "resources"),
            ("call.updated", "/updated_at", Some(json!("2025-02-30T25:00:00")), "updated_at"),
        ];
        let mut covered = HashSet::new();
        for (name, pointer, value, path) in cases {
            let mut data = find(name).unwrap().sample.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            assert!(data.pointer(pointer).is_some(), "{name}: no {pointer}");
            match (data.pointer_mut(parent).unwrap(), value) {
                (Value::Object(members), None) => {
                    members.remove(key);
                }
                (Value::Object(members), Some(value)) => {
                    members.insert(key.to_owned(), value);
                }
                (Value::Array(items), Some(value)) => items[key.parse::<usize>().unwrap()] = value,
                (other, _) => panic!("{name}: cannot change {pointer} in {other}"),
            }
            let errors = faults(name, &data);
            let paths: Vec<&str> = errors.field_errors.keys().map(String::as_str).collect();
            assert_eq!(paths, [path], "{name} {pointer}: {errors:?}");
            assert!(errors.form_errors.is_empty(), "{name} {pointer}");
            covered.insert(name);
        }
        assert_eq!(covered.len(), CONVERSATION_TYPES.len());
    }

    #[test]
    fn a_missing_id_is_reported_as_required() {
        let mut data = find("call.updated").unwrap().sample.clone();
        data.as_object_mut().unwrap().remove("call_id");
        assert_eq!(
            faults("call.updated", &data).field_errors["call_id"],
            ["Required"]
        );
    }

    #[test]
    fn timestamps_are_iso_8601_with_or_without_an_offset() {
        let at = |created_at: &str| {
            let mut data = find("message.new").unwrap().sample.clone();
            data["created_at"] = Value::from(created_at);
            faults("message.new", &data).is_empty()
        };
        for valid in [
            "2025-06-20T23:45:59.000000",
            "2025-06-20T23:45:59",
            "2025-06-20T23:45:59.123Z",
            "2025-06-20T23:45:59+02:00",
            "2025-06-20T23:45:59.5-07:30",
        ] {
            assert!(at(valid), "{valid}");
        }
        for invalid in [
            "",
            "2025-06-20",
            "2025-06-20 23:45:59",
            "2025-13-20T23:45:59",
            "2025-06-20T24:00:00",
            "2025-06-20T23:45:59.",
            "2025-06-20T23:45:59+0200x",
            "x2025-06-20T23:45:59",
        ] {
            assert!(!at(invalid), "{invalid}");
        }
    }

    #[test]
    fn null_is_allowed_where_the_reference_shows_it_or_calls_a_field_optional() {
        let nullable = [
            ("conversation.updated", "previous"),
            ("conversation.updated", "updated_by"),
            ("conversation.ended", "previous"),
            ("message.new", "content"),
            ("conversation.label.added", "current"),
            ("conversation.label.added", "added_by"),
            ("conversation.label.deleted", "removed_by"),
            ("call.new", "metadata"),
            ("call.ended", "recording_url"),
            ("call.updated", "update_reason"),
            ("call.updated", "resources"),
        ];
        for (name, field) in nullable {
            let mut data = find(name).unwrap().sample.clone();
            match field {
                // `content` itself is listed as an object; its optional `data` may be null.
                "content" => data["content"]["data"] = Value::Null,
                _ => data[field] = Value::Null,
            }
            let errors = faults(name, &data);
            assert!(errors.is_empty(), "{name} {field}: {errors:?}");
        }
    }
}
