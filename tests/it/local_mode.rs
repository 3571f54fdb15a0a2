//! `hookline serve` and the admin commands as a user runs them: a real process on loopback.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hookline::local::LocalStack;
use hookline_shared::test_support::EventLookup as _;
use hookline_shared::Queue as _;
use serde_json::{json, Value};

use crate::ingest_api::seed_email;

const BINARY: &str = env!("CARGO_BIN_EXE_hookline");
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
const INGEST: &str = "/api/v2/analytics/webhook/receive/generic";

/// A running `hookline serve`; killed when dropped so no test leaves it behind.
pub struct Serving {
    child: Child,
    pub base: String,
    pub api_key: String,
    pub workspace_id: String,
    banner: Vec<String>,
}

impl Serving {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts `serve` with extra environment (e.g. a short retry schedule).
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hookline binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the banner so the server never writes to a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut banner = Vec::new();
        let mut serving = Serving {
            child,
            base: String::new(),
            api_key: String::new(),
            workspace_id: String::new(),
            banner: Vec::new(),
        };
        while serving.api_key.is_empty() {
            let line = rx
                .recv_timeout(STARTUP_LIMIT)
                .expect("serve prints its banner");
            if let Some(url) = line.strip_prefix("Hookline local mode listening on ") {
                serving.base = url.trim().to_owned();
            }
            if line.starts_with("dev workspace") {
                serving.workspace_id = line.rsplit(": ").next().unwrap_or_default().to_owned();
            }
            if let Some(key) = line.strip_prefix("dev API key: ") {
                serving.api_key = key.trim().to_owned();
            }
            banner.push(line);
        }
        serving.banner = banner;
        serving
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("serve did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub(crate) async fn post(
    serving: &Serving,
    path: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = client().post(format!("{}{path}", serving.base)).body(body);
    if let Some(key) = key {
        request = request.header("api_key", key);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn seed_curl_example_is_accepted_then_reported_as_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    assert!(
        serving
            .banner
            .iter()
            .any(|l| l.starts_with("dev workspace (created): ws_")),
        "{:?}",
        serving.banner
    );
    let body = seed_email().to_string().into_bytes();
    let path = format!("{INGEST}/emails");

    let (status, first) = post(
        &serving,
        &path,
        Some(&serving.api_key),
        Some("application/json"),
        body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["received"], true);
    assert_eq!(first["_metadata"]["usage"], 0);
    assert_eq!(first["connection"]["connectionMethod"], "WEBHOOK");
    let (status, second) = post(
        &serving,
        &path,
        Some(&serving.api_key),
        Some("application/json"),
        body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(second["additionalData"]["duplicate"], true);
    assert_eq!(
        second["additionalData"]["eventId"],
        first["additionalData"]["eventId"]
    );

    // SIGTERM stops it cleanly; the event stays stored and its fan-out is done.
    let (key, serving_workspace) = (serving.api_key.clone(), serving.workspace_id.clone());
    assert!(serving.stop().success());
    let stack = LocalStack::open(dir.path(), Default::default()).unwrap();
    let workspace = hookline_shared::WorkspaceId::parse(&serving_workspace).unwrap();
    let event_id =
        hookline_shared::EventId::parse(first["additionalData"]["eventId"].as_str().unwrap())
            .unwrap();
    let events = hookline_shared::adapters::EmbeddedEvents::new(stack.events_queue.clone());
    let stored = events.get_event(&workspace, &event_id).await.unwrap();
    assert_eq!(
        stored.unwrap().payload.to_value().unwrap()["subject"],
        "Follow up on our conversation"
    );
    // Whether the worker got to it before the signal or not, its fan-out is done or waiting.
    let waiting = stack
        .events_queue
        .receive(10, Duration::from_secs(1), Duration::ZERO)
        .await
        .unwrap();
    assert!(waiting.len() <= 1);
    if let Some(message) = waiting.first() {
        assert!(
            message.body.contains(event_id.as_str()),
            "the queued message is this event's"
        );
    }
    drop(stack);

    let restarted = Serving::start(dir.path());
    assert_eq!(
        restarted.api_key, key,
        "the dev workspace is reused across restarts"
    );
    assert!(restarted
        .banner
        .iter()
        .any(|l| l.starts_with("dev workspace: ws_")));
}

#[tokio::test]
async fn new_user_mistakes_get_clear_4xx_answers() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let key = serving.api_key.as_str();
    let emails = format!("{INGEST}/emails");
    let json_type = Some("application/json");
    let seed = seed_email().to_string().into_bytes();

    let cases: Vec<(&str, u16, (u16, Value))> = vec![
        (
            "bad JSON",
            400,
            post(
                &serving,
                &emails,
                Some(key),
                json_type,
                b"{\"eventType\": ".to_vec(),
            )
            .await,
        ),
        (
            "unknown category",
            404,
            post(
                &serving,
                &format!("{INGEST}/fax"),
                Some(key),
                json_type,
                seed.clone(),
            )
            .await,
        ),
        (
            "empty body",
            400,
            post(&serving, &emails, Some(key), json_type, Vec::new()).await,
        ),
        (
            "300 KB body",
            413,
            post(
                &serving,
                &emails,
                Some(key),
                json_type,
                vec![b' '; 300 * 1024],
            )
            .await,
        ),
        (
            "missing key",
            401,
            post(&serving, &emails, None, json_type, seed.clone()).await,
        ),
        (
            "foreign key",
            403,
            post(
                &serving,
                &emails,
                Some("hk_not-a-key-of-ours"),
                json_type,
                seed.clone(),
            )
            .await,
        ),
        (
            "form content type",
            415,
            post(
                &serving,
                &emails,
                Some(key),
                Some("text/plain"),
                seed.clone(),
            )
            .await,
        ),
        (
            "JSON array",
            400,
            post(&serving, &emails, Some(key), json_type, b"[]".to_vec()).await,
        ),
    ];
    for (what, expected, (status, body)) in cases {
        assert_eq!(status, expected, "{what}: {body}");
        assert_eq!(body["received"], false, "{what}");
        let errors = &body["errors"];
        let named = errors["formErrors"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
            || errors["fieldErrors"]
                .as_object()
                .is_some_and(|f| !f.is_empty());
        assert!(named, "{what} names the rule broken: {body}");
    }

    let response = client()
        .get(format!("{}{emails}", serving.base))
        .header("api_key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"]["formErrors"][0]
        .as_str()
        .unwrap()
        .contains("use POST"));

    let (status, answer) = post(&serving, &format!("{INGEST}/crm?api_key={key}"), None, json_type,
        json!({"eventTimestamp": 1706956200, "eventType": "deal_lost", "opportunityId": "o", "opportunityName": "n"}).to_string().into_bytes()).await;
    assert_eq!(status, 200, "api_key as a query parameter works: {answer}");
}

#[test]
fn admin_commands_print_json_and_their_keys_work() {
    let dir = tempfile::tempdir().unwrap();
    // Local mode, whatever the caller's environment says about DynamoDB.
    let admin = |args: &[&str]| {
        Command::new(BINARY)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("HOOKLINE_WORKSPACES_TABLE")
            .output()
            .unwrap()
    };
    let run = |args: &[&str]| -> Value {
        let out = admin(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    };
    let created = run(&["workspace", "create", "--name", "acme"]);
    assert_eq!(created["name"], "acme");
    let workspace_id = created["workspace_id"].as_str().unwrap();
    assert!(workspace_id.starts_with("ws_"));
    assert!(created["api_key"].as_str().unwrap().starts_with("hk_"));
    let key = run(&["key", "create", "--workspace", workspace_id]);
    assert_eq!(key["workspace_id"], workspace_id);
    assert_ne!(key["api_key"], created["api_key"]);

    let unknown = admin(&[
        "key",
        "create",
        "--workspace",
        "ws_00000000000000000000000000000000",
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("does not exist"));
}

/// The status line a raw HTTP/1.1 request to local mode is answered with.
async fn raw_status(serving: &Serving, request: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = serving.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    read.await.expect("local mode answers").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// A body whose chunked framing is broken is a 400 naming the body, not a 413: nothing about
/// it was too large, on either API.
#[tokio::test]
async fn a_malformed_chunked_body_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let paths = [
        "/api/v2/analytics/webhook/receive/generic/emails".to_owned(),
        format!(
            "/notify/api/v1/workspaces/{}/subscription",
            serving.workspace_id
        ),
    ];
    for path in paths {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             x-api-key: {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             zz\r\n{{}}\r\n0\r\n\r\n",
            serving.api_key
        );
        let status = raw_status(&serving, request).await;
        assert!(status.contains(" 400 "), "{path}: {status}");
    }
    serving.stop();
}
