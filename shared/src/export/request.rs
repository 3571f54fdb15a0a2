//! `POST …/logs/export`'s body, validated: every fault named by its field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delivery::{DeliveryLog, DeliveryStatus};
use crate::export::Lang;
use crate::ids::SubscriptionId;
use crate::log_view::parse_log_date;
use crate::ports::LogQuery;
use crate::validation::ValidationErrors;

/// The file an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A header row of the logs API's field names, then one row per log.
    Csv,
    /// One logs-API object per line.
    Ndjson,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

/// What to export and to whom; the filters are the logs API's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub email: String,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub lang: Lang,
    pub format: Format,
    pub subscription_id: Option<SubscriptionId>,
    pub event_type: Option<String>,
    pub delivery_status: Option<DeliveryStatus>,
}

impl ExportRequest {
    /// The request in `body`, or every fault of it. An unknown `lang` is English, not a fault.
    pub fn parse(body: &Value) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(fields) = body.as_object() else {
            return Err(ValidationErrors::form("Expected a JSON object"));
        };
        // An optional field is left out, never null: the documented shape has no nulls.
        let text = |name: &str, errors: &mut ValidationErrors| match fields.get(name) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.add(
                    name.into(),
                    "Expected a string (leave the field out for none)".into(),
                );
                None
            }
        };
        let email = text("email", &mut errors);
        match &email {
            None if !errors.field_errors.contains_key("email") => errors.add(
                "email".into(),
                "Required: the address the link is sent to".into(),
            ),
            Some(address) if !valid_email(address) => errors.add(
                "email".into(),
                format!("Not a valid email address: {address:?}"),
            ),
            _ => {}
        }
        let date = |name: &str, errors: &mut ValidationErrors| {
            let raw = text(name, errors)?;
            parse_log_date(&raw)
                .map_err(|message| errors.add(name.into(), message))
                .ok()
        };
        let (start_date, end_date) = (
            date("start_date", &mut errors),
            date("end_date", &mut errors),
        );
        if let (Some(from), Some(to)) = (start_date, end_date) {
            if from > to {
                errors.add("start_date".into(), "Must not be after end_date".into());
            }
        }
        let lang = text("lang", &mut errors).map_or(Lang::EnUs, |raw| Lang::parse_or_english(&raw));
        let format = match text("format", &mut errors).as_deref() {
            None | Some("csv") => Format::Csv,
            Some("ndjson") => Format::Ndjson,
            Some(other) => {
                errors.add(
                    "format".into(),
                    format!("Unknown format {other:?}; allowed: csv, ndjson"),
                );
                Format::Csv
            }
        };
        let subscription_id = text("subscription_id", &mut errors).and_then(|raw| {
            let id = SubscriptionId::parse(raw.trim());
            if id.is_none() {
                errors.add(
                    "subscription_id".into(),
                    format!("Not a subscription id: {raw:?}"),
                );
            }
            id
        });
        let event_type = text("event_type", &mut errors);
        let delivery_status = text("delivery_status", &mut errors).and_then(|raw| {
            let status = DeliveryStatus::parse(&raw);
            if status.is_none() {
                errors.add(
                    "delivery_status".into(),
                    format!("Unknown delivery_status {raw:?}; allowed: success, failed"),
                );
            }
            status
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            email: email.unwrap_or_default().trim().to_owned(),
            start_date,
            end_date,
            lang,
            format,
            subscription_id,
            event_type,
            delivery_status,
        })
    }

    /// The store query the export pages through: the date window and subscription.
    pub fn log_query(&self) -> LogQuery {
        LogQuery {
            subscription: self.subscription_id.clone(),
            from: self.start_date,
            to: self.end_date,
        }
    }

    /// Whether `log` passes the filters the query cannot apply (as the logs API filters).
    pub fn matches(&self, log: &DeliveryLog) -> bool {
        self.event_type
            .as_deref()
            .is_none_or(|t| log.event_type == t)
            && self
                .delivery_status
                .is_none_or(|s| log.delivery_status == s)
    }
}

/// An address the export's email can be sent to: RFC 5322 syntax, and no display name or
/// comment (the field is an address, not a header).
fn valid_email(raw: &str) -> bool {
    email_address::EmailAddress::parse_with_options(
        raw.trim(),
        email_address::Options::default().without_display_text(),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.field_errors.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_minimal_request_is_csv_in_english_over_all_logs() {
        let request = ExportRequest::parse(&json!({"email": "ops@example.com"})).unwrap();
        assert_eq!(request.email, "ops@example.com");
        assert_eq!((request.lang, request.format), (Lang::EnUs, Format::Csv));
        assert_eq!((request.start_date, request.end_date), (None, None));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = ExportRequest::parse(&json!({
            "email": "not an address", "start_date": "yesterday", "end_date": 5,
            "format": "xlsx", "subscription_id": "sub_x", "delivery_status": "ok", "lang": null,
        }))
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "delivery_status",
                "email",
                "end_date",
                "format",
                "lang",
                "start_date",
                "subscription_id"
            ]
        );
        let missing = ExportRequest::parse(&json!({})).unwrap_err();
        assert_eq!(fields(&missing), ["email"]);
        let display_name = ExportRequest::parse(&json!({"email": "Ops <ops@example.com>"}));
        assert_eq!(fields(&display_name.unwrap_err()), ["email"]);
    }

    #[test]
    fn dates_take_any_offset_and_must_be_in_order() {
        let request = ExportRequest::parse(&json!({"email": "a@b.io",
            "start_date": "2024-06-01T23:59:59-07:00", "end_date": "2024-06-03T00:00:00Z"}))
        .unwrap();
        assert_eq!(
            request.start_date.unwrap().to_rfc3339(),
            "2024-06-02T06:59:59+00:00"
        );
        let reversed = ExportRequest::parse(&json!({"email": "a@b.io",
            "start_date": "2024-06-03T00:00:00Z", "end_date": "2024-06-01T00:00:00Z"}));
        assert_eq!(fields(&reversed.unwrap_err()), ["start_date"]);
    }

    #[test]
    fn an_unknown_lang_is_english_and_zh_tw_is_kept() {
        let lang = |raw: &str| {
            ExportRequest::parse(&json!({"email": "a@b.io", "lang": raw}))
                .unwrap()
                .lang
        };
        assert_eq!(lang("zh-TW"), Lang::ZhTw);
        assert_eq!(lang("zh-tw"), Lang::ZhTw);
        assert_eq!(lang("fr-FR"), Lang::EnUs);
        assert_eq!(lang(""), Lang::EnUs);
    }
}
