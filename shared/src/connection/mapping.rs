//! What a provider's event becomes. Where it carries what a generic category needs (seed 004's
//! `call.completed`, seed 003's `campaign.email.*` and `lead.linkedin.new`) it is built into
//! that category's body and judged by ingest's own rules, so it is normalized exactly like an
//! ingested one; anything else is kept as `{namespace}.{provider event}` with the provider's
//! payload as its data. Nothing a provider sends is dropped.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::Connection;
use crate::event::{Affect, Event, EventSource};
use crate::ids::EventId;
use crate::validation::{validate, ValidationErrors};
use crate::{Category, RawJson};

/// Longest event type name (the custom-type rule).
pub const MAX_TYPE_LEN: usize = 128;

/// One verified delivery, before it becomes an event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// The provider's event name (`call.completed`, `lead.create`).
    pub name: String,
    /// The provider's payload: what a kept event carries as its data.
    pub payload: Value,
    /// The envelope's own send time, where the provider gives one.
    pub sent_at: Option<Value>,
    pub dedup_id: String,
}

/// The custom type `{namespace}.{event}` a provider event is kept as: lower-cased, characters
/// outside `[a-z0-9_.]` as `_`. `None` for a name no type can be made of.
pub fn custom_type(namespace: &str, event: &str) -> Option<String> {
    let event: String = event
        .trim()
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '.') => c,
            _ => '_',
        })
        .collect();
    if event.is_empty() || event.split('.').any(str::is_empty) {
        return None;
    }
    let name = format!("{namespace}.{event}");
    (name.len() <= MAX_TYPE_LEN).then_some(name)
}

impl Connection {
    /// The event `delivered` becomes in this connection's workspace. `event_field` names the
    /// provider's event name in the request (`type`, `event`) for the fault when no type can be
    /// made of it.
    pub fn event_from(
        &self,
        delivered: ProviderEvent,
        event_field: &str,
        now: DateTime<Utc>,
    ) -> Result<Event, ValidationErrors> {
        let source = EventSource::Connection {
            connection_id: self.id.to_string(),
            name: self.name.clone(),
        };
        let event = |event_type, timestamp, should_process, payload| Event {
            id: EventId::generate(),
            workspace_id: self.workspace_id.clone(),
            dedup_id: delivered.dedup_id.clone(),
            event_type,
            source: source.clone(),
            affect: Affect::Add,
            timestamp,
            received_at: now,
            should_process,
            payload,
            deliver_at: None,
        };
        if let Some((category, short, body)) = generic_body(&delivered) {
            // Short of a category's fields it stays the provider's own event, below.
            if let Ok(valid) = validate(category, body, now) {
                return Ok(event(
                    category.full_type(short),
                    valid.timestamp,
                    category.should_process(short),
                    valid.payload,
                ));
            }
        }
        let Some(event_type) = custom_type(&self.namespace(), &delivered.name) else {
            return Err(ValidationErrors::field(
                event_field,
                format!(
                    "An event name of letters, digits, _ and . segments, at most {} characters with the connection's name",
                    MAX_TYPE_LEN
                ),
            ));
        };
        Ok(event(
            event_type,
            now,
            true,
            RawJson::from_value(&delivered.payload),
        ))
    }
}

/// The generic category, its short type and the ingest body a provider event maps to, if it
/// is one of the mapped ones. Whether the body holds enough is for validation to say.
fn generic_body(delivered: &ProviderEvent) -> Option<(Category, &'static str, Value)> {
    let payload = &delivered.payload;
    let (category, short, mut body) = match delivered.name.as_str() {
        "call.completed" => (Category::Calls, "transcript", call_body(payload)?),
        "lead.linkedin.new" => (Category::Social, "message_received", social_body(payload)),
        name => {
            let short = match name.strip_prefix("campaign.email.")? {
                "sent" => "sent",
                "reply" => "reply",
                "open" => "opened",
                "click" => "clicked",
                "bounce" => "bounced",
                "unsubscribe" => "unsubscribed",
                _ => return None,
            };
            (Category::Emails, short, email_body(payload))
        }
    };
    body.insert("eventType".into(), json!(short));
    if !body.contains_key("eventTimestamp") {
        let sent = first(payload, &["timestamp", "sent_at", "created_at", "date"])
            .or(delivered.sent_at.as_ref());
        if let Some(at) = sent {
            body.insert("eventTimestamp".into(), assume_utc(at));
        }
    }
    body.insert(
        "customMetadata".into(),
        json!({"providerEvent": delivered.name, "providerPayload": payload}),
    );
    Some((category, short, Value::Object(body)))
}

/// Seed 004's `call.completed`: `payload.call` with its title, `transcript` turns of
/// `speakerName`/`prospectText`, `prospects`, `user` and `stats.duration`.
fn call_body(payload: &Value) -> Option<Map<String, Value>> {
    let call = payload.get("call")?;
    let mut body = Map::new();
    if let Some(title) = call.get("title") {
        body.insert("title".into(), title.clone());
    }
    if let Some(turns) = call.get("transcript").and_then(Value::as_array) {
        let turns: Vec<Value> = turns
            .iter()
            .filter_map(|turn| {
                let speaker = turn.get("speakerName")?.as_str()?;
                let text = turn.get("prospectText")?.as_str()?;
                Some(json!({"speaker": speaker, "text": text}))
            })
            .collect();
        body.insert("transcript".into(), Value::Array(turns));
    }
    let prospects = call.get("prospects").and_then(Value::as_array);
    let mut participants: Vec<Value> = prospects
        .into_iter()
        .flatten()
        .filter_map(|prospect| party(prospect, "prospect"))
        .collect();
    let user = call.get("user").or_else(|| payload.get("user"));
    participants.extend(user.and_then(|user| party(user, "user")));
    body.insert("participants".into(), Value::Array(participants));
    if let Some(duration) = call.pointer("/stats/duration") {
        body.insert("duration".into(), duration.clone());
    }
    if let Some(id) = call.get("id") {
        body.insert("conversationId".into(), id.clone());
    }
    if let Some(at) = call.get("createdAt") {
        body.insert("eventTimestamp".into(), assume_utc(at));
    }
    Some(body)
}

/// A call participant from a prospect or user object: its name, id and role, and its email
/// when it is one (sample payloads carry the placeholder `"email"`, which would fail the
/// whole call).
fn party(who: &Value, role: &str) -> Option<Value> {
    let mut out = Map::new();
    if let Some(name) = who.get("name").and_then(Value::as_str) {
        out.insert("name".into(), json!(name));
    }
    if let Some(email) = who.get("email").and_then(Value::as_str) {
        if email.contains('@') {
            out.insert("email".into(), json!(email));
        }
    }
    if out.is_empty() {
        return None;
    }
    if let Some(id) = who.get("id") {
        out.insert("id".into(), id.clone());
    }
    out.insert("role".into(), json!(role));
    Some(Value::Object(out))
}

/// Seed 003's `campaign.email.*`: the subject, text/html body, sender and recipients under the
/// names such payloads use.
fn email_body(payload: &Value) -> Map<String, Value> {
    let mut body = Map::new();
    if let Some(subject) = first(payload, &["subject", "email_subject"]) {
        body.insert("subject".into(), subject.clone());
    }
    if let Some(message) = message(payload) {
        body.insert("body".into(), message);
    }
    let from = payload
        .get("from")
        .map(person)
        .or_else(|| first(payload, &["from_email", "sender_email"]).map(person));
    if let Some(from) = from {
        body.insert("from".into(), from);
    }
    let to = match payload.get("to") {
        Some(Value::Array(all)) => Some(all.iter().map(person).collect()),
        Some(one) => Some(vec![person(one)]),
        None => first(payload, &["to_email", "lead_email", "email"]).map(|one| vec![person(one)]),
    };
    if let Some(to) = to {
        body.insert("to".into(), Value::Array(to));
    }
    if let Some(campaign) = first(payload, &["campaign_id", "id_campaign"]) {
        body.insert("campaignId".into(), campaign.clone());
    }
    body
}

/// Seed 003's `lead.linkedin.new`: a LinkedIn message from the lead.
fn social_body(payload: &Value) -> Map<String, Value> {
    let mut body = Map::new();
    if let Some(message) = message(payload) {
        body.insert("body".into(), message);
    }
    if let Some(from) = first(payload, &["from", "linkedin_url", "sender"]) {
        body.insert("from".into(), from.clone());
    }
    if let Some(to) = first(payload, &["to", "recipient"]) {
        body.insert("to".into(), to.clone());
    }
    body.insert("messageType".into(), json!("linkedin"));
    body
}

/// A message body: an object with `text`/`html` as sent, or one made of the text members.
fn message(payload: &Value) -> Option<Value> {
    if let Some(body @ Value::Object(_)) = payload.get("body") {
        return Some(body.clone());
    }
    let mut out = Map::new();
    if let Some(text) = first(payload, &["text", "body", "message", "content"]) {
        out.insert("text".into(), text.clone());
    }
    if let Some(html) = first(payload, &["html", "body_html"]) {
        out.insert("html".into(), html.clone());
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// A person as the emails category has them: an object as sent, or an address as `{email}`.
fn person(value: &Value) -> Value {
    match value {
        Value::String(email) => json!({"email": email}),
        other => other.clone(),
    }
}

/// The first of `names` that `payload` holds, not null.
fn first<'a>(payload: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|name| payload.get(*name).filter(|v| !v.is_null()))
}

/// A timestamp without an offset read as UTC, which is how seed 004's provider writes them;
/// anything else as sent, for validation to judge.
fn assume_utc(value: &Value) -> Value {
    let Some(text) = value.as_str() else {
        return value.clone();
    };
    match NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f") {
        Ok(naive) => json!(naive.and_utc().to_rfc3339()),
        Err(_) => value.clone(),
    }
}

impl Connection {
    /// The custom type an event of this connection is registered as in its workspace, so it
    /// can be subscribed to: `None` for an event that became a generic or built-in type. The
    /// first payload seen becomes the type's sample (test sends use it), when it fits.
    pub fn registration(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Option<crate::CustomEventType> {
        if event.category().is_some() || crate::catalog::contains(&event.event_type) {
            return None;
        }
        let provider_event = event
            .event_type
            .strip_prefix(&format!("{}.", self.namespace()))
            .unwrap_or(&event.event_type);
        let new = |sample: Option<Value>| crate::custom_types::NewEventType {
            name: event.event_type.clone(),
            description: format!(
                "{provider_event} events from the {} connection ({})",
                self.name,
                self.kind.as_str()
            ),
            schema: None,
            sample,
        };
        let sample = serde_json::from_str(event.payload.as_json()).ok();
        crate::CustomEventType::define(self.workspace_id.clone(), new(sample), now)
            .or_else(|_| crate::CustomEventType::define(self.workspace_id.clone(), new(None), now))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{ConnectionKind, ConnectionSecret};
    use crate::ids::{ConnectionId, WorkspaceId};

    fn connection(name: &str) -> Connection {
        Connection {
            id: ConnectionId::generate(),
            workspace_id: WorkspaceId::generate(),
            kind: ConnectionKind::Svix,
            name: name.into(),
            secret: ConnectionSecret::generate(ConnectionKind::Svix),
            created_at: Utc::now(),
        }
    }

    fn delivered(name: &str, payload: Value, sent_at: Option<Value>) -> ProviderEvent {
        ProviderEvent {
            name: name.into(),
            payload,
            sent_at,
            dedup_id: "d1".into(),
        }
    }

    fn payload(event: &Event) -> Value {
        serde_json::from_str(event.payload.as_json()).unwrap()
    }

    /// Seed 004's `call.completed` sample payload, with names in place of its placeholders.
    pub(crate) fn seed_call() -> Value {
        json!({"call": {
            "analysis": [{"summary": "string", "score": 2.5}],
            "createdAt": "2025-01-14T04:22:51.548816074",
            "id": "3ba53534-23fa-41d8-ada1-db7385e40276",
            "orgId": "329a670e-94bf-467c-b860-98acb547dd66",
            "prospectIds": ["a2a6142d-75dc-4b26-9692-497ca7d554e7"],
            "prospects": [{"details": {"companyName": "Acme"}, "id": "a2a6142d-75dc-4b26-9692-497ca7d554e7",
                "imageUrl": "uri", "name": "Pat Prospect"}],
            "stats": {"duration": 312.5},
            "title": "Discovery call",
            "transcript": [
                {"createdAt": "2025-01-14T04:22:51.548844471", "prospectId": "a2a6142d",
                 "prospectText": "We need better reporting.", "speakerName": "Pat Prospect"},
                {"createdAt": "2025-01-14T04:22:52.1", "prospectId": "a2a6142d",
                 "prospectText": "Can it export?", "speakerName": "Sam Seller"}
            ],
            "user": {"createdAt": "2025-01-14T04:22:51.548849484", "email": "email",
                "id": "1bb5caf1-75b6-41d2-bc4a-d144b40482e1", "name": "Sam Seller"},
            "userId": "cf4b22cb-6dd4-4ddb-b739-3f6993c66c56"
        }})
    }

    #[test]
    fn a_completed_call_becomes_a_transcript_normalized_like_ingest() {
        let connection = connection("Coach");
        let sent = Some(json!("2025-01-14T04:22:51.548857267"));
        let event = connection
            .event_from(
                delivered("call.completed", seed_call(), sent),
                "type",
                Utc::now(),
            )
            .unwrap();
        assert_eq!(event.event_type, "calls.transcript");
        assert!(event.should_process);
        assert_eq!(event.dedup_id, "d1");
        assert!(
            matches!(event.source, EventSource::Connection { ref name, .. } if name == "Coach")
        );
        let data = payload(&event);
        assert_eq!(data["title"], "Discovery call");
        assert_eq!(
            data["transcript"],
            json!([{"speaker": "Pat Prospect", "text": "We need better reporting."},
                {"speaker": "Sam Seller", "text": "Can it export?"}])
        );
        assert_eq!(data["participants"][0]["name"], "Pat Prospect");
        assert_eq!(data["participants"][1]["name"], "Sam Seller");
        assert!(data["participants"][1].get("email").is_none());
        assert_eq!(data["duration"], 312.5);
        assert_eq!(data["eventTimestamp"], "2025-01-14T04:22:51.548Z");
        assert_eq!(data["customMetadata"]["providerEvent"], "call.completed");
    }

    #[test]
    fn a_call_short_of_a_transcript_is_kept_as_the_providers_own_event() {
        let mut call = seed_call();
        call["call"]["transcript"] = json!([]);
        let event = connection("Coach-AI")
            .event_from(
                delivered("call.completed", call.clone(), None),
                "type",
                Utc::now(),
            )
            .unwrap();
        assert_eq!(event.event_type, "coach_ai.call.completed");
        assert_eq!(payload(&event), call);
    }

    #[test]
    fn campaign_emails_map_to_the_emails_category_when_they_carry_its_fields() {
        let sent = json!({"subject": "Hi", "text": "Hello there", "from_email": "me@ours.io",
            "to_email": "lead@theirs.io", "created_at": "2026-01-02T03:04:05Z", "id_campaign": "c1"});
        let connection = connection("leads");
        for (event, short) in [
            ("campaign.email.open", "opened"),
            ("campaign.email.reply", "reply"),
        ] {
            let mapped = connection
                .event_from(delivered(event, sent.clone(), None), "event", Utc::now())
                .unwrap();
            assert_eq!(mapped.event_type, format!("emails.{short}"));
            let data = payload(&mapped);
            assert_eq!(data["to"], json!([{"email": "lead@theirs.io"}]));
            assert_eq!(data["campaignId"], "c1");
        }
        let thin = json!({"id": "l1", "created_at": "2026-01-02T03:04:05Z"});
        let kept = connection
            .event_from(
                delivered("campaign.email.sent", thin, None),
                "event",
                Utc::now(),
            )
            .unwrap();
        assert_eq!(kept.event_type, "leads.campaign.email.sent");
    }

    #[test]
    fn a_linkedin_message_maps_to_a_received_social_message() {
        let message = json!({"message": "Thanks for reaching out", "linkedin_url": "https://linkedin.com/in/jean",
            "to": "https://linkedin.com/in/me", "created_at": "2026-01-02T03:04:05Z"});
        let event = connection("leads")
            .event_from(
                delivered("lead.linkedin.new", message, None),
                "event",
                Utc::now(),
            )
            .unwrap();
        assert_eq!(event.event_type, "social.message_received");
        assert_eq!(payload(&event)["body"]["text"], "Thanks for reaching out");
    }

    #[test]
    fn other_events_keep_their_payload_under_the_connections_namespace() {
        let lead = json!({"id": "e106db1f", "first_name": "Jean", "email": null});
        let event = connection("Leads")
            .event_from(
                delivered("lead.create", lead.clone(), None),
                "event",
                Utc::now(),
            )
            .unwrap();
        assert_eq!(event.event_type, "leads.lead.create");
        assert_eq!(payload(&event), lead);
        assert_eq!(
            custom_type("x", "Org Updated"),
            Some("x.org_updated".into())
        );
        assert_eq!(custom_type("x", ""), None);
        assert_eq!(custom_type("x", "a..b"), None);
        assert_eq!(custom_type("x", &"e".repeat(127)), None);
        let unnamed =
            connection("leads").event_from(delivered("", json!({}), None), "event", Utc::now());
        assert_eq!(
            unnamed
                .unwrap_err()
                .field_errors
                .into_keys()
                .collect::<Vec<_>>(),
            ["event"]
        );
    }
}
