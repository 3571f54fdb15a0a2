//! DynamoDB adapter for subscriptions and their per-event-type routes.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::pace::PaceHints;
use super::{get_item, get_n, get_s, n, pk_sk, query_pages, s, transact_at, unavailable, Item};
use crate::adapters::{subscription_doc, subscription_from_doc};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{Created, FailureCounter, SubscriptionStore};
use crate::subscription::{Subscription, MAX_SUBSCRIPTIONS_PER_WORKSPACE};

/// The workspace's subscription count lives at `sk` = `count` beside its subscriptions.
const COUNT_SK: &str = "count";
/// Where the count's write sits in a create's transaction, to tell its refusal apart.
const COUNT_WRITE: usize = 0;
/// Where it sits in a delete's (after the subscription and its health item).
const COUNT_WRITE_ON_DELETE: usize = 2;

/// Subscriptions table: the subscription at `pk` = workspace id, `sk` = `sub#<id>`; and one
/// route item per enabled event type at `pk` = `route#<workspace>#<event type>`, `sk` = id,
/// holding a copy of the subscription, so fan-out is a single `Query`. Writes move the
/// routes in the same transaction as the subscription, guarded by its version; creates and
/// deletes also move the workspace's count item, which enforces the limit. Beside each
/// subscription sit its failure run (`health#<id>`) and its send slots (`pace#<id>`, see
/// `pace.rs`).
#[derive(Clone)]
pub struct DynamoSubscriptions {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
    pub(super) pace_hints: PaceHints,
}

impl DynamoSubscriptions {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            pace_hints: PaceHints::default(),
        }
    }

    fn main_key(workspace: &WorkspaceId, id: &SubscriptionId) -> Item {
        pk_sk(workspace.as_str(), format!("sub#{id}"))
    }

    fn health_key(workspace: &WorkspaceId, id: &SubscriptionId) -> Item {
        pk_sk(workspace.as_str(), format!("health#{id}"))
    }

    fn route_key(workspace: &WorkspaceId, event_type: &str, id: &SubscriptionId) -> Item {
        pk_sk(format!("route#{workspace}#{event_type}"), id.as_str())
    }

    /// The item at `key` holding `doc`, the subscription serialized once for all its items.
    fn with_doc(mut key: Item, subscription: &Subscription, doc: &str) -> Item {
        key.insert("doc".into(), s(doc));
        key.insert("version".into(), n(subscription.version as i64));
        key.insert(
            "is_enabled".into(),
            AttributeValue::Bool(subscription.is_enabled),
        );
        key
    }

    fn put(
        &self,
        item: Item,
        condition: Option<(&str, Option<i64>)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expression, version)) = condition {
            put = put.condition_expression(expression);
            if let Some(version) = version {
                put = put.expression_attribute_values(":version", n(version));
            }
        }
        let put = put.build().map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(
        &self,
        key: Item,
        expected_version: Option<i64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some(version) = expected_version {
            delete = delete
                .condition_expression("version = :version")
                .expression_attribute_values(":version", n(version));
        }
        let delete = delete.build().map_err(unavailable)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn route_puts(
        &self,
        subscription: &Subscription,
        doc: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        subscription
            .routed_event_types()
            .iter()
            .map(|t| {
                let key = Self::route_key(&subscription.workspace_id, t, &subscription.id);
                self.put(Self::with_doc(key, subscription, doc), None)
            })
            .collect()
    }

    /// Runs the writes as one transaction; `Ok(false)` when a version condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        Ok(self.transact_at(items).await?.is_none())
    }

    /// Runs the writes as one transaction; `Ok(Some(i))` when the condition of write `i` (the
    /// first failing one) refused it (see [`transact_at`]).
    async fn transact_at(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<usize>, StoreError> {
        transact_at(&self.client, items).await
    }

    /// The workspace's subscription count moving by `by`, refused while the count item is
    /// missing (see [`Self::seed_count`]); with `limit`, also unless the count leaves room for
    /// one more (`subscription::room_for_another`, as a condition).
    fn count_update(
        &self,
        workspace: &WorkspaceId,
        by: i64,
        limit: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(pk_sk(workspace.as_str(), COUNT_SK)))
            .update_expression("ADD subscriptions :by")
            .expression_attribute_values(":by", n(by));
        let update = if limit {
            update
                .condition_expression("subscriptions < :max")
                .expression_attribute_values(":max", n(MAX_SUBSCRIPTIONS_PER_WORKSPACE as i64))
        } else {
            update.condition_expression("attribute_exists(subscriptions)")
        };
        let update = update.build().map_err(unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Whether the workspace's count item exists yet.
    async fn has_count(&self, workspace: &WorkspaceId) -> Result<bool, StoreError> {
        let key = pk_sk(workspace.as_str(), COUNT_SK);
        Ok(get_item(&self.client, &self.table, key).await?.is_some())
    }

    /// Gives a workspace that has no count item yet (a new one, or one whose subscriptions
    /// predate the count) the count of the subscriptions it holds. Creates and deletes are
    /// refused while the item is missing, so none can commit between the count and the put;
    /// a put that finds the item already there lost a harmless race with another seed.
    async fn seed_count(&self, workspace: &WorkspaceId) -> Result<(), StoreError> {
        let mut held: i64 = 0;
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(workspace.as_str()))
            .expression_attribute_values(":prefix", s("sub#"))
            .select(aws_sdk_dynamodb::types::Select::Count);
        query_pages(query, |page| {
            held += i64::from(page.count);
            Ok(true)
        })
        .await?;
        let mut item = pk_sk(workspace.as_str(), COUNT_SK);
        item.insert("subscriptions".into(), n(held));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(unavailable(other)),
            },
        }
    }

    /// Runs a create or delete whose count write is write `count_at`; if that write was
    /// refused only because the count item is missing, seeds it and runs the writes once more.
    async fn transact_counted(
        &self,
        workspace: &WorkspaceId,
        items: Vec<TransactWriteItem>,
        count_at: usize,
    ) -> Result<Option<usize>, StoreError> {
        let refused = self.transact_at(items.clone()).await?;
        if refused != Some(count_at) || self.has_count(workspace).await? {
            return Ok(refused);
        }
        self.seed_count(workspace).await?;
        self.transact_at(items).await
    }

    async fn query_docs(
        &self,
        pk: String,
        sk_prefix: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(&pk));
        let query = match sk_prefix {
            Some(prefix) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("pk = :pk"),
        };
        super::query_docs(query, subscription_from_doc).await
    }
}

impl SubscriptionStore for DynamoSubscriptions {
    async fn create_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Created, StoreError> {
        let doc = subscription_doc(subscription);
        let main = Self::with_doc(
            Self::main_key(&subscription.workspace_id, &subscription.id),
            subscription,
            &doc,
        );
        // The count and the subscription are written together, so concurrent creates cannot
        // pass the limit between a count and a write.
        let mut items = vec![
            self.count_update(&subscription.workspace_id, 1, true)?,
            self.put(main, Some(("attribute_not_exists(pk)", None)))?,
        ];
        items.extend(self.route_puts(subscription, &doc)?);
        let workspace = &subscription.workspace_id;
        match self.transact_counted(workspace, items, COUNT_WRITE).await? {
            None => Ok(Created::Created),
            Some(COUNT_WRITE) => Ok(Created::LimitReached),
            Some(_) => Err(StoreError::Corrupt(format!(
                "subscription {} already exists",
                subscription.id
            ))),
        }
    }

    async fn get_subscription(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        get_item(&self.client, &self.table, Self::main_key(workspace, id))
            .await?
            .map(|item| subscription_from_doc(get_s(&item, "doc")?))
            .transpose()
    }

    async fn list_subscriptions(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.query_docs(workspace.to_string(), Some("sub#")).await
    }

    async fn replace_subscription(
        &self,
        current: &Subscription,
        updated: &Subscription,
    ) -> Result<bool, StoreError> {
        let doc = subscription_doc(updated);
        let main = Self::with_doc(
            Self::main_key(&updated.workspace_id, &updated.id),
            updated,
            &doc,
        );
        let mut items = vec![self.put(
            main,
            Some(("version = :version", Some(current.version as i64))),
        )?];
        let kept = updated.routed_event_types();
        for stale in current
            .routed_event_types()
            .iter()
            .filter(|t| !kept.contains(t))
        {
            items.push(self.delete(
                Self::route_key(&current.workspace_id, stale, &current.id),
                None,
            )?);
        }
        items.extend(self.route_puts(updated, &doc)?);
        self.transact(items).await
    }

    async fn delete_subscription(&self, current: &Subscription) -> Result<bool, StoreError> {
        let main = Self::main_key(&current.workspace_id, &current.id);
        let mut items = vec![
            self.delete(main, Some(current.version as i64))?,
            self.delete(Self::health_key(&current.workspace_id, &current.id), None)?,
            self.count_update(&current.workspace_id, -1, false)?,
        ];
        for event_type in current.routed_event_types() {
            items.push(self.delete(
                Self::route_key(&current.workspace_id, event_type, &current.id),
                None,
            )?);
        }
        let workspace = &current.workspace_id;
        match self
            .transact_counted(workspace, items, COUNT_WRITE_ON_DELETE)
            .await?
        {
            None => Ok(true),
            // The subscription changed or went; a missing count after seeding is an outage.
            Some(0) => Ok(false),
            Some(_) => Err(StoreError::Unavailable(format!(
                "subscription count of {workspace} could not be kept"
            ))),
        }
    }

    async fn enabled_subscriptions_for(
        &self,
        workspace: &WorkspaceId,
        event_type: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.query_docs(format!("route#{workspace}#{event_type}"), None)
            .await
    }
}

/// The failure run lives at `sk` = `health#<id>` beside the subscription, updated atomically.
impl FailureCounter for DynamoSubscriptions {
    async fn record_failure(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::health_key(workspace, id)))
            .update_expression("ADD failures :one")
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        let attributes = out
            .attributes
            .ok_or_else(|| StoreError::Corrupt("failure count missing".into()))?;
        get_n(&attributes, "failures")
    }

    async fn reset_failures(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::health_key(workspace, id)))
            .update_expression("SET failures = :zero")
            .expression_attribute_values(":zero", n(0))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedOld)
            .send()
            .await
            .map_err(unavailable)?;
        // No run recorded yet: nothing ended.
        match out.attributes {
            Some(old) if old.contains_key("failures") => get_n(&old, "failures"),
            _ => Ok(0),
        }
    }
}
