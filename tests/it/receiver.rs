//! A real webhook receiver on loopback whose answers each test scripts per path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{Map, Value};

use crate::support::poll_until;

/// How one path answers.
#[derive(Debug, Clone)]
pub enum Behavior {
    Ok,
    /// 500 for the first `n` requests, then 200.
    FailTimes(usize),
    AlwaysFail,
    Gone,
    Redirect,
    /// 200 with a body of this many bytes.
    Big(usize),
    /// 200 after this long.
    Slow(Duration),
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Map<String, Value>,
    pub body: String,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    behaviors: HashMap<String, Behavior>,
    received: HashMap<String, Vec<Received>>,
}

/// Stops serving when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new()
            .route("/{name}", post(answer))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// The URL of `name`, answering as `behavior`.
    pub fn endpoint(&self, name: &str, behavior: Behavior) -> String {
        self.shared
            .lock()
            .unwrap()
            .behaviors
            .insert(name.to_owned(), behavior);
        format!("http://{}/{name}", self.addr)
    }

    pub fn set(&self, name: &str, behavior: Behavior) {
        self.shared
            .lock()
            .unwrap()
            .behaviors
            .insert(name.to_owned(), behavior);
    }

    pub fn received(&self, name: &str) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap()
            .received
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (at most `limit`) until `name` has received `count` requests.
    pub async fn wait_for(&self, name: &str, count: usize, limit: Duration) -> Vec<Received> {
        poll_until(
            limit,
            Duration::from_millis(20),
            || async { self.received(name) },
            |got| got.len() >= count,
        )
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (behavior, seen) = {
        let mut shared = shared.lock().unwrap();
        let headers: Map<String, Value> = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    Value::String(v.to_str().unwrap_or_default().to_owned()),
                )
            })
            .collect();
        let received = Received {
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        };
        let log = shared.received.entry(name.clone()).or_default();
        log.push(received);
        let seen = log.len();
        (
            shared.behaviors.get(&name).cloned().unwrap_or(Behavior::Ok),
            seen,
        )
    };
    match behavior {
        Behavior::Ok => (StatusCode::OK, r#"{"status":"received"}"#).into_response(),
        Behavior::FailTimes(n) if seen <= n => {
            (StatusCode::INTERNAL_SERVER_ERROR, "not yet").into_response()
        }
        Behavior::FailTimes(_) => (StatusCode::OK, "finally").into_response(),
        Behavior::AlwaysFail => (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response(),
        Behavior::Gone => (StatusCode::GONE, "this endpoint is gone").into_response(),
        Behavior::Redirect => (
            StatusCode::FOUND,
            [("location", "https://elsewhere.example.com/hook")],
        )
            .into_response(),
        Behavior::Big(size) => (StatusCode::OK, "x".repeat(size)).into_response(),
        Behavior::Slow(wait) => {
            tokio::time::sleep(wait).await;
            (StatusCode::OK, "slow but fine").into_response()
        }
    }
}
