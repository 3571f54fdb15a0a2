//! DynamoDB adapter for the workspace and event stores.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{ensure_event_fits, now_epoch_seconds};
use crate::error::StoreError;
use crate::ids::{ApiKeyHash, EventId, WorkspaceId};
use crate::ports::{EventStore, ExistingEvent, Inserted, WorkspaceStore};
use crate::{Category, Event, Workspace};

/// GSI of the events table keyed by `event_id`.
pub const EVENTS_BY_ID_INDEX: &str = "by_event_id";

pub(super) type Item = HashMap<String, AttributeValue>;

/// Workspaces table: `pk` = `ws#<id>` (workspace) or `key#<sha256>` (API key).
/// Events table: `pk` = workspace id, `sk` = `dedup#<dedup id>`, GSI [`EVENTS_BY_ID_INDEX`].
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    workspaces_table: String,
    events_table: String,
}

impl DynamoStore {
    pub fn new(
        client: Client,
        workspaces_table: impl Into<String>,
        events_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            workspaces_table: workspaces_table.into(),
            events_table: events_table.into(),
        }
    }

    async fn get(&self, table: &str, key: Item) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, table, key).await
    }

    async fn put_new(&self, table: &str, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// A strongly consistent read of one item.
pub(super) async fn get_item(
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

pub(super) fn unavailable<E: std::error::Error + 'static>(err: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn pk(value: String) -> Item {
    HashMap::from([("pk".to_owned(), s(value))])
}

fn events_key(workspace: &WorkspaceId, dedup_id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(workspace.as_str())),
        ("sk".to_owned(), s(format!("dedup#{dedup_id}"))),
    ])
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a boolean")))
}

fn get_time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(get_s(item, name)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
}

fn parse_id<T: TryFrom<String, Error = String>>(item: &Item, name: &str) -> Result<T, StoreError> {
    T::try_from(get_s(item, name)?.to_owned()).map_err(StoreError::Corrupt)
}

fn event_from_item(item: &Item) -> Result<Event, StoreError> {
    let category = Category::parse(get_s(item, "category")?)
        .ok_or_else(|| StoreError::Corrupt("unknown category".into()))?;
    let payload = serde_json::from_str(get_s(item, "payload")?)
        .map_err(|e| StoreError::Corrupt(format!("payload: {e}")))?;
    Ok(Event {
        id: parse_id(item, "event_id")?,
        workspace_id: parse_id(item, "pk")?,
        dedup_id: get_s(item, "dedup_id")?.to_owned(),
        category,
        event_type: get_s(item, "event_type")?.to_owned(),
        timestamp: get_time(item, "timestamp")?,
        received_at: get_time(item, "received_at")?,
        should_process: get_bool(item, "should_process")?,
        payload,
    })
}

impl WorkspaceStore for DynamoStore {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let mut item = pk(format!("ws#{}", workspace.id));
        item.insert("workspace_id".into(), s(workspace.id.as_str()));
        item.insert("name".into(), s(&workspace.name));
        item.insert("created_at".into(), s(workspace.created_at.to_rfc3339()));
        self.put_new(&self.workspaces_table, item).await
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        let Some(item) = self
            .get(&self.workspaces_table, pk(format!("ws#{id}")))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Workspace {
            id: parse_id(&item, "workspace_id")?,
            name: get_s(&item, "name")?.to_owned(),
            created_at: get_time(&item, "created_at")?,
        }))
    }

    async fn add_api_key(
        &self,
        workspace: &WorkspaceId,
        key: &ApiKeyHash,
    ) -> Result<(), StoreError> {
        let mut item = pk(format!("key#{}", key.as_str()));
        item.insert("workspace_id".into(), s(workspace.as_str()));
        item.insert("created_at".into(), s(Utc::now().to_rfc3339()));
        self.put_new(&self.workspaces_table, item).await
    }

    async fn workspace_for_key(&self, key: &ApiKeyHash) -> Result<Option<WorkspaceId>, StoreError> {
        let item = self
            .get(&self.workspaces_table, pk(format!("key#{}", key.as_str())))
            .await?;
        item.map(|item| parse_id(&item, "workspace_id")).transpose()
    }
}

impl EventStore for DynamoStore {
    async fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> Result<Inserted, StoreError> {
        let payload = event.payload.as_json();
        ensure_event_fits(payload, &event.dedup_id)?;
        let mut item = events_key(&event.workspace_id, &event.dedup_id);
        item.extend([
            ("event_id".to_owned(), s(event.id.as_str())),
            ("dedup_id".to_owned(), s(&event.dedup_id)),
            ("category".to_owned(), s(event.category.as_str())),
            ("event_type".to_owned(), s(&event.event_type)),
            ("timestamp".to_owned(), s(event.timestamp.to_rfc3339())),
            ("received_at".to_owned(), s(event.received_at.to_rfc3339())),
            (
                "should_process".to_owned(),
                AttributeValue::Bool(event.should_process),
            ),
            ("payload".to_owned(), s(payload)),
            ("queued".to_owned(), AttributeValue::Bool(false)),
            ("expires_at".to_owned(), n(expires_at)),
        ]);
        // An expired record no longer dedups, even before DynamoDB's lazy TTL deletes it.
        let result = self
            .client
            .put_item()
            .table_name(&self.events_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Inserted::New),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(conflict) => {
                    let old = conflict.item.ok_or_else(|| {
                        StoreError::Corrupt("conflict without the existing item".into())
                    })?;
                    Ok(Inserted::Existing(ExistingEvent {
                        event_id: parse_id(&old, "event_id")?,
                        queued: get_bool(&old, "queued")?,
                    }))
                }
                other => Err(unavailable(other)),
            },
        }
    }

    async fn mark_queued(&self, workspace: &WorkspaceId, dedup_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.events_table)
            .set_key(Some(events_key(workspace, dedup_id)))
            .update_expression("SET queued = :queued")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":queued", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_event(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.events_table)
            .index_name(EVENTS_BY_ID_INDEX)
            .key_condition_expression("event_id = :id")
            .filter_expression("pk = :ws AND expires_at >= :now")
            .expression_attribute_values(":id", s(event_id.as_str()))
            .expression_attribute_values(":ws", s(workspace.as_str()))
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .send()
            .await
            .map_err(unavailable)?;
        out.items().first().map(event_from_item).transpose()
    }

    async fn get_event_by_dedup(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        let Some(item) = self
            .get(&self.events_table, events_key(workspace, dedup_id))
            .await?
        else {
            return Ok(None);
        };
        let expires_at = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if expires_at < now_epoch_seconds() {
            return Ok(None);
        }
        event_from_item(&item).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_items_are_reported_not_panicked_on() {
        let item: Item = HashMap::from([("event_id".to_owned(), n(5))]);
        assert!(matches!(
            event_from_item(&item),
            Err(StoreError::Corrupt(_))
        ));
    }
}
