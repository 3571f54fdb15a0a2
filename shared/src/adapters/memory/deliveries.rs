//! In-memory deliveries, claimed attempt by attempt under the domain's claim rule.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::Metered;
use crate::adapters::now_epoch_seconds;
use crate::batch::{has_room, BatchMember, Gathered};
use crate::delivery::{Delivery, DeliveryId, DeliveryState, Reopened};
use crate::delivery_control::BatchLimits;
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{BatchStore, Claim, DeliveryStore};

#[derive(Debug)]
struct Row {
    delivery: Delivery,
    /// Epoch seconds until which the last claimed attempt is held.
    claimed_until: i64,
    /// Set while the delivery waits for its paused subscription.
    parked: bool,
}

/// Gathering batches of batched subscriptions.
#[derive(Debug)]
struct Gathering {
    batch: DeliveryId,
    members: u32,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Deliveries {
    /// By (workspace, id), in id order like the parked index.
    rows: BTreeMap<(WorkspaceId, DeliveryId), Row>,
    gathering: HashMap<(WorkspaceId, SubscriptionId), Gathering>,
    members: HashMap<(WorkspaceId, DeliveryId), Vec<BatchMember>>,
}

/// Deliveries and the batches gathering them. Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryDeliveries(Arc<Metered<Deliveries>>);

metered_store!(MemoryDeliveries);

impl MemoryDeliveries {
    /// How many deliveries are in each state: (pending, succeeded, gave up).
    pub fn states(&self) -> (usize, usize, usize) {
        let store = self.0.lock();
        let count = |state| {
            let all = store.rows.values();
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
        self.0.call(|store| {
            let rows = &mut store.rows;
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
        self.0.call(|store| {
            let rows = &mut store.rows;
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
        self.0.call(|store| {
            let rows = &mut store.rows;
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
        self.0.call(|store| {
            let key = (delivery.workspace_id.clone(), delivery.id.clone());
            if let Some(row) = store.rows.get_mut(&key) {
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
        self.0.call(|store| {
            let rows = &mut store.rows;
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

    async fn reopen_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        if_last: Option<u32>,
    ) -> Result<Reopened, StoreError> {
        let now = now_epoch_seconds();
        self.0.call(|store| {
            let Some(row) = store.rows.get_mut(&(workspace.clone(), id.clone())) else {
                return Ok(Reopened::Missing);
            };
            let reopened = row.delivery.reopen(row.claimed_until, now, if_last);
            if let Reopened::Queued { attempt, .. } = reopened {
                row.delivery.state = DeliveryState::Pending;
                row.delivery.attempts = attempt;
                row.claimed_until = 0;
            }
            Ok(reopened)
        })
    }

    async fn finish_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        state: DeliveryState,
    ) -> Result<(), StoreError> {
        self.0.call(|store| {
            let rows = &mut store.rows;
            let row = rows
                .get_mut(&(workspace.clone(), id.clone()))
                .ok_or_else(|| StoreError::Corrupt(format!("no delivery {id} to finish")))?;
            row.delivery.state = state;
            row.delivery.completed = attempt;
            Ok(())
        })
    }
}

impl Deliveries {
    fn seal(&mut self, workspace: &WorkspaceId, subscription: &SubscriptionId, batch: &DeliveryId) {
        let key = (workspace.clone(), batch.clone());
        if let Some(row) = self.rows.get_mut(&key) {
            if row.delivery.state == DeliveryState::Gathering {
                row.delivery.state = DeliveryState::Pending;
            }
        }
        let slot = (workspace.clone(), subscription.clone());
        if self.gathering.get(&slot).is_some_and(|g| &g.batch == batch) {
            self.gathering.remove(&slot);
        }
    }

    fn insert(&mut self, delivery: Delivery) {
        let key = (delivery.workspace_id.clone(), delivery.id.clone());
        self.rows.insert(
            key,
            Row {
                delivery,
                claimed_until: 0,
                parked: false,
            },
        );
    }
}

impl BatchStore for MemoryDeliveries {
    async fn gather(
        &self,
        member: &Delivery,
        limits: &BatchLimits,
        size: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Gathered, StoreError> {
        self.0.call(|store| {
            let (ws, sub) = (&member.workspace_id, &member.subscription_id);
            if let Some(existing) = store.rows.get(&(ws.clone(), member.id.clone())) {
                return Ok(Gathered::Already {
                    batch: existing.delivery.batch.clone(),
                });
            }
            let slot = (ws.clone(), sub.clone());
            let mut sealed = Vec::new();
            let room = store.gathering.get(&slot).map(|g| {
                let fits = has_room(
                    g.members,
                    g.bytes,
                    size,
                    limits.max_events,
                    limits.max_bytes,
                );
                (g.batch.clone(), fits)
            });
            let (batch, opened) = match room {
                Some((batch, true)) => (batch, false),
                full => {
                    if let Some((batch, _)) = full {
                        store.seal(ws, sub, &batch);
                        sealed.push(batch);
                    }
                    let record = Delivery::open_batch(member, now);
                    let batch = record.id.clone();
                    store.insert(record);
                    let empty = Gathering {
                        batch: batch.clone(),
                        members: 0,
                        bytes: 0,
                    };
                    store.gathering.insert(slot.clone(), empty);
                    (batch, true)
                }
            };
            let gathering = store.gathering.get_mut(&slot).expect("opened above");
            gathering.members += 1;
            gathering.bytes += size;
            let position = gathering.members;
            store.insert(member.clone().in_batch(&batch));
            let members = store.members.entry((ws.clone(), batch.clone()));
            members.or_default().push(BatchMember::of(member));
            if position >= limits.max_events {
                store.seal(ws, sub, &batch);
                sealed.push(batch.clone());
            }
            Ok(Gathered::Joined {
                batch,
                position,
                opened,
                sealed,
            })
        })
    }

    async fn seal_batch(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        batch: &DeliveryId,
    ) -> Result<(), StoreError> {
        self.0.call(|store| {
            store.seal(workspace, subscription, batch);
            Ok(())
        })
    }

    async fn batch_members(
        &self,
        workspace: &WorkspaceId,
        batch: &DeliveryId,
    ) -> Result<Vec<BatchMember>, StoreError> {
        self.0.call(|store| {
            let members = store.members.get(&(workspace.clone(), batch.clone()));
            Ok(members.cloned().unwrap_or_default())
        })
    }
}

impl crate::test_support::DeliveryLookup for MemoryDeliveries {
    async fn get_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.0.call(|store| {
            let rows = &mut store.rows;
            let row = rows.get(&(workspace.clone(), id.clone()));
            Ok(row.map(|r| r.delivery.clone()))
        })
    }
}
