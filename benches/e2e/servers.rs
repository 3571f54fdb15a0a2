//! The two servers the bench runs itself, on a runtime of their own: the webhook receiver
//! serve delivers to, and the ceiling, a trivial JSON-parsing server in place of ingest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// How often a waiting caller looks at the receiver's count; the figures use the arrival
/// times the receiver records, not when the waiter noticed.
const WAIT_POLL: Duration = Duration::from_millis(5);

/// One delivery as it arrived: which subscription's path, the envelope's `source.id` (the
/// ingested event's id) and when the request reached the handler.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub subscription: usize,
    pub event_id: String,
    pub at: Instant,
}

#[derive(Default)]
struct Arrivals {
    list: Mutex<Vec<Arrival>>,
    /// Events arrived (a batch counts each of its events).
    count: AtomicUsize,
    /// Requests arrived (a batch counts once).
    posts: AtomicUsize,
}

/// Answers 200 at once on `/s/{n}` and records each arrival; stops serving when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    arrivals: Arc<Arrivals>,
    server: JoinHandle<()>,
}

#[derive(Deserialize)]
struct EnvelopeHead {
    source: EnvelopeSource,
}

/// One envelope, or a batch of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Delivered {
    Batch { events: Vec<EnvelopeHead> },
    One(EnvelopeHead),
}

#[derive(Deserialize)]
struct EnvelopeSource {
    id: String,
}

impl Receiver {
    pub fn start(runtime: &Handle) -> Self {
        let arrivals = Arc::new(Arrivals::default());
        let app = Router::new()
            .route("/s/{n}", post(receive))
            .with_state(Arc::clone(&arrivals));
        let (addr, server) = serve_on(runtime, app);
        Self {
            addr,
            arrivals,
            server,
        }
    }

    /// The URL subscription `n` delivers to.
    pub fn url(&self, n: usize) -> String {
        format!("http://{}/s/{n}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.arrivals.count.load(Ordering::Acquire)
    }

    /// Waits until `count` deliveries have arrived or `limit` has passed; true if they did.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.count() < count {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
        true
    }

    /// Requests received since the last `take`.
    pub fn posts(&self) -> usize {
        self.arrivals.posts.load(Ordering::Acquire)
    }

    /// Everything that arrived since the last call, which starts the record afresh.
    pub fn take(&self) -> Vec<Arrival> {
        let mut list = self.arrivals.list.lock().expect("receiver lock");
        self.arrivals.count.store(0, Ordering::Release);
        self.arrivals.posts.store(0, Ordering::Release);
        std::mem::take(&mut *list)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(arrivals): State<Arc<Arrivals>>,
    Path(subscription): Path<usize>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let heads = match serde_json::from_slice::<Delivered>(&body) {
        Ok(Delivered::Batch { events }) => events,
        Ok(Delivered::One(head)) => vec![head],
        Err(_) => {
            // Still 200: a retry would only muddle the figures; the missing arrival shows as lost.
            eprintln!("receiver: a delivery without source.id");
            return StatusCode::OK;
        }
    };
    let mut list = arrivals.list.lock().expect("receiver lock");
    let events = heads.len();
    list.extend(heads.into_iter().map(|head| Arrival {
        subscription,
        event_id: head.source.id,
        at,
    }));
    arrivals.posts.fetch_add(1, Ordering::Release);
    arrivals.count.fetch_add(events, Ordering::Release);
    StatusCode::OK
}

/// Parses each body as JSON and answers a small JSON object: the least any ingest could do
/// over the same HTTP stack, so ingest's rate divided by this one is the share it reaches.
pub struct Ceiling {
    pub addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Ceiling {
    pub fn start(runtime: &Handle, path: &str) -> Self {
        let app = Router::new().route(path, post(parse));
        let (addr, server) = serve_on(runtime, app);
        Self { addr, server }
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn parse(body: Bytes) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    let answer = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(value) if value.is_object() => (StatusCode::OK, r#"{"received":true}"#),
        _ => (StatusCode::BAD_REQUEST, r#"{"received":false}"#),
    };
    (answer.0, [("content-type", "application/json")], answer.1)
}

/// Binds 127.0.0.1 on a free port and serves `app` on `runtime` until the task is aborted
/// (connections still open end with the runtime).
fn serve_on(runtime: &Handle, app: Router) -> (SocketAddr, JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let addr = listener.local_addr().expect("bound address");
    let server = runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        axum::serve(listener, app).await.expect("bench server runs");
    });
    (addr, server)
}
