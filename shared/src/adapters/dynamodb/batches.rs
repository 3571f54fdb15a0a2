//! DynamoDB adapter for batches, in the deliveries table beside the deliveries they gather:
//! `bgather#<subscription>` names a subscription's gathering batch (`open_batch`) with its
//! `member_count` and `byte_count`, `bmember#<batch>#<position>` lists a member, and the batch itself is a delivery item
//! (`dlv#<batch>`). Joining is one transaction conditioned on the gathering item as read, so
//! two workers never give out one position, and nothing joins a batch once it is sealed
//! (sealing removes the gathering item in the same transaction that makes the batch pending).

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::deliveries::{delivery_from_item, DynamoDeliveries};
use super::{
    get_item, get_n, get_s, n, pk_sk, query_docs, s, transact_at, unavailable, under_prefix, Item,
};
use crate::batch::{has_room, BatchMember, Gathered};
use crate::delivery::{Delivery, DeliveryId, DeliveryState};
use crate::delivery_control::BatchLimits;
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::BatchStore;

/// Tries of a join that raced with other joins or a seal before it counts as an outage.
const MAX_JOIN_TRIES: usize = 16;

fn gathering_sk(subscription: &SubscriptionId) -> String {
    format!("bgather#{subscription}")
}

fn member_prefix(batch: &DeliveryId) -> String {
    format!("bmember#{batch}#")
}

struct Slot {
    batch: DeliveryId,
    members: u32,
    bytes: usize,
}

fn put(table: &str, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .build()
        .map_err(unavailable)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoDeliveries {
    fn gathering_key(workspace: &WorkspaceId, subscription: &SubscriptionId) -> Item {
        pk_sk(workspace.as_str(), gathering_sk(subscription))
    }

    async fn gathering(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
    ) -> Result<Option<Slot>, StoreError> {
        let key = Self::gathering_key(workspace, subscription);
        let Some(item) = get_item(self.client(), self.table(), key).await? else {
            return Ok(None);
        };
        let batch = DeliveryId::parse(get_s(&item, "open_batch")?)
            .ok_or_else(|| StoreError::Corrupt("gathering batch id".into()))?;
        Ok(Some(Slot {
            batch,
            members: get_n(&item, "member_count")?,
            bytes: get_n(&item, "byte_count")?,
        }))
    }

    /// The gathering item of `subscription` as `slot` last read it, as a condition.
    fn as_read(slot: &Slot) -> (&'static str, Item) {
        let seen = Item::from([
            (":seen_batch".to_owned(), s(slot.batch.as_str())),
            (":seen_members".to_owned(), n(i64::from(slot.members))),
        ]);
        (
            "open_batch = :seen_batch AND member_count = :seen_members",
            seen,
        )
    }

    /// Makes `batch` pending, if it still gathers.
    fn seal_write(
        &self,
        workspace: &WorkspaceId,
        batch: &DeliveryId,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(Self::key(workspace, batch)))
            .update_expression("SET #state = :pending")
            .condition_expression("#state = :gathering")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(DeliveryState::Pending.as_str()))
            .expression_attribute_values(":gathering", s(DeliveryState::Gathering.as_str()))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn member_item(&self, batch: &DeliveryId, position: u32, member: &Delivery) -> Item {
        let mut item = pk_sk(
            member.workspace_id.as_str(),
            format!("{}{position:06}", member_prefix(batch)),
        );
        let doc = serde_json::to_string(&BatchMember::of(member)).expect("batch members serialize");
        item.insert("doc".into(), s(doc));
        item.insert("expires_at".into(), n(self.expires_at(member.created_at)));
        item
    }

    fn gathering_item(
        &self,
        member: &Delivery,
        batch: &DeliveryId,
        members: u32,
        bytes: usize,
    ) -> Item {
        let mut item = Self::gathering_key(&member.workspace_id, &member.subscription_id);
        item.insert("open_batch".into(), s(batch.as_str()));
        item.insert("member_count".into(), n(i64::from(members)));
        item.insert("byte_count".into(), n(bytes as i64));
        item.insert("expires_at".into(), n(self.expires_at(member.created_at)));
        item
    }

    async fn existing_batch(&self, member: &Delivery) -> Result<Option<Gathered>, StoreError> {
        let key = Self::key(&member.workspace_id, &member.id);
        let Some(item) = get_item(self.client(), self.table(), key).await? else {
            return Ok(None);
        };
        Ok(Some(Gathered::Already {
            batch: delivery_from_item(&item)?.batch,
        }))
    }
}

impl BatchStore for DynamoDeliveries {
    async fn gather(
        &self,
        member: &Delivery,
        limits: &BatchLimits,
        size: usize,
        now: DateTime<Utc>,
    ) -> Result<Gathered, StoreError> {
        let (ws, sub) = (&member.workspace_id, &member.subscription_id);
        let table = self.table();
        for tries in 0..MAX_JOIN_TRIES {
            let slot = self.gathering(ws, sub).await?;
            let mut writes = Vec::new();
            let mut sealed = Vec::new();
            let fits = slot.as_ref().is_some_and(|g| {
                has_room(
                    g.members,
                    g.bytes,
                    size,
                    limits.max_events,
                    limits.max_bytes,
                )
            });
            let (batch, position, opened) = match &slot {
                Some(g) if fits => {
                    let position = g.members + 1;
                    let (condition, seen) = Self::as_read(g);
                    let key = Self::gathering_key(ws, sub);
                    if position >= limits.max_events {
                        // The last place: the batch is sealed in the same write.
                        let delete = Delete::builder()
                            .table_name(table)
                            .set_key(Some(key))
                            .condition_expression(condition)
                            .set_expression_attribute_values(Some(seen))
                            .build()
                            .map_err(unavailable)?;
                        writes.push(TransactWriteItem::builder().delete(delete).build());
                        writes.push(self.seal_write(ws, &g.batch)?);
                        sealed.push(g.batch.clone());
                    } else {
                        let update = Update::builder()
                            .table_name(table)
                            .set_key(Some(key))
                            .update_expression(
                                "SET member_count = :members, byte_count = byte_count + :size",
                            )
                            .condition_expression(condition)
                            .set_expression_attribute_values(Some(seen))
                            .expression_attribute_values(":members", n(i64::from(position)))
                            .expression_attribute_values(":size", n(size as i64))
                            .build()
                            .map_err(unavailable)?;
                        writes.push(TransactWriteItem::builder().update(update).build());
                    }
                    (g.batch.clone(), position, false)
                }
                full => {
                    let record = Delivery::open_batch(member, now);
                    let gathering = self.gathering_item(member, &record.id, 1, size);
                    match full {
                        Some(g) => {
                            // Replaced as read, and the full batch sealed with it.
                            let (condition, seen) = Self::as_read(g);
                            let replace = Put::builder()
                                .table_name(table)
                                .set_item(Some(gathering))
                                .condition_expression(condition)
                                .set_expression_attribute_values(Some(seen))
                                .build()
                                .map_err(unavailable)?;
                            writes.push(TransactWriteItem::builder().put(replace).build());
                            writes.push(self.seal_write(ws, &g.batch)?);
                            sealed.push(g.batch.clone());
                        }
                        None => writes.push(put(table, gathering, "attribute_not_exists(pk)")?),
                    }
                    writes.push(put(
                        table,
                        self.delivery_item(&record),
                        "attribute_not_exists(pk)",
                    )?);
                    (record.id, 1, true)
                }
            };
            let member_delivery = member.clone().in_batch(&batch);
            let member_at = writes.len();
            writes.push(put(
                table,
                self.delivery_item(&member_delivery),
                "attribute_not_exists(pk)",
            )?);
            writes.push(put(
                table,
                self.member_item(&batch, position, member),
                "attribute_not_exists(pk)",
            )?);
            match transact_at(self.client(), writes).await? {
                None => {
                    return Ok(Gathered::Joined {
                        batch,
                        position,
                        opened,
                        sealed,
                    })
                }
                Some(refused) if refused == member_at => {
                    if let Some(already) = self.existing_batch(member).await? {
                        return Ok(already);
                    }
                }
                // Another join or a seal moved the gathering item since it was read: read it
                // again after a short, random pause, so racing workers spread out.
                Some(_) => {}
            }
            let pause = rand::random::<u64>() % (5 * (tries as u64 + 1));
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        Err(StoreError::Unavailable(format!(
            "batch of {sub} kept changing during {MAX_JOIN_TRIES} tries to join it"
        )))
    }

    async fn seal_batch(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        batch: &DeliveryId,
    ) -> Result<(), StoreError> {
        let table = self.table();
        for _ in 0..MAX_JOIN_TRIES {
            let Some(slot) = self.gathering(workspace, subscription).await? else {
                return Ok(());
            };
            if &slot.batch != batch {
                // Sealed already: a batch leaves the gathering item only when sealed.
                return Ok(());
            }
            let (condition, seen) = Self::as_read(&slot);
            let delete = Delete::builder()
                .table_name(table)
                .set_key(Some(Self::gathering_key(workspace, subscription)))
                .condition_expression(condition)
                .set_expression_attribute_values(Some(seen))
                .build()
                .map_err(unavailable)?;
            let writes = vec![
                TransactWriteItem::builder().delete(delete).build(),
                self.seal_write(workspace, batch)?,
            ];
            if transact_at(self.client(), writes).await?.is_none() {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(format!(
            "batch {batch} kept changing during {MAX_JOIN_TRIES} tries to seal it"
        )))
    }

    async fn batch_members(
        &self,
        workspace: &WorkspaceId,
        batch: &DeliveryId,
    ) -> Result<Vec<BatchMember>, StoreError> {
        let query = under_prefix(
            self.client(),
            self.table(),
            workspace.as_str(),
            &member_prefix(batch),
        );
        query_docs(query, |doc| {
            serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("batch member: {e}")))
        })
        .await
    }
}
