//! Subscription filters, compiled once per subscription version and kept for the warm worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hookline_shared::delivery_control::Filter;
use hookline_shared::{Subscription, SubscriptionId};
use serde_json::Value;

/// Compiled filters a worker keeps; past this many it starts over, so a worker serving many
/// subscriptions never grows without bound.
const MAX_CACHED: usize = 10_000;

#[derive(Debug, Default)]
pub struct FilterCache(Mutex<HashMap<SubscriptionId, (u64, Arc<Filter>)>>);

impl FilterCache {
    /// Whether `subscription` takes the event `view` shows (built on first need, once per
    /// event). A stored filter that no longer compiles lets the event through, logged: an
    /// accepted event is never dropped by a fault of ours.
    pub fn admits(
        &self,
        subscription: &Subscription,
        view: &mut Option<Value>,
        build: impl FnOnce() -> Value,
    ) -> bool {
        let Some(spec) = &subscription.filter else {
            return true;
        };
        let filter = {
            let mut cache = self.0.lock().expect("filter cache poisoned");
            match cache.get(&subscription.id) {
                Some((version, filter)) if *version == subscription.version => Arc::clone(filter),
                _ => match Filter::compile(spec) {
                    Ok(filter) => {
                        if cache.len() >= MAX_CACHED {
                            cache.clear();
                        }
                        let filter = Arc::new(filter);
                        cache.insert(
                            subscription.id.clone(),
                            (subscription.version, Arc::clone(&filter)),
                        );
                        filter
                    }
                    Err(faults) => {
                        tracing::error!(subscription_id = %subscription.id, ?faults, "stored filter does not compile; event let through");
                        return true;
                    }
                },
            }
        };
        filter.matches(view.get_or_insert_with(build))
    }

    /// Compiled filters held, for tests.
    pub fn len(&self) -> usize {
        self.0.lock().expect("filter cache poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
