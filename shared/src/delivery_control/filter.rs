//! Payload filters: conditions on dotted paths into the envelope a receiver would get, all of
//! which must hold for an event to be delivered. Stored as given ([`FilterSpec`]) and compiled
//! into a [`Filter`] once per subscription version by whoever evaluates it.

use std::cmp::Ordering;

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::validation::ValidationErrors;
use crate::Event;

/// Conditions one filter may hold.
pub const MAX_FILTER_CONDITIONS: usize = 20;
const MAX_PATH_LEN: usize = 200;
const MAX_PATH_SEGMENTS: usize = 12;
const MAX_SET_LEN: usize = 100;
/// What an envelope holds when its event is fanned out (the delivery id and the subscription's
/// own fields are not known yet, so they cannot be filtered on).
const ROOTS: [&str; 7] = [
    "event_type",
    "affect",
    "version",
    "timestamp",
    "workspace",
    "source",
    "data",
];
const OPERATORS: &str = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $prefix";

/// A filter as the caller wrote it: a JSON object from dotted path to conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FilterSpec(Map<String, Value>);

impl FilterSpec {
    /// The filter `value` describes, or every bad path and operator named under `field`.
    pub fn parse(field: &str, value: &Value, errors: &mut ValidationErrors) -> Option<Self> {
        let Some(object) = value.as_object() else {
            errors.add(
                field.into(),
                "Must be an object from dotted path to conditions, e.g. {\"data.amount\": {\"$gte\": 1000}}".into(),
            );
            return None;
        };
        let spec = FilterSpec(object.clone());
        match Filter::compile(&spec) {
            Ok(_) => Some(spec),
            Err(faults) => {
                for (path, message) in faults {
                    let at = if path.is_empty() {
                        field.to_owned()
                    } else {
                        format!("{field}.{path}")
                    };
                    errors.add(at, message);
                }
                None
            }
        }
    }

    pub fn as_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// A compiled filter: its paths split and its operators typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    conditions: Vec<(Vec<String>, Condition)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Eq(Value),
    Ne(Value),
    Compare(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Prefix(String),
}

impl Filter {
    /// Compiles `spec`; on failure, each fault with the path (and operator) it concerns.
    pub fn compile(spec: &FilterSpec) -> Result<Self, Vec<(String, String)>> {
        let mut faults = Vec::new();
        let mut conditions = Vec::new();
        if spec.0.is_empty() {
            faults.push((
                String::new(),
                "A filter needs at least one condition".into(),
            ));
        }
        if spec.0.len() > MAX_FILTER_CONDITIONS {
            faults.push((
                String::new(),
                format!("At most {MAX_FILTER_CONDITIONS} paths"),
            ));
        }
        for (path, ops) in &spec.0 {
            let segments = match split_path(path) {
                Ok(segments) => segments,
                Err(message) => {
                    faults.push((path.clone(), message));
                    continue;
                }
            };
            match ops {
                Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) || ops.is_empty() => {
                    if ops.is_empty() {
                        faults.push((path.clone(), format!("No operator; use one of {OPERATORS}")));
                    }
                    for (op, operand) in ops {
                        match condition(op, operand) {
                            Ok(c) => conditions.push((segments.clone(), c)),
                            Err(message) => faults.push((format!("{path}.{op}"), message)),
                        }
                    }
                }
                // A bare value means equality, as in `{"data.stage": "won"}`.
                literal => conditions.push((segments, Condition::Eq(literal.clone()))),
            }
        }
        if faults.is_empty() {
            Ok(Self { conditions })
        } else {
            Err(faults)
        }
    }

    /// What a filter sees of `event`: its envelope as far as it is known at fan-out (a payload
    /// that is not one JSON value shows as no `data`).
    pub fn view_of(event: &Event) -> Value {
        let (id, kind, identifier) = event.envelope_source();
        serde_json::json!({
            "event_type": event.full_type(),
            "affect": event.affect.as_str(),
            "version": "1.0",
            "timestamp": event.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            "workspace": {"id": event.workspace_id},
            "source": {"id": id, "type": kind, "identifier": identifier},
            "data": event.payload.to_value(),
        })
    }

    /// Whether `envelope` meets every condition.
    pub fn matches(&self, envelope: &Value) -> bool {
        self.conditions
            .iter()
            .all(|(path, condition)| condition.holds(resolve(envelope, path)))
    }
}

fn split_path(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return Err(format!("A path is 1 to {MAX_PATH_LEN} characters"));
    }
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) || segments.len() > MAX_PATH_SEGMENTS {
        return Err(format!(
            "Not a dotted path of up to {MAX_PATH_SEGMENTS} non-empty names"
        ));
    }
    if !ROOTS.contains(&segments[0].as_str()) {
        return Err(format!(
            "Unknown envelope field {:?}; paths start with one of {}",
            segments[0],
            ROOTS.join(", ")
        ));
    }
    if segments[0] == "workspace" && segments.get(1).is_some_and(|s| s != "id") {
        return Err("Of the workspace only workspace.id can be filtered on".into());
    }
    Ok(segments)
}

fn condition(op: &str, operand: &Value) -> Result<Condition, String> {
    let comparable = |ordering, or_equal| match operand {
        Value::Number(_) | Value::String(_) => {
            Ok(Condition::Compare(ordering, or_equal, operand.clone()))
        }
        _ => Err(format!("{op} takes a number or a string")),
    };
    let set = || match operand.as_array() {
        Some(items) if !items.is_empty() && items.len() <= MAX_SET_LEN => Ok(items.clone()),
        _ => Err(format!("{op} takes an array of 1 to {MAX_SET_LEN} values")),
    };
    match op {
        "$eq" => Ok(Condition::Eq(operand.clone())),
        "$ne" => Ok(Condition::Ne(operand.clone())),
        "$gt" => comparable(Ordering::Greater, false),
        "$gte" => comparable(Ordering::Greater, true),
        "$lt" => comparable(Ordering::Less, false),
        "$lte" => comparable(Ordering::Less, true),
        "$in" => set().map(Condition::In),
        "$nin" => set().map(Condition::Nin),
        "$exists" => operand
            .as_bool()
            .map(Condition::Exists)
            .ok_or_else(|| "$exists takes true or false".to_owned()),
        "$prefix" => operand
            .as_str()
            .map(|p| Condition::Prefix(p.to_owned()))
            .ok_or_else(|| "$prefix takes a string".to_owned()),
        _ => Err(format!("Unknown operator {op:?}; allowed: {OPERATORS}")),
    }
}

/// The value at `path`; a numeric segment indexes an array.
fn resolve<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root, |at, segment| match at {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

impl Condition {
    fn holds(&self, value: Option<&Value>) -> bool {
        match self {
            Condition::Exists(wanted) => value.is_some() == *wanted,
            // As in MongoDB: a missing field is "not equal" and "not in".
            Condition::Ne(operand) => value.is_none_or(|v| !same(v, operand)),
            Condition::Nin(set) => value.is_none_or(|v| !set.iter().any(|s| same(v, s))),
            _ => value.is_some_and(|v| self.holds_on(v)),
        }
    }

    fn holds_on(&self, value: &Value) -> bool {
        match self {
            Condition::Eq(operand) => same(value, operand),
            Condition::In(set) => set.iter().any(|s| same(value, s)),
            Condition::Compare(ordering, or_equal, operand) => {
                compare(value, operand).is_some_and(|o| o == *ordering || (*or_equal && o.is_eq()))
            }
            Condition::Prefix(prefix) => value.as_str().is_some_and(|s| s.starts_with(prefix)),
            Condition::Exists(_) | Condition::Ne(_) | Condition::Nin(_) => unreachable!(),
        }
    }
}

/// Equality where `1` and `1.0` are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// Numbers compare with numbers and strings with strings; anything else does not compare.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare_numbers(x: &Number, y: &Number) -> Option<Ordering> {
    let exact = |n: &Number| n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
    match (exact(x), exact(y)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn filter(value: Value) -> Filter {
        Filter::compile(&FilterSpec(value.as_object().unwrap().clone())).unwrap()
    }

    fn faults(value: Value) -> String {
        let mut errors = ValidationErrors::default();
        assert!(FilterSpec::parse("filter", &value, &mut errors).is_none());
        serde_json::to_string(&errors).unwrap()
    }

    fn deal(amount: Value) -> Value {
        json!({"event_type": "crm.deal_won", "source": {"type": "GENERIC"},
            "data": {"amount": amount, "stage": "won", "tags": ["a", "b"]}})
    }

    #[test]
    fn the_spec_example_selects_by_amount_stage_and_presence() {
        let f = filter(json!({"data.amount": {"$gte": 1000},
            "data.stage": {"$in": ["won", "closing"]}, "data.tags": {"$exists": true}}));
        assert!(f.matches(&deal(json!(5000))));
        assert!(f.matches(&deal(json!(1000.0))));
        assert!(!f.matches(&deal(json!(50))));
        assert!(!f.matches(&deal(json!("5000"))), "a string is not a number");
    }

    #[test]
    fn every_operator_behaves() {
        let d = deal(json!(7));
        let cases = [
            (json!({"data.amount": 7}), true),
            (json!({"data.amount": {"$eq": 7.0}}), true),
            (json!({"data.amount": {"$ne": 7}}), false),
            (json!({"data.missing": {"$ne": 7}}), true),
            (json!({"data.amount": {"$gt": 7}}), false),
            (json!({"data.amount": {"$lt": 8, "$gt": 6}}), true),
            (json!({"data.amount": {"$lte": 7}}), true),
            (json!({"data.stage": {"$gt": "wom"}}), true),
            (json!({"data.stage": {"$nin": ["lost"]}}), true),
            (json!({"data.missing": {"$nin": ["lost"]}}), true),
            (json!({"data.missing": {"$exists": false}}), true),
            (json!({"data.missing": {"$in": [1]}}), false),
            (json!({"event_type": {"$prefix": "crm."}}), true),
            (json!({"data.tags.1": "b"}), true),
            (json!({"data.tags.9": {"$exists": true}}), false),
            (json!({"source.type": "GENERIC"}), true),
        ];
        for (spec, expected) in cases {
            assert_eq!(filter(spec.clone()).matches(&d), expected, "{spec}");
        }
    }

    #[test]
    fn a_bad_filter_names_its_path_and_operator() {
        let err = faults(json!({"data.amount": {"$gte": 1, "$between": [1, 2]}}));
        assert!(err.contains("filter.data.amount.$between"), "{err}");
        assert!(err.contains("Unknown operator"), "{err}");
        let err = faults(json!({"payload.amount": {"$gte": 1}}));
        assert!(
            err.contains("filter.payload.amount") && err.contains("data"),
            "{err}"
        );
        let err = faults(json!({"data..x": 1, "data.y": {"$in": []}, "data.z": {"$gte": [1]}}));
        for at in ["filter.data..x", "filter.data.y.$in", "filter.data.z.$gte"] {
            assert!(err.contains(at), "{at}: {err}");
        }
        assert!(faults(json!({})).contains("at least one"));
        assert!(faults(json!([1])).contains("\"filter\""));
        assert!(faults(json!({"data.a": {}})).contains("No operator"));
        assert!(faults(json!({"workspace.name": "x"})).contains("workspace.id"));
    }

    /// JSON with keys that look like paths and operators, so both the happy and the faulty
    /// branches of compilation are reached.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| f.is_finite().then(|| Value::from(f))),
            "[a-z.]{0,6}".prop_map(Value::from),
        ];
        let key = prop_oneof![
            prop::sample::select(vec![
                "data.amount",
                "data.tags.0",
                "event_type",
                "$gte",
                "$in",
                "$nin",
                "$exists",
                "$prefix",
                "$ne",
                "$lt",
                "$x",
                "data..a",
                "id",
            ])
            .prop_map(str::to_owned),
            "[a-z.$]{0,8}",
        ];
        leaf.prop_recursive(3, 32, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(crate::proptest_cases::config(256))]
        /// Whatever a caller sends either compiles or is refused with named faults, and a
        /// compiled filter evaluates any document without panicking.
        #[test]
        fn arbitrary_filters_never_panic(spec in json_value(), doc in json_value()) {
            let mut errors = ValidationErrors::default();
            if let Some(spec) = FilterSpec::parse("filter", &spec, &mut errors) {
                let _ = Filter::compile(&spec).unwrap().matches(&doc);
            } else {
                prop_assert!(!errors.is_empty());
            }
        }
    }
}
