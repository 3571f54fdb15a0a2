//! A minimal instance of a JSON Schema, for test sends of a custom type that has no sample.
//!
//! Best effort by design: the instance is built from what a schema states (the first `const`,
//! `enum`, `default` or `examples` value; else the required members, the minimum items and a
//! value of the first stated type at its lower bounds), and the caller checks it against the
//! compiled schema before sending it. What this does not reason about (`pattern`, `not`,
//! `if`/`then`, `dependentRequired`…) simply leaves an instance the check refuses.

use serde_json::{json, Map, Number, Value};

/// Deepest nesting generated; a schema needing more (or a `$ref` cycle) gets no instance.
const MAX_DEPTH: usize = 32;
/// Most array items generated for a `minItems`.
const MAX_ITEMS: u64 = 64;
/// Longest string generated for a `minLength`.
const MAX_STRING: u64 = 1024;

/// A candidate instance of `schema`, or `None` when it cannot even propose one.
pub(super) fn minimal_instance(schema: &Value) -> Option<Value> {
    Generator { root: schema }.instance(schema, 0)
}

struct Generator<'a> {
    root: &'a Value,
}

impl<'a> Generator<'a> {
    fn instance(&self, schema: &'a Value, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let schema = match schema {
            Value::Bool(true) => return Some(json!({})),
            Value::Object(schema) => schema,
            _ => return None,
        };
        if let Some(value) = schema.get("const") {
            return Some(value.clone());
        }
        if let Some(first) = schema.get("enum").and_then(|e| e.as_array()?.first()) {
            return Some(first.clone());
        }
        if let Some(default) = schema.get("default") {
            return Some(default.clone());
        }
        if let Some(first) = schema.get("examples").and_then(|e| e.as_array()?.first()) {
            return Some(first.clone());
        }
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            return self.instance(self.resolve(target)?, depth + 1);
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            return self.all_of(parts, depth);
        }
        for alternatives in ["anyOf", "oneOf"] {
            if let Some(first) = schema.get(alternatives).and_then(|a| a.as_array()?.first()) {
                return self.instance(first, depth + 1);
            }
        }
        match stated_type(schema)? {
            "object" => self.object(schema, depth),
            "array" => self.array(schema, depth),
            "string" => Some(Value::String(string(schema))),
            "integer" => Some(Value::Number(integer(schema)?)),
            "number" => Some(Value::Number(number(schema)?)),
            "boolean" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            _ => None,
        }
    }

    /// A local reference (`#`, `#/$defs/x`); others are refused when the schema compiles.
    fn resolve(&self, target: &str) -> Option<&'a Value> {
        let pointer = target.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    /// The members of every part's instance together (each part is usually an object).
    fn all_of(&self, parts: &'a [Value], depth: usize) -> Option<Value> {
        let mut merged = Map::new();
        for part in parts {
            match self.instance(part, depth + 1)? {
                Value::Object(members) => merged.extend(members),
                other if parts.len() == 1 => return Some(other),
                _ => return None,
            }
        }
        Some(Value::Object(merged))
    }

    fn object(&self, schema: &'a Map<String, Value>, depth: usize) -> Option<Value> {
        let properties = schema.get("properties").and_then(Value::as_object);
        let extra = schema.get("additionalProperties");
        let mut members = Map::new();
        let required = schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten().filter_map(Value::as_str) {
            let member = properties
                .and_then(|p| p.get(name))
                .or(extra.filter(|e| e.is_object()));
            let value = match member {
                Some(member) => self.instance(member, depth + 1)?,
                None => Value::Null,
            };
            members.insert(name.to_owned(), value);
        }
        Some(Value::Object(members))
    }

    fn array(&self, schema: &'a Map<String, Value>, depth: usize) -> Option<Value> {
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        let prefix = prefix.map_or(&[][..], Vec::as_slice);
        let wanted = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let wanted = usize::try_from(wanted.min(MAX_ITEMS)).unwrap_or(0);
        let mut items = Vec::with_capacity(wanted);
        for at in 0..wanted {
            let item = match prefix.get(at) {
                Some(item) => item,
                None => schema.get("items").unwrap_or(&Value::Bool(true)),
            };
            items.push(self.instance(item, depth + 1)?);
        }
        Some(Value::Array(items))
    }
}

/// The first type a schema states, not counting `null` while another is offered; an untyped
/// schema with members or items is taken as what they describe, anything else as an object.
fn stated_type(schema: &Map<String, Value>) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(single)) => Some(single),
        Some(Value::Array(several)) => {
            let names: Vec<&str> = several.iter().filter_map(Value::as_str).collect();
            names
                .iter()
                .find(|t| **t != "null")
                .or(names.first())
                .copied()
        }
        Some(_) => None,
        None if schema.contains_key("items") || schema.contains_key("prefixItems") => Some("array"),
        None => Some("object"),
    }
}

/// A string of the schema's format, or `minLength` x's.
fn string(schema: &Map<String, Value>) -> String {
    let formatted = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T00:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "00:00:00Z",
        Some("email" | "idn-email") => "user@example.com",
        Some("hostname" | "idn-hostname") => "example.com",
        Some("uri" | "iri" | "uri-reference" | "iri-reference") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        Some("duration") => "PT1S",
        _ => "",
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let missing = min
        .min(MAX_STRING)
        .saturating_sub(formatted.chars().count() as u64);
    let pad = usize::try_from(missing).unwrap_or(0);
    format!("{formatted}{}", "x".repeat(pad))
}

/// The integer nearest 0 the bounds allow, rounded up to `multipleOf`.
fn integer(schema: &Map<String, Value>) -> Option<Number> {
    let bound = |name: &str| schema.get(name).and_then(Value::as_f64);
    let low = [
        bound("minimum").map(f64::ceil),
        bound("exclusiveMinimum").map(|ex| ex.floor() + 1.0),
    ];
    let high = [
        bound("maximum").map(f64::floor),
        bound("exclusiveMaximum").map(|ex| ex.ceil() - 1.0),
    ];
    let mut value = low.into_iter().flatten().fold(0.0, f64::max);
    value = high.into_iter().flatten().fold(value, f64::min);
    if let Some(step) = bound("multipleOf").filter(|s| *s > 0.0) {
        value = (value / step).ceil() * step;
    }
    // Beyond 2^53 an f64 no longer holds every integer.
    if !value.is_finite() || value.abs() > 9.0e15 {
        return None;
    }
    Some(Number::from(value as i64))
}

/// [`integer`]'s choice, which also satisfies a number schema unless its bounds are fractional.
fn number(schema: &Map<String, Value>) -> Option<Number> {
    let whole = integer(schema)?;
    let fits = |limit: &str, ok: fn(f64, f64) -> bool| {
        schema
            .get(limit)
            .and_then(Value::as_f64)
            .is_none_or(|bound| ok(whole.as_f64().unwrap_or_default(), bound))
    };
    if fits("minimum", |v, b| v >= b) && fits("maximum", |v, b| v <= b) {
        return Some(whole);
    }
    let min = schema.get("minimum").and_then(Value::as_f64)?;
    Number::from_f64(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(schema: Value) -> Option<Value> {
        minimal_instance(&schema)
    }

    #[test]
    fn required_members_get_values_of_their_type() {
        let schema = json!({"type": "object", "required": ["id", "count", "ok", "tags", "at", "nothing"],
            "properties": {"id": {"type": "string"}, "count": {"type": "integer"},
                "ok": {"type": "boolean"}, "tags": {"type": "array"},
                "at": {"type": "string", "format": "date-time"}, "nothing": {"type": "null"},
                "optional": {"type": "string"}}});
        assert_eq!(
            generated(schema),
            Some(json!({"id": "", "count": 0, "ok": false, "tags": [],
                "at": "2026-01-01T00:00:00Z", "nothing": null}))
        );
    }

    #[test]
    fn const_enum_default_and_examples_are_honoured_in_that_order() {
        assert_eq!(generated(json!({"const": 7, "enum": [1]})), Some(json!(7)));
        assert_eq!(
            generated(json!({"enum": ["b", "a"], "default": "a"})),
            Some(json!("b"))
        );
        assert_eq!(
            generated(json!({"type": "string", "default": "d", "examples": ["e"]})),
            Some(json!("d"))
        );
        assert_eq!(
            generated(json!({"type": "string", "examples": ["e"]})),
            Some(json!("e"))
        );
    }

    #[test]
    fn bounds_lengths_and_counts_are_met() {
        assert_eq!(
            generated(json!({"type": "integer", "minimum": 5, "multipleOf": 4})),
            Some(json!(8))
        );
        assert_eq!(
            generated(json!({"type": "integer", "exclusiveMinimum": 5})),
            Some(json!(6))
        );
        assert_eq!(
            generated(json!({"type": "integer", "maximum": -3})),
            Some(json!(-3))
        );
        assert_eq!(
            generated(json!({"type": "number", "minimum": 0.5, "maximum": 0.9})),
            Some(json!(0.5))
        );
        assert_eq!(
            generated(json!({"type": "string", "minLength": 3})),
            Some(json!("xxx"))
        );
        assert_eq!(
            generated(
                json!({"type": "array", "minItems": 2, "items": {"type": "integer", "minimum": 1}})
            ),
            Some(json!([1, 1]))
        );
        assert_eq!(
            generated(
                json!({"type": "array", "minItems": 2, "prefixItems": [{"const": "a"}], "items": {"type": "boolean"}})
            ),
            Some(json!(["a", false]))
        );
    }

    #[test]
    fn references_combinators_and_type_lists_are_followed() {
        let schema = json!({"$defs": {"money": {"type": "object", "required": ["cents"],
                "properties": {"cents": {"type": "integer"}}}},
            "type": "object", "required": ["total", "note", "kind"],
            "properties": {"total": {"$ref": "#/$defs/money"},
                "note": {"type": ["null", "string"]},
                "kind": {"oneOf": [{"const": "a"}, {"const": "b"}]}}});
        assert_eq!(
            generated(schema),
            Some(json!({"total": {"cents": 0}, "note": "", "kind": "a"}))
        );
        let all_of = json!({"allOf": [{"type": "object", "required": ["a"]},
            {"required": ["b"], "properties": {"b": {"const": 1}}}]});
        assert_eq!(generated(all_of), Some(json!({"a": null, "b": 1})));
    }

    #[test]
    fn cycles_and_depth_end_without_an_instance() {
        let cycle = json!({"$defs": {"node": {"type": "object", "required": ["next"],
            "properties": {"next": {"$ref": "#/$defs/node"}}}}, "$ref": "#/$defs/node"});
        assert_eq!(generated(cycle), None);
        assert_eq!(generated(json!({"$ref": "#"})), None);
        assert_eq!(generated(json!(false)), None);
    }
}
