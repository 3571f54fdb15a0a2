//! In-memory adapters for benches and tests, one file per port like `dynamodb/` and
//! `embedded/`. They obey the same contract (the domain's claim, TTL and limit rules, SQS's
//! queue semantics) and count their calls, so a bench can report store calls per delivery.

/// `Default` (a meter of its own) and `metered` (a meter shared with other stores) for a store
/// that is one `Arc<Metered<_>>`.
macro_rules! metered_store {
    ($store:ident) => {
        impl Default for $store {
            fn default() -> Self {
                Self::metered(super::CallMeter::new())
            }
        }

        impl $store {
            pub fn metered(meter: std::sync::Arc<super::CallMeter>) -> Self {
                Self(std::sync::Arc::new(super::Metered::new(meter)))
            }
        }
    };
}

mod connections;
mod deliveries;
mod event_types;
mod events;
mod exports;
mod logs;
mod queue;
mod subscriptions;
mod workspaces;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use connections::MemoryConnections;
pub use deliveries::MemoryDeliveries;
pub use event_types::MemoryEventTypes;
pub use events::MemoryEvents;
pub use exports::MemoryExports;
pub use logs::MemoryLogs;
pub use queue::MemoryQueue;
pub use subscriptions::MemorySubscriptions;
pub use workspaces::MemoryWorkspaces;

/// Wall time spent inside a group of port calls, and how many calls. Stores that share one
/// meter count into it together.
#[derive(Debug, Default)]
pub struct CallMeter {
    nanos: AtomicU64,
    calls: AtomicU64,
}

impl CallMeter {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `f` as one counted, timed call.
    pub fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// The time and calls counted since the last take, resetting both.
    pub fn take(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed)),
            self.calls.swap(0, Ordering::Relaxed),
        )
    }
}

/// State behind a mutex, every access timed on the store's meter.
#[derive(Debug)]
struct Metered<T> {
    meter: Arc<CallMeter>,
    state: Mutex<T>,
}

impl<T: Default> Metered<T> {
    fn new(meter: Arc<CallMeter>) -> Self {
        Self {
            meter,
            state: Mutex::default(),
        }
    }
}

impl<T> Metered<T> {
    /// One port call: counted and timed.
    fn call<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.meter.time(|| f(&mut self.lock()))
    }

    /// A look at the state that is not a port call (bench and test figures).
    fn lock(&self) -> MutexGuard<'_, T> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
