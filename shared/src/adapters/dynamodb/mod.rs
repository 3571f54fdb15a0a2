//! DynamoDB adapters, one file per port, and the item codec they share.

/// An adapter on one DynamoDB table: its client and the table's name, built with `new`.
macro_rules! table_adapter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            client: aws_sdk_dynamodb::Client,
            table: String,
        }

        impl $name {
            pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
                Self {
                    client,
                    table: table.into(),
                }
            }
        }
    };
}

mod batches;
mod connections;
mod deliveries;
mod event_types;
mod events;
mod exports;
mod logs;
mod pace;
mod subscriptions;
mod workspaces;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};

pub use connections::DynamoConnections;
pub use deliveries::{DynamoDeliveries, PARKED_INDEX};
pub use event_types::DynamoEventTypes;
pub use events::DynamoEvents;
pub use exports::DynamoExports;
pub use logs::{DynamoLogs, LOGS_BY_ID_INDEX, LOGS_BY_SUBSCRIPTION_INDEX};
pub use subscriptions::DynamoSubscriptions;
pub use workspaces::DynamoWorkspaces;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Runs `query` page after page, handing each page to `page` until it answers `false` or the
/// last page is read.
pub(crate) async fn query_pages(
    query: QueryFluentBuilder,
    mut page: impl FnMut(&QueryOutput) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut start: Option<Item> = None;
    loop {
        let out = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(unavailable)?;
        if !page(&out)? {
            return Ok(());
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(()),
        }
    }
}

/// Every item `query` reads, decoded from its `doc` attribute, in the query's order.
pub(crate) async fn query_docs<T>(
    query: QueryFluentBuilder,
    decode: impl Fn(&str) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut found = Vec::new();
    query_pages(query, |page| {
        for item in page.items() {
            found.push(decode(get_s(item, "doc")?)?);
        }
        Ok(true)
    })
    .await?;
    Ok(found)
}

/// A strongly consistent query of partition `pk`'s items whose sort key starts with `prefix`.
pub(crate) fn under_prefix(
    client: &Client,
    table: &str,
    pk: &str,
    prefix: &str,
) -> QueryFluentBuilder {
    client
        .query()
        .table_name(table)
        .consistent_read(true)
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", s(pk))
        .expression_attribute_values(":prefix", s(prefix))
}

/// A transaction write moving the per-workspace count `attribute` of item `(workspace,
/// count_sk)` by `by`; growing, only while it leaves room for one more below `max` (the
/// domain's `room_for_another`, as a condition). A missing count counts as zero.
pub(crate) fn count_update(
    table: &str,
    workspace: &str,
    count_sk: &str,
    attribute: &'static str,
    by: i64,
    max: usize,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(pk_sk(workspace, count_sk)))
        .update_expression(format!("ADD {attribute} :by"))
        .expression_attribute_values(":by", n(by));
    let update = if by > 0 {
        update
            .condition_expression(format!(
                "attribute_not_exists({attribute}) OR {attribute} < :max"
            ))
            .expression_attribute_values(":max", n(max as i64))
    } else {
        update
    };
    let update = update.build().map_err(unavailable)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Tries of a transaction another one kept from running, before it counts as an outage.
const MAX_CONFLICT_RETRIES: u64 = 5;

/// Runs the writes as one transaction; `Ok(Some(i))` when the condition of write `i` (the
/// first failing one) refused it. A transaction cancelled because another one held an item at
/// once (concurrent creates all touch their workspace's counter) is tried again.
pub(crate) async fn transact_at(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<Option<usize>, StoreError> {
    let mut conflicts = 0;
    loop {
        let sent = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let cancelled = match sent {
            Ok(_) => return Ok(None),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled,
                other => return Err(unavailable(other)),
            },
        };
        let reasons = cancelled.cancellation_reasons();
        if let Some(refused) = reasons
            .iter()
            .position(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            return Ok(Some(refused));
        }
        let conflict = reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"));
        if !conflict || conflicts == MAX_CONFLICT_RETRIES {
            return Err(unavailable(cancelled));
        }
        conflicts += 1;
        tokio::time::sleep(Duration::from_millis(10 * conflicts)).await;
    }
}

/// A strongly consistent read of one item.
pub(crate) async fn get_item(
    client: &Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(out.item)
}

pub(crate) fn unavailable<E: std::error::Error + 'static>(err: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A key of `pk` and `sk`, the shape of every table but the workspaces one.
pub(crate) fn pk_sk(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The hash key of the per-subscription indexes (parked deliveries, logs): one subscription
/// within its workspace.
pub(crate) fn subscription_key(workspace: &WorkspaceId, subscription: &SubscriptionId) -> String {
    format!("{workspace}#{subscription}")
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

/// A number attribute, parsed to the type the caller wants.
pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a number")))
}

pub(crate) fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a boolean")))
}

pub(crate) fn get_time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(get_s(item, name)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
}

pub(crate) fn parse_id<T: TryFrom<String, Error = String>>(
    item: &Item,
    name: &str,
) -> Result<T, StoreError> {
    T::try_from(get_s(item, name)?.to_owned()).map_err(StoreError::Corrupt)
}
