//! In-memory subscriptions, their failure runs and their send slots.

use std::collections::HashMap;
use std::sync::Arc;

use super::{CallMeter, Metered};
use crate::delivery_control::{RateLimit, Slot};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{Created, FailureCounter, RateLimiter, SubscriptionStore};
use crate::subscription::{room_for_another, Subscription};

#[derive(Debug, Default)]
struct State {
    subscriptions: HashMap<WorkspaceId, HashMap<SubscriptionId, Subscription>>,
    failures: HashMap<(WorkspaceId, SubscriptionId), u32>,
    /// Each rate-limited subscription's next free send time (epoch microseconds).
    next_free: HashMap<(WorkspaceId, SubscriptionId), i64>,
    /// A bench's own per-workspace limit in place of the product's.
    raised_limit: Option<usize>,
}

/// Routing reads filter the workspace's subscriptions: the routes DynamoDB and SQLite keep
/// are copies of exactly these.
/// Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemorySubscriptions(Arc<Metered<State>>);

metered_store!(MemorySubscriptions);

impl MemorySubscriptions {
    /// A store that lets a workspace hold `limit` subscriptions, for benches that fan out
    /// wider than the product allows.
    pub fn metered_with_limit(meter: Arc<CallMeter>, limit: usize) -> Self {
        let store = Self::metered(meter);
        store.0.lock().raised_limit = Some(limit);
        store
    }

    /// Subscriptions stored disabled (paused or switched off), over every workspace.
    pub fn disabled(&self) -> usize {
        let state = self.0.lock();
        let all = state.subscriptions.values().flat_map(HashMap::values);
        all.filter(|s| !s.is_enabled).count()
    }
}

impl SubscriptionStore for MemorySubscriptions {
    async fn create_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Created, StoreError> {
        self.0.call(|s| {
            let limit = s.raised_limit;
            let held = s
                .subscriptions
                .entry(subscription.workspace_id.clone())
                .or_default();
            let room = limit.map_or_else(|| room_for_another(held.len()), |l| held.len() < l);
            if !room {
                return Ok(Created::LimitReached);
            }
            if held.contains_key(&subscription.id) {
                return Err(StoreError::Corrupt(format!(
                    "subscription {} already exists",
                    subscription.id
                )));
            }
            held.insert(subscription.id.clone(), subscription.clone());
            Ok(Created::Created)
        })
    }

    async fn get_subscription(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        self.0.call(|s| {
            Ok(s.subscriptions
                .get(workspace)
                .and_then(|held| held.get(id))
                .cloned())
        })
    }

    async fn list_subscriptions(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.0.call(|s| {
            let held = s.subscriptions.get(workspace).into_iter();
            Ok(held.flat_map(HashMap::values).cloned().collect())
        })
    }

    async fn replace_subscription(
        &self,
        current: &Subscription,
        updated: &Subscription,
    ) -> Result<bool, StoreError> {
        self.0.call(|s| {
            let stored = s
                .subscriptions
                .get_mut(&current.workspace_id)
                .and_then(|held| held.get_mut(&current.id));
            match stored {
                Some(stored) if stored.version == current.version => {
                    *stored = updated.clone();
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }

    async fn delete_subscription(&self, current: &Subscription) -> Result<bool, StoreError> {
        self.0.call(|s| {
            let Some(held) = s.subscriptions.get_mut(&current.workspace_id) else {
                return Ok(false);
            };
            if held.get(&current.id).map(|s| s.version) != Some(current.version) {
                return Ok(false);
            }
            held.remove(&current.id);
            let key = (current.workspace_id.clone(), current.id.clone());
            s.failures.remove(&key);
            s.next_free.remove(&key);
            Ok(true)
        })
    }

    async fn enabled_subscriptions_for(
        &self,
        workspace: &WorkspaceId,
        event_type: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.0.call(|s| {
            let held = s.subscriptions.get(workspace).into_iter();
            Ok(held
                .flat_map(HashMap::values)
                .filter(|s| s.routed_event_types().iter().any(|t| t == event_type))
                .cloned()
                .collect())
        })
    }
}

impl FailureCounter for MemorySubscriptions {
    async fn record_failure(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        self.0.call(|s| {
            let run = s
                .failures
                .entry((workspace.clone(), id.clone()))
                .or_default();
            *run += 1;
            Ok(*run)
        })
    }

    async fn reset_failures(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        self.0.call(|s| {
            let run = s.failures.get_mut(&(workspace.clone(), id.clone()));
            Ok(run.map_or(0, std::mem::take))
        })
    }
}

impl RateLimiter for MemorySubscriptions {
    async fn reserve(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        limit: RateLimit,
        now_micros: i64,
    ) -> Result<Slot, StoreError> {
        self.0.call(|s| {
            let key = (workspace.clone(), subscription.clone());
            let (slot, next) = limit.reserve(s.next_free.get(&key).copied(), now_micros);
            s.next_free.insert(key, next);
            Ok(slot)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_reservations_get_distinct_slots_one_interval_apart() {
        let store = MemorySubscriptions::default();
        let (ws, id) = (WorkspaceId::generate(), SubscriptionId::generate());
        let limit = RateLimit::new(50).unwrap();
        let reserving = (0..16).map(|_| {
            let (store, ws, id) = (store.clone(), ws.clone(), id.clone());
            tokio::spawn(async move { store.reserve(&ws, &id, limit, 1_000_000).await })
        });
        let mut slots = Vec::new();
        for reserved in reserving {
            slots.push(reserved.await.unwrap().unwrap().0);
        }
        slots.sort_unstable();
        let expected: Vec<i64> = (0..16).map(|i| 1_000_000 + i * 20_000).collect();
        assert_eq!(slots, expected);
        let other = SubscriptionId::generate();
        let first = store.reserve(&ws, &other, limit, 1_000_000).await.unwrap();
        assert_eq!(first, Slot(1_000_000), "paced per subscription");
    }
}
