//! Where figures go: the facts of the machine they were measured on, and `bench/RESULTS.md`, in
//! which every benchmark command owns one section (between `<!-- <key>:begin -->` and
//! `<!-- <key>:end -->`) that it replaces each time it runs, leaving the others alone.

use std::{path::Path, time::SystemTime};

/// The head of a new results file.
const HEADER: &str = "# Benchmark results\n\n\
Measured on this machine by `make bench` (or the command shown in each section), with the \
load client and the release backend sharing its cores. Each section is replaced when its \
command runs again. Figures vary with what else the machine is doing: the load average is noted.\n";

/// What the figures were measured on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub date: String,
    pub cores: usize,
    pub cpu: String,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
}

impl Machine {
    pub fn here() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown".into());
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            date: utc_now(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            memory,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} cores ({}), {} RAM, Linux {}, {}",
            self.cores, self.cpu, self.memory, self.kernel, self.rustc
        )
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `YYYY-MM-DD HH:MM UTC` now.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_date(secs / 86_400);
    let in_day = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        in_day / 3_600,
        in_day % 3_600 / 60
    )
}

/// The calendar date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> (i64, u64, u64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A markdown table.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(head.iter().map(|h| (*h).to_owned()).collect());
    out += &line(head.iter().map(|_| "---".to_owned()).collect());
    for row in rows {
        out += &line(row.clone());
    }
    out
}

/// Replaces the section `key` of the results file at `path` with `body` (appending it when the
/// file has no such section yet, and making the file when there is none).
pub fn write_section(path: &Path, key: &str, body: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| HEADER.to_owned());
    std::fs::write(path, with_section(&old, key, body))
}

fn with_section(old: &str, key: &str, body: &str) -> String {
    let (begin, end) = (
        format!("<!-- {key}:begin -->"),
        format!("<!-- {key}:end -->"),
    );
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{section}{}", &old[..b], &old[e + end.len()..])
        }
        _ => format!("{}\n\n{section}\n", old.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_454), (2026, 1, 1));
    }

    #[test]
    fn a_section_is_replaced_and_the_others_kept() {
        let file = with_section(HEADER, "fanout", "first");
        assert!(file.starts_with(HEADER.trim_end()));
        let file = with_section(&file, "other", "kept");
        let file = with_section(&file, "fanout", "second");
        assert!(file.contains("<!-- fanout:begin -->\nsecond\n<!-- fanout:end -->"));
        assert!(!file.contains("first"));
        assert!(file.contains("kept"));
        assert!(file.find("second") < file.find("kept"), "stays in place");
    }

    #[test]
    fn tables_have_a_rule_under_the_head() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }
}

/// Where a benchmark's figures go: every benchmark binary flattens this into its arguments.
#[derive(Debug, clap::Args)]
pub struct Output {
    /// The results file whose section for this benchmark is replaced.
    #[arg(long, default_value = "bench/RESULTS.md")]
    pub results: std::path::PathBuf,
    /// Print the figures only; leave the results file alone.
    #[arg(long)]
    pub no_results: bool,
}

impl Output {
    /// Replaces the section `key` of the results file with `report`, unless `--no-results`.
    pub fn write(&self, key: &str, report: &str) -> anyhow::Result<()> {
        if self.no_results {
            return Ok(());
        }
        write_section(&self.results, key, report)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.results.display()))?;
        eprintln!("{key}: wrote {}", self.results.display());
        Ok(())
    }
}
