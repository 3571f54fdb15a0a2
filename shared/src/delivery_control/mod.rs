//! How a subscription wants its deliveries: when (immediate, delayed, batched), how fast
//! (a rate limit across every worker) and which events at all (a filter on the envelope).

mod filter;
mod mode;
mod rate;

pub use filter::{Filter, FilterSpec, MAX_FILTER_CONDITIONS};
pub use mode::{BatchLimits, DeliveryMode, MAX_BATCH_BODY_BYTES};
pub use rate::{RateLimit, Slot, MAX_RATE_PER_SECOND};
