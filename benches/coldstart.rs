//! Cold start and package size of each Lambda, beside a hello-world `lambda_runtime` binary
//! built the same way in the same run.
//!
//! Builds the four functions and `benches/hello-lambda` with `cargo lambda build --release`
//! (as SAM's `rust-cargolambda` builder does; `HOOKLINE_COLDSTART_TARGET` picks `--x86-64`, the
//! default here, or `--arm64`), zips them as they deploy, then starts each binary 20 times
//! (`HOOKLINE_COLDSTART_RUNS`) against a tiny fake Lambda Runtime API on loopback and times
//! process start to its first `GET /2018-06-01/runtime/invocation/next`: everything the
//! function does before it can take its first event (configuration, AWS clients, routers).
//! Prints median and p90 per function, each median ÷ hello world's, and each zip's size.
//! A measurement, not a test: it exits 0 whatever the figures.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const FUNCTIONS: [&str; 4] = ["ingest", "subscriptions", "delivery", "exports"];
const BASELINE: &str = "hello-lambda";
const RUNS_ENV: &str = "HOOKLINE_COLDSTART_RUNS";
const TARGET_ENV: &str = "HOOKLINE_COLDSTART_TARGET";
/// A start that takes longer has hung; it is reported, not waited for.
const START_LIMIT: Duration = Duration::from_secs(10);
const TARGET_RATIO: f64 = 1.3;
const TARGET_ZIP_BYTES: u64 = 5 * 1024 * 1024;

fn main() {
    let runs: usize = std::env::var(RUNS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let arch = std::env::var(TARGET_ENV).unwrap_or_else(|_| "x86-64".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target").join("coldstart");
    for format in ["binary", "zip"] {
        build(root, &out.join(format), &arch, format);
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut medians = Vec::new();
    println!(
        "cold start, process start -> first /runtime/invocation/next, {runs} runs each ({arch})"
    );
    for name in std::iter::once(BASELINE).chain(FUNCTIONS) {
        let binary = out.join("binary").join(name).join("bootstrap");
        let zip = out.join("zip").join(name).join("bootstrap.zip");
        let mut times: Vec<Duration> = (0..runs)
            .filter_map(|_| runtime.block_on(start_once(&binary)))
            .collect();
        times.sort();
        let size = std::fs::metadata(&zip).map(|m| m.len()).unwrap_or(0);
        let (median, p90) = (percentile(&times, 0.5), percentile(&times, 0.9));
        println!(
            "{name:>14}: median {:6.2} ms, p90 {:6.2} ms ({} of {runs} started), zip {:.2} MB{}",
            ms(median),
            ms(p90),
            times.len(),
            size as f64 / 1_048_576.0,
            if name != BASELINE && size > TARGET_ZIP_BYTES {
                "  (over the 5 MB target)"
            } else {
                ""
            }
        );
        medians.push((name, median, size));
    }
    let baseline = medians[0].1;
    println!();
    println!(
        "{:>14}  {:>10}  {:>8}  {:>8}",
        "function", "÷ hello", "target", "met?"
    );
    for (name, median, size) in &medians[1..] {
        let ratio = ms(*median) / ms(baseline).max(f64::EPSILON);
        let met = ratio <= TARGET_RATIO && *size <= TARGET_ZIP_BYTES;
        println!(
            "{name:>14}  {ratio:>9.2}x  {:>7}x  {:>8}",
            TARGET_RATIO,
            if met { "met" } else { "missed" }
        );
    }
}

/// `cargo lambda build --release` of the functions and the baseline into `dir`.
fn build(root: &Path, dir: &Path, arch: &str, format: &str) {
    let mut command = Command::new("cargo");
    command
        .current_dir(root)
        .args(["lambda", "build", "--release", &format!("--{arch}")])
        .args(["--output-format", format, "--lambda-dir"])
        .arg(dir);
    for package in FUNCTIONS.iter().chain([&BASELINE]) {
        command.args(["--package", package]);
    }
    let started = Instant::now();
    let status = command
        .status()
        .expect("cargo lambda runs (scripts/test.sh installs it)");
    assert!(status.success(), "cargo lambda build failed: {status}");
    eprintln!(
        "built {format}s in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// Starts `binary` against a fresh fake Runtime API and times it to its first poll for work;
/// `None` if it exited or hung instead.
async fn start_once(binary: &PathBuf) -> Option<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let api = listener.local_addr().expect("address").to_string();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(lambda_environment(&api))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the built function starts");
    let polled = tokio::time::timeout(START_LIMIT, async {
        loop {
            let (mut socket, _) = listener.accept().await.ok()?;
            let mut request = vec![0u8; 4096];
            let read = socket.read(&mut request).await.ok()?;
            let text = String::from_utf8_lossy(&request[..read]);
            if text.starts_with("GET /2018-06-01/runtime/invocation/next") {
                return Some(started.elapsed());
            }
            // Anything else (an init error report) is answered and not counted.
            let _ = socket
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    })
    .await
    .ok()
    .flatten();
    if polled.is_none() {
        // Why it never asked for work: what it printed before it exited or hung.
        let _ = child.kill().await;
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        eprintln!(
            "{}: no poll within {START_LIMIT:?}: {tail}",
            binary.display()
        );
        return None;
    }
    let _ = child.kill().await;
    polled
}

/// What Lambda sets, plus each function's configuration pointed at nothing it would call
/// before its first event.
fn lambda_environment(api: &str) -> Vec<(&'static str, String)> {
    let fixed = [
        ("AWS_LAMBDA_FUNCTION_NAME", "coldstart"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "coldstart"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "coldstart"),
        ("AWS_SECRET_ACCESS_KEY", "coldstart"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("HOOKLINE_WORKSPACES_TABLE", "workspaces"),
        ("HOOKLINE_EVENTS_TABLE", "events"),
        ("HOOKLINE_SUBSCRIPTIONS_TABLE", "subscriptions"),
        ("HOOKLINE_DELIVERIES_TABLE", "deliveries"),
        ("HOOKLINE_LOGS_TABLE", "logs"),
        ("HOOKLINE_EXPORTS_TABLE", "exports"),
        (
            "HOOKLINE_EXPORTS_QUEUE_URL",
            "http://127.0.0.1:9/queue/exports",
        ),
        ("HOOKLINE_EXPORTS_BUCKET", "exports"),
        ("HOOKLINE_EXPORT_SENDER", "exports@example.com"),
        (
            "HOOKLINE_DELIVERIES_QUEUE_URL",
            "http://127.0.0.1:9/queue/deliveries",
        ),
    ];
    let mut env: Vec<(&'static str, String)> =
        fixed.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    env.push(("AWS_LAMBDA_RUNTIME_API", api.to_owned()));
    env
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
