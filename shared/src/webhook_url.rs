//! The rule every webhook URL a caller gives must meet, wherever it is given.

use serde_json::Value;

use crate::validation::ValidationErrors;

/// Longest accepted `webhook_url`.
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;

/// An absolute `https` URL with a host and no credentials (`http` only where the deployment
/// allows it for development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// `Err` says what is wrong, in words a caller can act on.
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("Not an absolute URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => return Err("Must use https".into()),
            other => return Err(format!("Unsupported scheme {other:?}; must use https")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("Must include a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("Must not embed credentials".into());
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Names the fault of a body's `webhook_url` string, unless its schema already named one.
    pub fn check_field(body: &Value, allow_http: bool, errors: &mut ValidationErrors) {
        let Some(raw) = body.get("webhook_url").and_then(Value::as_str) else {
            return;
        };
        if errors.field_errors.contains_key("webhook_url") {
            return;
        }
        if let Err(problem) = Self::parse(raw, allow_http) {
            errors.add("webhook_url".into(), problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, allow_http: bool) -> Result<(), String> {
        WebhookUrl::parse(raw, allow_http).map(|_| ())
    }

    #[test]
    fn webhook_urls_must_be_absolute_https_without_credentials() {
        assert!(check("https://api.example.com/webhook", false).is_ok());
        assert_eq!(
            check("http://api.example.com", false),
            Err("Must use https".into())
        );
        assert!(check("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check("/relative", false)
            .unwrap_err()
            .starts_with("Not an absolute URL"));
        assert!(check("ftp://x.io", true).unwrap_err().contains("ftp"));
        assert!(check("https://user:pw@x.io", false)
            .unwrap_err()
            .contains("credentials"));
    }
}
