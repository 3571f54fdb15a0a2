//! The notify binary's cold start: configuration problems stop it at once, naming the variable.

use std::process::Command;

#[test]
fn missing_configuration_fails_fast_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_subscriptions"))
        .env_clear()
        .env("HOOKLINE_WORKSPACES_TABLE", "w")
        .output()
        .expect("subscriptions binary runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKLINE_SUBSCRIPTIONS_TABLE"));
}

#[test]
fn an_invalid_http_switch_is_rejected_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_subscriptions"))
        .env_clear()
        .env("HOOKLINE_WORKSPACES_TABLE", "w")
        .env("HOOKLINE_SUBSCRIPTIONS_TABLE", "s")
        .env("HOOKLINE_LOGS_TABLE", "l")
        .env("HOOKLINE_ALLOW_HTTP_WEBHOOKS", "yes")
        .output()
        .expect("subscriptions binary runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKLINE_ALLOW_HTTP_WEBHOOKS"));
}
