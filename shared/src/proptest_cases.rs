//! How many cases each property test runs: few by default, so the whole property suite stays
//! quick in a debug build; `HOOKLINE_PROPTEST_CASES` asks for a long run (e.g. 1000000).

use proptest::test_runner::Config;

/// The environment variable naming how many cases every property test runs.
pub const CASES_VAR: &str = "HOOKLINE_PROPTEST_CASES";

/// The config of a property test that runs `default_cases` cases unless [`CASES_VAR`] says how
/// many.
pub fn config(default_cases: u32) -> Config {
    let cases = match std::env::var(CASES_VAR) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            panic!("{CASES_VAR} must be a whole number of cases, not {text:?}")
        }),
        Err(_) => default_cases,
    };
    Config::with_cases(cases)
}
