//! Paging through a workspace's logs newest first, a bounded page at a time, with the logs
//! port's own `Query` (never a scan): each page ends its date window at the oldest log seen so
//! far, and the logs of that same microsecond already handed out are skipped by sort key.

use crate::delivery::DeliveryLog;
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{LogQuery, LogStore};

/// Logs one page reads.
pub const PAGE_SIZE: usize = 1_000;

/// The pages of one query, read one at a time with [`LogPages::next_page`].
pub struct LogPages<'a, L> {
    logs: &'a L,
    workspace: WorkspaceId,
    window: LogQuery,
    page_size: usize,
    /// The sort key of the oldest log handed out: everything at or above it is done.
    oldest: Option<String>,
    done: bool,
}

impl<'a, L: LogStore> LogPages<'a, L> {
    pub fn new(logs: &'a L, workspace: &WorkspaceId, query: &LogQuery, page_size: usize) -> Self {
        Self {
            logs,
            workspace: workspace.clone(),
            window: query.clone(),
            page_size: page_size.max(1),
            oldest: None,
            done: false,
        }
    }

    /// The next page, newest first; `None` once every log was handed out.
    pub async fn next_page(&mut self) -> Result<Option<Vec<DeliveryLog>>, StoreError> {
        let mut size = self.page_size;
        while !self.done {
            let found = self
                .logs
                .query_logs(&self.workspace, &self.window, size)
                .await?;
            let full = found.len() == size;
            self.done = !full;
            let oldest = self.oldest.as_ref();
            let fresh: Vec<DeliveryLog> = found
                .into_iter()
                .filter(|log| oldest.is_none_or(|o| log.sort_key() < *o))
                .collect();
            let Some(last) = fresh.last() else {
                // A whole page of one microsecond already handed out: look further in one go.
                size = size.saturating_mul(2);
                continue;
            };
            self.oldest = Some(last.sort_key());
            self.window.to = Some(last.created_at);
            return Ok(Some(fresh));
        }
        Ok(None)
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::adapters::EmbeddedDb;
    use crate::delivery::{DeliveryId, DeliveryStatus};
    use crate::{EventId, RawJson, SubscriptionId};

    fn log(workspace: &WorkspaceId, at: chrono::DateTime<Utc>) -> DeliveryLog {
        let (event, subscription) = (EventId::generate(), SubscriptionId::generate());
        DeliveryLog {
            id: format!("log-{event}"),
            workspace_id: workspace.clone(),
            delivery_id: DeliveryId::for_pair(&event, &subscription),
            event_id: event,
            subscription_id: subscription,
            event_type: "emails.sent".into(),
            webhook_url: "https://example.com".into(),
            delivery_status: DeliveryStatus::Success,
            status_code: Some(200),
            response_body: String::new(),
            delivered_event_obj: RawJson::from_value(&serde_json::json!({})),
            created_at: at,
            attempt: 1,
            duration_ms: 1,
            error: None,
            expires_at: Utc::now().timestamp() + 3600,
            batch_id: None,
        }
    }

    /// More logs in one microsecond than a page holds, among others: every one is handed out
    /// once, newest first, and the pages stay within the window.
    #[tokio::test]
    async fn pages_hand_out_every_log_once_even_within_one_microsecond() {
        let db = EmbeddedDb::open_in_memory().unwrap();
        let workspace = WorkspaceId::generate();
        let now = Utc::now();
        let same = now - Duration::seconds(10);
        let mut written = Vec::new();
        for at in [now - Duration::seconds(1), now - Duration::seconds(2)]
            .into_iter()
            .chain(std::iter::repeat_n(same, 7))
            .chain([now - Duration::seconds(20), now - Duration::hours(2)])
        {
            let log = log(&workspace, at);
            db.append_log(&log).await.unwrap();
            written.push(log);
        }
        let query = LogQuery {
            from: Some(now - Duration::hours(1)),
            ..LogQuery::default()
        };
        let mut pages = LogPages::new(&db, &workspace, &query, 3);
        let mut read = Vec::new();
        let mut count = 0;
        while let Some(page) = pages.next_page().await.unwrap() {
            assert!(page.len() <= 6, "a page is at most twice the size asked");
            read.extend(page);
            count += 1;
            assert!(count < 20, "pages end");
        }
        let mut expected: Vec<String> = written[..written.len() - 1]
            .iter()
            .map(DeliveryLog::sort_key)
            .collect();
        expected.sort();
        expected.reverse();
        let got: Vec<String> = read.iter().map(DeliveryLog::sort_key).collect();
        assert_eq!(got, expected);
    }
}
