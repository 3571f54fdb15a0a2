//! DynamoDB adapter for deliveries, claimed attempt by attempt.

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::Utc;

use super::{get_n, get_s, n, pk_sk, s, subscription_key, unavailable, Item};
use crate::adapters::{delivery_doc, delivery_from_parts};
use crate::delivery::{Delivery, DeliveryId, DeliveryState, Reopened};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{Claim, DeliveryStore};

/// GSI of the deliveries table keyed by `parked_key` (`<workspace>#<subscription>`) and `sk`:
/// only deliveries waiting for a paused subscription carry that attribute.
pub const PARKED_INDEX: &str = "parked";

/// Deliveries table: `pk` = workspace, `sk` = `dlv#<id>`; the static fields as a JSON `doc`,
/// `state`, `attempts` and `claimed_until` as attributes updated in place, and `parked_key`
/// while it waits for its paused subscription.
#[derive(Clone)]
pub struct DynamoDeliveries {
    client: Client,
    table: String,
    /// How long a delivery record is kept (its TTL).
    retention: Duration,
}

pub(super) fn delivery_from_item(item: &Item) -> Result<Delivery, StoreError> {
    let (attempts, completed) = (get_n(item, "attempts")?, get_n(item, "completed")?);
    delivery_from_parts(
        get_s(item, "doc")?,
        get_s(item, "state")?,
        attempts,
        completed,
    )
}

impl DynamoDeliveries {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    pub(super) fn key(workspace: &WorkspaceId, id: &DeliveryId) -> Item {
        pk_sk(workspace.as_str(), format!("dlv#{id}"))
    }

    /// The item a new delivery is stored as.
    pub(super) fn delivery_item(&self, delivery: &Delivery) -> Item {
        let mut item = Self::key(&delivery.workspace_id, &delivery.id);
        item.extend([
            ("doc".to_owned(), s(delivery_doc(delivery))),
            ("state".to_owned(), s(delivery.state.as_str())),
            ("attempts".to_owned(), n(i64::from(delivery.attempts))),
            ("completed".to_owned(), n(i64::from(delivery.completed))),
            ("claimed_until".to_owned(), n(0)),
            (
                "expires_at".to_owned(),
                n(self.expires_at(delivery.created_at)),
            ),
        ]);
        item
    }

    /// When an item written at `at` may go.
    pub(super) fn expires_at(&self, at: chrono::DateTime<Utc>) -> i64 {
        at.timestamp() + self.retention.as_secs() as i64
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn table(&self) -> &str {
        &self.table
    }

    /// Ends the lease of claimed attempt `attempt` unless a later claim holds the delivery or
    /// the attempt finished (`Delivery::can_park`, as a condition); `parked` files it among its
    /// paused subscription's parked work.
    async fn give_back(
        &self,
        delivery: &Delivery,
        attempt: u32,
        parked: Option<String>,
    ) -> Result<(), StoreError> {
        let update = match parked {
            Some(_) => "SET claimed_until = :lapsed, parked_key = :parked",
            None => "SET claimed_until = :lapsed",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&delivery.workspace_id, &delivery.id)))
            .update_expression(update)
            .condition_expression("attempts = :attempt AND completed < :attempt")
            .expression_attribute_values(":attempt", n(i64::from(attempt)))
            .expression_attribute_values(":lapsed", n(0));
        if let Some(parked) = parked {
            request = request.expression_attribute_values(":parked", s(parked));
        }
        match request.send().await {
            // A later attempt was claimed meanwhile, or this one finished: nothing to give back.
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(unavailable(other)),
            },
        }
    }
}

impl DeliveryStore for DynamoDeliveries {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let item = self.delivery_item(delivery);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(delivery.clone()),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(conflict) => {
                    let old = conflict
                        .item
                        .ok_or_else(|| StoreError::Corrupt("conflict without the item".into()))?;
                    delivery_from_item(&old)
                }
                other => Err(unavailable(other)),
            },
        }
    }

    async fn claim_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let now = Utc::now();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(workspace, id)))
            .update_expression(
                "SET attempts = :attempt, claimed_until = :lease_end, updated_at = :now_text REMOVE parked_key",
            )
            // Mirrors `Delivery::can_claim`, the rule every store applies, evaluated by DynamoDB
            // so the claim is one conditional write.
            .condition_expression(
                "#state = :pending AND completed < :attempt AND (attempts < :attempt OR claimed_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":attempt", n(i64::from(attempt)))
            .expression_attribute_values(":lease_end", n(now.timestamp() + lease.as_secs() as i64))
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":now_text", s(now.to_rfc3339()))
            .expression_attribute_values(":pending", s(DeliveryState::Pending.as_str()))
            .return_values(ReturnValue::AllNew)
            // Tells a finished or held delivery from a missing one without another read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output
                    .attributes
                    .ok_or_else(|| StoreError::Corrupt("claim without the item".into()))?;
                delivery_from_item(&item).map(Claim::Claimed)
            }
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(conflict) => {
                    Ok(match conflict.item {
                        Some(_) => Claim::Unavailable,
                        None => Claim::Missing,
                    })
                }
                other => Err(unavailable(other)),
            },
        }
    }

    async fn park_attempt(&self, delivery: &Delivery, attempt: u32) -> Result<(), StoreError> {
        let parked = subscription_key(&delivery.workspace_id, &delivery.subscription_id);
        self.give_back(delivery, attempt, Some(parked)).await
    }

    async fn release_attempt(&self, delivery: &Delivery, attempt: u32) -> Result<(), StoreError> {
        self.give_back(delivery, attempt, None).await
    }

    async fn parked_attempts(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        after: Option<&DeliveryId>,
        max: usize,
    ) -> Result<Vec<(DeliveryId, u32)>, StoreError> {
        let lower = after.map_or_else(|| "dlv#".to_owned(), |id| format!("dlv#{id}"));
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        while found.len() < max {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PARKED_INDEX)
                .key_condition_expression("parked_key = :key AND sk > :lower")
                .expression_attribute_values(":key", s(subscription_key(workspace, subscription)))
                .expression_attribute_values(":lower", s(lower.as_str()))
                .limit(i32::try_from(max - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                let id = get_s(item, "sk")?
                    .strip_prefix("dlv#")
                    .and_then(DeliveryId::parse)
                    .ok_or_else(|| StoreError::Corrupt("parked delivery key".into()))?;
                let attempt = get_n(item, "attempts")?;
                found.push((id, attempt));
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        found.truncate(max);
        Ok(found)
    }

    async fn reopen_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        if_last: Option<u32>,
    ) -> Result<Reopened, StoreError> {
        let now = Utc::now();
        // Mirrors `Delivery::reopen`: no attempt in flight (none claimed past the last finished
        // one, or its lease lapsed) and, for a recovery, no later attempt finished since.
        let mut condition =
            "attribute_exists(pk) AND (attempts <= completed OR claimed_until < :now)".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(workspace, id)))
            .update_expression(
                "SET #state = :pending, attempts = completed + :one, claimed_until = :lapsed, updated_at = :now_text",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(DeliveryState::Pending.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":lapsed", n(0))
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":now_text", s(now.to_rfc3339()))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(last) = if_last {
            condition.push_str(" AND completed = :last");
            request = request.expression_attribute_values(":last", n(i64::from(last)));
        }
        let result = request.condition_expression(condition).send().await;
        let (old, written) = match result {
            Ok(output) => (output.attributes, true),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(conflict) => {
                    (conflict.item, false)
                }
                other => return Err(unavailable(other)),
            },
        };
        let Some(old) = old else {
            return Ok(Reopened::Missing);
        };
        // The rule applied to what was stored tells which refusal it was, or the attempt.
        let claimed_until = get_n::<i64>(&old, "claimed_until")?;
        let reopened = delivery_from_item(&old)?.reopen(claimed_until, now.timestamp(), if_last);
        match (written, reopened) {
            (true, Reopened::Queued { .. })
            | (false, Reopened::InFlight | Reopened::Superseded) => Ok(reopened),
            _ => Err(StoreError::Corrupt(format!(
                "delivery {id}: the reopen condition and rule disagree"
            ))),
        }
    }

    async fn finish_attempt(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
        attempt: u32,
        state: DeliveryState,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(workspace, id)))
            .update_expression("SET #state = :state, completed = :attempt, updated_at = :now_text")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":attempt", n(i64::from(attempt)))
            .expression_attribute_values(":now_text", s(Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(feature = "test-support")]
impl crate::test_support::DeliveryLookup for DynamoDeliveries {
    async fn get_delivery(
        &self,
        workspace: &WorkspaceId,
        id: &DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        super::get_item(&self.client, &self.table, Self::key(workspace, id))
            .await?
            .as_ref()
            .map(delivery_from_item)
            .transpose()
    }
}
