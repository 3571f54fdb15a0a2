//! The notify binary's cold start: configuration problems stop it at once, naming the variable.

#[path = "../../cold_start.rs"]
mod cold_start;

/// Runs the binary with only `env`; it must fail, and its stderr is returned.
fn start(env: &[(&str, &str)]) -> String {
    cold_start::start(env!("CARGO_BIN_EXE_subscriptions"), env)
}

#[test]
fn missing_configuration_fails_fast_naming_the_variable() {
    assert!(start(&[("HOOKLINE_WORKSPACES_TABLE", "w")]).contains("HOOKLINE_SUBSCRIPTIONS_TABLE"));
}

#[test]
fn a_missing_deliveries_queue_is_named() {
    let stderr = start(&[
        ("HOOKLINE_WORKSPACES_TABLE", "w"),
        ("HOOKLINE_SUBSCRIPTIONS_TABLE", "s"),
        ("HOOKLINE_LOGS_TABLE", "l"),
    ]);
    assert!(stderr.contains("HOOKLINE_DELIVERIES_QUEUE_URL"), "{stderr}");
}

#[test]
fn an_invalid_http_switch_is_rejected_at_start() {
    let stderr = start(&[
        ("HOOKLINE_WORKSPACES_TABLE", "w"),
        ("HOOKLINE_SUBSCRIPTIONS_TABLE", "s"),
        ("HOOKLINE_LOGS_TABLE", "l"),
        ("HOOKLINE_DELIVERIES_QUEUE_URL", "q"),
        ("HOOKLINE_EVENTS_TABLE", "e"),
        ("HOOKLINE_DELIVERIES_TABLE", "d"),
        ("HOOKLINE_EXPORTS_TABLE", "x"),
        ("HOOKLINE_EXPORTS_QUEUE_URL", "xq"),
        ("HOOKLINE_ALLOW_HTTP_WEBHOOKS", "yes"),
    ]);
    assert!(stderr.contains("HOOKLINE_ALLOW_HTTP_WEBHOOKS"), "{stderr}");
}

#[test]
fn a_missing_exports_queue_is_named() {
    let stderr = start(&[
        ("HOOKLINE_WORKSPACES_TABLE", "w"),
        ("HOOKLINE_SUBSCRIPTIONS_TABLE", "s"),
        ("HOOKLINE_LOGS_TABLE", "l"),
        ("HOOKLINE_DELIVERIES_QUEUE_URL", "q"),
        ("HOOKLINE_EVENTS_TABLE", "e"),
        ("HOOKLINE_EVENTS_QUEUE_URL", "eq"),
        ("HOOKLINE_EXPORTS_TABLE", "x"),
    ]);
    assert!(stderr.contains("HOOKLINE_EXPORTS_QUEUE_URL"), "{stderr}");
}
