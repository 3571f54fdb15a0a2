//! Embedded adapter for deliveries, claimed attempt by attempt.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use super::EmbeddedDb;
use crate::adapters::{delivery_doc, delivery_from_parts, now_epoch_seconds};
use crate::delivery::{Delivery, DeliveryId, DeliveryState, Reopened};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{Claim, DeliveryStore};

type DeliveryRow = (String, String, u32, u32);

const DELIVERY_SELECT: &str =
    "SELECT doc, state, attempts, completed FROM deliveries WHERE workspace_id = ?1 AND id = ?2";

/// The row with its lease, for the claim rule.
const DELIVERY_CLAIM_SELECT: &str = "SELECT doc, state, attempts, completed, claimed_until
     FROM deliveries WHERE workspace_id = ?1 AND id = ?2";

fn read_delivery_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn delivery_from_row(
    (doc, state, attempts, completed): DeliveryRow,
) -> Result<Delivery, StoreError> {
    delivery_from_parts(&doc, &state, attempts, completed)
}

/// Inserts `delivery` unless its id exists; says whether it did.
pub(super) fn insert_delivery(
    c: &rusqlite::Connection,
    delivery: &Delivery,
) -> rusqlite::Result<bool> {
    let inserted = c.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (workspace_id, id, doc, state, attempts, completed, claimed_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
    )?
    .execute(params![
        delivery.workspace_id.as_str(),
        delivery.id.as_str(),
        delivery_doc(delivery),
        delivery.state.as_str(),
        delivery.attempts,
        delivery.completed
    ])?;
    Ok(inserted == 1)
}

/// The stored delivery and the end of its lease (epoch seconds), for the claim rule.
fn read_with_lease(
    c: &rusqlite::Connection,
    workspace: &WorkspaceId,
    id: &DeliveryId,
) -> Result<Option<(Delivery, i64)>, StoreError> {
    let row = c
        .prepare_cached(DELIVERY_CLAIM_SELECT)?
        .query_row(params![workspace.as_str(), id.as_str()], |r| {
            Ok((read_delivery_row(r)?, r.get::<_, i64>(4)?))
        })
        .optional()?;
    row.map(|(row, lease)| Ok((delivery_from_row(row)?, lease)))
        .transpose()
}

/// The stored delivery `id` of `workspace`, if any.
pub(super) fn read_delivery(
    c: &rusqlite::Connection,
    workspace: &WorkspaceId,
    id: &DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let row = c
        .prepare_cached(DELIVERY_SELECT)?
        .query_row(params![workspace.as_str(), id.as_str()], read_delivery_row)
        .optional()?;
    row.map(delivery_from_row).transpose()
}

impl DeliveryStore for EmbeddedDb {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let written = delivery.clone();
        let existing: Option<DeliveryRow> = self
            .call(move |c| {
                let delivery = written;
                if insert_delivery(c, &delivery)? {
                    // The row is exactly what was written.
                    return Ok(None);
                }
                c.query_row(
                    DELIVERY_SELECT,
                    params![delivery.workspace_id.as_str(), delivery.id.as_str()],
                    read_delivery_row,
                )
                .map(Some)
            })
            .await?;
        existing.map_or_else(|| Ok(delivery.clone()), delivery_from_row)
    }

    async fn claim_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let now = now_epoch_seconds();
        let lease_end = now + lease.as_secs() as i64;
        self.call(move |c| {
            // Immediate: the read, the rule and the write happen under one write lock.
            let tx = c.savepoint()?;
            let Some((mut delivery, claimed_until)) = read_with_lease(&tx, &ws, &id)? else {
                return Ok(Claim::Missing);
            };
            if !delivery.can_claim(attempt, claimed_until, now) {
                return Ok(Claim::Unavailable);
            }
            tx.execute(
                "UPDATE deliveries SET attempts = ?1, claimed_until = ?2, parked_subscription = NULL
                 WHERE workspace_id = ?3 AND id = ?4",
                params![attempt, lease_end, ws.as_str(), id.as_str()],
            )?;
            tx.commit()?;
            delivery.attempts = attempt;
            Ok(Claim::Claimed(delivery))
        })
        .await
    }

    async fn park_attempt(&self, delivery: &Delivery, attempt: u32) -> Result<(), StoreError> {
        let (ws, id) = (delivery.workspace_id.clone(), delivery.id.clone());
        let subscription = delivery.subscription_id.clone();
        self.call(move |c| {
            let tx = c.savepoint()?;
            let Some(row) = tx
                .query_row(
                    DELIVERY_SELECT,
                    params![ws.as_str(), id.as_str()],
                    read_delivery_row,
                )
                .optional()?
            else {
                return Ok(());
            };
            // Someone else holds a later attempt, or this one finished: nothing to park.
            if !delivery_from_row(row)?.can_park(attempt) {
                return Ok(());
            }
            tx.execute(
                "UPDATE deliveries SET claimed_until = 0, parked_subscription = ?3
                 WHERE workspace_id = ?1 AND id = ?2",
                params![ws.as_str(), id.as_str(), subscription.as_str()],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn release_attempt(&self, delivery: &Delivery, attempt: u32) -> Result<(), StoreError> {
        let (ws, id) = (delivery.workspace_id.clone(), delivery.id.clone());
        self.call(move |c| {
            // Mirrors `Delivery::can_park`: only the last claimed attempt, unfinished, is given back.
            c.execute(
                "UPDATE deliveries SET claimed_until = 0
                 WHERE workspace_id = ?1 AND id = ?2 AND attempts = ?3 AND completed < ?3",
                params![ws.as_str(), id.as_str(), attempt],
            )?;
            Ok(())
        })
        .await
    }

    async fn parked_attempts(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        after: Option<&DeliveryId>,
        max: usize,
    ) -> Result<Vec<(DeliveryId, u32)>, StoreError> {
        let (ws, subscription) = (workspace.clone(), subscription.clone());
        let after = after.map_or_else(String::new, |id| id.to_string());
        let rows: Vec<(String, u32)> = self
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT id, attempts FROM deliveries
                     WHERE workspace_id = ?1 AND parked_subscription = ?2 AND id > ?3
                     ORDER BY id LIMIT ?4",
                )?;
                let rows = statement
                    .query_map(
                        params![ws.as_str(), subscription.as_str(), after, max as i64],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?
                    .collect::<rusqlite::Result<_>>()?;
                Ok::<_, StoreError>(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, attempt)| {
                DeliveryId::parse(&id)
                    .map(|id| (id, attempt))
                    .ok_or_else(|| StoreError::Corrupt(format!("parked delivery id {id:?}")))
            })
            .collect()
    }

    async fn reopen_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        if_last: Option<u32>,
    ) -> Result<Reopened, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let now = now_epoch_seconds();
        self.call(move |c| {
            let tx = c.savepoint()?;
            let Some((delivery, claimed_until)) = read_with_lease(&tx, &ws, &id)? else {
                return Ok(Reopened::Missing);
            };
            let reopened = delivery.reopen(claimed_until, now, if_last);
            if let Reopened::Queued { attempt, .. } = reopened {
                tx.execute(
                    "UPDATE deliveries SET state = ?1, attempts = ?2, claimed_until = 0
                     WHERE workspace_id = ?3 AND id = ?4",
                    params![
                        DeliveryState::Pending.as_str(),
                        attempt,
                        ws.as_str(),
                        id.as_str()
                    ],
                )?;
                tx.commit()?;
            }
            Ok(reopened)
        })
        .await
    }

    async fn finish_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        state: DeliveryState,
    ) -> Result<(), StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.call(move |c| {
            c.execute(
                "UPDATE deliveries SET state = ?1, completed = ?2 WHERE workspace_id = ?3 AND id = ?4",
                params![state.as_str(), attempt, ws.as_str(), id.as_str()],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(feature = "test-support")]
impl crate::test_support::DeliveryLookup for EmbeddedDb {
    async fn get_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let row: Option<DeliveryRow> = self
            .call(move |c| {
                c.query_row(
                    DELIVERY_SELECT,
                    params![ws.as_str(), id.as_str()],
                    read_delivery_row,
                )
                .optional()
            })
            .await?;
        row.map(delivery_from_row).transpose()
    }
}
