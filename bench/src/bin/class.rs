//! `make bench-class` (issue 16): a class of learners through the TLS proxy in front of the
//! release server (both started by `scripts/bench-class.sh`), first alone, then beside two
//! abusers and a slowloris. Checks the floors (runs complete with their full server trace, p99
//! per demo within 500 ms of the phase without abusers, resident memory at most 256 MiB and back
//! within 10 % of its warm baseline), prints the table, writes it to `bench/RESULTS.md`
//! ("Class") and exits non-zero when a floor is missed.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use anyhow::bail;
use bench::{
    class::{
        DemoFigures,
        abuse::{Attack, SlowlorisCounts, Tally, spawn_abuser, spawn_slowloris},
        by_demo, class_for,
        learner::{Demo, Learner},
        learner_address,
        memory::RssSampler,
        tls::Proxy,
    },
    raise_open_file_limit_to,
    results::{self, Machine},
    soak::mib,
};
use clap::Parser;

/// Floor: share of learners' runs complete with their full server trace, per phase.
const COMPLETE_FLOOR: f64 = 0.99;
/// Floor: how much a demo's p99 may grow beside the abusers.
const P99_SLACK: Duration = Duration::from_millis(500);
/// Floor: resident memory at peak.
const RSS_CEILING: u64 = 256 * 1024 * 1024;
/// Floor: resident memory after the load, relative to the warm baseline.
const RSS_RETURN: f64 = 0.10;

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The proxy's TLS listener.
    #[arg(long)]
    proxy: SocketAddr,
    /// The proxy's certificate (PEM), trusted as a root.
    #[arg(long)]
    cert: PathBuf,
    /// The server's process id, for its resident memory.
    #[arg(long)]
    server_pid: u32,
    /// Length of each phase, in seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Learners running demos before the baseline is read, in seconds.
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// How long after the load its memory is read again, in seconds: longer than the server's
    /// `--store-ttl` (60 s in `scripts/bench-class.sh`), so the stores have forgotten the load.
    #[arg(long, default_value_t = 90)]
    settle: u64,
    /// Simulated learners (127.0.0.10 and up).
    #[arg(long, default_value_t = 30)]
    learners: usize,
    /// Abusers (127.0.0.200 and up).
    #[arg(long, default_value_t = 2)]
    abusers: usize,
    /// Requests each abuser keeps in flight.
    #[arg(long, default_value_t = 8)]
    abuser_concurrency: usize,
    /// Half-sent requests held open by the slowloris (from 127.0.0.250).
    #[arg(long, default_value_t = 2_000)]
    slowloris: usize,
    /// A note on what the proxy configuration was, for the results.
    #[arg(long, default_value = "")]
    proxy_note: String,
    #[command(flatten)]
    output: results::Output,
}

/// What one phase measured.
struct Phase {
    demos: std::collections::BTreeMap<Demo, DemoFigures>,
}

impl Phase {
    fn runs(&self) -> usize {
        self.demos.values().map(|f| f.runs).sum()
    }
    fn complete(&self) -> usize {
        self.demos.values().map(|f| f.complete).sum()
    }
    fn share(&self) -> f64 {
        self.complete() as f64 / self.runs().max(1) as f64
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_open_file_limit_to(args.slowloris as u64 + 16_384)?;
    let machine = Machine::here();
    let load_before = results::load_average();
    let proxy = Proxy::new(args.proxy, &args.cert)?;
    let rss = RssSampler::start(args.server_pid);
    let learners: Vec<Arc<Learner>> = (0..args.learners)
        .map(|n| Learner::new(proxy.clone(), learner_address(n)).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;

    eprintln!("class: warm-up, {} s", args.warmup);
    rss.phase("warm-up");
    class_for(&learners, Duration::from_secs(args.warmup)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let baseline = rss.now().unwrap_or(0);

    eprintln!("class: learners alone, {} s", args.seconds);
    rss.phase("alone");
    let alone = Phase {
        demos: by_demo(&class_for(&learners, Duration::from_secs(args.seconds)).await),
    };

    eprintln!(
        "class: learners beside abusers and a slowloris, {} s",
        args.seconds
    );
    rss.phase("abused");
    let tally = Arc::new(Mutex::new(Tally::new()));
    let slow = Arc::new(SlowlorisCounts::default());
    let mut attackers = tokio::task::JoinSet::new();
    for n in 0..args.abusers {
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 200 + n as u8));
        spawn_abuser(
            &mut attackers,
            &proxy,
            local,
            args.abuser_concurrency,
            Arc::clone(&tally),
        )?;
    }
    let slow_addr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 250));
    spawn_slowloris(
        &mut attackers,
        &proxy,
        slow_addr,
        args.slowloris,
        Arc::clone(&slow),
    );
    let held_peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let (slow, held_peak) = (Arc::clone(&slow), Arc::clone(&held_peak));
        tokio::spawn(async move {
            loop {
                held_peak.fetch_max(slow.held.load(Ordering::Relaxed), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let abused = Phase {
        demos: by_demo(&class_for(&learners, Duration::from_secs(args.seconds)).await),
    };
    let held_at_end = slow.held.load(Ordering::Relaxed);
    let trace_reconnects: u64 = learners.iter().map(|l| l.trace_reconnects()).sum();
    watcher.abort();
    attackers.shutdown().await;

    eprintln!(
        "class: the load stopped; memory read again in {} s",
        args.settle
    );
    rss.phase("settle");
    drop(learners);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = rss.now().unwrap_or(0);
    let peak = rss.overall_peak().unwrap_or(0);

    let load_after = results::load_average();
    let command = std::env::var("BENCH_CLASS_COMMAND").unwrap_or_else(|_| {
        std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" ")
    });
    let memory = Memory {
        baseline,
        peak_alone: rss.peak("alone").unwrap_or(0),
        peak,
        after,
    };
    let tally = tally.lock().expect("tally lock").clone();
    let slowloris = SlowSummary {
        wanted: args.slowloris,
        held_peak: held_peak.load(Ordering::Relaxed),
        held_at_end,
        opened: slow.opened.load(Ordering::Relaxed),
        closed: slow.closed_by_proxy.load(Ordering::Relaxed),
        refused: slow.refused.load(Ordering::Relaxed),
    };
    let problems = problems(&alone, &abused, &memory);
    let text = describe(&Report {
        args: &args,
        machine: &machine,
        command: &command,
        load: (&load_before, &load_after),
        alone: &alone,
        abused: &abused,
        memory: &memory,
        tally: &tally,
        slowloris: &slowloris,
        trace_reconnects,
        problems: &problems,
    });
    println!("{text}");
    args.output.write("class", &text)?;
    if !problems.is_empty() {
        bail!(
            "bench-class missed its floors:\n- {}",
            problems.join("\n- ")
        );
    }
    Ok(())
}

struct Memory {
    baseline: u64,
    peak_alone: u64,
    peak: u64,
    after: u64,
}

struct SlowSummary {
    wanted: usize,
    held_peak: u64,
    held_at_end: u64,
    opened: u64,
    closed: u64,
    refused: u64,
}

struct Report<'a> {
    args: &'a Args,
    machine: &'a Machine,
    command: &'a str,
    load: (&'a str, &'a str),
    alone: &'a Phase,
    abused: &'a Phase,
    memory: &'a Memory,
    tally: &'a Tally,
    slowloris: &'a SlowSummary,
    /// How often the learners' trace sockets dropped and were opened again, both phases.
    trace_reconnects: u64,
    problems: &'a [String],
}

fn p99_growth(alone: &DemoFigures, abused: &DemoFigures) -> Option<i128> {
    let (a, b) = (alone.percentile(99.0)?, abused.percentile(99.0)?);
    Some(b.as_millis() as i128 - a.as_millis() as i128)
}

fn problems(alone: &Phase, abused: &Phase, memory: &Memory) -> Vec<String> {
    let mut out = Vec::new();
    for (name, phase) in [("alone", alone), ("beside the abusers", abused)] {
        if phase.share() < COMPLETE_FLOOR {
            out.push(format!(
                "learners {name}: {} of {} runs complete ({:.1} %, floor {:.0} %)",
                phase.complete(),
                phase.runs(),
                phase.share() * 100.0,
                COMPLETE_FLOOR * 100.0
            ));
        }
    }
    for demo in Demo::ALL {
        let (Some(a), Some(b)) = (alone.demos.get(&demo), abused.demos.get(&demo)) else {
            out.push(format!("{}: no runs to compare", demo.name()));
            continue;
        };
        match p99_growth(a, b) {
            Some(ms) if ms > P99_SLACK.as_millis() as i128 => out.push(format!(
                "{}: p99 {ms} ms slower beside the abusers (floor {} ms)",
                demo.name(),
                P99_SLACK.as_millis()
            )),
            Some(_) => {}
            None => out.push(format!("{}: no successful run to time", demo.name())),
        }
    }
    if memory.peak > RSS_CEILING {
        out.push(format!(
            "resident memory peaked at {:.1} MiB (ceiling {:.0} MiB)",
            mib(memory.peak),
            mib(RSS_CEILING)
        ));
    }
    let ratio = memory.after as f64 / memory.baseline.max(1) as f64;
    if ratio > 1.0 + RSS_RETURN {
        out.push(format!(
            "resident memory {:.1} MiB after the load, {:+.1} % of the warm baseline {:.1} MiB \
             (floor +{:.0} %)",
            mib(memory.after),
            (ratio - 1.0) * 100.0,
            mib(memory.baseline),
            RSS_RETURN * 100.0
        ));
    }
    out
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| d.as_millis().to_string())
}

fn describe(r: &Report) -> String {
    let a = r.args;
    let mut out = format!(
        "## Class: {} learners through nginx with TLS, alone and beside abusers\n\n\
         `{}` ({}; load average {} before, {} after; other builds may have shared the cores). \
         nginx (Debian's; TLS with a certificate for 127.0.0.1 from a throwaway authority \
         that the clients trust as their only root) in front of the release server started \
         with `--trusted-proxy 127.0.0.1/32 --debug-routes --store-ttl 60` (what its stores \
         keep is forgotten 60 s after its last use, so that memory afterwards is read with \
         the load's leftovers gone) and its default limits otherwise{}. Each \
         learner binds its own source address (127.0.0.10 and up), opens a trace socket for \
         each run (`?watch=RUN`, then a `Watch`) as the page does, and runs the demos in \
         turn over HTTP/1.1 (a browser would share one HTTP/2 connection), each with the \
         page's default settings, pausing 2–5 s after each run; a run is \
         complete when its sequence succeeded (a 429 is waited out once) and every request it \
         made (upgrades included) is in the server's trace with both halves within 5 s of its \
         last answer. Latency: a run from its first request to its last answer. After a {} s \
         warm-up, two phases of {} s: learners alone, then beside {} abusers (127.0.0.200 and \
         up, {} requests in flight each, cycling through the attacks below, never waiting) \
         and a slowloris holding {} half-sent requests on the proxy (127.0.0.250; TLS, then a \
         request line and a header, one more header line every 10 s; reopened when \
         closed).\n\n",
        a.learners,
        r.command,
        r.machine.describe(),
        r.load.0,
        r.load.1,
        if a.proxy_note.is_empty() {
            String::new()
        } else {
            format!(" ({})", a.proxy_note)
        },
        a.warmup,
        a.seconds,
        a.abusers,
        a.abuser_concurrency,
        a.slowloris,
    );
    let rows: Vec<Vec<String>> = Demo::ALL
        .iter()
        .map(|demo| {
            let empty = DemoFigures::default();
            let al = r.alone.demos.get(demo).unwrap_or(&empty);
            let ab = r.abused.demos.get(demo).unwrap_or(&empty);
            let growth = p99_growth(al, ab);
            let verdict = match growth {
                Some(g) if g <= P99_SLACK.as_millis() as i128 => format!("{g:+} ms, pass"),
                Some(g) => format!("{g:+} ms, **FAIL**"),
                None => "–, **FAIL**".into(),
            };
            vec![
                demo.name().to_owned(),
                format!("{}/{}", al.complete, al.runs),
                ms(al.percentile(50.0)),
                ms(al.percentile(99.0)),
                format!("{}/{}", ab.complete, ab.runs),
                format!("{}/{}/{}", ab.trace_missing, ab.throttled, ab.failed),
                ms(ab.percentile(50.0)),
                ms(ab.percentile(99.0)),
                verdict,
            ]
        })
        .collect();
    out += &results::table(
        &[
            "demo",
            "alone: complete",
            "p50 ms",
            "p99 ms",
            "abused: complete",
            "no trace/429/failed",
            "p50 ms",
            "p99 ms",
            "p99 growth (≤ 500 ms)",
        ],
        &rows,
    );
    let verdict = |ok: bool| if ok { "pass" } else { "**FAIL**" };
    let m = r.memory;
    let ratio = m.after as f64 / m.baseline.max(1) as f64;
    out += &format!(
        "\n| floor | measured | verdict |\n|---|---|---|\n\
         | runs complete alone ≥ 99 % | {}/{} ({:.1} %) | {} |\n\
         | runs complete beside abusers ≥ 99 % | {}/{} ({:.1} %) | {} |\n\
         | RSS at peak ≤ 256 MiB | {:.1} MiB (warm baseline {:.1}, peak alone {:.1}) | {} |\n\
         | RSS {} s after the load within 10 % of the warm baseline | {:.1} MiB ({:+.1} %) | {} |\n",
        r.alone.complete(),
        r.alone.runs(),
        r.alone.share() * 100.0,
        verdict(r.alone.share() >= COMPLETE_FLOOR),
        r.abused.complete(),
        r.abused.runs(),
        r.abused.share() * 100.0,
        verdict(r.abused.share() >= COMPLETE_FLOOR),
        mib(m.peak),
        mib(m.baseline),
        mib(m.peak_alone),
        verdict(m.peak <= RSS_CEILING),
        a.settle,
        mib(m.after),
        (ratio - 1.0) * 100.0,
        verdict(ratio <= 1.0 + RSS_RETURN),
    );
    let attack_rows: Vec<Vec<String>> = Attack::ALL
        .iter()
        .map(|attack| {
            let statuses = r.tally.get(attack).cloned().unwrap_or_default();
            let total: u64 = statuses.values().sum();
            let spread = statuses
                .iter()
                .map(|(s, n)| {
                    if *s == 0 {
                        format!("no answer × {n}")
                    } else {
                        format!("{s} × {n}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![attack.name().to_owned(), total.to_string(), spread]
        })
        .collect();
    out += "\nWhat the abusers got:\n\n";
    out += &results::table(&["attack", "requests", "answers"], &attack_rows);
    let s = r.slowloris;
    out += &format!(
        "\nSlowloris: {} wanted, {} held at most, {} at the end of the phase; {} connections \
         opened, {} closed by the proxy, {} refused or failed the handshake.\n",
        s.wanted, s.held_peak, s.held_at_end, s.opened, s.closed, s.refused
    );
    out += &format!(
        "Learners' trace sockets dropped and reopened: {} times over both phases.\n",
        r.trace_reconnects
    );
    let failures: Vec<String> = [("alone", r.alone), ("abused", r.abused)]
        .iter()
        .flat_map(|(phase, p)| {
            p.demos.iter().filter_map(move |(demo, f)| {
                f.example
                    .as_ref()
                    .map(|e| format!("- {phase}, {}: {}", demo.name(), e.replace('\n', " ")))
            })
        })
        .collect();
    if !failures.is_empty() {
        out += "\nFirst failure per demo and phase:\n\n";
        out += &failures.join("\n");
        out += "\n";
    }
    out += &format!(
        "\nVerdict: **{}**.\n",
        if r.problems.is_empty() {
            "pass".to_owned()
        } else {
            format!("FAIL: {}", r.problems.join("; "))
        }
    );
    out
}
