//! DynamoDB adapter for custom event types.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::{get_item, get_s, pk_sk, query_docs, s, transact_at, unavailable, under_prefix, Item};
use crate::adapters::{event_type_doc, event_type_from_doc};
use crate::custom_types::{CustomEventType, EventTypeName, MAX_EVENT_TYPES_PER_WORKSPACE};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{Defined, EventTypeStore};

/// Sort-key prefix of a type beside the workspace's subscriptions.
const TYPE_PREFIX: &str = "type#";
/// The workspace's type count: its own item, so it never touches the subscription count.
const COUNT_SK: &str = "type_count";
/// Where the writes sit in a create's transaction, to tell their refusals apart. The name's
/// comes first so that a taken name is reported as such even in a full workspace.
const NAME_WRITE: usize = 0;
const COUNT_WRITE: usize = 1;

table_adapter!(
    /// Custom event types, in the subscriptions table: a type at `pk` = workspace id, `sk` =
    /// `type#<name>` (so a workspace's types are one `Query`, in name order), and the
    /// workspace's count at `sk` = `type_count`, moved in the same transaction as each create
    /// and delete, which enforces the limit. No type predates its count, so it needs no seeding.
    DynamoEventTypes
);

impl DynamoEventTypes {
    fn key(workspace: &WorkspaceId, name: &EventTypeName) -> Item {
        pk_sk(workspace.as_str(), format!("{TYPE_PREFIX}{name}"))
    }

    /// The workspace's count moving by `by`; moving up only while there is room.
    fn count_update(
        &self,
        workspace: &WorkspaceId,
        by: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let max = MAX_EVENT_TYPES_PER_WORKSPACE;
        let ws = workspace.as_str();
        super::count_update(&self.table, ws, COUNT_SK, "event_types", by, max)
    }
}

impl EventTypeStore for DynamoEventTypes {
    async fn create_event_type(&self, custom: &CustomEventType) -> Result<Defined, StoreError> {
        let mut item = Self::key(&custom.workspace_id, &custom.name);
        item.insert("doc".into(), s(event_type_doc(custom)));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unavailable)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.count_update(&custom.workspace_id, 1)?,
        ];
        match transact_at(&self.client, items).await? {
            None => Ok(Defined::Created),
            Some(NAME_WRITE) => Ok(Defined::NameTaken),
            Some(COUNT_WRITE) => Ok(Defined::LimitReached),
            Some(other) => Err(StoreError::Unavailable(format!(
                "event type create refused at write {other}"
            ))),
        }
    }

    async fn get_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<Option<CustomEventType>, StoreError> {
        get_item(&self.client, &self.table, Self::key(workspace, name))
            .await?
            .map(|item| event_type_from_doc(get_s(&item, "doc")?))
            .transpose()
    }

    async fn list_event_types(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<CustomEventType>, StoreError> {
        let query = under_prefix(&self.client, &self.table, workspace.as_str(), TYPE_PREFIX);
        query_docs(query, event_type_from_doc).await
    }

    async fn delete_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(workspace, name)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unavailable)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.count_update(workspace, -1)?,
        ];
        match transact_at(&self.client, items).await? {
            None => Ok(true),
            Some(_) => Ok(false),
        }
    }
}
