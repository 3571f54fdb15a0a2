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
}

/// All entries, generic ingest types first (category order, then event-type order), then the 9
/// conversation/call types in the seed's order.
pub fn all() -> &'static [EventTypeInfo] {
    &CATALOG
}

/// The entry named exactly `name` (case-sensitive), if any.
pub fn find(name: &str) -> Option<&'static EventTypeInfo> {
    all().iter().find(|info| info.name == name)
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
static FILES: [(&str, &str); 27] = catalog_files![
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
            EventTypeInfo {
                name: name.to_owned(),
                description: file.description,
                sample: file.sample,
            }
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Utc;

    use super::*;
    use crate::validation::{validate, PASSTHROUGH_KEY};
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
    fn has_27_uniquely_named_entries_in_the_documented_order() {
        assert_eq!(all().len(), 27);
        let names: Vec<&str> = all().iter().map(|info| info.name.as_str()).collect();
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
        assert_eq!(
            &names[..3],
            ["emails.sent", "emails.reply", "emails.opened"]
        );
        assert_eq!(names[6], "calls.transcript");
        assert_eq!(names[17], "social.message_received");
        assert_eq!(&names[18..], CONVERSATION_TYPES);
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
}
