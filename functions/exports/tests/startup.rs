//! The exports binary's cold start: configuration problems stop it at once, naming the variable.

#[path = "../../cold_start.rs"]
mod cold_start;

fn start(env: &[(&str, &str)]) -> String {
    cold_start::start(env!("CARGO_BIN_EXE_exports"), env)
}

#[test]
fn missing_configuration_fails_fast_naming_the_variable() {
    assert!(start(&[]).contains("HOOKLINE_EXPORTS_TABLE"));
    let stderr = start(&[
        ("HOOKLINE_EXPORTS_TABLE", "x"),
        ("HOOKLINE_LOGS_TABLE", "l"),
        ("HOOKLINE_EXPORTS_BUCKET", "b"),
    ]);
    assert!(stderr.contains("HOOKLINE_EXPORT_SENDER"), "{stderr}");
}

#[test]
fn an_invalid_path_style_switch_is_rejected_at_start() {
    let stderr = start(&[
        ("HOOKLINE_EXPORTS_TABLE", "x"),
        ("HOOKLINE_LOGS_TABLE", "l"),
        ("HOOKLINE_EXPORTS_BUCKET", "b"),
        ("HOOKLINE_EXPORT_SENDER", "exports@example.com"),
        ("HOOKLINE_S3_FORCE_PATH_STYLE", "maybe"),
    ]);
    assert!(stderr.contains("HOOKLINE_S3_FORCE_PATH_STYLE"), "{stderr}");
}
