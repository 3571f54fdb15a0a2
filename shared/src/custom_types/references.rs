//! A tenant schema's references, checked before it is compiled: each must point within the
//! schema, and none may close a loop that never descends into the data.
//!
//! The validator follows `$ref` (and `allOf`, `not`, `if`…) on the same value without limit, so
//! `{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}` would recurse until the stack
//! overflows and take the process with it. A loop through `properties`, `items` and the other
//! keywords that descend into a member is fine (a tree of nodes): the data's depth bounds it.
//!
//! To keep this check sound, references are `#`, `#/json/pointer` or `#anchor` within the
//! schema, and `$id` may appear only at its root (an embedded resource would move the base the
//! references resolve against).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::validation::ValidationErrors;

/// Keywords whose schema applies to the same value as the schema holding them.
const IN_PLACE_ONE: [&str; 3] = ["not", "if", "then"];
const IN_PLACE_ONE_MORE: [&str; 1] = ["else"];
const IN_PLACE_LIST: [&str; 3] = ["allOf", "anyOf", "oneOf"];
const IN_PLACE_MAP: [&str; 1] = ["dependentSchemas"];
/// Keywords whose schemas apply to members, items or names of the value.
const DESCENDING_ONE: [&str; 7] = [
    "additionalProperties",
    "propertyNames",
    "items",
    "contains",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];
const DESCENDING_LIST: [&str; 1] = ["prefixItems"];
const DESCENDING_MAP: [&str; 2] = ["properties", "patternProperties"];
/// Keywords holding schemas that apply only where referenced.
const DEFINITIONS: [&str; 2] = ["$defs", "definitions"];

/// One subschema: where it is and what applies to its value in place.
#[derive(Default)]
struct Node {
    /// Pointers of subschemas applied in place (`allOf/0`, `not`…).
    in_place: Vec<String>,
    /// `(keyword, reference)` of its `$ref` and `$dynamicRef`.
    references: Vec<(&'static str, String)>,
}

/// `Ok` when every reference of `schema` resolves within it and no loop of references and
/// in-place keywords returns to a schema without descending; else the faults at paths under
/// `schema`.
pub(super) fn check_references(schema: &Value) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut nodes: HashMap<String, Node> = HashMap::new();
    let mut anchors: HashMap<&str, String> = HashMap::new();
    let mut dynamic_anchors: HashMap<&str, Vec<String>> = HashMap::new();
    // Iterative, so a deeply nested schema cannot overflow this walk either.
    let mut pending: Vec<(String, &Value)> = vec![(String::new(), schema)];
    while let Some((pointer, value)) = pending.pop() {
        let mut node = Node::default();
        let Value::Object(members) = value else {
            nodes.insert(pointer, node);
            continue;
        };
        if !pointer.is_empty() && members.contains_key("$id") {
            errors.add(
                path(&pointer, "$id"),
                "$id is allowed only at the root of the schema".into(),
            );
        }
        if let Some(name) = members.get("$anchor").and_then(Value::as_str) {
            anchors.insert(name, pointer.clone());
        }
        if let Some(name) = members.get("$dynamicAnchor").and_then(Value::as_str) {
            anchors.insert(name, pointer.clone());
            dynamic_anchors
                .entry(name)
                .or_default()
                .push(pointer.clone());
        }
        for keyword in ["$ref", "$dynamicRef"] {
            if let Some(target) = members.get(keyword).and_then(Value::as_str) {
                node.references.push((keyword, target.to_owned()));
            }
        }
        let child = |keyword: &str, suffix: Option<&str>| match suffix {
            Some(suffix) => format!("{pointer}/{}/{}", escape(keyword), escape(suffix)),
            None => format!("{pointer}/{}", escape(keyword)),
        };
        let mut children: Vec<(String, &Value, bool)> = Vec::new();
        for (keywords, in_place) in [
            (&IN_PLACE_ONE[..], true),
            (&IN_PLACE_ONE_MORE[..], true),
            (&DESCENDING_ONE[..], false),
        ] {
            for keyword in keywords {
                if let Some(schema) = members.get(*keyword) {
                    children.push((child(keyword, None), schema, in_place));
                }
            }
        }
        for (keywords, in_place) in [(&IN_PLACE_LIST[..], true), (&DESCENDING_LIST[..], false)] {
            for keyword in keywords {
                let list = members.get(*keyword).and_then(Value::as_array);
                for (index, schema) in list.into_iter().flatten().enumerate() {
                    let at = child(keyword, Some(&index.to_string()));
                    children.push((at, schema, in_place));
                }
            }
        }
        for (keywords, in_place) in [
            (&IN_PLACE_MAP[..], Some(true)),
            (&DESCENDING_MAP[..], Some(false)),
            (&DEFINITIONS[..], None),
        ] {
            for keyword in keywords {
                let map = members.get(*keyword).and_then(Value::as_object);
                for (name, schema) in map.into_iter().flatten() {
                    children.push((child(keyword, Some(name)), schema, in_place == Some(true)));
                }
            }
        }
        for (at, schema, in_place) in children {
            if in_place {
                node.in_place.push(at.clone());
            }
            pending.push((at, schema));
        }
        nodes.insert(pointer, node);
    }

    // Every node's in-place successors: its in-place keywords and what its references reach.
    let mut successors: HashMap<&str, Vec<String>> = HashMap::new();
    for (pointer, node) in &nodes {
        let mut next = node.in_place.clone();
        for (keyword, target) in &node.references {
            let at = path(pointer, keyword);
            let Some(fragment) = target.strip_prefix('#') else {
                errors.add(
                    at,
                    format!("{target:?} is outside the schema; references may only point within it (#/$defs/…)"),
                );
                continue;
            };
            let mut reached: Vec<String> = Vec::new();
            if fragment.is_empty() || fragment.starts_with('/') {
                if fragment.contains('%') {
                    errors.add(at, "Percent-encoded references are not supported; name $defs without characters that need encoding".into());
                    continue;
                }
                if nodes.contains_key(fragment) {
                    reached.push(fragment.to_owned());
                }
            } else if let Some(anchored) = anchors.get(fragment) {
                reached.push(anchored.clone());
            }
            if *keyword == "$dynamicRef" {
                reached.extend(dynamic_anchors.get(fragment).into_iter().flatten().cloned());
            }
            if reached.is_empty() {
                errors.add(
                    at,
                    format!("{target:?} does not point at a subschema of this schema"),
                );
            }
            next.extend(reached);
        }
        successors.insert(pointer.as_str(), next);
    }
    if let Some(looping) = in_place_loop(&successors) {
        errors.add(
            path(&looping, ""),
            "This reference loops back without descending into the data; validating would never end".into(),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A node on a cycle of `successors`, if there is one (an iterative depth-first search).
fn in_place_loop(successors: &HashMap<&str, Vec<String>>) -> Option<String> {
    let mut finished: HashSet<&str> = HashSet::new();
    let mut on_path: HashSet<&str> = HashSet::new();
    let mut starts: Vec<&str> = successors.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        if finished.contains(start) {
            continue;
        }
        // (node, index of its next successor to visit)
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        on_path.insert(start);
        while let Some((node, next)) = stack.last_mut() {
            let outgoing = successors.get(*node).map_or(&[][..], Vec::as_slice);
            match outgoing.get(*next) {
                Some(successor) => {
                    *next += 1;
                    let successor = successors
                        .get_key_value(successor.as_str())
                        .map_or(successor.as_str(), |(key, _)| *key);
                    if on_path.contains(successor) {
                        return Some(successor.to_owned());
                    }
                    if !finished.contains(successor) {
                        on_path.insert(successor);
                        stack.push((successor, 0));
                    }
                }
                None => {
                    let node = *node;
                    on_path.remove(node);
                    finished.insert(node);
                    stack.pop();
                }
            }
        }
    }
    None
}

/// JSON Pointer escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The dotted path under `schema` of `keyword` in the subschema at `pointer`.
fn path(pointer: &str, keyword: &str) -> String {
    let segments = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"));
    std::iter::once("schema".to_owned())
        .chain(segments)
        .chain((!keyword.is_empty()).then(|| keyword.to_owned()))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn faults(schema: Value) -> Vec<(String, String)> {
        match check_references(&schema) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .field_errors
                .into_iter()
                .map(|(path, messages)| (path, messages.join("; ")))
                .collect(),
        }
    }

    #[test]
    fn loops_that_never_descend_are_refused() {
        for looping in [
            json!({"$ref": "#"}),
            json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
                "$ref": "#/$defs/a"}),
            json!({"not": {"$ref": "#"}}),
            json!({"if": {"$ref": "#/$defs/x"}, "$defs": {"x": {"then": {"$ref": "#"}}}}),
            json!({"dependentSchemas": {"a": {"$ref": "#"}}}),
            json!({"$defs": {"x": {"$anchor": "x", "anyOf": [{"$ref": "#x"}]}}}),
            json!({"$dynamicAnchor": "node", "oneOf": [{"$dynamicRef": "#node"}]}),
        ] {
            let found = faults(looping.clone());
            assert!(
                found.iter().any(|(_, m)| m.contains("loops back")),
                "{looping}: {found:?}"
            );
        }
    }

    #[test]
    fn loops_through_members_and_items_are_trees_and_allowed() {
        let tree = json!({"$defs": {"node": {"type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    "parent": {"$ref": "#/$defs/node"}},
                "additionalProperties": {"$ref": "#"}}},
            "$ref": "#/$defs/node"});
        assert_eq!(faults(tree), []);
        let anchored = json!({"$anchor": "root", "properties": {"next": {"$ref": "#root"}}});
        assert_eq!(faults(anchored), []);
        let escaped = json!({"$defs": {"a/b~c": {"type": "string"}},
            "properties": {"x": {"$ref": "#/$defs/a~1b~0c"}}});
        assert_eq!(faults(escaped), []);
    }

    #[test]
    fn references_must_resolve_within_the_schema() {
        let found = faults(json!({"properties": {
            "a": {"$ref": "https://example.com/s.json"},
            "b": {"$ref": "#/$defs/missing"},
            "c": {"$ref": "#nowhere"},
            "d": {"$ref": "#/$defs/with%20space"}}}));
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "schema.properties.a.$ref",
                "schema.properties.b.$ref",
                "schema.properties.c.$ref",
                "schema.properties.d.$ref"
            ]
        );
        assert!(found[0].1.contains("outside the schema"), "{found:?}");
        assert!(
            found[1].1.contains("does not point at a subschema"),
            "{found:?}"
        );
    }

    #[test]
    fn an_embedded_id_is_refused() {
        let found = faults(json!({"$id": "https://example.com/root",
            "$defs": {"inner": {"$id": "inner", "type": "string"}}}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "schema.$defs.inner.$id");
    }
}
