//! DynamoDB adapter for accepted events, deduplicated per workspace.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{get_bool, get_item, get_n, get_s, get_time, n, parse_id, pk_sk, s, unavailable, Item};
use crate::adapters::event_layout::{kind_from_layout, layout};
use crate::adapters::{ensure_event_fits, now_epoch_seconds};
use crate::error::StoreError;
use crate::expiry::is_live;
use crate::ids::WorkspaceId;
use crate::ports::{EventStore, Inserted};
use crate::Event;

table_adapter!(
    /// Events table: `pk` = workspace id, `sk` = `dedup#<dedup id>`. Its stream (new images)
    /// is the outbox: the delivery function fans out every event item written, which happens
    /// only when an event is accepted.
    DynamoEvents
);

impl DynamoEvents {
    /// The event an item of the table holds: what a stream record's new image carries.
    pub fn event_from_image(image: &Item) -> Result<Event, StoreError> {
        event_from_item(image)
    }
}

fn key(workspace: &WorkspaceId, dedup_id: &str) -> Item {
    pk_sk(workspace.as_str(), format!("dedup#{dedup_id}"))
}

fn event_from_item(item: &Item) -> Result<Event, StoreError> {
    let meta = item.get("meta").and_then(|v| v.as_s().ok());
    let kind = kind_from_layout(
        get_s(item, "category")?,
        get_s(item, "event_type")?.to_owned(),
        meta.map(String::as_str),
    )?;
    let payload = serde_json::from_str(get_s(item, "payload")?)
        .map_err(|e| StoreError::Corrupt(format!("payload: {e}")))?;
    Ok(Event {
        id: parse_id(item, "event_id")?,
        workspace_id: parse_id(item, "pk")?,
        dedup_id: get_s(item, "dedup_id")?.to_owned(),
        event_type: kind.event_type,
        source: kind.source,
        affect: kind.affect,
        deliver_at: kind.deliver_at,
        timestamp: get_time(item, "timestamp")?,
        received_at: get_time(item, "received_at")?,
        should_process: get_bool(item, "should_process")?,
        payload,
    })
}

impl EventStore for DynamoEvents {
    async fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> Result<Inserted, StoreError> {
        let payload = event.payload.as_json();
        ensure_event_fits(payload, &event.dedup_id)?;
        let mut item = key(&event.workspace_id, &event.dedup_id);
        let stored = layout(event);
        if let Some(meta) = stored.meta {
            item.insert("meta".to_owned(), s(meta));
        }
        item.extend([
            ("event_id".to_owned(), s(event.id.as_str())),
            ("dedup_id".to_owned(), s(&event.dedup_id)),
            ("category".to_owned(), s(stored.category)),
            ("event_type".to_owned(), s(stored.event_type)),
            ("timestamp".to_owned(), s(event.timestamp.to_rfc3339())),
            ("received_at".to_owned(), s(event.received_at.to_rfc3339())),
            (
                "should_process".to_owned(),
                AttributeValue::Bool(event.should_process),
            ),
            ("payload".to_owned(), s(payload)),
            ("expires_at".to_owned(), n(expires_at)),
        ]);
        // An expired record no longer dedups, even before DynamoDB's lazy TTL deletes it: the
        // negation of `expiry::is_live`.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
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
                    Ok(Inserted::Existing(parse_id(&old, "event_id")?))
                }
                other => Err(unavailable(other)),
            },
        }
    }

    async fn get_event_by_dedup(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        let Some(item) = get_item(&self.client, &self.table, key(workspace, dedup_id)).await?
        else {
            return Ok(None);
        };
        let expires_at: i64 = get_n(&item, "expires_at").unwrap_or(0);
        if !is_live(expires_at, now_epoch_seconds()) {
            return Ok(None);
        }
        event_from_item(&item).map(Some)
    }
}

#[cfg(feature = "test-support")]
impl crate::test_support::EventLookup for DynamoEvents {
    /// Queries the workspace's partition and filters on the id: tests only, so no index.
    async fn get_event(
        &self,
        workspace: &WorkspaceId,
        event_id: &crate::ids::EventId,
    ) -> Result<Option<Event>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :ws")
            // `expiry::is_live`.
            .filter_expression("event_id = :id AND expires_at >= :now")
            .expression_attribute_values(":id", s(event_id.as_str()))
            .expression_attribute_values(":ws", s(workspace.as_str()))
            .expression_attribute_values(":now", n(now_epoch_seconds()));
        let mut found = None;
        super::query_pages(query, |page| {
            found = page.items().first().map(event_from_item).transpose()?;
            Ok(found.is_none())
        })
        .await?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
