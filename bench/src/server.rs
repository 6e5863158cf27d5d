//! The backend under test: the release binary started as a child process on a free port (it
//! inherits the raised file limit), or a server that is already running. Its resident memory is
//! read from `/proc/<pid>/status`; the child is killed when this is dropped.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// What the backend prints once it listens (`main.rs`).
const SERVING: &str = "Patternscope is serving on http://";
/// What the bare axum baseline (`bare-axum`) prints once it listens.
pub const BARE_SERVING: &str = "bare axum is serving on http://";
/// What the Node.js peers (`bench/node/peers.js`) print once they listen.
const NODE_SERVING: &str = "node peers are serving on http://";

/// Flags lifting the server's per-client bounds: every benchmark connects from 127.0.0.1 (the
/// fan-out holds 10,000 sockets from it) and publishes or creates jobs as fast as it can.
pub const LIFTED_LIMITS: [&str; 6] = [
    "--max-connections-per-client",
    "0",
    "--job-rate",
    "0",
    "--publish-rate",
    "0",
];

/// The server a benchmark talks to.
pub struct ServerUnderTest {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Our child, when we started it (then its memory can be read); `None` for `--addr`.
    child: Option<Child>,
}

impl ServerUnderTest {
    /// Starts `binary` on a free local port with [`LIFTED_LIMITS`] and `args` appended, and
    /// waits until it serves.
    pub async fn start(binary: &Path, args: &[String]) -> anyhow::Result<ServerUnderTest> {
        let mut all: Vec<String> = LIFTED_LIMITS.iter().map(|s| s.to_string()).collect();
        all.extend_from_slice(args);
        Self::start_with_limits(binary, &all).await
    }

    /// Starts `binary` with the server's own default limits and `args` appended.
    pub async fn start_with_limits(
        binary: &Path,
        args: &[String],
    ) -> anyhow::Result<ServerUnderTest> {
        // The soak reads `/api/debug/stats`, reqresp measures `/api/bench/bare`.
        let mut all: Vec<String> = [
            "--addr",
            "127.0.0.1:0",
            "--dist",
            "/nonexistent",
            "--debug-routes",
        ]
        .map(String::from)
        .to_vec();
        all.extend_from_slice(args);
        Self::spawn(binary, &all, SERVING).await
    }

    /// Starts the bare axum baseline `binary` (`bare-axum`) on a free local port.
    pub async fn start_bare(binary: &Path) -> anyhow::Result<ServerUnderTest> {
        let args = ["--addr".to_owned(), "127.0.0.1:0".to_owned()];
        Self::spawn(binary, &args, BARE_SERVING).await
    }

    /// Starts the Node.js peers `script` on a free local port, with their packages from the
    /// `node_modules` folder `modules`.
    pub async fn start_node(script: &Path, modules: &Path) -> anyhow::Result<ServerUnderTest> {
        let args = [
            script.display().to_string(),
            "--modules".into(),
            modules.display().to_string(),
            "--addr".into(),
            "127.0.0.1:0".into(),
        ];
        Self::spawn(Path::new("node"), &args, NODE_SERVING).await
    }

    /// Starts `binary` with `args` and waits for the line starting with `announce` (followed by
    /// the address it serves on).
    async fn spawn(
        binary: &Path,
        args: &[String],
        announce: &str,
    ) -> anyhow::Result<ServerUnderTest> {
        let mut child = Command::new(binary)
            .args(args)
            // Warnings only: an info line per event would cost the server time we measure.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the server at {}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.strip_prefix(announce) {
                    return Ok(format!("http://{}", addr.trim()));
                }
            }
            bail!("{} exited before serving", binary.display())
        })
        .await
        .with_context(|| format!("{} did not start within 20 s", binary.display()))??;
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerUnderTest {
            base,
            child: Some(child),
        })
    }

    /// A server someone else started; its memory cannot be read.
    pub fn running_at(addr: &str) -> ServerUnderTest {
        let base = if addr.starts_with("http://") {
            addr.trim_end_matches('/').to_owned()
        } else {
            format!("http://{addr}")
        };
        ServerUnderTest { base, child: None }
    }

    /// The server's resident memory in bytes (`VmRSS`), when it is our child.
    pub fn resident_bytes(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        resident_bytes_in(&status)
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The child's process id, when it is our child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref()?.id()
    }

    /// CPU time (user and system) the server has used so far, when it is our child.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time_of(&self.child.as_ref()?.id()?.to_string())
    }

    /// Stops the child now (before the clients close theirs, so the closing is the server's).
    pub async fn stop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill().await;
        }
    }
}

/// CPU time (user and system) used so far by process `pid` (`self` for this one).
pub fn cpu_time_of(pid: &str) -> Option<Duration> {
    cpu_time_in(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks of 1/100 s (Linux's `USER_HZ`).
fn cpu_time_in(stat: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Resident memory (`VmRSS`) of process `pid` in bytes, while it runs.
pub fn resident_bytes_of(pid: u32) -> Option<u64> {
    resident_bytes_in(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn resident_bytes_in(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tbackend\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(resident_bytes_in(status), Some(5120 * 1024));
        assert_eq!(resident_bytes_in("Name:\tx\n"), None);
    }

    #[test]
    fn reads_cpu_ticks() {
        let stat = "42 (tokio rt) S 1 42 42 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 3 0";
        assert_eq!(cpu_time_in(stat), Some(Duration::from_millis(1_750)));
    }

    #[test]
    fn an_address_becomes_a_base_url() {
        assert_eq!(
            ServerUnderTest::running_at("127.0.0.1:8080").base,
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            ServerUnderTest::running_at("http://h:1/").base,
            "http://h:1"
        );
    }
}
