//! How an event's type and source are laid out in a store row or item, in both adapters.
//!
//! An event of the generic ingest route, with `affect` add and no `deliver_at`, keeps the
//! layout stores had before other sources existed: `category` and the short `event_type`
//! (`emails` / `sent`), no `meta`. So rows and items written by earlier versions read back
//! unchanged and the ingest path writes nothing extra. Any other event stores its full
//! `event_type`, its source kind in `category`, and the rest in a `meta` JSON document.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::event::{Affect, Event, EventSource};
use crate::Category;

/// The stored form of an event's type and source.
pub(crate) struct EventLayout<'a> {
    pub category: &'a str,
    pub event_type: &'a str,
    pub meta: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct EventMeta {
    source: EventSource,
    #[serde(default)]
    affect: Affect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deliver_at: Option<DateTime<Utc>>,
}

/// What is read back besides the fixed columns.
pub(crate) struct EventKind {
    pub event_type: String,
    pub source: EventSource,
    pub affect: Affect,
    pub deliver_at: Option<DateTime<Utc>>,
}

pub(crate) fn layout(event: &Event) -> EventLayout<'_> {
    if let (EventSource::Generic { category }, Affect::Add, None) =
        (&event.source, event.affect, event.deliver_at)
    {
        let short = event
            .event_type
            .strip_prefix(category.as_str())
            .and_then(|rest| rest.strip_prefix('.'));
        if let Some(short) = short {
            return EventLayout {
                category: category.as_str(),
                event_type: short,
                meta: None,
            };
        }
    }
    let kind = match event.source {
        EventSource::Generic { category } => category.as_str(),
        EventSource::Published { .. } => "published",
        EventSource::Connection { .. } => "connection",
        EventSource::Operational { .. } => "operational",
    };
    let meta = EventMeta {
        source: event.source.clone(),
        affect: event.affect,
        deliver_at: event.deliver_at,
    };
    EventLayout {
        category: kind,
        event_type: &event.event_type,
        meta: Some(serde_json::to_string(&meta).expect("event metadata always serializes")),
    }
}

pub(crate) fn kind_from_layout(
    category: &str,
    event_type: String,
    meta: Option<&str>,
) -> Result<EventKind, StoreError> {
    match meta {
        Some(meta) => {
            let meta: EventMeta = serde_json::from_str(meta)
                .map_err(|e| StoreError::Corrupt(format!("event metadata: {e}")))?;
            Ok(EventKind {
                event_type,
                source: meta.source,
                affect: meta.affect,
                deliver_at: meta.deliver_at,
            })
        }
        None => {
            let category = Category::parse(category)
                .ok_or_else(|| StoreError::Corrupt(format!("category {category:?}")))?;
            Ok(EventKind {
                event_type: category.full_type(&event_type),
                source: EventSource::Generic { category },
                affect: Affect::Add,
                deliver_at: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SourceRef;
    use crate::ids::{EventId, WorkspaceId};
    use crate::RawJson;

    fn generic() -> Event {
        Event::generic(
            EventId::generate(),
            WorkspaceId::generate(),
            "d".into(),
            Category::Emails,
            "sent",
            Utc::now(),
            Utc::now(),
            RawJson::from_value(&serde_json::json!({})),
        )
    }

    fn round_trip(event: &Event) -> EventKind {
        let stored = layout(event);
        kind_from_layout(
            stored.category,
            stored.event_type.to_owned(),
            stored.meta.as_deref(),
        )
        .unwrap()
    }

    #[test]
    fn a_generic_event_keeps_the_layout_earlier_versions_wrote() {
        let event = generic();
        let stored = layout(&event);
        assert_eq!((stored.category, stored.event_type), ("emails", "sent"));
        assert!(stored.meta.is_none());
        let kind = round_trip(&event);
        assert_eq!(kind.event_type, "emails.sent");
        assert_eq!(kind.source, event.source);
    }

    #[test]
    fn other_events_keep_their_source_affect_and_deliver_at() {
        let mut event = generic();
        event.event_type = "conversation.new".into();
        event.source = EventSource::Published {
            origin: Some(SourceRef {
                id: Some("src_1".into()),
                ..Default::default()
            }),
        };
        event.affect = Affect::Change;
        event.deliver_at = Some(Utc::now());
        let kind = round_trip(&event);
        assert_eq!(kind.event_type, "conversation.new");
        assert_eq!(kind.source, event.source);
        assert_eq!(kind.affect, Affect::Change);
        assert_eq!(kind.deliver_at, event.deliver_at);
        // A generic event published with a delivery time is not mistaken for an old row.
        let mut later = generic();
        later.deliver_at = Some(Utc::now());
        assert!(layout(&later).meta.is_some());
        assert_eq!(round_trip(&later).deliver_at, later.deliver_at);
    }
}
