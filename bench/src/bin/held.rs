//! The connections-held benchmark (issue 7): 10,000 WebSocket and 10,000 SSE pub/sub
//! subscribers held at once on one backend, then 10,000 parked long polls, with the server's
//! memory per idle connection; each beside the same figure for a bare axum server
//! (`bare-axum`, `axum::serve` defaults) and, for WebSockets and event streams, for Node.js peers
//! (express 4 and the `websocket` package, `bench/node/peers.js`, installed from the npm registry
//! into a temporary folder), measured in the same run, so the ratios are visible.
#![forbid(unsafe_code)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use bench::{
    idle::Held,
    long_polls::{self, Answer, Parked},
    raise_open_file_limit_to,
    results::{self, Machine},
    server::ServerUnderTest,
    subscribers::{Subscribers, Target, Transport},
};
use clap::Parser;
use protocol::{
    job::{JobCreated, JobSpec, LongPollAnswer},
    pubsub::{PublishRequest, Published},
};

/// Floors of issue 19 on this machine: server memory per idle connection.
const FLOOR_WS_BYTES: f64 = 7.0 * 1024.0;
const FLOOR_SSE_BYTES: f64 = 8.0 * 1024.0;
/// The Node.js peers' packages, as `npm install` takes them.
const NODE_PACKAGES: [&str; 2] = ["express@4", "websocket@1"];
/// Quiet time before reading the server's memory.
const SETTLE: Duration = Duration::from_millis(1_500);
/// Connections of each kind opened and closed before the first reading (lazy statics, runtime
/// and allocator structures), so that they are not counted per connection.
const WARM_UP: usize = 256;
/// Files each process keeps for itself besides one per connection (standard streams, epoll,
/// listener, the publisher's connection, pipes).
const SPARE_FILES: u64 = 64;
/// The job the backend's long polls wait on: its last step is "the event" (`JOB_STEPS` ×
/// `JOB_STEP_MS` = 20 s after it starts: time to park them all on a busy machine and read the
/// memory first); the polls ask for anything after the step before.
const JOB_STEP_MS: u32 = 5_000;
const JOB_STEPS: u32 = 4;
/// How long answers may take once the event is due.
const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// 10,000 WebSockets + 10,000 event streams held at once, and 10,000 parked long polls.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Connections of each kind (WebSocket, SSE) held at once, and long polls parked.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// The backend binary to start (a release build), a fresh process per part.
    #[arg(long, default_value = "target/release/backend")]
    server_bin: PathBuf,
    /// The bare axum baseline binary.
    #[arg(long, default_value = "target/release/bare-axum")]
    bare_bin: PathBuf,
    /// The Node.js peers' script.
    #[arg(long, default_value = "bench/node/peers.js")]
    node_script: PathBuf,
    /// Skip the Node.js peers (no npm registry, or no `node`).
    #[arg(long)]
    no_node: bool,
    /// Connections opening at the same time.
    #[arg(long, default_value_t = 64)]
    connect_at_once: usize,
    /// Skip the long polls.
    #[arg(long)]
    no_long_polls: bool,
    /// Skip the WebSockets and event streams (long polls only).
    #[arg(long)]
    no_connections: bool,
    #[command(flatten)]
    output: results::Output,
}

/// Memory per connection of one kind, on one server.
#[derive(Debug, Clone, Copy, Default)]
struct PerConnection {
    /// Resident memory growth / connections, in bytes.
    bytes: Option<f64>,
    /// Connections still open (or polls answered correctly) at the end.
    held: usize,
}

#[derive(Debug, Default)]
struct Findings {
    /// The open-file limit of this process and the servers it starts.
    files: u64,
    /// Event streams held beside the WebSockets (fewer when the file limit says so).
    sse_connections: usize,
    backend_ws: PerConnection,
    backend_sse: PerConnection,
    bare_ws: PerConnection,
    bare_sse: PerConnection,
    /// The Node.js peers, and the package versions npm installed ("express 4.21.2, …").
    node_ws: PerConnection,
    node_sse: PerConnection,
    node_versions: Option<String>,
    /// Subscribers of each topic that received the one publish made while all were held.
    delivered: (usize, usize),
    backend_polls: Option<Polls>,
    bare_polls: Option<Polls>,
}

#[derive(Debug, Clone, Copy)]
struct Polls {
    memory: PerConnection,
    /// From the first answer to the last.
    spread: Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let files = raise_open_file_limit_to(2 * args.connections as u64 + SPARE_FILES)?;
    // Both the server and this client hold one file per connection: when the hard limit is
    // below two kinds' worth, the event streams take what is left after the WebSockets.
    let Some(room) = files.checked_sub(args.connections as u64 + SPARE_FILES) else {
        bail!(
            "{} WebSockets need more open files than the limit here allows ({files})",
            args.connections
        );
    };
    let sse_connections = args.connections.min(room as usize);
    if sse_connections < args.connections {
        eprintln!(
            "held: the open-file limit ({files}) leaves room for {sse_connections} event streams \
             beside {} WebSockets",
            args.connections
        );
    }
    let machine = Machine::here();
    let load_before = results::load_average();
    eprintln!(
        "held: {}; load {load_before}; open files {files}",
        machine.describe()
    );
    let mut found = Findings {
        files,
        sse_connections,
        ..Findings::default()
    };
    if !args.no_connections {
        backend_connections(&args, &mut found).await?;
        bare_connections(&args, &mut found).await?;
        if !args.no_node {
            node_connections(&args, &mut found).await?;
        }
    }
    if !args.no_long_polls {
        found.backend_polls = Some(backend_long_polls(&args).await?);
        found.bare_polls = Some(bare_long_polls(&args).await?);
    }
    let load_after = results::load_average();
    let report = report(&args, &machine, &found, (&load_before, &load_after));
    println!("{report}");
    args.output.write("held", &report)?;
    Ok(())
}

/// Resident growth since `before`, per connection.
fn per(now: Option<u64>, before: Option<u64>, n: usize) -> Option<f64> {
    Some((now? as f64 - before? as f64) / n as f64)
}

fn kib(bytes: Option<f64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0))
}

async fn backend_connections(args: &Args, found: &mut Findings) -> anyhow::Result<()> {
    let n = args.connections;
    let mut server = ServerUnderTest::start(
        &args.server_bin,
        &[
            "--instance".into(),
            "bench".into(),
            "--max-subscribers-per-topic".into(),
            n.max(WARM_UP).to_string(),
        ],
    )
    .await?;
    let target = |topic: &str| Target {
        base: server.base.clone(),
        room: format!("held-{}", std::process::id()),
        topic: topic.into(),
    };
    let (ws_target, sse_target) = (target("held-ws"), target("held-sse"));
    let publisher = reqwest::Client::new();
    for transport in [Transport::Ws, Transport::Sse] {
        drop(
            Subscribers::open(transport, &target("warm-up"), WARM_UP, args.connect_at_once).await?,
        );
    }
    tokio::time::sleep(SETTLE).await;
    let before = server.resident_bytes();
    let mut ws = Subscribers::open(Transport::Ws, &ws_target, n, args.connect_at_once).await?;
    tokio::time::sleep(SETTLE).await;
    let with_ws = server.resident_bytes();
    eprintln!(
        "held: backend: {n} WebSockets, {} per connection",
        kib(per(with_ws, before, n))
    );
    let m = found.sse_connections;
    let mut sse = Subscribers::open(Transport::Sse, &sse_target, m, args.connect_at_once).await?;
    tokio::time::sleep(SETTLE).await;
    let with_both = server.resident_bytes();
    eprintln!(
        "held: backend: + {m} event streams, {} per connection",
        kib(per(with_both, with_ws, m))
    );
    // Held and served: one publish to each topic reaches every subscriber.
    found.delivered = (
        deliver(&publisher, &ws_target, &mut ws, n).await?,
        deliver(&publisher, &sse_target, &mut sse, m).await?,
    );
    found.backend_ws = PerConnection {
        bytes: per(with_ws, before, n),
        held: ws.open_count(),
    };
    found.backend_sse = PerConnection {
        bytes: per(with_both, with_ws, m),
        held: sse.open_count(),
    };
    server.stop().await;
    Ok(())
}

/// Publishes once to `target` and counts the subscribers that received it within 15 s.
async fn deliver(
    publisher: &reqwest::Client,
    target: &Target,
    subscribers: &mut Subscribers,
    n: usize,
) -> anyhow::Result<usize> {
    let published: Published = publisher
        .post(format!("{}/api/pubsub/publish", target.base))
        .json(&PublishRequest {
            room: Some(target.room.clone()),
            topic: target.topic.clone(),
            text: "are you there".into(),
            publisher: Some("bench".into()),
        })
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut reached = 0;
    while reached < n {
        match tokio::time::timeout_at(deadline, subscribers.arrivals.recv()).await {
            Ok(Some(a)) if a.seq == published.seq => reached += 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    Ok(reached)
}

async fn bare_connections(args: &Args, found: &mut Findings) -> anyhow::Result<()> {
    let mut server = ServerUnderTest::start_bare(&args.bare_bin).await?;
    (found.bare_ws, found.bare_sse) = hold_idle(&server, args, found.sse_connections).await?;
    eprintln!(
        "held: bare axum: {} per WebSocket, {} per event stream",
        kib(found.bare_ws.bytes),
        kib(found.bare_sse.bytes)
    );
    server.stop().await;
    Ok(())
}

async fn node_connections(args: &Args, found: &mut Findings) -> anyhow::Result<()> {
    let folder = std::env::temp_dir().join(format!("held-node-peers-{}", std::process::id()));
    let result = async {
        let (modules, versions) = install_node_peers(&folder)?;
        let mut server = ServerUnderTest::start_node(&args.node_script, &modules).await?;
        (found.node_ws, found.node_sse) = hold_idle(&server, args, found.sse_connections).await?;
        found.node_versions = Some(versions);
        eprintln!(
            "held: Node.js: {} per WebSocket, {} per event stream",
            kib(found.node_ws.bytes),
            kib(found.node_sse.bytes)
        );
        server.stop().await;
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&folder);
    result
}

/// Installs [`NODE_PACKAGES`] from the npm registry into `folder`; returns its `node_modules`
/// and the versions installed.
fn install_node_peers(folder: &std::path::Path) -> anyhow::Result<(PathBuf, String)> {
    std::fs::create_dir_all(folder)?;
    let status = std::process::Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(folder)
        .args(NODE_PACKAGES)
        .status()
        .context("cannot run npm (the Node.js peers need it; --no-node skips them)")?;
    ensure!(status.success(), "npm install {NODE_PACKAGES:?} failed");
    let modules = folder.join("node_modules");
    let version = |package: &str| -> anyhow::Result<String> {
        let manifest = std::fs::read_to_string(modules.join(package).join("package.json"))?;
        let manifest: serde_json::Value = serde_json::from_str(&manifest)?;
        Ok(format!(
            "{package} {}",
            manifest["version"].as_str().unwrap_or("?")
        ))
    };
    let versions = format!("{}, {}", version("express")?, version("websocket")?);
    Ok((modules, versions))
}

/// On a server with `/ws` and `/sse`: `args.connections` idle WebSockets, then `sse` event
/// streams beside them, each kind's memory per connection.
async fn hold_idle(
    server: &ServerUnderTest,
    args: &Args,
    sse: usize,
) -> anyhow::Result<(PerConnection, PerConnection)> {
    let n = args.connections;
    let (ws_url, sse_url) = (
        format!("{}/ws", server.base),
        format!("{}/sse", server.base),
    );
    for (transport, url) in [(Transport::Ws, &ws_url), (Transport::Sse, &sse_url)] {
        drop(Held::open(transport, url, WARM_UP, args.connect_at_once).await?);
    }
    tokio::time::sleep(SETTLE).await;
    let before = server.resident_bytes();
    let ws = Held::open(Transport::Ws, &ws_url, n, args.connect_at_once).await?;
    tokio::time::sleep(SETTLE).await;
    let with_ws = server.resident_bytes();
    let streams = Held::open(Transport::Sse, &sse_url, sse, args.connect_at_once).await?;
    tokio::time::sleep(SETTLE).await;
    let with_both = server.resident_bytes();
    Ok((
        PerConnection {
            bytes: per(with_ws, before, n),
            held: ws.open_count(),
        },
        PerConnection {
            bytes: per(with_both, with_ws, sse),
            held: streams.open_count(),
        },
    ))
}

/// Starts a job on the backend and returns its id.
async fn start_job(base: &str, steps: u32, step_ms: u32) -> anyhow::Result<String> {
    let created: JobCreated = reqwest::Client::new()
        .post(format!("{base}/api/jobs"))
        .json(&JobSpec {
            steps,
            step_ms,
            payload_bytes: 0,
        })
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(created.job.0)
}

/// Waits for `n` answers; returns those that `correct` accepts, and the first-to-last spread.
async fn collect(
    parked: &mut Parked,
    n: usize,
    correct: impl Fn(&Answer) -> bool,
) -> anyhow::Result<(usize, Duration)> {
    let deadline = tokio::time::Instant::now() + ANSWER_DEADLINE;
    let (mut good, mut first, mut last) = (0, None::<Instant>, None::<Instant>);
    for _ in 0..n {
        let answer = tokio::time::timeout_at(deadline, parked.answers.recv())
            .await
            .context("long polls still unanswered at the deadline")?
            .context("long polls ended without answering")??;
        first = first.or(Some(answer.at));
        last = Some(answer.at);
        if correct(&answer) {
            good += 1;
        }
    }
    let spread = match (first, last) {
        (Some(f), Some(l)) => l - f,
        _ => Duration::ZERO,
    };
    Ok((good, spread))
}

/// Once `n` polls are parked on `server`: lets it settle, reads what they hold over `before`,
/// checks that none was answered yet, has `release` answer them, and counts the answers that
/// `correct` accepts. The backend and the bare baseline differ only in how polls are parked
/// and released, and in what a correct answer is.
async fn held_then_answered(
    who: &str,
    mut server: ServerUnderTest,
    mut parked: Parked,
    n: usize,
    before: Option<u64>,
    release: impl std::future::Future<Output = anyhow::Result<()>>,
    correct: impl Fn(&Answer) -> bool,
) -> anyhow::Result<Polls> {
    tokio::time::sleep(SETTLE).await;
    let parked_memory = server.resident_bytes();
    if let Ok(early) = parked.answers.try_recv() {
        bail!(
            "{who}: long polls were answered before the event: {:?}",
            early.map(|a| (a.status, a.body))
        );
    }
    eprintln!(
        "held: {who}: {n} long polls parked, {} per poll",
        kib(per(parked_memory, before, n))
    );
    release.await?;
    let (good, spread) = collect(&mut parked, n, correct).await?;
    server.stop().await;
    Ok(Polls {
        memory: PerConnection {
            bytes: per(parked_memory, before, n),
            held: good,
        },
        spread,
    })
}

async fn backend_long_polls(args: &Args) -> anyhow::Result<Polls> {
    let server = ServerUnderTest::start(&args.server_bin, &[]).await?;
    let addr = server.addr().to_owned();
    // Warm-up: polls answered by a short job.
    let warm = start_job(&server.base, 1, 200).await?;
    let mut parked = long_polls::park(
        &addr,
        &format!("/api/jobs/{warm}/wait?after=0&timeout_ms=10000"),
        WARM_UP,
        args.connect_at_once,
    )
    .await?;
    collect(&mut parked, WARM_UP, |_| true).await?;
    tokio::time::sleep(SETTLE).await;
    let before = server.resident_bytes();
    let job = start_job(&server.base, JOB_STEPS, JOB_STEP_MS).await?;
    let started = Instant::now();
    let parked = long_polls::park(
        &addr,
        &format!(
            "/api/jobs/{job}/wait?after={}&timeout_ms=30000",
            JOB_STEPS - 1
        ),
        args.connections,
        args.connect_at_once,
    )
    .await?;
    // The job's last step answers them: parking (and settling) must be over before it.
    let release = async {
        ensure!(
            started.elapsed() < Duration::from_millis(u64::from(JOB_STEPS * JOB_STEP_MS)),
            "parking took longer than the job's steps"
        );
        Ok(())
    };
    held_then_answered(
        "backend",
        server,
        parked,
        args.connections,
        before,
        release,
        |a| {
            a.status == Some(200)
                && serde_json::from_str::<LongPollAnswer>(&a.body)
                    .is_ok_and(|p| p.changed && p.update.version == JOB_STEPS && p.update.done)
        },
    )
    .await
}

async fn bare_long_polls(args: &Args) -> anyhow::Result<Polls> {
    let server = ServerUnderTest::start_bare(&args.bare_bin).await?;
    let addr = server.addr().to_owned();
    let http = reqwest::Client::new();
    let release_url = format!("{}/release", server.base);
    let release = || async {
        http.post(&release_url).send().await?.error_for_status()?;
        Ok::<_, anyhow::Error>(())
    };
    let mut parked = long_polls::park(&addr, "/wait", WARM_UP, args.connect_at_once).await?;
    tokio::time::sleep(SETTLE).await;
    release().await?;
    collect(&mut parked, WARM_UP, |_| true).await?;
    tokio::time::sleep(SETTLE).await;
    let before = server.resident_bytes();
    let parked = long_polls::park(&addr, "/wait", args.connections, args.connect_at_once).await?;
    held_then_answered(
        "bare axum",
        server,
        parked,
        args.connections,
        before,
        release(),
        |a| a.status == Some(200) && a.body.contains("\"changed\":true"),
    )
    .await
}

/// `node --version`, or "?".
fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "?".into(), |v| v.trim().to_owned())
}

fn report(
    args: &Args,
    machine: &Machine,
    f: &Findings,
    (load_before, load_after): (&str, &str),
) -> String {
    let (n, m) = (args.connections, f.sse_connections);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let files = if m < n {
        format!(
            "- Open files: the hard limit here is {} per process and this process could not \
             raise it (that takes `CAP_SYS_RESOURCE`); the server and this client each hold \
             one file per connection plus a few of their own, so {m} event streams were held \
             beside the {n} WebSockets ({} at once)\n",
            f.files,
            n + m
        )
    } else {
        String::new()
    };
    let mut out = format!(
        "## Connections held: {n} WebSocket + {m} SSE subscribers at once, {n} parked long polls\n\n\
         Command: `{command}`\n\n\
         - Date: {date}; machine: {machine}\n\
         - Load average (1/5/15 min): {load_before} before, {load_after} after\n\
         - Backend: the release build, one fresh process for the connections and one for the \
           long polls. WebSockets are pub/sub subscribers (`/api/pubsub/ws`, subscribed to one \
           topic), event streams are pub/sub subscribers too (`/api/pubsub/events`, another \
           topic of the same room), held at the same time; long polls are \
           `GET /api/jobs/{{id}}/wait?after={after}` on a job whose last step comes {event} s after it \
           starts\n\
         - Baseline, same run: `bare-axum` (bench/src/bin/bare_axum.rs), the smallest axum \
           server for each, on `axum::serve` defaults: an event stream of keep-alive comments, a \
           WebSocket with a 4 KiB read buffer that reads until closed, a long poll answered by a \
           `watch` change; on the system allocator, where the backend runs on jemalloc\n\
         {node}\
         - Memory: the server's resident memory (`VmRSS` from `/proc/<pid>/status`) after a \
           warm-up ({WARM_UP} connections of each kind opened and closed, {settle:.1} s quiet), \
           then again {settle:.1} s after all of a kind are open; the growth divided by their \
           number. SSE is measured while the WebSockets stay open\n\
         {files}\
         - Client: this process, one thread, {at_once} connecting at a time, loopback\n\n",
        date = machine.date,
        machine = machine.describe(),
        settle = SETTLE.as_secs_f64(),
        at_once = args.connect_at_once,
        after = JOB_STEPS - 1,
        event = JOB_STEPS * JOB_STEP_MS / 1000,
        node = match &f.node_versions {
            Some(versions) => format!(
                "- Node.js peers, same run: `bench/node/peers.js` on Node.js {}, with {versions} \
                 installed from the npm registry into a temporary folder: an express event \
                 stream written with `res.write` (a keep-alive comment every 15 s), a \
                 `websocket` server that reads until closed\n",
                node_version()
            ),
            None => "- Node.js peers: not run (`--no-node`)\n".into(),
        },
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    let verdict = |bytes: Option<f64>, floor: f64| match bytes {
        Some(b) if b <= floor => format!("≤ {:.0} KiB: holds", floor / 1024.0),
        Some(_) => format!("≤ {:.0} KiB: **does not hold**", floor / 1024.0),
        None => "not measured".into(),
    };
    let mut rows = vec![
        vec![
            "WebSocket (pub/sub subscriber)".into(),
            format!("{} / {n}", f.backend_ws.held),
            kib(f.backend_ws.bytes),
            kib(f.bare_ws.bytes),
            ratio(f.backend_ws.bytes, f.bare_ws.bytes),
            kib(f.node_ws.bytes),
            verdict(f.backend_ws.bytes, FLOOR_WS_BYTES),
        ],
        vec![
            "SSE (pub/sub subscriber)".into(),
            format!("{} / {m}", f.backend_sse.held),
            kib(f.backend_sse.bytes),
            kib(f.bare_sse.bytes),
            ratio(f.backend_sse.bytes, f.bare_sse.bytes),
            kib(f.node_sse.bytes),
            verdict(f.backend_sse.bytes, FLOOR_SSE_BYTES),
        ],
    ];
    if let (Some(b), Some(bare)) = (f.backend_polls, f.bare_polls) {
        rows.push(vec![
            "long poll (parked)".into(),
            format!("{} / {n} answered correctly", b.memory.held),
            kib(b.memory.bytes),
            kib(bare.memory.bytes),
            ratio(b.memory.bytes, bare.memory.bytes),
            "not run".into(),
            "no floor".into(),
        ]);
    }
    out += &results::table(
        &[
            "connection",
            "held",
            "backend memory / idle connection",
            "bare axum / connection",
            "backend / bare",
            "Node.js peer / connection (`websocket`; express 4)",
            "floor",
        ],
        &rows,
    );
    out += &format!(
        "\nWhile all {} were held, one publish to each topic reached {} of {n} WebSocket and {} \
         of {m} SSE subscribers; bare axum held {} WebSockets and {} event streams, the Node.js \
         peers {} and {}.\n",
        n + m,
        f.delivered.0,
        f.delivered.1,
        f.bare_ws.held,
        f.bare_sse.held,
        f.node_ws.held,
        f.node_sse.held,
    );
    if let (Some(b), Some(bare)) = (f.backend_polls, f.bare_polls) {
        out += &format!(
            "Long polls: when the job's step came, every parked poll was answered (200, \
             `changed: true`, the last version, done): {} of {n}, from the first answer to the last \
             {:.0} ms (bare axum: {} of {n} answered, {:.0} ms).\n",
            b.memory.held,
            b.spread.as_secs_f64() * 1e3,
            bare.memory.held,
            bare.spread.as_secs_f64() * 1e3,
        );
    }
    out
}
