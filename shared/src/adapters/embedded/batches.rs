//! Embedded adapter for batches: the gathering batch of each subscription in
//! `batch_gathering`, members in `batch_members`, the batch itself a row of `deliveries`.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Savepoint};

use super::deliveries::{insert_delivery, read_delivery};
use super::EmbeddedDb;
use crate::batch::{has_room, BatchMember, Gathered};
use crate::delivery::{Delivery, DeliveryId, DeliveryState};
use crate::delivery_control::BatchLimits;
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::BatchStore;

/// Seals `batch`: it stops gathering and leaves its subscription's gathering slot.
fn seal(
    tx: &Savepoint<'_>,
    workspace: &WorkspaceId,
    subscription: &SubscriptionId,
    batch: &DeliveryId,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE deliveries SET state = ?1 WHERE workspace_id = ?2 AND id = ?3 AND state = ?4",
    )?
    .execute(params![
        DeliveryState::Pending.as_str(),
        workspace.as_str(),
        batch.as_str(),
        DeliveryState::Gathering.as_str()
    ])?;
    tx.prepare_cached(
        "DELETE FROM batch_gathering WHERE workspace_id = ?1 AND subscription_id = ?2 AND batch_id = ?3",
    )?
    .execute(params![workspace.as_str(), subscription.as_str(), batch.as_str()])?;
    Ok(())
}

fn parse_id(raw: &str) -> Result<DeliveryId, StoreError> {
    DeliveryId::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("batch id {raw:?}")))
}

impl BatchStore for EmbeddedDb {
    async fn gather(
        &self,
        member: &Delivery,
        limits: &BatchLimits,
        size: usize,
        now: DateTime<Utc>,
    ) -> Result<Gathered, StoreError> {
        let (member, limits) = (member.clone(), *limits);
        self.call(move |c| {
            let tx = c.savepoint()?;
            let (ws, sub) = (&member.workspace_id, &member.subscription_id);
            if let Some(existing) = read_delivery(&tx, ws, &member.id)? {
                return Ok(Gathered::Already {
                    batch: existing.batch,
                });
            }
            let gathering: Option<(String, u32, i64)> = tx
                .prepare_cached(
                    "SELECT batch_id, members, bytes FROM batch_gathering
                     WHERE workspace_id = ?1 AND subscription_id = ?2",
                )?
                .query_row(params![ws.as_str(), sub.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let mut sealed = Vec::new();
            let (batch, position, opened) = match gathering {
                Some((batch, members, bytes))
                    if has_room(members, bytes as usize, size, limits.max_events, limits.max_bytes) =>
                {
                    let batch = parse_id(&batch)?;
                    tx.prepare_cached(
                        "UPDATE batch_gathering SET members = members + 1, bytes = bytes + ?1
                         WHERE workspace_id = ?2 AND subscription_id = ?3",
                    )?
                    .execute(params![size as i64, ws.as_str(), sub.as_str()])?;
                    (batch, members + 1, false)
                }
                full => {
                    if let Some((batch, ..)) = full {
                        let batch = parse_id(&batch)?;
                        seal(&tx, ws, sub, &batch)?;
                        sealed.push(batch);
                    }
                    let record = Delivery::open_batch(&member, now);
                    insert_delivery(&tx, &record)?;
                    tx.prepare_cached(
                        "INSERT INTO batch_gathering (workspace_id, subscription_id, batch_id, members, bytes)
                         VALUES (?1, ?2, ?3, 1, ?4)",
                    )?
                    .execute(params![ws.as_str(), sub.as_str(), record.id.as_str(), size as i64])?;
                    (record.id, 1, true)
                }
            };
            insert_delivery(&tx, &member.clone().in_batch(&batch))?;
            let doc = serde_json::to_string(&BatchMember::of(&member))
                .expect("batch members always serialize");
            tx.prepare_cached(
                "INSERT INTO batch_members (workspace_id, batch_id, position, doc) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![ws.as_str(), batch.as_str(), position, doc])?;
            if position >= limits.max_events {
                seal(&tx, ws, sub, &batch)?;
                sealed.push(batch.clone());
            }
            tx.commit()?;
            Ok(Gathered::Joined {
                batch,
                position,
                opened,
                sealed,
            })
        })
        .await
    }

    async fn seal_batch(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        batch: &DeliveryId,
    ) -> Result<(), StoreError> {
        let (ws, sub, batch) = (workspace.clone(), subscription.clone(), batch.clone());
        self.call(move |c| {
            let tx = c.savepoint()?;
            seal(&tx, &ws, &sub, &batch)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn batch_members(
        &self,
        workspace: &WorkspaceId,
        batch: &DeliveryId,
    ) -> Result<Vec<BatchMember>, StoreError> {
        let (ws, batch) = (workspace.clone(), batch.clone());
        let docs: Vec<String> = self
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT doc FROM batch_members WHERE workspace_id = ?1 AND batch_id = ?2 ORDER BY position",
                )?;
                let rows = statement
                    .query_map(params![ws.as_str(), batch.as_str()], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok::<_, StoreError>(rows)
            })
            .await?;
        docs.iter()
            .map(|doc| {
                serde_json::from_str(doc)
                    .map_err(|e| StoreError::Corrupt(format!("batch member: {e}")))
            })
            .collect()
    }
}
