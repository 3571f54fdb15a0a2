//! Reads only tests make, kept out of the production ports: nothing in production looks an
//! event up by its id, reads a delivery back, or counts a queue, so no adapter keeps an index
//! for them and no handler can come to depend on them.

use std::future::Future;

use crate::delivery::{Delivery, DeliveryId};
use crate::error::{QueueError, StoreError};
use crate::ids::{EventId, WorkspaceId};
use crate::ports::{DeliveryStore, EventStore};
use crate::Event;

pub trait EventLookup: EventStore {
    /// The unexpired event of the workspace with this id.
    fn get_event(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
    ) -> impl Future<Output = Result<Option<Event>, StoreError>> + Send;
}

pub trait DeliveryLookup: DeliveryStore {
    fn get_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
    ) -> impl Future<Output = Result<Option<Delivery>, StoreError>> + Send;
}

pub trait QueueDepth {
    /// Messages currently in the queue, visible or not.
    fn depth(&self) -> impl Future<Output = Result<u64, QueueError>> + Send;
}
