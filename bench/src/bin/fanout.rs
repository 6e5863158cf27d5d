//! The fan-out benchmark (issue 5): one publish to N subscribers on real WebSockets or event
//! streams, repeated K times; reports delivery latency (per subscriber and to the last one) and
//! the server's memory per connection, checks the floors, and updates `bench/RESULTS.md`.
#![forbid(unsafe_code)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bench::{
    raise_open_file_limit,
    results::{self, Machine},
    server::{ServerUnderTest, cpu_time_of},
    stats::{PublishOutcome, Summary},
    subscribers::{Subscribers, Target, Transport},
};
use clap::Parser;
use protocol::pubsub::{PublishRequest, Published};

/// Subscribers the floor is about, and its bounds (issue 5, on this 2-core machine).
const FLOOR_SUBSCRIBERS: usize = 10_000;
const FLOOR_P99: Duration = Duration::from_millis(100);
const FLOOR_BYTES_PER_IDLE_SOCKET: f64 = 16.0 * 1024.0;
/// Files the client and the server need besides one per subscriber.
const SPARE_FILES: u64 = 256;
/// Quiet time before reading the server's memory, so that it reflects idle connections.
const SETTLE: Duration = Duration::from_millis(1_000);
/// Pause between two publishes.
const BETWEEN_PUBLISHES: Duration = Duration::from_millis(50);
/// Fewest deliveries over which CPU time per delivery is reported (10 ms ticks).
const MIN_DELIVERIES_FOR_CPU: u32 = 10_000;
/// How long one publish may take to reach everyone before the missing ones are counted.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(15);

/// One publish to N subscribers: delivery latency and server memory per connection.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// How subscribers connect (a list runs each).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ws")]
    transport: Vec<Transport>,
    /// How many subscribers (a list runs each, e.g. 100,1000,10000).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    subscribers: Vec<usize>,
    /// Publishes per run: each goes to all N subscribers; their spread is the distribution.
    #[arg(long, default_value_t = 20)]
    publishes: usize,
    /// The backend binary to start (a release build), one fresh process per run.
    #[arg(
        long,
        default_value = "target/release/backend",
        conflicts_with = "addr"
    )]
    server_bin: PathBuf,
    /// Use an already running server instead (memory is then not measured; it must allow
    /// enough subscribers per topic: `--max-subscribers-per-topic`).
    #[arg(long)]
    addr: Option<String>,
    /// Run the server's broker on this Redis (`--redis-url` of the backend).
    #[arg(long)]
    redis_url: Option<String>,
    /// Subscribers connecting at the same time.
    #[arg(long, default_value_t = 64)]
    connect_at_once: usize,
    /// Worker threads of the load client (1: a current-thread runtime, leaving the server a core).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Skip the one-subscriber baseline run of each transport.
    #[arg(long)]
    no_baseline: bool,
    #[command(flatten)]
    output: results::Output,
}

/// What one run (one transport, one N) measured.
struct Run {
    transport: Transport,
    subscribers: usize,
    latency: Summary,
    /// Server memory growth per connection (bytes): idle after subscribing, after publishing.
    idle_bytes: Option<f64>,
    after_bytes: Option<f64>,
    /// How long opening and subscribing all of them took.
    connect: Duration,
    /// CPU time per delivery during the publishes: the server's, and this client's.
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(bench_fan_out(args))
}

async fn bench_fan_out(args: Args) -> anyhow::Result<()> {
    let files = raise_open_file_limit()?;
    let most = args.subscribers.iter().copied().max().unwrap_or(0);
    if most as u64 + SPARE_FILES > files {
        bail!("{most} subscribers need more open files than the limit here allows ({files})");
    }
    let machine = Machine::here();
    let load_before = results::load_average();
    eprintln!("fanout: {}; load {load_before}", machine.describe());
    let mut runs = Vec::new();
    let mut baselines = Vec::new();
    for &transport in &args.transport {
        if !args.no_baseline {
            let run = measure(&args, transport, 1).await?;
            baselines.push((transport, run.latency.last_p50));
        }
        for &n in &args.subscribers {
            runs.push(measure(&args, transport, n).await?);
        }
    }
    let load_after = results::load_average();
    let engine = if args.redis_url.is_some() {
        "redis"
    } else {
        "memory"
    };
    let report = report(
        &args,
        &machine,
        engine,
        &runs,
        &baselines,
        (&load_before, &load_after),
    );
    println!("{report}");
    args.output.write(&format!("fanout-{engine}"), &report)?;
    Ok(())
}

/// One run: a fresh server, N subscribers, K publishes.
async fn measure(args: &Args, transport: Transport, n: usize) -> anyhow::Result<Run> {
    let mut server = match &args.addr {
        Some(addr) => ServerUnderTest::running_at(addr),
        None => {
            let mut extra = vec![
                "--instance".to_owned(),
                "bench".to_owned(),
                "--max-subscribers-per-topic".to_owned(),
                n.max(64).to_string(),
            ];
            if let Some(url) = &args.redis_url {
                extra.extend(["--redis-url".to_owned(), url.clone()]);
            }
            ServerUnderTest::start(&args.server_bin, &extra).await?
        }
    };
    let target = Target {
        base: server.base.clone(),
        room: format!("fanout-{}-{n}", std::process::id()),
        topic: "fanout".into(),
    };
    // One publisher connection, opened before anything is measured.
    let publisher = reqwest::Client::new();
    publisher
        .get(format!("{}/api/pubsub/info", target.base))
        .send()
        .await
        .context("the server does not answer")?
        .error_for_status()?;
    tokio::time::sleep(SETTLE / 4).await;
    let before = server.resident_bytes();

    let started = Instant::now();
    let mut subscribers = Subscribers::open(transport, &target, n, args.connect_at_once).await?;
    let connect = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let idle = server.resident_bytes();
    eprintln!(
        "fanout: {} × {n}: subscribed in {:.1} s",
        transport.name(),
        connect.as_secs_f64()
    );

    let mut outcomes = Vec::with_capacity(args.publishes);
    let cpu_before = (server.cpu_time(), cpu_time_of("self"));
    for k in 1..=args.publishes {
        outcomes.push(publish_once(&publisher, &target, &mut subscribers, n, k).await?);
        tokio::time::sleep(BETWEEN_PUBLISHES).await;
    }
    // CPU time comes in 10 ms ticks: only worth dividing over many deliveries.
    let deliveries = (n * args.publishes) as u32;
    let per_delivery = |before: Option<Duration>, after: Option<Duration>| {
        (deliveries >= MIN_DELIVERIES_FOR_CPU).then_some((after? - before?) / deliveries)
    };
    let server_cpu = per_delivery(cpu_before.0, server.cpu_time());
    let client_cpu = per_delivery(cpu_before.1, cpu_time_of("self"));
    let after = server.resident_bytes();
    let still_open = subscribers.open_count();
    // The server goes first, so the closing (and its TIME_WAIT) is on its side.
    server.stop().await;
    drop(subscribers);
    if still_open < n {
        eprintln!("fanout: only {still_open} of {n} connections were still open at the end");
    }
    let latency = Summary::of(&outcomes).context("no delivery arrived at all")?;
    let per_connection = |now: Option<u64>| Some((now? as f64 - before? as f64) / n as f64);
    let run = Run {
        transport,
        subscribers: n,
        latency,
        idle_bytes: per_connection(idle),
        after_bytes: per_connection(after),
        connect,
        server_cpu,
        client_cpu,
    };
    eprintln!(
        "fanout: {} × {n}: last subscriber p50 {} p99 {}, {} per idle connection, \
         CPU per delivery: server {}, client {}",
        transport.name(),
        ms(run.latency.last_p50),
        ms(run.latency.last_p99),
        kib(run.idle_bytes),
        us(run.server_cpu),
        us(run.client_cpu),
    );
    Ok(run)
}

/// Publishes once and waits until all `n` subscribers have the delivery (or the deadline).
async fn publish_once(
    publisher: &reqwest::Client,
    target: &Target,
    subscribers: &mut Subscribers,
    n: usize,
    k: usize,
) -> anyhow::Result<PublishOutcome> {
    while subscribers.arrivals.try_recv().is_ok() {}
    let body = PublishRequest {
        room: Some(target.room.clone()),
        topic: target.topic.clone(),
        text: format!("fan-out publish {k}"),
        publisher: Some("bench".into()),
    };
    let sent = Instant::now();
    let response = publisher
        .post(format!("{}/api/pubsub/publish", target.base))
        .json(&body)
        .send()
        .await?;
    if !response.status().is_success() {
        let status = response.status();
        bail!("publish refused: {status} {}", response.text().await?);
    }
    let published: Published = response.json().await?;
    let mut outcome = PublishOutcome {
        latencies: Vec::with_capacity(n),
        missing: 0,
    };
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    while outcome.latencies.len() < n {
        match tokio::time::timeout_at(deadline, subscribers.arrivals.recv()).await {
            Ok(Some(arrival)) if arrival.seq == published.seq => {
                outcome
                    .latencies
                    .push(arrival.at.saturating_duration_since(sent));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                outcome.missing = n - outcome.latencies.len();
                break;
            }
        }
    }
    Ok(outcome)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Option<Duration>) -> String {
    d.map_or("n/a".into(), |d| format!("{:.1} µs", d.as_secs_f64() * 1e6))
}

fn kib(bytes: Option<f64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0))
}

/// The section of `RESULTS.md`: command, machine, table, floors.
fn report(
    args: &Args,
    machine: &Machine,
    engine: &str,
    runs: &[Run],
    baselines: &[(Transport, Duration)],
    (load_before, load_after): (&str, &str),
) -> String {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let client = if args.client_threads <= 1 {
        "1 thread (current-thread runtime)".to_owned()
    } else {
        format!("{} worker threads", args.client_threads)
    };
    let mut out = format!(
        "## Fan-out: one publish to N subscribers ({engine} broker)\n\n\
         Command: `{command}`\n\n\
         - Date: {date}; machine: {machine}\n\
         - Load average (1/5/15 min): {load_before} before, {load_after} after\n\
         - Client: {client}, {at_once} connecting at a time; server: the release backend, a fresh \
           process per row, no run traced\n\
         - Latency: from sending `POST /api/pubsub/publish` to a subscriber reading the delivery, \
           on the client's one clock, over {k} publishes per row. *Each*: every subscriber of \
           every publish; *last*: per publish, the latency to its last subscriber (everyone had it)\n\
         - Memory: the server's resident memory (`VmRSS`) growth divided by N, once all are \
           subscribed and idle, and again after the publishes\n\
         - CPU: user + system time of the server process and of the client during the \
           publishes (pings included), divided by the deliveries (10 ms ticks)\n\n",
        date = machine.date,
        machine = machine.describe(),
        at_once = args.connect_at_once,
        k = args.publishes,
    );
    let rows: Vec<Vec<String>> =
        runs.iter()
            .map(|r| {
                let l = &r.latency;
                let baseline = baselines.iter().find(|(t, _)| *t == r.transport).map_or(
                    "n/a".into(),
                    |(_, b)| {
                        format!(
                            "{:.1}×",
                            l.last_p50.as_secs_f64() / b.as_secs_f64().max(1e-6)
                        )
                    },
                );
                vec![
                    r.transport.name().into(),
                    r.subscribers.to_string(),
                    ms(l.each_p50),
                    ms(l.each_p99),
                    ms(l.last_p50),
                    ms(l.last_p99),
                    ms(l.last_max),
                    baseline,
                    kib(r.idle_bytes),
                    kib(r.after_bytes),
                    format!("{:.1} s", r.connect.as_secs_f64()),
                    us(r.server_cpu),
                    us(r.client_cpu),
                    l.missing.to_string(),
                ]
            })
            .collect();
    out += &results::table(
        &[
            "transport",
            "N",
            "each p50",
            "each p99",
            "last p50",
            "last p99",
            "last max",
            "last p50 vs 1 subscriber",
            "server memory / idle conn",
            "/ conn after publishes",
            "subscribe all",
            "server CPU / delivery",
            "client CPU / delivery",
            "missed",
        ],
        &rows,
    );
    if !baselines.is_empty() {
        let b: Vec<String> = baselines
            .iter()
            .map(|(t, d)| format!("{} {}", t.name(), ms(*d)))
            .collect();
        out += &format!(
            "\nBaseline, same run: one subscriber, last p50: {}.\n",
            b.join(", ")
        );
    }
    out += &floors(runs);
    out
}

/// The floors of issue 5, judged on the 10,000-WebSocket row.
fn floors(runs: &[Run]) -> String {
    let Some(run) = runs
        .iter()
        .find(|r| r.transport == Transport::Ws && r.subscribers >= FLOOR_SUBSCRIBERS)
    else {
        return format!(
            "\nFloors (issue 5): not judged, no run with {FLOOR_SUBSCRIBERS} WebSocket subscribers.\n"
        );
    };
    let verdict = |ok: bool| if ok { "holds" } else { "**does not hold**" };
    let held = run.latency.missing == 0;
    let p99 = run.latency.last_p99;
    let memory = match run.idle_bytes {
        Some(b) => format!(
            "{}: {}",
            kib(Some(b)),
            verdict(b <= FLOOR_BYTES_PER_IDLE_SOCKET)
        ),
        None => "not measured (server not started here)".into(),
    };
    format!(
        "\nFloors (issue 5, on this machine), {n} WebSocket subscribers:\n\n\
         - all held and served (no delivery missed): {}\n\
         - p99 to all of them (last subscriber) ≤ {}: {}: {}\n\
         - ≤ 16 KiB of server memory per idle WebSocket: {memory}\n",
        verdict(held),
        ms(FLOOR_P99),
        ms(p99),
        verdict(p99 <= FLOOR_P99),
        n = run.subscribers,
    )
}
