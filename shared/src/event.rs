//! One accepted input event, normalized.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::ids::{EventId, WorkspaceId};
use crate::raw_json::RawJson;

/// One accepted input event, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    pub dedup_id: String,
    pub category: Category,
    /// The body's `eventType`, e.g. `sent`.
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub should_process: bool,
    pub payload: RawJson,
}

impl Event {
    /// The catalog name, `{category}.{eventType}` (e.g. `emails.sent`).
    pub fn full_type(&self) -> String {
        format!("{}.{}", self.category.as_str(), self.event_type)
    }
}
