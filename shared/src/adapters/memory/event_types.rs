//! In-memory custom event types.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::Metered;
use crate::custom_types::{room_for_another, CustomEventType, EventTypeName};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{Defined, EventTypeStore};

/// Each workspace's types in name order, as the other stores list them.
/// Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryEventTypes(
    Arc<Metered<HashMap<WorkspaceId, BTreeMap<EventTypeName, CustomEventType>>>>,
);

metered_store!(MemoryEventTypes);

impl EventTypeStore for MemoryEventTypes {
    async fn create_event_type(&self, custom: &CustomEventType) -> Result<Defined, StoreError> {
        self.0.call(|workspaces| {
            let held = workspaces.entry(custom.workspace_id.clone()).or_default();
            if held.contains_key(&custom.name) {
                return Ok(Defined::NameTaken);
            }
            if !room_for_another(held.len()) {
                return Ok(Defined::LimitReached);
            }
            held.insert(custom.name.clone(), custom.clone());
            Ok(Defined::Created)
        })
    }

    async fn get_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<Option<CustomEventType>, StoreError> {
        self.0.call(|workspaces| {
            Ok(workspaces
                .get(workspace)
                .and_then(|held| held.get(name))
                .cloned())
        })
    }

    async fn list_event_types(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<CustomEventType>, StoreError> {
        self.0.call(|workspaces| {
            let held = workspaces.get(workspace).into_iter();
            Ok(held.flat_map(BTreeMap::values).cloned().collect())
        })
    }

    async fn delete_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<bool, StoreError> {
        self.0.call(|workspaces| {
            let held = workspaces.get_mut(workspace);
            Ok(held.and_then(|held| held.remove(name)).is_some())
        })
    }
}
