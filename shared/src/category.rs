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

    /// The catalog name of one of its body `eventType` values, e.g. `emails.sent`.
    pub fn full_type(self, event_type: &str) -> String {
        let mut name = String::with_capacity(self.as_str().len() + 1 + event_type.len());
        name.push_str(self.as_str());
        name.push('.');
        name.push_str(event_type);
        name
    }

    /// The category and body `eventType` of a generic catalog name (`emails.sent`), if it is one.
    pub fn split_type(name: &str) -> Option<(Self, &'static str)> {
        let (category, event_type) = name.split_once('.')?;
        let category = Self::parse(category)?;
        let known = category.event_types().iter().find(|t| **t == event_type)?;
        Some((category, known))
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
