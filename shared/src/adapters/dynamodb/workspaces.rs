//! DynamoDB adapter for workspaces and the API keys that resolve to them.

use std::collections::HashMap;

use chrono::Utc;

use super::{get_item, get_s, get_time, parse_id, s, unavailable, Item};
use crate::error::StoreError;
use crate::ids::{ApiKeyHash, WorkspaceId};
use crate::ports::WorkspaceStore;
use crate::Workspace;

table_adapter!(
    /// Workspaces table: `pk` = `ws#<id>` (workspace) or `key#<sha256>` (API key).
    DynamoWorkspaces
);

impl DynamoWorkspaces {
    async fn put_new(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

fn pk(value: String) -> Item {
    HashMap::from([("pk".to_owned(), s(value))])
}

impl WorkspaceStore for DynamoWorkspaces {
    async fn create_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let mut item = pk(format!("ws#{}", workspace.id));
        item.insert("workspace_id".into(), s(workspace.id.as_str()));
        item.insert("name".into(), s(&workspace.name));
        item.insert("created_at".into(), s(workspace.created_at.to_rfc3339()));
        self.put_new(item).await
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        let Some(item) = get_item(&self.client, &self.table, pk(format!("ws#{id}"))).await? else {
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
        self.put_new(item).await
    }

    async fn workspace_for_key(&self, key: &ApiKeyHash) -> Result<Option<WorkspaceId>, StoreError> {
        let item = get_item(
            &self.client,
            &self.table,
            pk(format!("key#{}", key.as_str())),
        )
        .await?;
        item.map(|item| parse_id(&item, "workspace_id")).transpose()
    }
}
