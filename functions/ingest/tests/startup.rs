//! The ingest binary's cold start: configuration problems stop it at once, naming the variable.

use std::process::Command;

#[test]
fn missing_configuration_fails_fast_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("ingest binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HOOKLINE_WORKSPACES_TABLE"),
        "stderr: {stderr}"
    );
}

#[test]
fn an_invalid_dedup_window_is_rejected_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .env_clear()
        .env("HOOKLINE_WORKSPACES_TABLE", "w")
        .env("HOOKLINE_EVENTS_TABLE", "e")
        .env("HOOKLINE_EVENTS_QUEUE_URL", "http://127.0.0.1:1/q")
        .env("HOOKLINE_DEDUP_WINDOW_DAYS", "forever")
        .output()
        .expect("ingest binary runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKLINE_DEDUP_WINDOW_DAYS"));
}
