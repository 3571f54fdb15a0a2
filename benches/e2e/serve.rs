//! `hookline serve` as a child process, and what Linux says of its CPU, memory and switches.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The release binary `cargo bench` builds beside the bench.
const BINARY: &str = env!("CARGO_BIN_EXE_hookline");
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// serve's default log level, set explicitly so the caller's `RUST_LOG` does not change the
/// figures; its log lines go to /dev/null, but they are still formatted and written.
const LOG_LEVEL: &str = "info";

/// A running `hookline serve` on 127.0.0.1 and a port of its choosing; killed when dropped,
/// so a panicking bench leaves no server behind.
pub struct Serve {
    child: Child,
    pub base: String,
    pub api_key: String,
    pub workspace_id: String,
    /// When the banner's last line was read: the worker starts right after it.
    pub ready_at: Instant,
}

impl Serve {
    pub fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", LOG_LEVEL)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{BINARY} starts: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the banner so serve never writes to a closed pipe; ends
        // when the process closes it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut serve = Serve {
            child,
            base: String::new(),
            api_key: String::new(),
            workspace_id: String::new(),
            ready_at: Instant::now(),
        };
        let deadline = Instant::now() + STARTUP_LIMIT;
        while serve.api_key.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("serve prints its banner within 30 s");
            if let Some(url) = line.strip_prefix("Hookline local mode listening on ") {
                serve.base = url.trim().to_owned();
            }
            if line.starts_with("dev workspace") {
                serve.workspace_id = line.rsplit(": ").next().unwrap_or_default().to_owned();
            }
            if let Some(key) = line.strip_prefix("dev API key: ") {
                serve.api_key = key.trim().to_owned();
            }
        }
        serve.ready_at = Instant::now();
        serve
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sample(&self) -> Sample {
        Sample::of(self.pid())
    }

    /// SIGTERM, then SIGKILL (by the drop) if it has not exited within 10 s.
    pub fn stop(mut self) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("serve {pid} ignored SIGTERM for 10 s; killing it");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// One reading of a process's counters.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at: Option<Instant>,
    /// utime + stime of the whole process, dead threads included, in clock ticks.
    pub cpu_ticks: u64,
    /// Per live thread: (ns on a CPU, voluntary + involuntary context switches). Dead threads
    /// are not listed, so [`Sample::threads_since`] counts only what live ones did.
    pub threads: HashMap<u32, (u64, u64)>,
    /// Peak resident set (VmHWM) so far, in KiB.
    pub peak_rss_kib: u64,
}

impl Sample {
    pub fn of(pid: u32) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may contain spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| {
            fields
                .get(n)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of stat(5), 11 and 12 after the name.
        let cpu_ticks = field(11) + field(12);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let peak_rss_kib = status_number(&status, "VmHWM:");
        let mut threads = HashMap::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                let dir = task.path();
                let run_ns = std::fs::read_to_string(dir.join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
                let switches = status_number(&status, "voluntary_ctxt_switches:")
                    + status_number(&status, "nonvoluntary_ctxt_switches:");
                threads.insert(tid, (run_ns, switches));
            }
        }
        Sample {
            at: Some(Instant::now()),
            cpu_ticks,
            threads,
            peak_rss_kib,
        }
    }

    /// CPU seconds (utime + stime) since `earlier`.
    pub fn cpu_seconds_since(&self, earlier: &Sample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / clock_ticks_per_second()
    }

    /// (ns on a CPU, context switches) of the threads alive now since `earlier`: a thread
    /// born since counts in full. Nanosecond run times, where utime + stime would be in 10 ms
    /// ticks, too coarse for an idle process.
    pub fn threads_since(&self, earlier: &Sample) -> (u64, u64) {
        self.threads
            .iter()
            .fold((0, 0), |(ns, switches), (tid, (run, sw))| {
                let (run0, sw0) = earlier.threads.get(tid).copied().unwrap_or((0, 0));
                (
                    ns + run.saturating_sub(run0),
                    switches + sw.saturating_sub(sw0),
                )
            })
    }
}

/// The number after `key` in a /proc status file (in KiB for the Vm* lines).
fn status_number(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `getconf CLK_TCK`, read once; 100 (Linux's USER_HZ) if it cannot be asked.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
