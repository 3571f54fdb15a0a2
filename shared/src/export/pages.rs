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
