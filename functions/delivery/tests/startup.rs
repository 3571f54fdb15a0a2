//! The delivery binary's cold start: configuration problems stop it at once, naming the variable.

#[path = "../../cold_start.rs"]
mod cold_start;

/// Runs the binary with only `env`; it must fail, and its stderr is returned.
fn start(env: &[(&str, &str)]) -> String {
    cold_start::start(env!("CARGO_BIN_EXE_delivery"), env)
}

const TABLES: [(&str, &str); 6] = [
    ("HOOKLINE_WORKSPACES_TABLE", "w"),
    ("HOOKLINE_EVENTS_TABLE", "e"),
    ("HOOKLINE_SUBSCRIPTIONS_TABLE", "s"),
    ("HOOKLINE_DELIVERIES_TABLE", "d"),
    ("HOOKLINE_LOGS_TABLE", "l"),
    ("HOOKLINE_DELIVERIES_QUEUE_URL", "http://127.0.0.1:1/q"),
];

#[test]
fn missing_configuration_fails_fast_naming_the_variable() {
    assert!(start(&TABLES[..4]).contains("HOOKLINE_LOGS_TABLE"));
}

#[test]
fn an_invalid_retry_schedule_is_rejected_at_start() {
    let mut env = TABLES.to_vec();
    env.push(("HOOKLINE_RETRY_SCHEDULE", "5,soon"));
    assert!(start(&env).contains("HOOKLINE_RETRY_SCHEDULE"));
}
