//! Embedded adapter for delivery logs, one per attempt, kept for the retention period.

use rusqlite::{params, OptionalExtension};

use super::EmbeddedDb;
use crate::adapters::now_epoch_seconds;
use crate::delivery::{log_key_range, DeliveryLog};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{LogQuery, LogStore};

impl LogStore for EmbeddedDb {
    async fn append_log(&self, log: &DeliveryLog) -> Result<(), StoreError> {
        let log = log.clone();
        self.call(move |c| {
            let doc = serde_json::to_string(&log).expect("logs always serialize");
            c.execute(
                "INSERT OR REPLACE INTO delivery_logs (workspace_id, sort_key, subscription_id, doc, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![log.workspace_id.as_str(), log.sort_key(), log.subscription_id.as_str(), doc, log.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_log(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<DeliveryLog>, StoreError> {
        let (ws, id) = (workspace.clone(), id.to_owned());
        let doc: Option<String> = self
            .call(move |c| {
                // Served by the `delivery_logs_by_id` index on the same expression.
                c.query_row(
                    "SELECT doc FROM delivery_logs
                     WHERE workspace_id = ?1 AND json_extract(doc, '$.id') = ?2 AND expires_at >= ?3",
                    params![ws.as_str(), id, now_epoch_seconds()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        doc.map(|doc| {
            serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(format!("log: {e}")))
        })
        .transpose()
    }

    async fn query_logs(
        &self,
        workspace: &WorkspaceId,
        query: &LogQuery,
        max: usize,
    ) -> Result<Vec<DeliveryLog>, StoreError> {
        let ws = workspace.clone();
        let subscription = query.subscription.as_ref().map(|s| s.to_string());
        let (lower, upper) = log_key_range(query.from, query.to);
        let rows: Vec<String> = self
            .call(move |c| {
                // `expires_at >= now` is `expiry::is_live`, in SQL so the limit counts live logs.
                let mut stmt = c.prepare(
                    "SELECT doc FROM delivery_logs
                     WHERE workspace_id = ?1 AND (?2 IS NULL OR subscription_id = ?2)
                       AND sort_key BETWEEN ?3 AND ?4 AND expires_at >= ?5
                     ORDER BY sort_key DESC LIMIT ?6",
                )?;
                let rows = stmt.query_map(
                    params![
                        ws.as_str(),
                        subscription,
                        lower,
                        upper,
                        now_epoch_seconds(),
                        max as i64
                    ],
                    |r| r.get(0),
                )?;
                rows.collect::<Result<_, _>>()
            })
            .await?;
        rows.iter()
            .map(|doc| {
                serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("log: {e}")))
            })
            .collect()
    }
}
