//! The event-type catalog: every type a subscription may name, with a description and a sample.

use std::sync::LazyLock;

use serde_json::{json, Value};

use crate::Category;

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

static CATALOG: LazyLock<Vec<EventTypeInfo>> = LazyLock::new(|| {
    let generic = Category::ALL.into_iter().flat_map(|category| {
        category
            .event_types()
            .iter()
            .map(move |&event_type| EventTypeInfo {
                name: format!("{}.{event_type}", category.as_str()),
                description: generic_description(category, event_type),
                sample: generic_sample(category, event_type),
            })
    });
    let conversation = conversation_entries()
        .into_iter()
        .map(|(name, description, sample)| EventTypeInfo {
            name: name.to_owned(),
            description: description.to_owned(),
            sample,
        });
    generic.chain(conversation).collect()
});

/// One sentence: what happened, and whether analytics processes it.
fn generic_description(category: Category, event_type: &str) -> String {
    let what = match (category, event_type) {
        (Category::Emails, "sent") => "An email was sent",
        (Category::Emails, "reply") => "A reply to an email was received",
        (Category::Emails, "opened") => "A recipient opened an email",
        (Category::Emails, "clicked") => "A recipient clicked a link in an email",
        (Category::Emails, "bounced") => "An email bounced",
        (Category::Emails, "unsubscribed") => "A recipient unsubscribed from emails",
        (Category::Calls, "transcript") => "A call transcript became available",
        (Category::Calls, "scheduled") => "A call was scheduled",
        (Category::Calls, "completed") => "A call was completed",
        (Category::Calls, "missed") => "A call was missed",
        (Category::Crm, "opportunity_created") => "An opportunity was created in the CRM",
        (Category::Crm, "deal_won") => "A deal was won in the CRM",
        (Category::Crm, "deal_lost") => "A deal was lost in the CRM",
        (Category::Crm, "meeting_booked") => "A meeting was booked in the CRM",
        (Category::Social, "connection_sent") => "A social connection request was sent",
        (Category::Social, "connection_accepted") => "A social connection request was accepted",
        (Category::Social, "message_sent") => "A social message was sent",
        (Category::Social, "message_received") => "A social message was received",
        // A type added to `Category` later still gets a usable sentence.
        _ => {
            return format!(
                "A {} `{event_type}` event was received ({}).",
                category.as_str(),
                analytics_note(category, event_type)
            )
        }
    };
    format!("{what} ({}).", analytics_note(category, event_type))
}

fn analytics_note(category: Category, event_type: &str) -> &'static str {
    if category.should_process(event_type) {
        "processed for analytics"
    } else {
        "stored, not processed for analytics"
    }
}

/// A body of `category` as the ingest API stores it after normalization: RFC 3339 UTC timestamp
/// with milliseconds, transcripts as speaker turns, no unknown fields.
fn generic_sample(category: Category, event_type: &str) -> Value {
    let timestamp = "2024-02-03T10:30:00.000Z";
    match category {
        Category::Emails => json!({
            "eventTimestamp": timestamp,
            "eventType": event_type,
            "eventId": format!("email-0001-{event_type}"),
            "conversationId": "thread-4f2a9c",
            "campaignId": "q1-outbound",
            "subject": "Quick question about your Q1 roadmap",
            "body": {
                "text": "Hi Sam,\n\nDo you have 20 minutes next week to talk about your Q1 roadmap?\n\nBest,\nAlex",
                "html": "<p>Hi Sam,</p><p>Do you have 20 minutes next week to talk about your Q1 roadmap?</p><p>Best,<br>Alex</p>"
            },
            "from": {"email": "alex@acme.example", "name": "Alex Rivera"},
            "to": [{"email": "sam@globex.example", "name": "Sam Lee"}],
            "cc": [{"email": "jordan@acme.example", "name": "Jordan Kim"}],
            "customMetadata": {"sequenceStep": 1}
        }),
        Category::Calls => json!({
            "eventTimestamp": timestamp,
            "eventType": event_type,
            "eventId": format!("call-0001-{event_type}"),
            "conversationId": "deal-001",
            "title": "Discovery call: Acme x Globex",
            "transcript": [
                {"speaker": "Alex Rivera", "text": "Thanks for making the time today, Sam.", "start": 0, "end": 4},
                {"speaker": "Sam Lee", "text": "Happy to. We're evaluating tools for Q1.", "start": 4, "end": 9}
            ],
            "participants": [
                {"name": "Alex Rivera", "email": "alex@acme.example"},
                {"name": "Sam Lee", "email": "sam@globex.example"}
            ],
            "duration": 1800,
            "recordingUrl": "https://recordings.example.com/calls/call-0001.mp3",
            "meetingPlatform": "zoom",
            "customMetadata": {"region": "emea"}
        }),
        Category::Crm => {
            let stage = match event_type {
                "deal_won" => "Closed Won",
                "deal_lost" => "Closed Lost",
                "meeting_booked" => "Meeting Booked",
                _ => "Qualification",
            };
            json!({
                "eventTimestamp": timestamp,
                "eventType": event_type,
                "opportunityId": "006Dn00000A1b2C",
                "opportunityName": "Globex - Platform Expansion",
                "amount": 48000,
                "stage": stage,
                "accountName": "Globex Corporation",
                "contactName": "Sam Lee",
                "contactEmail": "sam@globex.example",
                "closeDate": "2024-03-29",
                "customMetadata": {"crm": "salesforce"}
            })
        }
        Category::Social => {
            let (from, to) = if event_type.ends_with("received") || event_type.ends_with("accepted")
            {
                (
                    json!("https://www.linkedin.com/in/sam-lee"),
                    json!({"name": "Alex Rivera", "email": "alex@acme.example"}),
                )
            } else {
                (
                    json!({"name": "Alex Rivera", "email": "alex@acme.example"}),
                    json!("https://www.linkedin.com/in/sam-lee"),
                )
            };
            let message_type = if event_type.starts_with("connection") {
                "connection_request"
            } else {
                "message"
            };
            json!({
                "eventTimestamp": timestamp,
                "eventType": event_type,
                "eventId": format!("social-0001-{event_type}"),
                "conversationId": "li-thread-7731",
                "campaignId": "li-q1-outreach",
                "campaignName": "Q1 LinkedIn outreach",
                "messageType": message_type,
                "body": {"text": "Hi Sam, great meeting you at SaaStr. Would love to stay in touch."},
                "from": from,
                "to": to,
                "customMetadata": {"network": "linkedin"}
            })
        }
    }
}

/// The conversation/call types of the notify API: name, description as `GET /event_types` gives
/// it, and the `data` object of the reference example. Fixes to the reference's JSON: trailing
/// commas dropped, Python `False` → `false`, the string `"null"` → `null`,
/// `Zapier.get_base_sample_data()[0]` → the example's workspace id, the unkeyed array under
/// `current` keyed as `labels`, and duplicate keys resolved as a parser would (last one wins).
fn conversation_entries() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "conversation.new",
            "Triggered when a new conversation is created",
            json!({
                "conversation_id": "conv-789",
                "conversation_title": "Test Example Conversation",
                "channel": "WEBCHAT",
                "customer": {
                    "id": "fb0b4af0-ad6a-48a3-ad3c-d10b237b432c",
                    "name": "Test User",
                    "email": "Test@example.com",
                    "phone": "+123456789",
                    "address": "Test AI Agent",
                    "channel": "WEBCHAT"
                },
                "latest_inbound_message": {
                    "id": "msg-in-123456",
                    "direction": "INBOUND",
                    "text": "Hello, I need help!",
                    "type": "text",
                    "created_at": "2025-06-20T23:44:00.000000"
                },
                "latest_outbound_message": {
                    "id": "msg-out-123456",
                    "direction": "OUTBOUND",
                    "text": "Sure, how can I assist?",
                    "type": "text",
                    "created_at": "2025-06-20T23:44:30.000000"
                }
            }),
        ),
        (
            "conversation.updated",
            "Triggered when a conversation is updated",
            json!({
                "conversation_id": "conv-789",
                "conversation_title": "Test Example Conversation",
                "channel": "WEBCHAT",
                "customer": {
                    "id": "fb0b4af0-ad6a-48a3-ad3c-d10b237b432c",
                    "name": "Test User",
                    "email": "zapier@example.com",
                    "phone": "+123456789",
                    "address": "Test AI Agent",
                    "channel": "WEBCHAT"
                },
                "updated_fields": ["is_unread"],
                "previous": {"is_unread": "false"},
                "current": {"is_unread": "true"},
                "updated_by": {"id": "user_123", "name": "Admin", "type": "agent"},
                "updated_at": "2025-06-20T23:44:59.000000"
            }),
        ),
        (
            "conversation.ended",
            "Triggered when a conversation is ended",
            json!({
                "conversation_id": "conv-789",
                "conversation_title": "Test Example Conversation",
                "channel": "WEBCHAT",
                "customer": {
                    "id": "fb0b4af0-ad6a-48a3-ad3c-d10b237b432c",
                    "name": "Test User",
                    "email": "Test@example.com",
                    "phone": "+123456789",
                    "address": "Test AI Agent",
                    "channel": "WEBCHAT"
                },
                "updated_fields": ["CSAT_SUBMISSION"],
                "previous": null,
                "current": {
                    "rating": 5,
                    "comment": "Quick and accurate response. Nice experience!"
                },
                "updated_by": {"type": "USER", "id": "user-abc-123", "name": "Test User"},
                "updated_at": "2025-06-20T23:44:59.000000"
            }),
        ),
        (
            "message.new",
            "Triggered when a message is sent",
            json!({
                "conversation_id": "conv-789",
                "conversation_title": "Test Example Conversation",
                "message_id": "msg-789",
                "direction": "INBOUND",
                "created_at": "2025-06-20T23:45:59.000000",
                "sender": {
                    "type": "CUSTOMER",
                    "id": "fb0b4af0-ad6a-48a3-ad3c-d10b237b432c",
                    "name": "Test User"
                },
                "content": {
                    "type": "text",
                    "text": "Hello, I need help!",
                    "data": null
                }
            }),
        ),
        (
            "conversation.label.added",
            "Triggered when a label is added to a conversation",
            json!({
                "conversation_id": "conv-789",
                "conversation_title": "Test Example Conversation",
                "channel": "WEBCHAT",
                "customer": {
                    "id": "fb0b4af0-ad6a-48a3-ad3c-d10b237b432c",
                    "name": "Test User",
                    "email": "Test@example.com",
                    "phone": "+123456789",
                    "address": "Test AI Agent",
                    "channel": "WEBCHAT"
                },
                "updated_fields": ["labels"],
                "previous": {},
                "current": {
                    "labels": [
                        {
                            "id": "90c51757408941e2834f76392249b10f",
                            "color": "#a7927f",
                            "label": "solved",
                            "created_at": "2025-05-10T00:20:38.834259",
                            "updated_at": "2025-05-10T00:20:38.834259",
                            "description": "",
                            "workspace_id": "workspace-123"
                        }
                    ]
                },
                "added_by": {"id": "user-001", "type": "agent", "name": "Support Agent"},
                "added_at": "2025-06-20T23:50:00.000000",
                "labels": [
                    {
                        "id": "90c51757408941e2834f76392249b10f",
                        "name": "solved",
                        "type": "CONVERSATION",
                        "color": "#a7927f",
                        "is_system": false,
                        "description": ""
                    }
                ]
            }),
        ),
        (
            "conversation.label.deleted",
            "Triggered when a label is removed from a conversation",
            json!({
                "conversation_id": "conv-789",
                "conversation_title": "Test Example Conversation",
                "channel": "WEBCHAT",
                "customer": {
                    "id": "fb0b4af0-ad6a-48a3-ad3c-d10b237b432c",
                    "name": "Test User",
                    "email": "Test@example.com",
                    "phone": "+123456789",
                    "address": "Test AI Agent",
                    "channel": "WEBCHAT"
                },
                "updated_fields": ["labels"],
                "previous": {
                    "labels": [
                        {
                            "id": "8d99e9b041f04447858cde7506cee4d5",
                            "color": "#565e9c",
                            "label": "newUser",
                            "created_at": "2025-04-08T02:48:25.059243",
                            "updated_at": "2025-04-08T02:48:25.059243",
                            "description": "this is a new user",
                            "workspace_id": "workspace-123"
                        },
                        {
                            "id": "90c51757408941e2834f76392249b10f",
                            "color": "#a7927f",
                            "label": "solved",
                            "created_at": "2025-05-10T00:20:38.834259",
                            "updated_at": "2025-05-10T00:20:38.834259",
                            "description": "",
                            "workspace_id": "workspace-123"
                        }
                    ]
                },
                "current": {
                    "labels": [
                        {
                            "id": "8d99e9b041f04447858cde7506cee4d5",
                            "color": "#565e9c",
                            "label": "newUser",
                            "created_at": "2025-04-08T02:48:25.059243",
                            "updated_at": "2025-04-08T02:48:25.059243",
                            "description": "this is a new user",
                            "workspace_id": "workspace-123"
                        }
                    ]
                },
                "removed_by": {"id": "user-002", "type": "agent", "name": "Support Agent"},
                "removed_at": "2025-06-21T00:00:00.000000",
                "labels": [
                    {
                        "id": "90c51757408941e2834f76392249b10f",
                        "name": "solved",
                        "type": "CONVERSATION",
                        "color": "#a7927f",
                        "is_system": false,
                        "description": ""
                    }
                ]
            }),
        ),
        (
            "call.new",
            "Triggered when a call starts",
            json!({
                "conversation_id": "conv-call-001",
                "conversation_title": "+11234567890",
                "channel": "SEAX_CALL",
                "direction": "INBOUND",
                "started_at": "2025-06-21T09:00:00.000000",
                "call_from": call_party("+123456789", "Zapier AI Agent", "AGENT"),
                "call_to": call_party("agent-001", "+123456789", "CUSTOMER"),
                "metadata": {"sip_session_id": "abc123", "recording_enabled": true}
            }),
        ),
        (
            "call.ended",
            "Triggered when a call ends",
            json!({
                "conversation_id": "conv-call-001",
                "conversation_title": "+11234567890",
                "channel": "SEAX_CALL",
                "direction": "INBOUND",
                "duration_seconds": 300,
                "finish_reason": "completed",
                "call_from": call_party("+123456789", "Zapier AI Agent", "AGENT"),
                "call_to": call_party("agent-001", "+123456789", "CUSTOMER"),
                "finished_at": "2025-06-21T09:15:00.000000",
                "finished_by": "2025-06-21T09:15:00.000000",
                "recording_available": true,
                "recording_url": "https://recordings.example.com/recording1234.mp3"
            }),
        ),
        (
            "call.updated",
            "Triggered when a call summary is generated",
            json!({
                "conversation_id": "conv-call-001",
                "conversation_title": "+11234567890",
                "call_id": "call-abc-123",
                "update_reason": "recording_ready",
                "previous": {"recording_url": null},
                "current": {
                    "recording_url": "https://recordings.example.com/recording1234.mp3"
                },
                "updated_at": "2025-06-22T10:10:00.000000",
                "resources": {
                    "session_id": "789456123",
                    "channel_type": "SEAX_CALL",
                    "conversation_id": "123456"
                }
            }),
        ),
    ]
}

/// A party of the seed's call examples, which all dial the same number.
fn call_party(id: &str, name: &str, kind: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "type": kind,
        "address": "+123456789",
        "conversation_id": "123",
        "conversation_title": "+123456789"
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Utc;

    use super::*;
    use crate::validation::{validate, PASSTHROUGH_KEY};

    const CONVERSATION_TYPES: [&str; 9] = [
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
