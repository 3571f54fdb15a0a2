//! In-memory provider connections.

use std::collections::HashMap;

use super::Metered;
use crate::connection::{room_for_another, Connection};
use crate::error::StoreError;
use crate::ids::{ConnectionId, WorkspaceId};
use crate::ports::{ConnectionStore, Created};

/// Keyed by connection id, as the pointer items of DynamoDB are; a workspace's read filters.
/// Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryConnections(std::sync::Arc<Metered<HashMap<ConnectionId, Connection>>>);

metered_store!(MemoryConnections);

fn of_workspace<'a>(
    all: &'a HashMap<ConnectionId, Connection>,
    workspace: &'a WorkspaceId,
) -> impl Iterator<Item = &'a Connection> {
    all.values().filter(move |c| &c.workspace_id == workspace)
}

impl ConnectionStore for MemoryConnections {
    async fn create_connection(&self, connection: &Connection) -> Result<Created, StoreError> {
        self.0.call(|all| {
            if !room_for_another(of_workspace(all, &connection.workspace_id).count()) {
                return Ok(Created::LimitReached);
            }
            if all.contains_key(&connection.id) {
                return Err(StoreError::Corrupt(format!(
                    "connection {} already exists",
                    connection.id
                )));
            }
            all.insert(connection.id.clone(), connection.clone());
            Ok(Created::Created)
        })
    }

    async fn get_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self.0.call(|all| {
            all.get(id)
                .filter(|c| &c.workspace_id == workspace)
                .cloned()
        }))
    }

    async fn list_connections(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<Connection>, StoreError> {
        let mut found: Vec<Connection> = self
            .0
            .call(|all| of_workspace(all, workspace).cloned().collect());
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    async fn delete_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> Result<bool, StoreError> {
        Ok(self.0.call(|all| {
            let held = all.get(id).is_some_and(|c| &c.workspace_id == workspace);
            held && all.remove(id).is_some()
        }))
    }

    async fn find_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        Ok(self.0.call(|all| all.get(id).cloned()))
    }
}
