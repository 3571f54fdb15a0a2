//! Embedded adapter for subscriptions, their per-event-type routes, failure runs and send slots.

use rusqlite::{params, OptionalExtension};

use super::EmbeddedDb;
use crate::adapters::{subscription_doc, subscription_from_doc};
use crate::delivery_control::{RateLimit, Slot};
use crate::error::StoreError;
use crate::ids::{SubscriptionId, WorkspaceId};
use crate::ports::{Created, FailureCounter, RateLimiter, SubscriptionStore};
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
            for table in ["subscription_health", "subscription_pace"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE workspace_id = ?1 AND subscription_id = ?2"
                    ),
                    params![current.workspace_id.as_str(), current.id.as_str()],
                )?;
            }
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

/// A subscription's next free send time is one row, moved by [`RateLimit::reserve`]'s rule in
/// one statement: concurrent reservations are serialized by the database's write lock.
impl RateLimiter for EmbeddedDb {
    async fn reserve(
        &self,
        workspace: &WorkspaceId,
        subscription: &SubscriptionId,
        limit: RateLimit,
        now_micros: i64,
    ) -> Result<Slot, StoreError> {
        let (ws, id) = (workspace.clone(), subscription.clone());
        let interval = limit.interval_micros();
        let next_free: i64 = self
            .call(move |c| {
                c.prepare_cached(
                    "INSERT INTO subscription_pace (workspace_id, subscription_id, next_free)
                     VALUES (?1, ?2, ?3 + ?4)
                     ON CONFLICT (workspace_id, subscription_id)
                     DO UPDATE SET next_free = max(next_free, ?3) + ?4
                     RETURNING next_free",
                )?
                .query_row(
                    params![ws.as_str(), id.as_str(), now_micros, interval],
                    |r| r.get(0),
                )
            })
            .await?;
        Ok(Slot(next_free - interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement applies the domain's rule: the same slots as `RateLimit::reserve` for a
    /// first attempt, a busy run and an attempt after idling.
    #[tokio::test]
    async fn reservations_follow_the_rule_and_concurrent_ones_get_distinct_slots() {
        let db = EmbeddedDb::open_in_memory().unwrap();
        let (ws, id) = (WorkspaceId::generate(), SubscriptionId::generate());
        let limit = RateLimit::new(5).unwrap();
        let mut next_free = None;
        for now in [1_000_000, 1_000_010, 1_000_020, 9_000_000] {
            let (expected, next) = limit.reserve(next_free, now);
            next_free = Some(next);
            assert_eq!(db.reserve(&ws, &id, limit, now).await.unwrap(), expected);
        }

        let busy = SubscriptionId::generate();
        let limit = RateLimit::new(50).unwrap();
        let reserving = (0..16).map(|_| {
            let (db, ws, busy) = (db.clone(), ws.clone(), busy.clone());
            tokio::spawn(async move { db.reserve(&ws, &busy, limit, 1_000_000).await })
        });
        let mut slots = Vec::new();
        for reserved in reserving {
            slots.push(reserved.await.unwrap().unwrap().0);
        }
        slots.sort_unstable();
        let expected: Vec<i64> = (0..16).map(|i| 1_000_000 + i * 20_000).collect();
        assert_eq!(slots, expected);
    }
}
