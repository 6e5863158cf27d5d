//! Trace bytes under the largest traffic (issue 16, "Bytes bounded"): 512 runs, each sent
//! traced requests with the largest head the server takes (56 KiB of headers) and a 16 KiB
//! body, and a job whose 50 event-stream updates carry the largest payload (16 KiB), so every
//! run wants far more than its byte budget. Reports the bytes the traces hold
//! (`trace_bytes` of `/api/debug/stats`) and the server's resident memory before, after, and
//! after 512 more runs of the same requests have evicted the first ones.
#![forbid(unsafe_code)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use bench::{
    results::{self, Machine},
    server::ServerUnderTest,
};
use clap::Parser;
use futures_util::{StreamExt, stream};
use protocol::job::{JobCreated, JobSpec, MAX_PAYLOAD_BYTES, MAX_STEPS};
use serde_json::Value;

/// Headers of 4,000 bytes each on every request: 56 KiB of head, under the server's 64 KiB.
const BIG_HEADERS: usize = 14;
const BIG_HEADER_BYTES: usize = 4_000;
/// The JSON body of each echo request.
const BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Runs filled (the server keeps 512).
    #[arg(long, default_value_t = 512)]
    runs: usize,
    /// Echo requests per run (two recorded halves each).
    #[arg(long, default_value_t = 40)]
    requests: usize,
    /// Runs filled at the same time.
    #[arg(long, default_value_t = 16)]
    at_once: usize,
    /// The server's `--store-ttl` in seconds: longer than the fill, so that nothing expires
    /// during it, and short enough to see everything go afterwards.
    #[arg(long, default_value_t = 90)]
    store_ttl_s: u64,
    /// The backend binary to start (a release build).
    #[arg(long, default_value = "target/release/backend")]
    server_bin: PathBuf,
    #[command(flatten)]
    output: results::Output,
}

/// One reading of the server.
struct Reading {
    phase: &'static str,
    runs: u64,
    trace_bytes: u64,
    rss: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let machine = Machine::here();
    eprintln!("trace-bytes: {}", machine.describe());
    let ttl = args.store_ttl_s.to_string();
    let server = ServerUnderTest::start(&args.server_bin, &["--store-ttl".into(), ttl]).await?;
    let client = reqwest::Client::new();
    let mut readings = vec![read(&server, &client, "started").await?];

    let started = Instant::now();
    fill(&server, &client, &args, "a", true).await?;
    readings.push(read(&server, &client, "512 runs filled (echo + job events)").await?);
    fill(&server, &client, &args, "b", false).await?;
    readings.push(read(&server, &client, "512 more runs (echo): the first evicted").await?);
    let took = started.elapsed();
    // Then every run and job expires, and the allocator gives the pages back over seconds.
    let deadline = Instant::now() + Duration::from_secs(3 * args.store_ttl_s + 30);
    while read(&server, &client, "waiting").await?.runs > 0 {
        ensure!(Instant::now() < deadline, "the runs did not expire");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    readings.push(read(&server, &client, "every run expired, 15 s later").await?);

    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    let rows: Vec<Vec<String>> = readings
        .iter()
        .map(|r| {
            vec![
                r.phase.to_owned(),
                r.runs.to_string(),
                mib(r.trace_bytes),
                mib(r.rss),
            ]
        })
        .collect();
    let table = results::table(&["after", "trace runs", "trace_bytes", "server RSS"], &rows);
    let report = format!(
        "## Trace bytes\n\n\
         `./target/release/trace-bytes` (after `cargo build --release -p backend -p bench`), \
         {}, load {}, {:.0} s. Each of {} runs: {} traced `POST /api/echo` with {BIG_HEADERS} \
         headers of {BIG_HEADER_BYTES} bytes and a {} KiB body, then (first 512 only) a job of \
         {MAX_STEPS} steps with {} KiB payloads streamed as traced SSE events. The trace keeps \
         header lines to 8 KiB, bodies to 4 KiB, a run to 1 MiB and all runs to 64 MiB \
         (`trace::hub`); a job keeps its latest payload only. The server runs with \
         `--store-ttl {}`, so that afterwards every run and job expires.\n\n{table}",
        machine.describe(),
        results::load_average(),
        took.as_secs_f64(),
        args.runs,
        args.requests,
        BODY_BYTES / 1024,
        MAX_PAYLOAD_BYTES / 1024,
        args.store_ttl_s,
    );
    println!("{report}");
    args.output.write("trace-bytes", &report)?;
    Ok(())
}

/// Fills `args.runs` runs named `<prefix><n>` with the largest traffic.
async fn fill(
    server: &ServerUnderTest,
    client: &reqwest::Client,
    args: &Args,
    prefix: &str,
    jobs: bool,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = stream::iter(0..args.runs)
        .map(|n| fill_run(server, client, args.requests, format!("{prefix}{n}"), jobs))
        .buffer_unordered(args.at_once)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn fill_run(
    server: &ServerUnderTest,
    client: &reqwest::Client,
    requests: usize,
    run: String,
    jobs: bool,
) -> anyhow::Result<()> {
    let body = serde_json::json!({ "customer": "c".repeat(BODY_BYTES), "items": [] }).to_string();
    for rid in 0..requests {
        let mut request = client
            .post(format!("{}/api/echo?run={run}&rid={rid}", server.base))
            .header("content-type", "application/json")
            .body(body.clone());
        for i in 0..BIG_HEADERS {
            request = request.header(format!("x-fill-{i}"), "f".repeat(BIG_HEADER_BYTES));
        }
        let response = request.send().await?;
        ensure!(response.status() == 200, "echo: {}", response.status());
        response.bytes().await?;
    }
    if jobs {
        let created: JobCreated = client
            .post(format!("{}/api/jobs?run={run}&rid=job", server.base))
            .json(&JobSpec {
                steps: MAX_STEPS,
                step_ms: 10,
                payload_bytes: MAX_PAYLOAD_BYTES,
            })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        // The stream ends after the last update.
        let events = client
            .get(format!(
                "{}/api/jobs/{}/events?run={run}&rid=events",
                server.base, created.job.0
            ))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        ensure!(
            events.len() > MAX_STEPS as usize * MAX_PAYLOAD_BYTES as usize,
            "every update came"
        );
    }
    Ok(())
}

async fn read(
    server: &ServerUnderTest,
    client: &reqwest::Client,
    phase: &'static str,
) -> anyhow::Result<Reading> {
    let stats: Value = client
        .get(format!("{}/api/debug/stats", server.base))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let reading = Reading {
        phase,
        runs: stats["stores"]["trace_runs"]
            .as_u64()
            .context("trace_runs")?,
        trace_bytes: stats["trace_bytes"].as_u64().context("trace_bytes")?,
        rss: server.resident_bytes().context("the server's VmRSS")?,
    };
    eprintln!(
        "trace-bytes: {phase}: {} runs, {} trace bytes, {} RSS",
        reading.runs, reading.trace_bytes, reading.rss
    );
    Ok(reading)
}
