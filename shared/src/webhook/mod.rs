//! Webhook delivery: Standard Webhooks signing, the SSRF target policy and the HTTP sender.

#[cfg(feature = "webhooks")]
pub mod sender;
pub mod signing;
#[cfg(feature = "webhooks")]
pub mod ssrf;

#[cfg(feature = "webhooks")]
pub use sender::{Attempt, AttemptOutcome, SenderConfig, WebhookSender};
pub use signing::sign;
#[cfg(feature = "webhooks")]
pub use ssrf::{GuardedResolver, Lookup, TargetPolicy};
