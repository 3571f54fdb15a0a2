//! The rule every webhook URL a caller gives must meet, wherever it is given.

#[cfg(feature = "webhooks")]
use serde_json::Value;

#[cfg(feature = "webhooks")]
use crate::validation::ValidationErrors;
#[cfg(feature = "webhooks")]
use crate::webhook::ssrf::GuardedResolver;

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

    /// Refuses a URL delivery's `guard` would never connect to, as far as that can be told
    /// when the URL is given (an IP literal, a `localhost` name, a name that resolves only to
    /// refused addresses). The guard checks again at every connection, for DNS that changes.
    #[cfg(feature = "webhooks")]
    pub async fn check_destination(&self, guard: &GuardedResolver) -> Result<(), String> {
        guard.check_destination(&self.0).await
    }

    /// Names the fault of a body's `webhook_url` string, unless its schema already named one:
    /// its form, then where it leads.
    #[cfg(feature = "webhooks")]
    pub async fn check_field(
        body: &Value,
        allow_http: bool,
        guard: &GuardedResolver,
        errors: &mut ValidationErrors,
    ) {
        let Some(raw) = body.get("webhook_url").and_then(Value::as_str) else {
            return;
        };
        if errors.field_errors.contains_key("webhook_url") {
            return;
        }
        let checked = match Self::parse(raw, allow_http) {
            Ok(url) => url.check_destination(guard).await,
            Err(problem) => Err(problem),
        };
        if let Err(problem) = checked {
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

    #[cfg(feature = "webhooks")]
    #[tokio::test]
    async fn a_body_whose_webhook_url_leads_to_a_refused_address_names_the_field() {
        use crate::webhook::TargetPolicy;
        let field = |policy: TargetPolicy, raw: &str| {
            let body = serde_json::json!({ "webhook_url": raw });
            async move {
                let mut errors = ValidationErrors::default();
                WebhookUrl::check_field(&body, true, &policy.resolver(), &mut errors).await;
                errors.field_errors.get("webhook_url").cloned()
            }
        };
        let refused = field(TargetPolicy::PUBLIC_ONLY, "http://0177.0.0.1:8080/hook")
            .await
            .expect("refused");
        assert_eq!(
            refused,
            [
                "Delivery refuses private, loopback, link-local and metadata addresses: \
              127.0.0.1 is a loopback address"
            ]
        );
        let development = TargetPolicy {
            allow_private: true,
        };
        assert_eq!(
            field(development, "http://0177.0.0.1:8080/hook").await,
            None
        );
        assert_eq!(
            field(TargetPolicy::PUBLIC_ONLY, "ftp://10.0.0.1/")
                .await
                .unwrap(),
            ["Unsupported scheme \"ftp\"; must use https"],
            "a URL of the wrong form is not looked at further"
        );
    }
}
