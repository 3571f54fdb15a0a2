//! The storage and queue ports the handlers are generic over.

use std::future::Future;
use std::time::Duration;

use crate::error::{QueueError, StoreError};
use crate::ids::{ApiKeyHash, EventId, WorkspaceId};
use crate::model::{Event, Workspace};

/// Workspaces and the API keys that resolve to them.
pub trait WorkspaceStore: Send + Sync {
    fn create_workspace(
        &self,
        workspace: &Workspace,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_workspace(
        &self,
        id: &WorkspaceId,
    ) -> impl Future<Output = Result<Option<Workspace>, StoreError>> + Send;
    fn add_api_key(
        &self,
        workspace: &WorkspaceId,
        key: &ApiKeyHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn workspace_for_key(
        &self,
        key: &ApiKeyHash,
    ) -> impl Future<Output = Result<Option<WorkspaceId>, StoreError>> + Send;
}

/// Outcome of a conditional insert keyed by (workspace, dedup id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New,
    Existing(ExistingEvent),
}

/// What a duplicate needs to know about the event already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingEvent {
    pub event_id: EventId,
    /// False when the original was stored but its queue send failed: it must be queued now.
    pub queued: bool,
}

/// Accepted events, deduplicated per workspace for the dedup window.
pub trait EventStore: Send + Sync {
    /// Stores `event` unless an unexpired event with the same dedup id exists in its workspace.
    /// The event is stored as not yet queued; a duplicate costs one call.
    fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send;
    /// Records that the event has been handed to the queue.
    fn mark_queued(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_event(
        &self,
        workspace: &WorkspaceId,
        event_id: &EventId,
    ) -> impl Future<Output = Result<Option<Event>, StoreError>> + Send;
}

/// A message handed out by [`Queue::receive`]; invisible to others until its visibility ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// 1 on the first receive.
    pub receive_count: u32,
}

/// SQS semantics: delayed sends, visibility timeouts, receive counts, dead-lettering.
pub trait Queue: Send + Sync {
    fn send(
        &self,
        body: &str,
        delay: Duration,
    ) -> impl Future<Output = Result<String, QueueError>> + Send;
    fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<ReceivedMessage>, QueueError>> + Send;
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
    fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}
