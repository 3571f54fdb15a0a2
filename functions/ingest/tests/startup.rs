//! The ingest binary's cold start: configuration problems stop it at once, naming the variable.

#[path = "../../cold_start.rs"]
mod cold_start;

/// Runs the binary with only `env`; it must fail, and its stderr is returned.
fn start(env: &[(&str, &str)]) -> String {
    cold_start::start(env!("CARGO_BIN_EXE_ingest"), env)
}

#[test]
fn missing_configuration_fails_fast_naming_the_variable() {
    let path = std::env::var("PATH").unwrap_or_default();
    let stderr = start(&[("PATH", &path)]);
    assert!(
        stderr.contains("HOOKLINE_WORKSPACES_TABLE"),
        "stderr: {stderr}"
    );
}

#[test]
fn an_invalid_dedup_window_is_rejected_at_start() {
    let stderr = start(&[
        ("HOOKLINE_WORKSPACES_TABLE", "w"),
        ("HOOKLINE_EVENTS_TABLE", "e"),
        ("HOOKLINE_DEDUP_WINDOW_DAYS", "forever"),
    ]);
    assert!(stderr.contains("HOOKLINE_DEDUP_WINDOW_DAYS"));
}
