//! The cold-start check every Lambda's `tests/startup.rs` includes (`#[path]`): a binary
//! started with a broken configuration must stop at once.

use std::process::Command;

/// Runs `binary` with only `env`; it must fail, and its stderr is returned.
pub fn start(binary: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new(binary)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{binary} runs: {e}"));
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}
