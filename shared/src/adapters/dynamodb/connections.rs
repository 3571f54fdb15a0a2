//! DynamoDB adapter for provider connections, in the subscriptions table.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::{get_item, get_s, pk_sk, query_docs, s, unavailable, under_prefix, Item};
use crate::adapters::{connection_doc, connection_from_doc};
use crate::connection::{Connection, MAX_CONNECTIONS_PER_WORKSPACE};
use crate::error::StoreError;
use crate::ids::{ConnectionId, WorkspaceId};
use crate::ports::{ConnectionStore, Created};

/// The workspace's connection count, beside its connections.
const COUNT_SK: &str = "con-count";
/// The sort key of the item a connection id alone finds.
const POINTER_SK: &str = "connection";
const SK_PREFIX: &str = "con#";
/// Where the count's write sits in a create's transaction, to tell its refusal apart.
const COUNT_WRITE: usize = 0;

table_adapter!(
    /// Connections in the subscriptions table (the notify API's own): the connection at
    /// `pk` = workspace id, `sk` = `con#<id>`, for the workspace's reads; and a copy at
    /// `pk` = the connection id (its `con_` prefix keeps it apart from workspace ids and
    /// routes), `sk` = `connection`, so a provider's delivery, which names only the
    /// connection, finds it in one read. Both are written and deleted in one transaction with
    /// the workspace's connection count, which enforces the limit. Connections are newer than
    /// the table, so a missing count is a count of zero.
    DynamoConnections
);

impl DynamoConnections {
    fn main_key(workspace: &WorkspaceId, id: &ConnectionId) -> Item {
        pk_sk(workspace.as_str(), format!("{SK_PREFIX}{id}"))
    }

    fn pointer_key(id: &ConnectionId) -> Item {
        pk_sk(id.as_str(), POINTER_SK)
    }

    fn put_new(&self, mut item: Item, doc: &str) -> Result<TransactWriteItem, StoreError> {
        item.insert("doc".into(), s(doc));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(&self, key: Item, must_exist: bool) -> Result<TransactWriteItem, StoreError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if must_exist {
            delete = delete.condition_expression("attribute_exists(pk)");
        }
        let delete = delete.build().map_err(unavailable)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The count moving by `by`; growing, only while it leaves room for one more
    /// (`connection::room_for_another`, as a condition).
    fn count_update(
        &self,
        workspace: &WorkspaceId,
        by: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let max = MAX_CONNECTIONS_PER_WORKSPACE;
        let ws = workspace.as_str();
        super::count_update(&self.table, ws, COUNT_SK, "connections", by, max)
    }

    /// Runs the writes as one transaction; `Ok(Some(i))` when the condition of write `i`
    /// refused it (see [`super::transact_at`]).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<usize>, StoreError> {
        super::transact_at(&self.client, items).await
    }

    async fn read(&self, key: Item) -> Result<Option<Connection>, StoreError> {
        get_item(&self.client, &self.table, key)
            .await?
            .map(|item| connection_from_doc(get_s(&item, "doc")?))
            .transpose()
    }
}

impl ConnectionStore for DynamoConnections {
    async fn create_connection(&self, connection: &Connection) -> Result<Created, StoreError> {
        let doc = connection_doc(connection);
        let items = vec![
            self.count_update(&connection.workspace_id, 1)?,
            self.put_new(
                Self::main_key(&connection.workspace_id, &connection.id),
                &doc,
            )?,
            self.put_new(Self::pointer_key(&connection.id), &doc)?,
        ];
        match self.transact(items).await? {
            None => Ok(Created::Created),
            Some(COUNT_WRITE) => Ok(Created::LimitReached),
            Some(_) => Err(StoreError::Corrupt(format!(
                "connection {} already exists",
                connection.id
            ))),
        }
    }

    async fn get_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        self.read(Self::main_key(workspace, id)).await
    }

    async fn list_connections(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<Connection>, StoreError> {
        let query = under_prefix(&self.client, &self.table, workspace.as_str(), SK_PREFIX);
        // Sort keys are `con#<id>` and ids are time-ordered: the query reads oldest first.
        query_docs(query, connection_from_doc).await
    }

    async fn delete_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> Result<bool, StoreError> {
        let items = vec![
            self.delete(Self::main_key(workspace, id), true)?,
            self.delete(Self::pointer_key(id), false)?,
            self.count_update(workspace, -1)?,
        ];
        // Only the workspace's own item is conditioned: another workspace's id deletes nothing.
        Ok(self.transact(items).await?.is_none())
    }

    async fn find_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        self.read(Self::pointer_key(id)).await
    }
}
