//! In-memory deliveries, claimed attempt by attempt under the domain's claim rule.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::Metered;
use crate::adapters::now_epoch_seconds;
use crate::delivery::{Delivery, DeliveryId, DeliveryState};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{Claim, DeliveryStore};

#[derive(Debug)]
struct Row {
    delivery: Delivery,
    /// Epoch seconds until which the last claimed attempt is held.
    claimed_until: i64,
    /// Set while the delivery waits for its paused subscription.
    parked: bool,
}

/// Deliveries by (workspace, id), in id order like the parked index.
/// Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryDeliveries(Arc<Metered<BTreeMap<(WorkspaceId, DeliveryId), Row>>>);

metered_store!(MemoryDeliveries);

impl MemoryDeliveries {
    /// How many deliveries are in each state: (pending, succeeded, gave up).
    pub fn states(&self) -> (usize, usize, usize) {
        let rows = self.0.lock();
        let count = |state| {
            let all = rows.values();
            all.filter(|r| r.delivery.state == state).count()
        };
        (
            count(DeliveryState::Pending),
            count(DeliveryState::Succeeded),
            count(DeliveryState::GaveUp),
        )
    }
}

impl DeliveryStore for MemoryDeliveries {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        self.0.call(|rows| {
            let key = (delivery.workspace_id.clone(), delivery.id.clone());
            let row = rows.entry(key).or_insert_with(|| Row {
                delivery: delivery.clone(),
                claimed_until: 0,
                parked: false,
            });
            Ok(row.delivery.clone())
        })
    }

    async fn claim_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let now = now_epoch_seconds();
        self.0.call(|rows| {
            let Some(row) = rows.get_mut(&(workspace.clone(), id.clone())) else {
                return Ok(Claim::Missing);
            };
            if !row.delivery.can_claim(attempt, row.claimed_until, now) {
                return Ok(Claim::Unavailable);
            }
            row.delivery.attempts = attempt;
            row.claimed_until = now + lease.as_secs() as i64;
            row.parked = false;
            Ok(Claim::Claimed(row.delivery.clone()))
        })
    }

    async fn park_attempt(&self, delivery: &Delivery, attempt: u32) -> Result<(), StoreError> {
        self.0.call(|rows| {
            let key = (delivery.workspace_id.clone(), delivery.id.clone());
            if let Some(row) = rows.get_mut(&key) {
                if row.delivery.can_park(attempt) {
                    row.claimed_until = 0;
                    row.parked = true;
                }
            }
            Ok(())
        })
    }

    async fn release_attempt(&self, delivery: &Delivery, attempt: u32) -> Result<(), StoreError> {
        self.0.call(|rows| {
            let key = (delivery.workspace_id.clone(), delivery.id.clone());
            if let Some(row) = rows.get_mut(&key) {
                if row.delivery.can_park(attempt) {
                    row.claimed_until = 0;
                }
            }
            Ok(())
        })
    }

    async fn parked_attempts(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        after: Option<&DeliveryId>,
        max: usize,
    ) -> Result<Vec<(DeliveryId, u32)>, StoreError> {
        self.0.call(|rows| {
            Ok(rows
                .iter()
                .filter(|((ws, id), row)| {
                    ws == workspace
                        && row.parked
                        && &row.delivery.subscription_id == subscription
                        && after.is_none_or(|after| id > after)
                })
                .take(max)
                .map(|((_, id), row)| (id.clone(), row.delivery.attempts))
                .collect())
        })
    }

    async fn finish_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        state: DeliveryState,
    ) -> Result<(), StoreError> {
        self.0.call(|rows| {
            let row = rows
                .get_mut(&(workspace.clone(), id.clone()))
                .ok_or_else(|| StoreError::Corrupt(format!("no delivery {id} to finish")))?;
            row.delivery.state = state;
            row.delivery.completed = attempt;
            Ok(())
        })
    }
}

impl crate::test_support::DeliveryLookup for MemoryDeliveries {
    async fn get_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.0.call(|rows| {
            let row = rows.get(&(workspace.clone(), id.clone()));
            Ok(row.map(|r| r.delivery.clone()))
        })
    }
}
