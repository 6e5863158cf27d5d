//! `bad-input`: tries every case of the bad-input table ([`bench::bad_input`]) against the
//! release backend (started here on a free port, or `--addr`), checks the server is still
//! healthy afterwards, and writes the table (endpoint, input, expected, got) into
//! `bench/RESULTS.md` under "Bad input". Exits non-zero on any mismatch.

use std::path::PathBuf;

use anyhow::bail;
use bench::{
    bad_input,
    results::{self, Machine},
    server::ServerUnderTest,
};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Every bad input per endpoint, and what the server answered")]
struct Args {
    /// The backend binary to start.
    #[arg(long, default_value = "target/release/backend")]
    server_bin: PathBuf,
    /// Use a server already running here instead of starting one.
    #[arg(long)]
    addr: Option<String>,
    #[command(flatten)]
    output: results::Output,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut server = match &args.addr {
        Some(addr) => ServerUnderTest::running_at(addr),
        // Its own default limits: the connection cap is one of the cases.
        None => ServerUnderTest::start_with_limits(&args.server_bin, &[]).await?,
    };
    let results = bad_input::run_all(&server.base).await;
    let healthy = bad_input::healthy(&server.base).await;
    server.stop().await;
    let mismatches = results.iter().filter(|(_, o)| !o.ok).count();
    let mut report = String::from("## Bad input\n\n");
    report += &format!(
        "Command: `make bad-input` (`./target/release/bad-input`), {}; {} cases, {} as expected, \
         {mismatches} mismatched; server healthy afterwards: {}. Every 4xx row also checked that \
         the body is JSON `{{\"error\": …}}`. The same table (`bench/src/bad_input.rs`) is \
         asserted by `cargo test -p backend --test bad_input`.\n\n",
        results::utc_now(),
        results.len(),
        results.len() - mismatches,
        if healthy { "yes" } else { "**no**" },
    );
    report += &results::table(
        &["endpoint", "input", "expected", "got"],
        &bad_input::rows(&results),
    );
    report += "\nThe server runs with its default limits here (the benchmarks lift them): \
               \"too many connections from one client\" holds 512 keep-alive connections from \
               127.0.0.1, twice the default cap.\n";
    eprintln!("bad-input: {}", Machine::here().describe());
    print!("{report}");
    args.output.write("bad-input", &report)?;
    if mismatches > 0 || !healthy {
        bail!("{mismatches} case(s) mismatched; healthy afterwards: {healthy}");
    }
    Ok(())
}
