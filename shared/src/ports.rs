//! The storage and queue ports the handlers are generic over.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::batch::{BatchMember, Gathered};
use crate::connection::Connection;
use crate::custom_types::{CustomEventType, EventTypeName};
use crate::delivery::{Delivery, DeliveryId, DeliveryLog, DeliveryState, Reopened};
use crate::delivery_control::{BatchLimits, RateLimit, Slot};
use crate::error::{QueueError, StoreError};
use crate::ids::{ApiKeyHash, ConnectionId, EventId, SubscriptionId, WorkspaceId};
use crate::subscription::Subscription;
use crate::{Event, Workspace};

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
    /// A live event already holds the dedup id: its id. Nothing was written.
    Existing(EventId),
}

/// Accepted events, deduplicated per workspace for the dedup window.
///
/// A store is an outbox: storing an event also hands its fan-out (a
/// [`crate::QueueMessage::fan_out`]) to the delivery worker, in the same atomic write. An
/// event's record is written only then, so every write of one is an acceptance to fan out.
pub trait EventStore: Send + Sync {
    /// Stores `event` and its fan-out unless an unexpired event with the same dedup id exists
    /// in its workspace. One call, new or duplicate.
    fn insert_if_absent(
        &self,
        event: &Event,
        expires_at: i64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send;
    /// The event stored under a dedup id, read strongly consistent (no index lag): what the
    /// queue message of an accepted event points at.
    fn get_event_by_dedup(
        &self,
        workspace: &WorkspaceId,
        dedup_id: &str,
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

/// What creating a subscription came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The workspace already holds [`crate::subscription::MAX_SUBSCRIPTIONS_PER_WORKSPACE`];
    /// nothing was written. Checked in the same atomic write, so concurrent creates cannot
    /// pass the limit together.
    LimitReached,
}

/// A workspace's subscriptions, and the per-event-type routing delivery reads once per event.
pub trait SubscriptionStore: Send + Sync {
    /// Stores a new subscription (and its routes, if enabled) unless its workspace is full.
    fn create_subscription(
        &self,
        subscription: &Subscription,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;
    fn get_subscription(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> impl Future<Output = Result<Option<Subscription>, StoreError>> + Send;
    /// Every subscription of the workspace, in no particular order.
    fn list_subscriptions(
        &self,
        workspace: &WorkspaceId,
    ) -> impl Future<Output = Result<Vec<Subscription>, StoreError>> + Send;
    /// Replaces `current` with `updated` (whose version must be `current.version + 1`) and moves
    /// its routes. `Ok(false)` when `current` is no longer what is stored (changed or deleted).
    fn replace_subscription(
        &self,
        current: &Subscription,
        updated: &Subscription,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes `current` and its routes; `Ok(false)` when it changed or was already gone.
    fn delete_subscription(
        &self,
        current: &Subscription,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The enabled subscriptions of a workspace for one event type: one query.
    fn enabled_subscriptions_for(
        &self,
        workspace: &WorkspaceId,
        event_type: &str,
    ) -> impl Future<Output = Result<Vec<Subscription>, StoreError>> + Send;
}

/// What defining a custom event type came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defined {
    Created,
    /// The workspace already has a type of that name; nothing was written.
    NameTaken,
    /// The workspace already holds [`crate::custom_types::MAX_EVENT_TYPES_PER_WORKSPACE`];
    /// nothing was written. Checked in the same atomic write, like the subscription limit.
    LimitReached,
}

/// The event types a workspace defined for itself, by name within the workspace.
pub trait EventTypeStore: Send + Sync {
    /// Stores a new type unless its workspace has one of that name (checked first) or is full.
    fn create_event_type(
        &self,
        event_type: &CustomEventType,
    ) -> impl Future<Output = Result<Defined, StoreError>> + Send;
    fn get_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> impl Future<Output = Result<Option<CustomEventType>, StoreError>> + Send;
    /// Every type of the workspace, in name order (byte order).
    fn list_event_types(
        &self,
        workspace: &WorkspaceId,
    ) -> impl Future<Output = Result<Vec<CustomEventType>, StoreError>> + Send;
    /// Deletes the type; `Ok(false)` when the workspace has none of that name.
    fn delete_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Filters of a delivery-log read; the date window bounds the `Query`, the rest filter it.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub subscription: Option<SubscriptionId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// What claiming an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
// Made once per attempt and taken apart at once; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Claim {
    /// The attempt is ours until the lease ends; the delivery as stored after the claim.
    Claimed(Delivery),
    /// Another worker holds the attempt, or it or the whole delivery is finished.
    Unavailable,
    /// No such delivery.
    Missing,
}

/// Deliveries: one event to one subscription, attempted one claim at a time.
pub trait DeliveryStore: Send + Sync {
    /// Creates the delivery unless one with its id exists; returns what is stored now.
    fn create_delivery(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Delivery, StoreError>> + Send;
    /// Claims attempt number `attempt` of a pending delivery for `lease`: succeeds when that
    /// attempt is not finished and either was not claimed yet or its claim lapsed (its worker
    /// died). One conditional write that also reads the delivery, so an attempt costs no
    /// separate read.
    fn claim_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Gives back a claimed attempt that was not made because the delivery's subscription is
    /// paused, and files the delivery among that subscription's parked work, so re-enabling it
    /// finds the delivery at once. The next claim of the attempt succeeds and unparks it.
    fn park_attempt(
        &self,
        delivery: &Delivery,
        attempt: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives back a claimed attempt that was not made (it waits for a later send slot): its
    /// lease ends at once, so the next claim of the same attempt succeeds. Nothing happens
    /// when a later attempt was claimed meanwhile or this one finished.
    fn release_attempt(
        &self,
        delivery: &Delivery,
        attempt: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `max` deliveries parked for `subscription`, in id order after `after`, each with
    /// the attempt it waits to make.
    fn parked_attempts(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        after: Option<&DeliveryId>,
        max: usize,
    ) -> impl Future<Output = Result<Vec<(DeliveryId, u32)>, StoreError>> + Send;
    /// Reopens the delivery for one more attempt under [`Delivery::reopen`]'s rule, in one
    /// conditional write: pending, claimed up to the attempt after its last finished one, with
    /// a lapsed lease so the next claim of that attempt takes it. `if_last`: only if `if_last`
    /// is still its last finished attempt. The caller queues the attempt it is given.
    fn reopen_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        if_last: Option<u32>,
    ) -> impl Future<Output = Result<Reopened, StoreError>> + Send;
    /// Records that `attempt` finished, and the delivery's state after it.
    fn finish_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        state: DeliveryState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Batches of batched subscriptions, kept beside the deliveries they gather (see `batch.rs`).
pub trait BatchStore: Send + Sync {
    /// Creates `member`, an event's delivery to a batched subscription, inside the
    /// subscription's gathering batch, in one atomic write: the batch is opened when there is
    /// none, and when the gathering one has no room for `size` more bytes it is sealed and
    /// another opened. A batch that reaches `limits.max_events` is sealed at once. A member
    /// that exists already (a fan-out that ran before) is left as it is.
    fn gather(
        &self,
        member: &Delivery,
        limits: &BatchLimits,
        size: usize,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Gathered, StoreError>> + Send;
    /// Seals `batch` of `subscription` if it still gathers, so it takes no more events and its
    /// attempts may be claimed. Sealing a sealed batch does nothing.
    fn seal_batch(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        batch: &DeliveryId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The members of `batch`, in the order they joined.
    fn batch_members(
        &self,
        workspace: &WorkspaceId,
        batch: &DeliveryId,
    ) -> impl Future<Output = Result<Vec<BatchMember>, StoreError>> + Send;
}

/// Delivery logs, one per attempt, kept for the retention period.
pub trait LogStore: Send + Sync {
    fn append_log(&self, log: &DeliveryLog) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The workspace's unexpired log of that id, if any.
    fn get_log(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> impl Future<Output = Result<Option<DeliveryLog>, StoreError>> + Send;
    /// Unexpired logs of a workspace (or one subscription) in the window, newest first.
    fn query_logs(
        &self,
        workspace: &WorkspaceId,
        query: &LogQuery,
        max: usize,
    ) -> impl Future<Output = Result<Vec<DeliveryLog>, StoreError>> + Send;
}

/// A subscription's run of failed attempts, kept apart from the subscription itself so
/// counting never races with its edits.
pub trait FailureCounter: Send + Sync {
    /// Adds one failure; returns the run length now.
    fn record_failure(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
    /// A success ends the run; returns the length of the run it ended (0 if there was none).
    fn reset_failures(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
}

/// Send slots of rate-limited subscriptions, shared by every worker: the store applies
/// [`RateLimit::reserve`] to the subscription's next free time in one atomic write, so
/// concurrent attempts never get the same slot.
pub trait RateLimiter: Send + Sync {
    /// Reserves the next slot of `subscription` at `limit` for an attempt asking at
    /// `now_micros` (epoch microseconds): the later of its next free time and now.
    fn reserve(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        limit: RateLimit,
        now_micros: i64,
    ) -> impl Future<Output = Result<Slot, StoreError>> + Send;
}

/// A workspace's provider connections. Providers name only the connection (their webhooks
/// carry no workspace), so one is also found by its id alone.
pub trait ConnectionStore: Send + Sync {
    /// Stores a new connection unless its workspace already holds
    /// [`crate::connection::MAX_CONNECTIONS_PER_WORKSPACE`]; checked in the same write.
    fn create_connection(
        &self,
        connection: &Connection,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;
    fn get_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;
    /// Every connection of the workspace, oldest first.
    fn list_connections(
        &self,
        workspace: &WorkspaceId,
    ) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;
    /// Deletes the workspace's connection; `Ok(false)` when it held none of that id.
    fn delete_connection(
        &self,
        workspace: &WorkspaceId,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The connection of that id in whichever workspace holds it: what a provider's delivery
    /// is checked against.
    fn find_connection(
        &self,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<Option<Connection>, StoreError>> + Send;
}
