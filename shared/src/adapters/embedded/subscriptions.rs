//! Embedded adapter for subscriptions, their per-event-type routes and failure runs.

use rusqlite::{params, OptionalExtension};

use super::EmbeddedDb;
use crate::adapters::{subscription_doc, subscription_from_doc};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{Created, FailureCounter, SubscriptionStore};
use crate::subscription::{room_for_another, Subscription};

/// Mirrors the DynamoDB design: the subscription row, plus one route row per enabled event type
/// carrying a copy, moved in the same transaction.
fn write_routes(
    tx: &rusqlite::Connection,
    subscription: &Subscription,
    doc: &str,
) -> rusqlite::Result<()> {
    for event_type in subscription.routed_event_types() {
        tx.execute(
            "INSERT INTO subscription_routes (workspace_id, event_type, subscription_id, doc) VALUES (?1, ?2, ?3, ?4)",
            params![subscription.workspace_id.as_str(), event_type, subscription.id.as_str(), doc],
        )?;
    }
    Ok(())
}

fn delete_routes(tx: &rusqlite::Connection, subscription: &Subscription) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM subscription_routes WHERE workspace_id = ?1 AND subscription_id = ?2",
        params![subscription.workspace_id.as_str(), subscription.id.as_str()],
    )?;
    Ok(())
}

fn docs(rows: Vec<String>) -> Result<Vec<Subscription>, StoreError> {
    rows.iter().map(|doc| subscription_from_doc(doc)).collect()
}

impl SubscriptionStore for EmbeddedDb {
    async fn create_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Created, StoreError> {
        let subscription = subscription.clone();
        self.call(move |c| {
            let doc = subscription_doc(&subscription);
            // Immediate: the count and the insert happen under one write lock.
            let tx = c.savepoint()?;
            let held: i64 = tx.query_row(
                "SELECT COUNT(*) FROM subscriptions WHERE workspace_id = ?1",
                [subscription.workspace_id.as_str()],
                |r| r.get(0),
            )?;
            if !room_for_another(usize::try_from(held).unwrap_or(usize::MAX)) {
                return Ok(Created::LimitReached);
            }
            tx.execute(
                "INSERT INTO subscriptions (workspace_id, id, version, doc) VALUES (?1, ?2, ?3, ?4)",
                params![subscription.workspace_id.as_str(), subscription.id.as_str(), subscription.version as i64, doc],
            )?;
            write_routes(&tx, &subscription, &doc)?;
            tx.commit()?;
            Ok(Created::Created)
        })
        .await
    }

    async fn get_subscription(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        let doc: Option<String> = self
            .call(move |c| {
                c.query_row(
                    "SELECT doc FROM subscriptions WHERE workspace_id = ?1 AND id = ?2",
                    params![ws.as_str(), id.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        doc.map(|d| subscription_from_doc(&d)).transpose()
    }

    async fn list_subscriptions(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let ws = workspace.clone();
        let rows: Vec<String> = self
            .call(move |c| {
                let mut stmt =
                    c.prepare("SELECT doc FROM subscriptions WHERE workspace_id = ?1")?;
                let rows = stmt.query_map([ws.as_str()], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()
            })
            .await?;
        docs(rows)
    }

    async fn replace_subscription(
        &self,
        current: &Subscription,
        updated: &Subscription,
    ) -> Result<bool, StoreError> {
        let (current, updated) = (current.clone(), updated.clone());
        self.call(move |c| {
            let doc = subscription_doc(&updated);
            let tx = c.savepoint()?;
            let changed = tx.execute(
                "UPDATE subscriptions SET version = ?1, doc = ?2 WHERE workspace_id = ?3 AND id = ?4 AND version = ?5",
                params![updated.version as i64, doc, current.workspace_id.as_str(), current.id.as_str(), current.version as i64],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            delete_routes(&tx, &current)?;
            write_routes(&tx, &updated, &doc)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn delete_subscription(&self, current: &Subscription) -> Result<bool, StoreError> {
        let current = current.clone();
        self.call(move |c| {
            let tx = c.savepoint()?;
            let deleted = tx.execute(
                "DELETE FROM subscriptions WHERE workspace_id = ?1 AND id = ?2 AND version = ?3",
                params![
                    current.workspace_id.as_str(),
                    current.id.as_str(),
                    current.version as i64
                ],
            )?;
            if deleted == 0 {
                return Ok(false);
            }
            delete_routes(&tx, &current)?;
            tx.execute(
                "DELETE FROM subscription_health WHERE workspace_id = ?1 AND subscription_id = ?2",
                params![current.workspace_id.as_str(), current.id.as_str()],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn enabled_subscriptions_for(
        &self,
        workspace: &WorkspaceId,
        event_type: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        let (ws, event_type) = (workspace.clone(), event_type.to_owned());
        let rows: Vec<String> = self
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT doc FROM subscription_routes WHERE workspace_id = ?1 AND event_type = ?2",
                )?;
                let rows = stmt.query_map(params![ws.as_str(), event_type], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()
            })
            .await?;
        docs(rows)
    }
}

impl FailureCounter for EmbeddedDb {
    async fn record_failure(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.call(move |c| {
            Ok(c.query_row(
                "INSERT INTO subscription_health (workspace_id, subscription_id, failures) VALUES (?1, ?2, 1)
                 ON CONFLICT (workspace_id, subscription_id) DO UPDATE SET failures = failures + 1
                 RETURNING failures",
                params![ws.as_str(), id.as_str()],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn reset_failures(
        &self,
        workspace: &WorkspaceId,
        id: &SubscriptionId,
    ) -> Result<u32, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.call(move |c| {
            // One writer thread runs this call whole: the read and the reset are one step.
            let ended: Option<u32> = c
                .query_row(
                    "SELECT failures FROM subscription_health WHERE workspace_id = ?1 AND subscription_id = ?2",
                    params![ws.as_str(), id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            c.execute(
                "UPDATE subscription_health SET failures = 0 WHERE workspace_id = ?1 AND subscription_id = ?2",
                params![ws.as_str(), id.as_str()],
            )?;
            Ok(ended.unwrap_or(0))
        })
        .await
    }
}
