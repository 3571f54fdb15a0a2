//! The allocation-light validation path for valid bodies, deferring to the schema path on doubt.

// Members stay unparsed JSON text unless a rule reads their value, and the normalized payload is
// written from those slices. Whatever this path cannot vouch for goes to the schema path, which
// decides and names every fault. Members no rule reads (unknown ones, `customMetadata`, free
// text) are kept verbatim: the JSON limits, checked before either path, have vouched for their
// depth, numbers and text.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, SecondsFormat, Utc};
use jsonschema::Validator;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{compile, ValidatedEvent, PASSTHROUGH_KEY};
use crate::dedup;
use crate::timestamp::parse_event_timestamp;
use crate::transcript::{split_turns, turns_json_growth, write_turns_json};
use crate::{Category, RawJson};

/// Known members per category fit a fixed slot array.
const MAX_KNOWN: usize = 16;
/// Bytes normalization may add besides turns: a timestamp rewritten as RFC 3339 (up to 16 more
/// than epoch seconds) and the `"passthrough":{}` wrapper.
const NORMALIZED_GROWTH: usize = 64;
/// Above this many members, duplicates are found with a set instead of pairwise.
const PAIRWISE_LIMIT: usize = 16;

/// How one known member is checked, without building its value where the schema allows.
enum Check {
    /// `{"type": "string"}`: any JSON string.
    AnyString,
    /// `{"type": "object"}`: any JSON object.
    AnyObject,
    /// An object whose `text` and `html`, when present, are strings, with at least one present.
    MessageBody,
    /// A string of `min..=max` characters (code points, as JSON Schema counts them).
    Text { min: usize, max: usize },
    /// One of these strings.
    OneOf(Vec<String>),
    /// A string or a number.
    StringOrNumber,
    /// A number that fits an `f64` (as the schema path reads it), at least `minimum` if given.
    Number { minimum: Option<f64> },
    /// A non-empty string (split into turns later), else whatever the validator accepts.
    Transcript(Validator),
    /// Parsed and checked by the member's own compiled schema.
    Schema(Validator),
}

impl Check {
    fn passes(&self, value: &Fragment<'_>) -> bool {
        let raw = match (self, value) {
            (Check::MessageBody, Fragment::Object(members)) => return message_body_passes(members),
            (_, Fragment::Object(_)) | (Check::MessageBody, _) => return false,
            (_, Fragment::Raw(raw)) => raw,
        };
        let text = raw.get();
        match self {
            Check::AnyString => text.starts_with('"'),
            Check::AnyObject => text.starts_with('{'),
            Check::MessageBody => false,
            Check::Text { min, max } => string_content(text)
                .is_some_and(|content| (*min..=*max).contains(&content.chars().count())),
            Check::OneOf(allowed) => {
                string_content(text).is_some_and(|content| allowed.iter().any(|a| *a == *content))
            }
            Check::StringOrNumber => {
                text.starts_with(['"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
            }
            Check::Number { minimum } => serde_json::from_str::<f64>(text)
                .is_ok_and(|number| minimum.is_none_or(|minimum| number >= minimum)),
            Check::Transcript(validator) => {
                if text.starts_with('"') {
                    text != "\"\""
                } else {
                    schema_passes(validator, text)
                }
            }
            Check::Schema(validator) => schema_passes(validator, text),
        }
    }
}

/// The decoded content of a JSON string literal, borrowed when it has no escapes.
fn string_content(literal: &str) -> Option<Cow<'_, str>> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(literal).ok().map(Cow::Owned)
}

/// The cheap check a member's schema amounts to, when it is one of the simple shapes.
fn simple_check(property: &Value) -> Option<Check> {
    let schema = property.as_object()?;
    let number = |key: &str| schema.get(key).map(|v| v.as_f64().ok_or(()));
    let length = |key: &str| {
        schema
            .get(key)
            .map(|v| v.as_u64().map(|n| n as usize).ok_or(()))
    };
    let only = |keys: &[&str]| schema.keys().all(|k| keys.contains(&k.as_str()));
    match &schema["type"] {
        Value::String(t) if t == "string" && only(&["type", "minLength", "maxLength"]) => {
            Some(Check::Text {
                min: length("minLength").transpose().ok()?.unwrap_or(0),
                max: length("maxLength").transpose().ok()?.unwrap_or(usize::MAX),
            })
        }
        Value::String(t) if t == "string" && only(&["type", "enum"]) => schema["enum"]
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .map(Check::OneOf),
        Value::String(t) if t == "number" && only(&["type", "minimum"]) => Some(Check::Number {
            minimum: number("minimum").transpose().ok()?,
        }),
        Value::Array(types)
            if only(&["type"]) && *types == [Value::from("string"), Value::from("number")] =>
        {
            Some(Check::StringOrNumber)
        }
        _ => None,
    }
}

fn schema_passes(validator: &Validator, text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|value| validator.is_valid(&value))
}

fn message_body_passes(members: &[(Cow<'_, str>, &RawValue)]) -> bool {
    if has_duplicate_keys(members, |(key, _)| key) {
        return false;
    }
    let mut seen = 0;
    for name in ["text", "html"] {
        match members.iter().find(|(key, _)| key == name) {
            Some((_, raw)) if raw.get().starts_with('"') => seen += 1,
            Some(_) => return false,
            None => {}
        }
    }
    seen > 0
}

/// One category's known members and which of them are required, read off its schema.
pub(super) struct FastSpec {
    names: Vec<String>,
    checks: Vec<Check>,
    required: Vec<usize>,
    timestamp: usize,
    event_type: usize,
    event_id: Option<usize>,
    transcript: Option<usize>,
}

impl FastSpec {
    pub(super) fn from_schema(schema: &Value) -> Self {
        let properties = schema["properties"]
            .as_object()
            .expect("schemas declare properties");
        assert!(
            properties.len() <= MAX_KNOWN,
            "more known members than slots"
        );
        let mut names = Vec::new();
        let mut checks = Vec::new();
        for (name, property) in properties {
            let check = if *property == serde_json::json!({"type": "string"}) {
                Check::AnyString
            } else if *property == serde_json::json!({"type": "object"}) {
                Check::AnyObject
            } else if *property == super::message_body() {
                Check::MessageBody
            } else if name == "transcript" {
                Check::Transcript(compile(property))
            } else if let Some(check) = simple_check(property) {
                check
            } else {
                Check::Schema(compile(property))
            };
            names.push(name.clone());
            checks.push(check);
        }
        let mut spec = Self {
            names,
            checks,
            required: Vec::new(),
            timestamp: 0,
            event_type: 0,
            event_id: None,
            transcript: None,
        };
        spec.required = schema["required"]
            .as_array()
            .expect("schemas list required members")
            .iter()
            .map(|name| {
                spec.position(name.as_str().unwrap_or_default())
                    .expect("required is known")
            })
            .collect();
        spec.timestamp = spec
            .position("eventTimestamp")
            .expect("every category has a timestamp");
        spec.event_type = spec
            .position("eventType")
            .expect("every category has an event type");
        spec.event_id = spec.position("eventId");
        spec.transcript = spec.position("transcript");
        spec
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Whether `name` is a member the category's schema declares.
    pub(super) fn is_known(&self, name: &str) -> bool {
        self.position(name).is_some()
    }
}

/// The validated, normalized event, or `None` when the schema path must decide.
pub(super) fn validate(
    category: Category,
    spec: &FastSpec,
    body: &[u8],
    now: DateTime<Utc>,
) -> Option<ValidatedEvent> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let members = TopLevel(spec).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    if has_duplicate_keys(&members, |member| &member.key) {
        return None;
    }
    let mut known: [Option<&Fragment<'_>>; MAX_KNOWN] = [None; MAX_KNOWN];
    for member in &members {
        if let Some(i) = member.known {
            if !spec.checks[i].passes(&member.value) {
                return None;
            }
            known[i] = Some(&member.value);
        }
    }
    if spec.required.iter().any(|&i| known[i].is_none()) {
        return None;
    }
    let timestamp_value: Value = known[spec.timestamp]?.parse()?;
    let timestamp = parse_event_timestamp(&timestamp_value, now).ok()?;
    let event_type: String = known[spec.event_type]?.parse()?;
    let event_id: Option<String> = match spec.event_id.and_then(|i| known[i]) {
        Some(raw) => Some(raw.parse()?),
        None => None,
    };
    let flat_transcript = match spec.transcript.and_then(|i| known[i]) {
        Some(Fragment::Raw(raw)) if raw.get().starts_with('"') => Some(*raw),
        _ => None,
    };
    let normalized = Normalized {
        spec,
        members: &members,
        timestamp: timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        flat_transcript,
    };
    let (payload, turns) = normalized.write(body.len())?;
    let dedup_id = match event_id {
        Some(explicit) => explicit,
        None => {
            let turns = turns.map(|range| &payload[range]);
            dedup::derive(category, &normalized.identifying_view(category, turns)?)
        }
    };
    Some(ValidatedEvent {
        event_type,
        timestamp,
        dedup_id,
        payload: RawJson::assembled(payload),
    })
}

/// Appends a flat transcript's turns as JSON text: cut from the escaped literal when it allows,
/// else decoded, split and serialized.
fn write_flat_turns(literal: &RawValue, out: &mut String) -> Option<()> {
    if write_turns_json(literal.get(), out) {
        return Some(());
    }
    let Text(flat) = serde_json::from_str(literal.get()).ok()?;
    out.push_str(&serde_json::to_string(&split_turns(&flat)).ok()?);
    Some(())
}

fn has_duplicate_keys<T>(members: &[T], key: impl Fn(&T) -> &str) -> bool {
    if members.len() <= PAIRWISE_LIMIT {
        members.iter().enumerate().any(|(i, member)| {
            let name = key(member);
            members[i + 1..].iter().any(|other| key(other) == name)
        })
    } else {
        let mut seen = HashSet::with_capacity(members.len());
        !members.iter().all(|member| seen.insert(key(member)))
    }
}

/// The normalized payload, written member by member in the caller's order: the timestamp as
/// RFC 3339 UTC, a flat transcript as turns, unknown members under [`PASSTHROUGH_KEY`].
struct Normalized<'a> {
    spec: &'a FastSpec,
    members: &'a [Member<'a>],
    /// RFC 3339 with millisecond digits and `Z`: ASCII that needs no escaping.
    timestamp: String,
    /// A transcript sent as one string literal, written out as turns.
    flat_transcript: Option<&'a RawValue>,
}

impl Normalized<'_> {
    /// Only the members the derived dedup id reads, as the schema path would hold them;
    /// `turns` is the flat transcript as [`Normalized::write`] wrote it.
    fn identifying_view(&self, category: Category, turns: Option<&str>) -> Option<Value> {
        let mut view = Map::new();
        for name in dedup::identifying_members(category) {
            let value = if *name == "eventTimestamp" {
                Value::String(self.timestamp.clone())
            } else if let (Some(turns), true) = (turns, *name == "transcript") {
                serde_json::from_str(turns).ok()?
            } else {
                match self.members.iter().find(|member| member.key == *name) {
                    Some(member) => member.value.parse()?,
                    None => continue,
                }
            };
            view.insert((*name).to_owned(), value);
        }
        Some(Value::Object(view))
    }

    /// The payload as JSON text, joined from checked pieces: member values as the parser
    /// delimited them, keys as they came (or re-escaped when they had escapes), and the
    /// timestamp and turns built above. Nothing long is escaped or parsed again. Also returns
    /// where in it the turns of a flat transcript stand.
    fn write(&self, body_len: usize) -> Option<(String, Option<Range<usize>>)> {
        let turns = self
            .flat_transcript
            .map_or(0, |t| turns_json_growth(t.get()));
        let mut out = String::with_capacity(body_len + turns + NORMALIZED_GROWTH);
        out.push('{');
        let mut unknown = false;
        let mut turns = None;
        for Member { key, known, value } in self.members {
            match *known {
                None => unknown = true,
                Some(i) if i == self.spec.timestamp => {
                    open_member(&mut out, key);
                    out.push('"');
                    out.push_str(&self.timestamp);
                    out.push('"');
                }
                Some(i) if Some(i) == self.spec.transcript && self.flat_transcript.is_some() => {
                    open_member(&mut out, key);
                    let start = out.len();
                    write_flat_turns(self.flat_transcript?, &mut out)?;
                    turns = Some(start..out.len());
                }
                Some(_) => {
                    open_member(&mut out, key);
                    value.write(&mut out);
                }
            }
        }
        if unknown {
            open_member(&mut out, PASSTHROUGH_KEY);
            out.push('{');
            for Member { key, known, value } in self.members {
                if known.is_none() {
                    open_member(&mut out, key);
                    value.write(&mut out);
                }
            }
            out.push('}');
        }
        out.push('}');
        Some((out, turns))
    }
}

/// Writes `,"key":` (no comma after an opening brace).
fn open_member(out: &mut String, key: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    write_key(out, key);
    out.push(':');
}

/// A key as a JSON string: as it came when it needs no escaping, else through serde_json.
fn write_key(out: &mut String, key: &str) {
    let plain = key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(key).expect("strings serialize"));
    }
}

/// A member's value: unparsed JSON text, or an object split one level into its members (for
/// rules that read inside it, so its long strings are scanned once).
enum Fragment<'a> {
    Raw(&'a RawValue),
    Object(Vec<(Cow<'a, str>, &'a RawValue)>),
}

impl Fragment<'_> {
    fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        match self {
            Fragment::Raw(raw) => serde_json::from_str(raw.get()).ok(),
            Fragment::Object(_) => {
                let mut text = String::new();
                self.write(&mut text);
                serde_json::from_str(&text).ok()
            }
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Fragment::Raw(raw) => out.push_str(raw.get()),
            Fragment::Object(members) => {
                out.push('{');
                for (key, raw) in members {
                    open_member(out, key);
                    out.push_str(raw.get());
                }
                out.push('}');
            }
        }
    }
}

/// The body's members in document order; members whose check reads inside an object are
/// split one level, the rest stay unparsed.
struct TopLevel<'s>(&'s FastSpec);

/// One top-level member, with its index among the category's known members.
struct Member<'a> {
    key: Cow<'a, str>,
    known: Option<usize>,
    value: Fragment<'a>,
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Vec<Member<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Vec<Member<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(MAX_KNOWN);
        while let Some(Text(key)) = map.next_key()? {
            let known = self.0.position(&key);
            let split = known.is_some_and(|i| matches!(self.0.checks[i], Check::MessageBody));
            let value = if split {
                Fragment::Object(map.next_value::<Members<'de>>()?.0)
            } else {
                Fragment::Raw(map.next_value()?)
            };
            members.push(Member { key, known, value });
        }
        Ok(members)
    }
}

/// An object's members in document order, values left as unparsed JSON text.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(Text(key)) = map.next_key()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A JSON string, borrowed from the input unless it had escapes to undo.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
