//! Request units of DynamoDB calls, from the sizes of the items they write and read.
//!
//! The adapters do not ask for `ReturnConsumedCapacity` (and moto's figures would not be
//! DynamoDB's), so units are computed as DynamoDB bills on demand: 1 WRU per started KB
//! written (2 in a transaction), 1 RRU per started 4 KB read strongly consistent, 0.5
//! eventually consistent (a Query's items summed first). An update or delete is billed on the
//! larger image; the request does not carry the item, so it is sized from the item as stored
//! after the run (read without being counted), which the later writes of a delivery grow at most.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

/// A DynamoDB call's cost, and what still needs the stored item's size.
#[derive(Debug, Default, Clone, Copy)]
pub struct Units {
    pub wru: f64,
    pub rru: f64,
}

/// The size DynamoDB gives an attribute value in its JSON wire form.
fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len(),
        // Numbers: about one byte per two significant digits, plus one.
        ("N", Value::String(n)) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        ("B", Value::String(b)) => b.len() * 3 / 4,
        ("BOOL" | "NULL", _) => 1,
        ("SS" | "NS" | "BS", Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or(0, str::len)).sum()
        }
        ("L", Value::Array(items)) => 3 + items.iter().map(|i| value_size(i) + 1).sum::<usize>(),
        ("M", Value::Object(members)) => 3 + item_size(members) + members.len(),
        _ => 0,
    }
}

/// An item's size: its attribute names and values.
pub fn item_size(item: &Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn sdk_value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(items) | AttributeValue::Ns(items) => {
            items.iter().map(String::len).sum()
        }
        AttributeValue::L(items) => 3 + items.iter().map(|i| sdk_value_size(i) + 1).sum::<usize>(),
        AttributeValue::M(members) => {
            3 + members
                .iter()
                .map(|(k, v)| k.len() + sdk_value_size(v) + 1)
                .sum::<usize>()
        }
        _ => 0,
    }
}

pub fn sdk_item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + sdk_value_size(value))
        .sum()
}

fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// A stored item an update, delete or condition check touched: its table and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Touched {
    pub table: String,
    pub key: String,
}

/// What one call costs from its bodies alone, and the stored items (with their WRU factor)
/// whose sizes complete it.
pub fn units(operation: &str, request: &[u8], response: &[u8]) -> (Units, Vec<(Touched, f64)>) {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    let response: Value = serde_json::from_slice(response).unwrap_or(Value::Null);
    let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
    let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let touched = |v: &Value, factor: f64| {
        let table = v["TableName"].as_str().unwrap_or_default().to_owned();
        (
            Touched {
                table,
                key: v["Key"].to_string(),
            },
            factor,
        )
    };
    let mut cost = Units::default();
    let mut later = Vec::new();
    match operation {
        "PutItem" => cost.wru = write_units(item_size(&object(&request["Item"]))),
        "UpdateItem" | "DeleteItem" => later.push(touched(&request, 1.0)),
        "GetItem" => cost.rru = read_units(item_size(&object(&response["Item"])), consistent),
        "Query" | "Scan" => {
            let bytes = response["Items"]
                .as_array()
                .map_or(0, |items| items.iter().map(|i| item_size(&object(i))).sum());
            cost.rru = read_units(bytes, consistent);
        }
        "TransactWriteItems" => {
            for item in request["TransactItems"].as_array().into_iter().flatten() {
                if let Some(put) = item.get("Put") {
                    cost.wru += 2.0 * write_units(item_size(&object(&put["Item"])));
                }
                for kind in ["Update", "Delete", "ConditionCheck"] {
                    if let Some(change) = item.get(kind) {
                        later.push(touched(change, 2.0));
                    }
                }
            }
        }
        "BatchWriteItem" => {
            for writes in request["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|t| t.values())
            {
                for write in writes.as_array().into_iter().flatten() {
                    cost.wru += write_units(item_size(&object(&write["PutRequest"]["Item"])));
                }
            }
        }
        _ => {}
    }
    (cost, later)
}

/// The write units of a touched item whose stored size is `bytes` (0 if it is gone).
pub fn touched_units(bytes: usize, factor: f64) -> f64 {
    factor * write_units(bytes)
}
