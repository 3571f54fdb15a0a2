//! DynamoDB adapter for delivery logs, one per attempt, kept for the retention period.

use std::collections::HashMap;

use super::{get_s, n, query_pages, s, subscription_key, unavailable};
use crate::adapters::now_epoch_seconds;
use crate::delivery::{log_key_range, DeliveryLog};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{LogQuery, LogStore};

/// GSI of the logs table keyed by `subscription_key` (`<workspace>#<subscription>`) and `sk`.
pub const LOGS_BY_SUBSCRIPTION_INDEX: &str = "by_subscription";
/// GSI of the logs table keyed by `log_key` (`<workspace>#<log id>`): one log by its id.
pub const LOGS_BY_ID_INDEX: &str = "by_log_id";

table_adapter!(
    /// Logs table: `pk` = workspace, `sk` = `<created_at>#<delivery>#<attempt>`, TTL `expires_at`.
    DynamoLogs
);

impl LogStore for DynamoLogs {
    async fn append_log(&self, log: &DeliveryLog) -> Result<(), StoreError> {
        let doc = serde_json::to_string(log).expect("logs always serialize");
        let item = HashMap::from([
            ("pk".to_owned(), s(log.workspace_id.as_str())),
            ("sk".to_owned(), s(log.sort_key())),
            (
                "subscription_key".to_owned(),
                s(subscription_key(&log.workspace_id, &log.subscription_id)),
            ),
            (
                "log_key".to_owned(),
                s(format!("{}#{}", log.workspace_id, log.id)),
            ),
            ("doc".to_owned(), s(doc)),
            ("expires_at".to_owned(), n(log.expires_at)),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_log(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<DeliveryLog>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(LOGS_BY_ID_INDEX)
            .key_condition_expression("log_key = :key")
            // `expiry::is_live`.
            .filter_expression("expires_at >= :now")
            .expression_attribute_values(":key", s(format!("{workspace}#{id}")))
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .send()
            .await
            .map_err(unavailable)?;
        out.items()
            .first()
            .map(|item| {
                serde_json::from_str(get_s(item, "doc")?)
                    .map_err(|e| StoreError::Corrupt(format!("log: {e}")))
            })
            .transpose()
    }

    async fn query_logs(
        &self,
        workspace: &WorkspaceId,
        query: &LogQuery,
        max: usize,
    ) -> Result<Vec<DeliveryLog>, StoreError> {
        let (lower, upper) = log_key_range(query.from, query.to);
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            // `expiry::is_live`.
            .filter_expression("expires_at >= :now")
            .expression_attribute_values(":now", n(now_epoch_seconds()))
            .expression_attribute_values(":lower", s(&lower))
            .expression_attribute_values(":upper", s(&upper));
        let request = match &query.subscription {
            Some(subscription) => request
                .index_name(LOGS_BY_SUBSCRIPTION_INDEX)
                .key_condition_expression(
                    "subscription_key = :key AND sk BETWEEN :lower AND :upper",
                )
                .expression_attribute_values(":key", s(subscription_key(workspace, subscription))),
            None => request
                .key_condition_expression("pk = :key AND sk BETWEEN :lower AND :upper")
                .expression_attribute_values(":key", s(workspace.as_str())),
        };
        let mut found = Vec::new();
        query_pages(request, |page| {
            for item in page.items() {
                let log: DeliveryLog = serde_json::from_str(get_s(item, "doc")?)
                    .map_err(|e| StoreError::Corrupt(format!("log: {e}")))?;
                found.push(log);
            }
            Ok(found.len() < max)
        })
        .await?;
        found.truncate(max);
        Ok(found)
    }
}
