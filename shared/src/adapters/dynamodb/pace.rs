//! Send slots of rate-limited subscriptions on DynamoDB: one item per subscription beside it
//! in the subscriptions table, at `sk` = `pace#<id>`, holding `next_free` (epoch microseconds)
//! and a TTL an hour past it, so an idle subscription's item goes away by itself.
//!
//! [`RateLimit::reserve`] becomes one conditional `UpdateItem` in either of two shapes:
//! - busy (`next_free` still ahead): `SET next_free = next_free + interval`, the slot being the
//!   old value, which the update hands back;
//! - idle (no item, or `next_free` passed): `SET next_free = now + interval`, the slot now.
//!
//! The shape is guessed from the last `next_free` this process saw for the subscription, so a
//! busy subscription costs one write per attempt. A wrong guess fails its condition and reads
//! the stored value back in the same call; the next try then takes the right shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{get_n, n, pk_sk, unavailable, DynamoSubscriptions, Item};
use crate::delivery_control::{RateLimit, Slot};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::RateLimiter;

/// How long an item is kept past its next free time. Once that has passed the item means the
/// same as no item (an idle subscription), so the TTL only has to come after it.
const KEPT_PAST_NEXT_FREE_SECS: i64 = 3600;
/// How far past the `next_free` a busy write expects the stored one may be (other workers'
/// reservations since this process last looked) and still be covered by the TTL it writes.
const BUSY_HORIZON_MICROS: i64 = 600 * 1_000_000;
/// Tries of one reservation: a wrong guess is followed by the right shape, so two are the
/// norm for a wrong guess; more only while other workers keep moving the value meanwhile.
const MAX_TRIES: usize = 5;
/// Subscriptions whose last `next_free` is remembered; when full the memory is emptied.
const REMEMBERED: usize = 4096;

/// The last `next_free` this process saw per subscription: the guess of a reservation's shape.
#[derive(Debug, Default, Clone)]
pub(super) struct PaceHints(Arc<Mutex<HashMap<(WorkspaceId, SubscriptionId), i64>>>);

impl PaceHints {
    fn get(&self, key: &(WorkspaceId, SubscriptionId)) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn remember(&self, key: (WorkspaceId, SubscriptionId), next_free: i64) {
        let mut hints = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if hints.len() >= REMEMBERED && !hints.contains_key(&key) {
            hints.clear();
        }
        hints.insert(key, next_free);
    }
}

/// What one conditional write came to.
enum Tried {
    /// Reserved; the stored `next_free` now.
    Reserved(i64),
    /// The guess was wrong; the stored `next_free` (none: no item), if the refusal said.
    Refused(Option<Option<i64>>),
}

fn expires_at(next_free_micros: i64) -> i64 {
    next_free_micros / 1_000_000 + 1 + KEPT_PAST_NEXT_FREE_SECS
}

impl DynamoSubscriptions {
    fn pace_key(workspace: &WorkspaceId, id: &SubscriptionId) -> Item {
        pk_sk(workspace.as_str(), format!("pace#{id}"))
    }

    /// One write of the busy shape, expecting `next_free` at about `expected` (≥ now).
    async fn reserve_busy(
        &self,
        key: Item,
        expected: i64,
        interval: i64,
        now: i64,
    ) -> Result<Tried, StoreError> {
        let horizon = expected + BUSY_HORIZON_MICROS;
        let update = self
            .client
            .update_item()
            .update_expression("SET next_free = next_free + :interval, expires_at = :expires")
            // Still ahead (so the slot is the stored value), and within the horizon the TTL
            // below covers.
            .condition_expression("next_free BETWEEN :now AND :horizon")
            .expression_attribute_values(":horizon", n(horizon))
            .expression_attribute_values(":expires", n(expires_at(horizon + interval)));
        self.pace_write(update, key, interval, now).await
    }

    /// One write of the idle shape: no item, or its `next_free` passed.
    async fn reserve_idle(&self, key: Item, interval: i64, now: i64) -> Result<Tried, StoreError> {
        let update = self
            .client
            .update_item()
            .update_expression("SET next_free = :now + :interval, expires_at = :expires")
            .condition_expression("attribute_not_exists(next_free) OR next_free < :now")
            .expression_attribute_values(":expires", n(expires_at(now + interval)));
        self.pace_write(update, key, interval, now).await
    }

    async fn pace_write(
        &self,
        update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        key: Item,
        interval: i64,
        now: i64,
    ) -> Result<Tried, StoreError> {
        let sent = update
            .table_name(&self.table)
            .set_key(Some(key))
            .expression_attribute_values(":interval", n(interval))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(out) => {
                let attributes = out
                    .attributes
                    .ok_or_else(|| StoreError::Corrupt("next free time missing".into()))?;
                Ok(Tried::Reserved(get_n(&attributes, "next_free")?))
            }
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(refused) => {
                    let stored = refused.item.map(|old| get_n(&old, "next_free").ok());
                    Ok(Tried::Refused(stored))
                }
                other => Err(unavailable(other)),
            },
        }
    }
}

impl RateLimiter for DynamoSubscriptions {
    async fn reserve(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        limit: RateLimit,
        now_micros: i64,
    ) -> Result<Slot, StoreError> {
        let hint_key = (workspace.clone(), subscription.clone());
        let interval = limit.interval_micros();
        let mut seen = self.pace_hints.get(&hint_key);
        for _ in 0..MAX_TRIES {
            let key = Self::pace_key(workspace, subscription);
            let busy = seen.filter(|free| *free >= now_micros);
            let tried = match busy {
                Some(expected) => {
                    self.reserve_busy(key, expected, interval, now_micros)
                        .await?
                }
                None => self.reserve_idle(key, interval, now_micros).await?,
            };
            seen = match tried {
                Tried::Reserved(next_free) => {
                    self.pace_hints.remember(hint_key, next_free);
                    return Ok(Slot(next_free - interval));
                }
                Tried::Refused(Some(stored)) => stored,
                // A refusal that did not say what is stored: the other shape.
                Tried::Refused(None) => match busy {
                    Some(_) => None,
                    None => Some(now_micros),
                },
            };
        }
        Err(StoreError::Unavailable(format!(
            "no send slot for subscription {subscription} after {MAX_TRIES} tries"
        )))
    }
}
