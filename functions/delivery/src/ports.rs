//! The stores and the queue the worker runs on, as one set.

use hookline_shared::{
    BatchStore, DeliveryStore, EventStore, FailureCounter, LogStore, Queue, RateLimiter,
    SubscriptionStore, WorkspaceStore,
};

/// Every port the worker uses. One adapter may serve several (an embedded database is every
/// store at once); [`Adapters`] is the set for any adapters given one by one.
pub trait Ports {
    type Workspaces: WorkspaceStore;
    type Events: EventStore;
    /// Subscriptions, their failure runs and the send slots of rate-limited ones.
    type Subscriptions: SubscriptionStore + FailureCounter + RateLimiter;
    /// Deliveries and the batches that gather them, in one store so joining one is atomic.
    type Deliveries: DeliveryStore + BatchStore;
    type Logs: LogStore;
    /// The deliveries queue: attempts (and their chained delays) travel here.
    type Queue: Queue;

    fn workspaces(&self) -> &Self::Workspaces;
    fn events(&self) -> &Self::Events;
    fn subscriptions(&self) -> &Self::Subscriptions;
    fn deliveries(&self) -> &Self::Deliveries;
    fn logs(&self) -> &Self::Logs;
    fn queue(&self) -> &Self::Queue;
}

/// One adapter per port.
#[derive(Debug, Clone)]
pub struct Adapters<W, E, S, D, L, Q> {
    pub workspaces: W,
    pub events: E,
    pub subscriptions: S,
    pub deliveries: D,
    pub logs: L,
    pub queue: Q,
}

impl<W, E, S, D, L, Q> Ports for Adapters<W, E, S, D, L, Q>
where
    W: WorkspaceStore,
    E: EventStore,
    S: SubscriptionStore + FailureCounter + RateLimiter,
    D: DeliveryStore + BatchStore,
    L: LogStore,
    Q: Queue,
{
    type Workspaces = W;
    type Events = E;
    type Subscriptions = S;
    type Deliveries = D;
    type Logs = L;
    type Queue = Q;

    fn workspaces(&self) -> &W {
        &self.workspaces
    }
    fn events(&self) -> &E {
        &self.events
    }
    fn subscriptions(&self) -> &S {
        &self.subscriptions
    }
    fn deliveries(&self) -> &D {
        &self.deliveries
    }
    fn logs(&self) -> &L {
        &self.logs
    }
    fn queue(&self) -> &Q {
        &self.queue
    }
}
