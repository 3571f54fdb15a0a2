//! Export emails through SES v2's `SendEmail`: subject, text and HTML parts, UTF-8.

use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use crate::export::{ExportEmail, MailError, Mailer};

#[derive(Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    /// A verified SES identity (the stack's `ExportSenderAddress`).
    from: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        Self {
            client,
            from: from.into(),
        }
    }
}

fn utf8(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError(e.to_string()))
}

impl Mailer for SesMailer {
    async fn send(&self, email: &ExportEmail) -> Result<(), MailError> {
        let body = Body::builder()
            .text(utf8(&email.text)?)
            .html(utf8(&email.html)?)
            .build();
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(body)
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| MailError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
