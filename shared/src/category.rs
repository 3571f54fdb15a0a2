//! The four generic ingest categories and the body `eventType` values each accepts.

use serde::{Deserialize, Serialize};

/// The `{eventType}` path segment of the generic ingest route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Emails,
    Calls,
    Crm,
    Social,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Emails,
        Category::Calls,
        Category::Crm,
        Category::Social,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Emails => "emails",
            Category::Calls => "calls",
            Category::Crm => "crm",
            Category::Social => "social",
        }
    }

    /// The body `eventType` values this category accepts.
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            Category::Emails => &[
                "sent",
                "reply",
                "opened",
                "clicked",
                "bounced",
                "unsubscribed",
            ],
            Category::Calls => &["transcript", "scheduled", "completed", "missed"],
            Category::Crm => &[
                "opportunity_created",
                "deal_won",
                "deal_lost",
                "meeting_booked",
            ],
            Category::Social => &[
                "connection_sent",
                "connection_accepted",
                "message_sent",
                "message_received",
            ],
        }
    }

    /// Whether analytics processes this sub-type; the rest are stored but not processed.
    pub fn should_process(self, event_type: &str) -> bool {
        match self {
            Category::Emails => matches!(event_type, "sent" | "reply"),
            Category::Calls => event_type == "transcript",
            Category::Crm | Category::Social => true,
        }
    }

    pub fn valid_values() -> String {
        Self::ALL.map(Category::as_str).join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_process_follows_the_spec_table() {
        assert!(Category::Emails.should_process("sent"));
        assert!(Category::Emails.should_process("reply"));
        assert!(!Category::Emails.should_process("opened"));
        assert!(Category::Calls.should_process("transcript"));
        assert!(!Category::Calls.should_process("missed"));
        assert!(Category::Crm.should_process("deal_lost"));
        assert!(Category::Social.should_process("connection_sent"));
    }
}
