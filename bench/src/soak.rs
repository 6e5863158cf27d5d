//! The soak: for a while, many workers open and close connections of every kind the server
//! serves — each demo's plain requests, short and long polls, SSE, WebSocket push and pub/sub,
//! uploads, trace sockets, and the per-run demos (balancer cluster, sidecar, multiplexing
//! proxy) — then, once the server's TTLs have let everything go, checks that its resident
//! memory is back within 10 % of where it was after a warm-up and that no task is left behind.
//!
//! What the server holds is read from `GET /api/debug/stats` (connections, live tokio tasks,
//! the size of each store); its memory from `/proc/<pid>/status`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    echo::Order,
    job::{JobCreated, JobSpec, JobUpdate, LongPollAnswer},
    pubsub::PublishRequest,
    push::{ClientFrame, ServerFrame},
    trace::{RunId, TraceClientMsg, TraceServerMsg},
    upload::{NewUpload, UploadState, sha256_hex},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::{
    server::ServerUnderTest,
    subscribers::{Subscribers, Target, Transport},
};

/// The most resident memory may grow over the run, relative to after the warm-up.
pub const RSS_TOLERANCE: f64 = 0.10;
/// Seconds resident memory is watched for, at most, once the server let go of everything.
const RSS_SETTLE_SAMPLES: usize = 30;
/// How long one cycle may take before it counts as failed (a hang is a failure).
const CYCLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a soak runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long connections are opened and closed after the warm-up.
    pub duration: Duration,
    /// The same mix before the baseline is taken, so that lazily started parts (the
    /// multiplexing upstream, pools, the allocator's arenas) are there already.
    pub warmup: Duration,
    /// Workers cycling through the kinds at once (all from 127.0.0.1: keep their connections
    /// under the server's per-client cap).
    pub workers: usize,
    /// The server's `--store-ttl`: how long after the load everything it kept may linger.
    pub store_ttl: Duration,
    /// Resident memory the end may hold beyond the [`RSS_TOLERANCE`] over the baseline: none for
    /// the ten-minute soak. A run of seconds cannot see past the allocator's noise (the same
    /// code settled anywhere from 45 to 68 MiB after its warm-up), so its memory check is a
    /// coarse one; its exact checks are the tasks and the stores.
    pub rss_slack: u64,
}

/// Every kind of connection the soak makes, one cycle each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Echo,
    ShortPoll,
    LongPoll,
    JobEvents,
    PushSocket,
    PubSub,
    ChunkedUpload,
    WholeUpload,
    TraceSocket,
    SyncAsync,
    Stateful,
    Sidecar,
    Multiplexing,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Echo,
        Kind::ShortPoll,
        Kind::LongPoll,
        Kind::JobEvents,
        Kind::PushSocket,
        Kind::PubSub,
        Kind::ChunkedUpload,
        Kind::WholeUpload,
        Kind::TraceSocket,
        Kind::SyncAsync,
        Kind::Stateful,
        Kind::Sidecar,
        Kind::Multiplexing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo (request/response)",
            Kind::ShortPoll => "job + short polls",
            Kind::LongPoll => "job + long polls",
            Kind::JobEvents => "job + SSE",
            Kind::PushSocket => "push WebSocket (follow, chat)",
            Kind::PubSub => "pub/sub (WebSocket + SSE subscribers, publishes)",
            Kind::ChunkedUpload => "chunked upload",
            Kind::WholeUpload => "whole upload",
            Kind::TraceSocket => "trace WebSocket",
            Kind::SyncAsync => "sync/async work",
            Kind::Stateful => "stateful/stateless cluster",
            Kind::Sidecar => "sidecar pair",
            Kind::Multiplexing => "multiplexing proxy",
        }
    }
}

/// How the cycles of one kind went.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: u64,
    /// Refused with 429 by a rate limit or a full store: counted, waited out, not a failure.
    pub throttled: u64,
    pub failed: u64,
}

/// What the server held at one moment, as `/api/debug/stats` said.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub rss: u64,
    pub alive_tasks: u64,
    pub connections: u64,
    /// Stores that are not empty, with their sizes.
    pub stores_left: Vec<(String, u64)>,
    pub stats: Value,
}

/// What a soak found.
#[derive(Debug)]
pub struct Report {
    pub settings: Settings,
    pub tallies: BTreeMap<Kind, Tally>,
    /// A few failures, as they happened.
    pub first_failures: Vec<String>,
    pub baseline: Snapshot,
    /// The most the server held during the load (sampled every second).
    pub peak_rss: u64,
    pub peak_connections: u64,
    pub peak_tasks: u64,
    pub end: Snapshot,
    /// How long the server took to let go after the load.
    pub settle: Duration,
}

impl Report {
    pub fn rss_ratio(&self) -> f64 {
        self.end.rss as f64 / self.baseline.rss.max(1) as f64
    }

    pub fn cycles(&self) -> u64 {
        self.tallies
            .values()
            .map(|t| t.ok + t.throttled + t.failed)
            .sum()
    }

    pub fn failed(&self) -> u64 {
        self.tallies.values().map(|t| t.failed).sum()
    }

    /// Why the soak fails, if it does: memory not back, tasks left, stores not empty, failures.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let allowed =
            self.baseline.rss as f64 * (1.0 + RSS_TOLERANCE) + self.settings.rss_slack as f64;
        if self.end.rss as f64 > allowed {
            problems.push(format!(
                "resident memory {:.1} MiB is {:+.1} % of the {:.1} MiB after warm-up (at most +{:.0} %{})",
                mib(self.end.rss),
                (self.rss_ratio() - 1.0) * 100.0,
                mib(self.baseline.rss),
                RSS_TOLERANCE * 100.0,
                if self.settings.rss_slack > 0 {
                    format!(" and {:.0} MiB", mib(self.settings.rss_slack))
                } else {
                    String::new()
                }
            ));
        }
        if self.end.alive_tasks > self.baseline.alive_tasks {
            problems.push(format!(
                "{} tasks alive, {} after warm-up",
                self.end.alive_tasks, self.baseline.alive_tasks
            ));
        }
        if !self.end.stores_left.is_empty() {
            problems.push(format!("stores not empty: {:?}", self.end.stores_left));
        }
        let failed = self.failed();
        if failed > 0 {
            problems.push(format!(
                "{failed} of {} cycles failed: {:?}",
                self.cycles(),
                self.first_failures
            ));
        }
        if self.tallies.values().any(|t| t.ok == 0) {
            problems.push("some kind never completed a cycle".into());
        }
        problems
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs a soak against `server` (started by us, so its memory can be read; with
/// `--store-ttl` set to `settings.store_ttl`).
pub async fn run(server: &ServerUnderTest, settings: Settings) -> anyhow::Result<Report> {
    ensure!(
        server.resident_bytes().is_some(),
        "the soak needs a server it started (to read its memory)"
    );
    let probe = Probe::new(server);
    let tallies = Arc::new(Mutex::new(BTreeMap::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));

    eprintln!("soak: warm-up for {:?}", settings.warmup);
    load(
        &server.base,
        &settings,
        settings.warmup,
        0,
        &Arc::new(Mutex::new(BTreeMap::new())),
        &failures,
        None,
    )
    .await;
    let (baseline, _) = probe.settled(settings.store_ttl).await?;
    eprintln!(
        "soak: baseline {:.1} MiB, {} tasks; load for {:?}",
        mib(baseline.rss),
        baseline.alive_tasks,
        settings.duration
    );
    failures.lock().expect("failures lock").clear();
    let peaks = Arc::new(Mutex::new((0u64, 0u64, 0u64)));
    load(
        &server.base,
        &settings,
        settings.duration,
        1_000_000,
        &tallies,
        &failures,
        Some((&probe, &peaks)),
    )
    .await;
    eprintln!("soak: load done; waiting for the server to let go");
    let (end, settle) = probe.settled(settings.store_ttl).await?;
    let (peak_rss, peak_connections, peak_tasks) = *peaks.lock().expect("peaks lock");
    let tallies = tallies.lock().expect("tallies lock").clone();
    let first_failures = failures.lock().expect("failures lock").clone();
    Ok(Report {
        settings,
        tallies,
        first_failures,
        baseline,
        peak_rss,
        peak_connections,
        peak_tasks,
        end,
        settle,
    })
}

type Peaks = Arc<Mutex<(u64, u64, u64)>>;

/// `settings.workers` workers cycling through every kind for `duration`; with a probe, the
/// server's peaks are sampled meanwhile.
async fn load(
    base: &str,
    settings: &Settings,
    duration: Duration,
    first_cycle: u64,
    tallies: &Arc<Mutex<BTreeMap<Kind, Tally>>>,
    failures: &Arc<Mutex<Vec<String>>>,
    sample: Option<(&Probe<'_>, &Peaks)>,
) {
    let deadline = tokio::time::Instant::now() + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..settings.workers {
        let (base, tallies, failures) = (base.to_owned(), tallies.clone(), failures.clone());
        workers.spawn(async move {
            let mut n = first_cycle;
            while tokio::time::Instant::now() < deadline {
                let kind = Kind::ALL[(w + n as usize) % Kind::ALL.len()];
                let cycle = Cycle {
                    base: &base,
                    run: format!("soak-{w}-{n}"),
                    release: n.is_multiple_of(2),
                    source: source_of(&base, w),
                };
                let outcome = tokio::time::timeout(CYCLE_TIMEOUT, cycle.go(kind)).await;
                let mut wait = None;
                {
                    let mut tallies = tallies.lock().expect("tallies lock");
                    let tally = tallies.entry(kind).or_default();
                    match outcome {
                        Ok(Ok(())) => tally.ok += 1,
                        Ok(Err(e)) => match e.downcast_ref::<Throttled>() {
                            Some(Throttled(retry)) => {
                                tally.throttled += 1;
                                wait = Some(*retry);
                            }
                            None => {
                                tally.failed += 1;
                                let mut failures = failures.lock().expect("failures lock");
                                if failures.len() < 10 {
                                    failures.push(format!("{}: {e:#}", kind.name()));
                                }
                            }
                        },
                        Err(_) => {
                            tally.failed += 1;
                            let mut failures = failures.lock().expect("failures lock");
                            if failures.len() < 10 {
                                failures.push(format!(
                                    "{}: no end within {CYCLE_TIMEOUT:?}",
                                    kind.name()
                                ));
                            }
                        }
                    }
                }
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                n += 1;
            }
        });
    }
    if let Some((probe, peaks)) = sample {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while tokio::time::Instant::now() < deadline {
            tick.tick().await;
            if let Ok(now) = probe.snapshot().await {
                let mut peaks = peaks.lock().expect("peaks lock");
                peaks.0 = peaks.0.max(now.rss);
                peaks.1 = peaks.1.max(now.connections);
                peaks.2 = peaks.2.max(now.alive_tasks);
            }
        }
    }
    while workers.join_next().await.is_some() {}
}

/// A 429 from the server, with how long it asked to wait.
#[derive(Debug)]
struct Throttled(Duration);

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "429, retry after {:?}", self.0)
    }
}

impl std::error::Error for Throttled {}

/// Fails unless `response` has `status`; a 429 becomes [`Throttled`].
async fn expect(response: reqwest::Response, status: u16) -> anyhow::Result<reqwest::Response> {
    if response.status() == status {
        return Ok(response);
    }
    if response.status() == 429 {
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(1);
        return Err(Throttled(Duration::from_secs(retry)).into());
    }
    let got = response.status();
    let path = response.url().path().to_owned();
    bail!(
        "{path} answered {got}, not {status}: {}",
        response.text().await.unwrap_or_default()
    )
}

/// One cycle of one kind: its own run id, its own HTTP client (so its connections open and
/// close with it), and either an explicit release of what it made or none (left to the TTL).
struct Cycle<'a> {
    base: &'a str,
    run: String,
    release: bool,
    /// The worker's own loopback address for its HTTP requests: each worker is one client, as
    /// each person of a class is, so none eats into another's share of the server's stores.
    source: Option<std::net::IpAddr>,
}

/// Worker `w`'s source address, 127.0.0.(10 + w), when the server is on loopback (any
/// 127.0.0.0/8 address is local on Linux); otherwise the system's choice.
fn source_of(base: &str, w: usize) -> Option<std::net::IpAddr> {
    let on_loopback = base.starts_with("http://127.") || base.starts_with("http://localhost");
    let last = u8::try_from(10 + w).ok()?;
    on_loopback.then(|| std::net::IpAddr::from([127, 0, 0, last]))
}

impl Cycle<'_> {
    fn url(&self, path: &str, rid: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}run={}&rid={rid}", self.base, self.run)
    }

    fn ws(&self, path: &str, rid: &str) -> String {
        self.url(path, rid).replacen("http://", "ws://", 1)
    }

    async fn go(&self, kind: Kind) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .local_address(self.source)
            .build()?;
        match kind {
            Kind::Echo => self.echo(&http).await,
            Kind::ShortPoll => self.short_poll(&http).await,
            Kind::LongPoll => self.long_poll(&http).await,
            Kind::JobEvents => self.job_events(&http).await,
            Kind::PushSocket => self.push_socket(&http).await,
            Kind::PubSub => self.pubsub(&http).await,
            Kind::ChunkedUpload => self.chunked_upload(&http).await,
            Kind::WholeUpload => self.whole_upload(&http).await,
            Kind::TraceSocket => self.trace_socket(&http).await,
            Kind::SyncAsync => self.sync_async(&http).await,
            Kind::Stateful => self.stateful(&http).await,
            Kind::Sidecar => self.sidecar(&http).await,
            Kind::Multiplexing => self.multiplexing(&http).await,
        }
    }

    async fn echo(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&Order::sample(5))?;
        let response = http
            .post(self.url("/api/echo?process_ms=1", "e1"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let reply: Value = expect(response, 200).await?.json().await?;
        ensure!(reply["items"] == 5, "echo summarised {reply}");
        Ok(())
    }

    async fn job(&self, http: &reqwest::Client, steps: u32) -> anyhow::Result<JobCreated> {
        let spec = JobSpec {
            steps,
            step_ms: 20,
            payload_bytes: 32,
        };
        let response = http
            .post(self.url("/api/jobs", "j"))
            .json(&spec)
            .send()
            .await?;
        Ok(expect(response, 202).await?.json().await?)
    }

    async fn short_poll(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let job = self.job(http, 3).await?;
        for poll in 0..100 {
            let response = http
                .get(self.url(&job.status_url, &format!("p{poll}")))
                .send()
                .await?;
            let update: JobUpdate = expect(response, 200).await?.json().await?;
            if update.done {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("job {} never done", job.job.0)
    }

    async fn long_poll(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let job = self.job(http, 3).await?;
        let mut after = 0;
        for poll in 0..20 {
            let path = format!("/api/jobs/{}/wait?after={after}&timeout_ms=5000", job.job.0);
            let response = http
                .get(self.url(&path, &format!("w{poll}")))
                .send()
                .await?;
            let answer: LongPollAnswer = expect(response, 200).await?.json().await?;
            if answer.update.done {
                return Ok(());
            }
            after = answer.update.version;
        }
        bail!("job {} never done", job.job.0)
    }

    async fn job_events(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let job = self.job(http, 3).await?;
        let path = format!("/api/jobs/{}/events", job.job.0);
        let response = http.get(self.url(&path, "s")).send().await?;
        let mut body = expect(response, 200).await?.bytes_stream();
        let mut seen = String::new();
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk?));
            if seen.contains("\"done\":true") {
                return Ok(());
            }
        }
        bail!("the event stream ended before the job was done")
    }

    async fn push_socket(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let job = self.job(http, 2).await?;
        let (mut socket, _) = tokio_tungstenite::connect_async(self.ws("/api/push/ws", "ws"))
            .await
            .context("push upgrade")?;
        let send =
            |frame: &ClientFrame| WsMessage::Text(serde_json::to_string(frame).unwrap().into());
        socket
            .send(send(&ClientFrame::Follow { job: job.job }))
            .await?;
        let room = format!("r{}", self.run.replace('-', "_"));
        socket
            .send(send(&ClientFrame::Join {
                room,
                name: "soak".into(),
            }))
            .await?;
        socket
            .send(send(&ClientFrame::Say { text: "hi".into() }))
            .await?;
        let (mut done, mut chat) = (false, false);
        while !(done && chat) {
            match socket.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    match serde_json::from_str::<ServerFrame>(&text)? {
                        ServerFrame::Progress { update } => done |= update.done,
                        ServerFrame::Chat { .. } => chat = true,
                        ServerFrame::Error { error } => bail!("push refused: {error}"),
                        ServerFrame::Notice { .. } => {}
                    }
                }
                Some(Ok(_)) => {}
                other => bail!("push socket ended early: {other:?}"),
            }
        }
        socket.close(None).await?;
        Ok(())
    }

    async fn pubsub(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let room = format!("r{}", self.run.replace('-', "_"));
        let target = Target {
            base: self.base.to_owned(),
            room: room.clone(),
            topic: "news".into(),
        };
        let mut ws = Subscribers::open(Transport::Ws, &target, 2, 2).await?;
        let mut sse = Subscribers::open(Transport::Sse, &target, 1, 1).await?;
        const PUBLISHES: usize = 3;
        for n in 0..PUBLISHES {
            let request = PublishRequest {
                room: Some(room.clone()),
                topic: "news".into(),
                text: format!("soak {n}"),
                publisher: None,
            };
            let response = http
                .post(self.url("/api/pubsub/publish", &format!("pub{n}")))
                .json(&request)
                .send()
                .await?;
            expect(response, 202).await?;
        }
        for _ in 0..2 * PUBLISHES {
            ws.arrivals.recv().await.context("a WebSocket delivery")?;
        }
        for _ in 0..PUBLISHES {
            sse.arrivals.recv().await.context("an SSE delivery")?;
        }
        Ok(())
    }

    async fn chunked_upload(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let bytes: Vec<u8> = (0..96 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
        let new = NewUpload {
            name: "soak.bin".into(),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        };
        let response = http
            .post(format!("{}/api/uploads", self.base))
            .json(&new)
            .send()
            .await?;
        let state: UploadState = expect(response, 201).await?.json().await?;
        let id = state.id.context("an upload id")?.0;
        let mut offset = 0;
        for chunk in bytes.chunks(32 * 1024) {
            let response = http
                .put(format!("{}/api/uploads/{id}?offset={offset}", self.base))
                .body(chunk.to_vec())
                .send()
                .await?;
            let state: UploadState = expect(response, 200).await?.json().await?;
            offset = state.received;
        }
        let response = http
            .get(format!("{}/api/uploads/{id}", self.base))
            .send()
            .await?;
        let state: UploadState = expect(response, 200).await?.json().await?;
        ensure!(state.sha256_matches == Some(true), "upload {id}: {state:?}");
        if self.release {
            let response = http
                .delete(format!("{}/api/uploads/{id}", self.base))
                .send()
                .await?;
            expect(response, 204).await?;
        }
        Ok(())
    }

    async fn whole_upload(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let bytes = vec![7u8; 64 * 1024];
        let url = format!(
            "{}/api/uploads/whole?name=soak.bin&sha256={}",
            self.base,
            sha256_hex(&bytes)
        );
        let response = http.post(url).body(bytes).send().await?;
        let state: UploadState = expect(response, 200).await?.json().await?;
        ensure!(
            state.sha256_matches == Some(true),
            "whole upload: {state:?}"
        );
        Ok(())
    }

    async fn trace_socket(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        // Something to watch: one traced request of this run.
        let response = http
            .post(self.url("/api/echo", "t1"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&Order::sample(1))?)
            .send()
            .await?;
        expect(response, 200).await?;
        let url = format!("{}/api/trace/ws", self.base.replacen("http://", "ws://", 1));
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .context("trace upgrade")?;
        let watch = TraceClientMsg::Watch {
            run: RunId(self.run.clone()),
            after: None,
            log: None,
        };
        socket
            .send(WsMessage::Text(serde_json::to_string(&watch)?.into()))
            .await?;
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    match serde_json::from_str::<TraceServerMsg>(&text)? {
                        TraceServerMsg::Message(_) => break,
                        TraceServerMsg::Error { error } => bail!("watch refused: {error}"),
                        TraceServerMsg::Clock { .. } | TraceServerMsg::Watching { .. } => {}
                    }
                }
                Some(Ok(_)) => {}
                other => bail!("trace socket ended early: {other:?}"),
            }
        }
        socket.close(None).await?;
        Ok(())
    }

    async fn sync_async(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        for (n, path) in ["/api/work/async?ms=10", "/api/work/blocking?ms=10"]
            .iter()
            .enumerate()
        {
            let response = http.get(self.url(path, &format!("k{n}"))).send().await?;
            expect(response, 200).await?;
        }
        Ok(())
    }

    async fn stateful(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let response = http
            .post(self.url("/api/lb/cluster", "c"))
            .json(&json!({ "mode": "store", "sticky": false }))
            .send()
            .await?;
        expect(response, 201).await?;
        let response = http
            .post(self.url("/api/lb/login", "l"))
            .json(&json!({ "user": "soak" }))
            .send()
            .await?;
        let response = expect(response, 200).await?;
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| Some(v.to_str().ok()?.split(';').next()?.to_owned()))
            .collect();
        let response = http
            .get(self.url("/api/lb/profile", "p"))
            .header("cookie", cookies.join("; "))
            .send()
            .await?;
        expect(response, 200).await?;
        if self.release {
            let response = http.delete(self.url("/api/lb/cluster", "d")).send().await?;
            expect(response, 200).await?;
        }
        Ok(())
    }

    async fn sidecar(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let response = http
            .post(self.url("/api/sidecar/setup", "0"))
            .json(&json!({ "fail_percent": 0, "rate_per_s": 0 }))
            .send()
            .await?;
        expect(response, 201).await?;
        for n in 1..=2 {
            let response = http
                .get(self.url(&format!("/api/sidecar/orders/{n}"), &n.to_string()))
                .send()
                .await?;
            expect(response, 200).await?;
        }
        if self.release {
            let response = http
                .delete(self.url("/api/sidecar/setup", "9"))
                .send()
                .await?;
            expect(response, 200).await?;
        }
        Ok(())
    }

    async fn multiplexing(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let via = if self.release {
            "via=h2"
        } else {
            "via=h1&pool=2"
        };
        let response = http
            .get(self.url(&format!("/api/mux/proxy?n=4&{via}&item_ms=20"), "x"))
            .send()
            .await?;
        expect(response, 200).await?;
        let response = http
            .get(self.url("/api/mux/slow?ms=20", "y"))
            .send()
            .await?;
        expect(response, 200).await?;
        Ok(())
    }
}

/// Reads what the server holds: `/api/debug/stats` and its resident memory.
struct Probe<'a> {
    server: &'a ServerUnderTest,
    http: reqwest::Client,
}

impl<'a> Probe<'a> {
    fn new(server: &'a ServerUnderTest) -> Probe<'a> {
        Probe {
            server,
            // One kept connection for every probe (it counts as one in `connections`).
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let stats: Value = self
            .http
            .get(format!("{}/api/debug/stats", self.server.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let number = |v: &Value| v.as_u64().unwrap_or(0);
        let stores_left = stats["stores"]
            .as_object()
            .context("stats.stores")?
            .iter()
            .filter(|(_, v)| number(v) > 0)
            .map(|(k, v)| (k.clone(), number(v)))
            .collect();
        Ok(Snapshot {
            rss: self.server.resident_bytes().context("the server's VmRSS")?,
            alive_tasks: number(&stats["alive_tasks"]),
            connections: number(&stats["connections"]),
            stores_left,
            stats,
        })
    }

    /// Waits until every store is empty and only the probe's connection is open (at most three
    /// TTLs and half a minute), then until resident memory stops falling (the allocator gives
    /// freed pages back over some seconds), the same way for the baseline and the end.
    async fn settled(&self, ttl: Duration) -> anyhow::Result<(Snapshot, Duration)> {
        let started = Instant::now();
        let limit = 3 * ttl + Duration::from_secs(30);
        loop {
            let now = self.snapshot().await?;
            if (now.stores_left.is_empty() && now.connections <= 1) || started.elapsed() > limit {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let settle = started.elapsed();
        // Resident memory once it has not fallen by 1 % over 5 s (at most 30 s).
        let mut samples = Vec::new();
        for _ in 0..RSS_SETTLE_SAMPLES {
            tokio::time::sleep(Duration::from_secs(1)).await;
            samples.push(self.server.resident_bytes().context("the server's VmRSS")?);
            if let [.., before, _, _, _, _, now] = samples[..]
                && now as f64 >= before as f64 * 0.99
            {
                break;
            }
        }
        Ok((self.snapshot().await?, settle))
    }
}
