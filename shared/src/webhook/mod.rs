//! Webhook delivery: Standard Webhooks signing, the SSRF target policy and the HTTP sender.

pub mod sender;
pub mod signing;
pub mod ssrf;

pub use sender::{Attempt, AttemptOutcome, SenderConfig, WebhookSender};
pub use signing::sign;
pub use ssrf::TargetPolicy;
