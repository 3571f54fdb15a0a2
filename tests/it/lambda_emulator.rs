//! The real ingest binary under cargo-lambda's runtime emulator, fed the `events/` fixtures,
//! against DynamoDB and SQS on moto.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookline_shared::{ApiKey, Workspace, WorkspaceId, WorkspaceStore};
use serde_json::Value;

use crate::support::{moto_url, MotoStack};

/// The key every authenticated fixture in `events/ingest/` sends.
const FIXTURE_KEY: &str = "hk_fixture_0123456789abcdefghijklmnopqrstuv";

/// Kills the child when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo test --workspace` builds the ingest binary beside ours (its package has tests).
fn ingest_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_hookline")).with_file_name("ingest");
    assert!(
        path.exists(),
        "{} missing: run the workspace tests (scripts/test.sh)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn invoke(port: u16, fixture: &str) -> Value {
    let out = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .args(["--output-format", "json", "--data-file"])
        .arg(repo_root().join("events/ingest").join(fixture))
        .output()
        .expect("cargo lambda is on PATH (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "invoke {fixture}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{fixture}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cargo lambda emulator did not listen on {port} within 30 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_binary_answers_every_fixture_under_the_emulator() {
    let stack = MotoStack::create(5).await;
    let store = stack.store();
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        name: "fixtures".into(),
        created_at: chrono::Utc::now(),
    };
    store.create_workspace(&workspace).await.unwrap();
    store
        .add_api_key(
            &workspace.id,
            &ApiKey::presented(FIXTURE_KEY).unwrap().hash(),
        )
        .await
        .unwrap();

    let port = free_port();
    let _emulator = Reaped(
        Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--timeout",
                "30",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(repo_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda is on PATH (scripts/test.sh installs it)"),
    );
    wait_for_port(port);
    let _function = Reaped(
        Command::new(ingest_binary())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_ENDPOINT_URL", moto_url())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("HOOKLINE_WORKSPACES_TABLE", &stack.workspaces_table)
            .env("HOOKLINE_EVENTS_TABLE", &stack.events_table)
            .env("HOOKLINE_EVENTS_QUEUE_URL", &stack.queue_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let expectations: [(&str, u16, &str); 10] = [
        ("emails-valid.json", 200, "received"),
        ("emails-duplicate.json", 200, "duplicate"),
        ("calls-valid.json", 200, "received"),
        ("crm-valid.json", 200, "received"),
        ("social-valid.json", 200, "received"),
        ("emails-missing-fields.json", 400, "subject"),
        ("emails-five-faults.json", 400, "from.email"),
        ("crm-bad-timestamp.json", 400, "eventTimestamp"),
        ("emails-no-key.json", 401, "api_key"),
        ("unknown-category.json", 404, "eventType"),
    ];
    let mut first_email_id = Value::Null;
    for (fixture, status, mentions) in expectations {
        let response = tokio::task::spawn_blocking(move || invoke(port, fixture))
            .await
            .unwrap();
        assert_eq!(response["statusCode"], status, "{fixture}: {response}");
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert!(
            body.to_string().contains(mentions),
            "{fixture} mentions {mentions}: {body}"
        );
        match fixture {
            "emails-valid.json" => first_email_id = body["additionalData"]["eventId"].clone(),
            "emails-duplicate.json" => {
                assert_eq!(body["additionalData"]["duplicate"], true);
                assert_eq!(body["additionalData"]["eventId"], first_email_id);
            }
            "emails-five-faults.json" => assert_eq!(
                body["errors"]["fieldErrors"].as_object().unwrap().len(),
                5,
                "{body}"
            ),
            _ => {}
        }
    }
    let queued = stack.queued_messages().await;
    assert_eq!(
        queued.len(),
        4,
        "one message per accepted, non-duplicate fixture"
    );
}
