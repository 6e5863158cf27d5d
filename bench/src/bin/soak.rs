//! The soak test (issue 7): the release backend under connections of every kind opened and
//! closed for `--duration` (10 minutes by default), then checked: resident memory back within
//! 10 % of after the warm-up, no task left behind, every store empty. Writes its figures and
//! this command to `bench/RESULTS.md` ("Soak") and exits non-zero when a check fails.

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use bench::{
    raise_open_file_limit,
    results::{self, Machine},
    server::ServerUnderTest,
    soak::{self, Kind, RSS_TOLERANCE, Report, Settings, mib},
};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// How long connections are opened and closed, in seconds (after the warm-up).
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Warm-up before the baseline is taken, in seconds: long enough for the allocator to reach
    /// the high-water mark of this load (30 s did in a debug build; less did not).
    #[arg(long, default_value_t = 60)]
    warmup: u64,
    /// Workers cycling through the kinds at once (all from 127.0.0.1, so within the server's
    /// default per-client connection cap).
    #[arg(long, default_value_t = 24)]
    workers: usize,
    /// The server's `--store-ttl`, in seconds: how long everything may linger after the load.
    #[arg(long, default_value_t = 20)]
    store_ttl: u64,
    /// The backend binary to start (a release build).
    #[arg(long, default_value = "target/release/backend")]
    server_bin: PathBuf,
    #[command(flatten)]
    output: results::Output,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_open_file_limit()?;
    let machine = Machine::here();
    let load_before = results::load_average();
    let server_args = vec!["--store-ttl".to_owned(), args.store_ttl.to_string()];
    // The server's own limits (the per-client connection cap and rate limits): the soak keeps
    // within them, and counts a 429 as throttled, not failed.
    let server = ServerUnderTest::start_with_limits(&args.server_bin, &server_args).await?;
    let settings = Settings {
        duration: Duration::from_secs(args.duration),
        warmup: Duration::from_secs(args.warmup),
        workers: args.workers,
        store_ttl: Duration::from_secs(args.store_ttl),
        rss_slack: 0,
    };
    let report = soak::run(&server, settings).await?;
    let load_after = results::load_average();
    let command = std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    let text = describe(&report, &machine, &command, &load_before, &load_after);
    println!("{text}");
    args.output.write("soak", &text)?;
    let problems = report.problems();
    if !problems.is_empty() {
        bail!("soak failed:\n- {}", problems.join("\n- "));
    }
    Ok(())
}

fn describe(
    report: &Report,
    machine: &Machine,
    command: &str,
    before: &str,
    after: &str,
) -> String {
    let s = &report.settings;
    let mut out = format!(
        "## Soak: connections of every kind opened and closed for {} s\n\n\
         `{command}` ({}; load average {before} before, {after} after; other builds may have \
         shared the cores). Server started with its default limits and `--store-ttl {}`; \
         {} workers from 127.0.0.1, each cycle with its own HTTP client (its connections open \
         and close with it); every other cycle releases what it made (DELETE), the rest is left \
         to the TTLs. Baseline: after a {} s warm-up of the same mix, once every store was \
         empty and resident memory had stopped falling (within 1 % over 5 s, at most 30 s); \
         the end is read the same way.\n\n",
        s.duration.as_secs(),
        machine.describe(),
        s.store_ttl.as_secs(),
        s.workers,
        s.warmup.as_secs(),
    );
    let rows: Vec<Vec<String>> = Kind::ALL
        .iter()
        .map(|kind| {
            let t = report.tallies.get(kind).cloned().unwrap_or_default();
            vec![
                kind.name().to_owned(),
                t.ok.to_string(),
                t.throttled.to_string(),
                t.failed.to_string(),
            ]
        })
        .collect();
    out += &results::table(&["cycle", "completed", "throttled (429)", "failed"], &rows);
    let b = &report.baseline;
    let e = &report.end;
    out += &format!(
        "\n| | after warm-up | peak during load | after the load (settled in {:.0} s) |\n\
         |---|---|---|---|\n\
         | server RSS | {:.1} MiB | {:.1} MiB | {:.1} MiB ({:+.1} %, limit +{:.0} %) |\n\
         | tokio alive tasks | {} | {} | {} |\n\
         | open connections | {} | {} | {} |\n\
         | stores not empty | {} | | {} |\n\n\
         Cycles: {} ({} failed). Verdict: **{}**.\n",
        report.settle.as_secs_f64(),
        mib(b.rss),
        mib(report.peak_rss),
        mib(e.rss),
        (report.rss_ratio() - 1.0) * 100.0,
        RSS_TOLERANCE * 100.0,
        b.alive_tasks,
        report.peak_tasks,
        e.alive_tasks,
        b.connections,
        report.peak_connections,
        e.connections,
        stores(&b.stores_left),
        stores(&e.stores_left),
        report.cycles(),
        report.failed(),
        if report.problems().is_empty() {
            "pass".to_owned()
        } else {
            format!("FAIL: {}", report.problems().join("; "))
        }
    );
    out
}

fn stores(left: &[(String, u64)]) -> String {
    if left.is_empty() {
        "none".into()
    } else {
        left.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
