//! Request/response load from Debian's `wrk` (`scripts/setup.sh bench` installs it): one run
//! against one URL with a request described by a small Lua script, and the figures parsed from
//! its `--latency` report.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, bail};

/// How wrk loads the server.
#[derive(Debug, Clone)]
pub struct Load {
    pub threads: usize,
    pub connections: usize,
    pub duration: Duration,
}

/// What one wrk run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub requests: u64,
    /// Responses that were not 2xx/3xx, and socket errors: both must be zero.
    pub bad_responses: u64,
    pub socket_errors: u64,
}

/// A POST of `body` as `content_type`, as a wrk script (the request is built once, so wrk
/// spends no Lua time per request).
pub fn post_script(body: &str, content_type: &str) -> String {
    format!(
        "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"{content_type}\"\n"
    )
}

/// Runs wrk against `url` with `script`, pinned to nothing (both cores are shared with the
/// server), and parses its report.
pub fn run(url: &str, script: &Path, load: &Load) -> anyhow::Result<Figures> {
    let output = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .context("cannot run wrk (bash scripts/setup.sh bench installs it)")?;
    let report = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {}\n{report}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&report).with_context(|| format!("cannot read wrk's report:\n{report}"))
}

/// The figures of a wrk `--latency` report.
pub fn parse(report: &str) -> Option<Figures> {
    let after = |prefix: &str| {
        report
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let requests_per_second = after("Requests/sec:")?.parse().ok()?;
    let p50 = duration(after("50%")?)?;
    let p99 = duration(after("99%")?)?;
    let requests = report
        .lines()
        .find(|l| l.contains("requests in"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let bad_responses = after("Non-2xx or 3xx responses:").map_or(Some(0), |n| n.parse().ok())?;
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket_errors = after("Socket errors:").map_or(0, |l| {
        l.split(',')
            .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    });
    Some(Figures {
        requests_per_second,
        p50,
        p99,
        requests,
        bad_responses,
        socket_errors,
    })
}

/// `345.00us`, `1.20ms`, `2.00s` as wrk prints them.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().ok()?;
    let micros = match unit {
        "us" => value,
        "ms" => value * 1e3,
        "s" => value * 1e6,
        "m" => value * 60e6,
        _ => return None,
    };
    Some(Duration::from_nanos((micros * 1e3) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 5s test @ http://127.0.0.1:8080/api/bench/bare
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  312.11us   9.80ms   80.00%
    Req/Sec    62.01k     2.01k   66.00k    70.00%
  Latency Distribution
     50%  980.00us
     75%    1.10ms
     90%    1.30ms
     99%    2.50ms
  308555 requests in 5.00s, 40.01MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  61700.12
Transfer/sec:      8.00MB
";

    #[test]
    fn reads_a_latency_report() {
        let f = parse(REPORT).unwrap();
        assert_eq!(f.requests_per_second, 61_700.12);
        assert_eq!(f.p50, Duration::from_micros(980));
        assert_eq!(f.p99, Duration::from_micros(2_500));
        assert_eq!(f.requests, 308_555);
        assert_eq!((f.bad_responses, f.socket_errors), (7, 3));
        let clean = REPORT.replace("  Non-2xx or 3xx responses: 7\n", "");
        assert_eq!(parse(&clean).unwrap().bad_responses, 0);
        assert!(parse("nothing here").is_none());
    }
}
