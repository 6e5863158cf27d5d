//! One simulated learner: its own loopback address, one HTTP client and one trace socket for
//! the session (as one open page), and each demo's request sequence as the page sends it with
//! the page's default settings. A run counts complete only when its sequence succeeded and
//! every request it made is in the server's trace with both halves.

use std::{
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use futures_util::{SinkExt, StreamExt, future::try_join_all};
use protocol::{
    echo::Order,
    job::{JobCreated, JobSpec, JobUpdate, LongPollAnswer},
    pubsub::{BrokerFrame, PublishRequest, SubscriberFrame},
    push::{ClientFrame, ServerFrame},
    upload::{NewUpload, UploadState, sha256_hex},
};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{tls::Proxy, trace_watch::TraceWatch};

/// How long a run's server trace may lag behind its last answer.
const TRACE_GRACE: Duration = Duration::from_secs(5);
/// A run that takes longer than this has failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `Retry-After` a learner waits out.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The demos a learner runs, in the order of the page's menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Demo {
    RequestResponse,
    SyncAsync,
    ShortPolling,
    LongPolling,
    Sse,
    Push,
    PubSub,
    Upload,
    StatefulStateless,
    Sidecar,
    Multiplexing,
    /// The four notification lanes side by side, each lane a run of its own.
    Compare,
}

impl Demo {
    pub const ALL: [Demo; 12] = [
        Demo::RequestResponse,
        Demo::SyncAsync,
        Demo::ShortPolling,
        Demo::LongPolling,
        Demo::Sse,
        Demo::Push,
        Demo::PubSub,
        Demo::Upload,
        Demo::StatefulStateless,
        Demo::Sidecar,
        Demo::Multiplexing,
        Demo::Compare,
    ];

    /// The demo's route on the page.
    pub fn name(self) -> &'static str {
        match self {
            Demo::RequestResponse => "request-response",
            Demo::SyncAsync => "sync-async",
            Demo::ShortPolling => "short-polling",
            Demo::LongPolling => "long-polling",
            Demo::Sse => "sse",
            Demo::Push => "push",
            Demo::PubSub => "pubsub",
            Demo::Upload => "upload",
            Demo::StatefulStateless => "stateful-stateless",
            Demo::Sidecar => "sidecar",
            Demo::Multiplexing => "multiplexing",
            Demo::Compare => "compare",
        }
    }
}

/// How one run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The sequence succeeded and the server's trace holds both halves of every request.
    Complete,
    /// The sequence succeeded but some requests lack a half in the server's trace: which,
    /// and how many exchanges of the run the trace showed at all.
    TraceMissing(String),
    /// Still refused (429) after waiting out one `Retry-After`.
    Throttled(String),
    /// An error or an unexpected answer.
    Failed(String),
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub demo: Demo,
    /// From the first request to the last answer (the trace wait not included).
    pub took: Duration,
    pub outcome: Outcome,
}

/// A learner: one page open for the whole session.
pub struct Learner {
    pub local: IpAddr,
    proxy: Proxy,
    http: reqwest::Client,
    trace: TraceWatch,
}

impl Learner {
    pub fn new(proxy: Proxy, local: IpAddr) -> anyhow::Result<Learner> {
        let http = proxy.http_client(local)?;
        let trace = TraceWatch::open(proxy.clone(), local);
        Ok(Learner {
            local,
            proxy,
            http,
            trace,
        })
    }

    /// How often its trace socket had to reconnect.
    pub fn trace_reconnects(&self) -> u64 {
        self.trace.reconnects()
    }

    /// Runs `demo` once: a fresh run id, a `Watch` for it, the sequence, then the trace check.
    /// The comparison runs its four lanes at once, each a run of its own with its own trace
    /// socket, as the page's lanes do; it is complete when every lane is.
    pub async fn run(&self, demo: Demo) -> RunReport {
        if demo != Demo::Compare {
            let (took, outcome) = self.traced(&self.trace, Sequence::Demo(demo)).await;
            return RunReport {
                demo,
                took,
                outcome,
            };
        }
        let lanes = Lane::ALL.map(|lane| async move {
            let trace = TraceWatch::open(self.proxy.clone(), self.local);
            self.traced(&trace, Sequence::Lane(lane)).await
        });
        let lanes = futures_util::future::join_all(lanes).await;
        let took = lanes
            .iter()
            .map(|(took, _)| *took)
            .max()
            .unwrap_or_default();
        let outcome = lanes
            .into_iter()
            .map(|(_, outcome)| outcome)
            .find(|o| !matches!(o, Outcome::Complete))
            .unwrap_or(Outcome::Complete);
        RunReport {
            demo,
            took,
            outcome,
        }
    }

    /// One run of `sequence` watched on `trace`: how long the sequence took, and its outcome.
    async fn traced(&self, trace: &TraceWatch, sequence: Sequence) -> (Duration, Outcome) {
        let run = Run::new(self);
        trace.watch(&run.id);
        let started = Instant::now();
        let result = tokio::time::timeout(RUN_TIMEOUT, run.sequence(sequence)).await;
        let took = started.elapsed();
        let outcome = match result {
            Err(_) => Outcome::Failed(format!("no end within {} s", RUN_TIMEOUT.as_secs())),
            Ok(Err(e)) => match e.downcast_ref::<Throttled>() {
                Some(t) => Outcome::Throttled(t.0.clone()),
                None => Outcome::Failed(format!("{e:#}")),
            },
            Ok(Ok(())) => {
                let rids = run.rids.lock().expect("rids lock").clone();
                let missing = trace.await_complete(&rids, TRACE_GRACE).await;
                if missing.is_empty() {
                    Outcome::Complete
                } else {
                    Outcome::TraceMissing(format!(
                        "no full server trace of rid {} (of {} requests; the trace socket showed \
                         {} exchanges of the run)",
                        missing.join(", "),
                        rids.len(),
                        trace.exchanges_seen()
                    ))
                }
            }
        };
        (took, outcome)
    }
}

/// What one run sends: a demo's sequence, or one lane of the comparison.
#[derive(Debug, Clone, Copy)]
enum Sequence {
    Demo(Demo),
    Lane(Lane),
}

/// The comparison's lanes: one job of 6 steps of 400 ms each, followed four ways.
#[derive(Debug, Clone, Copy)]
enum Lane {
    ShortPolling,
    LongPolling,
    Sse,
    WebSocket,
}

impl Lane {
    const ALL: [Lane; 4] = [
        Lane::ShortPolling,
        Lane::LongPolling,
        Lane::Sse,
        Lane::WebSocket,
    ];
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn send_frame<T: serde::Serialize>(socket: &mut Socket, frame: &T) -> anyhow::Result<()> {
    socket
        .send(WsMessage::Text(serde_json::to_string(frame)?.into()))
        .await?;
    Ok(())
}

/// Reads push frames until one `wanted`; an error frame or the socket's end fails.
async fn next_push(
    socket: &mut Socket,
    wanted: impl Fn(&ServerFrame) -> bool,
) -> anyhow::Result<()> {
    loop {
        match socket.next().await {
            Some(Ok(WsMessage::Text(text))) => {
                let frame: ServerFrame = serde_json::from_str(&text)?;
                if let ServerFrame::Error { error } = &frame {
                    bail!("push refused: {error}");
                }
                if wanted(&frame) {
                    return Ok(());
                }
            }
            Some(Ok(_)) => {}
            other => bail!("push socket ended early: {other:?}"),
        }
    }
}

/// A request refused with 429 twice (once more after its `Retry-After`).
#[derive(Debug)]
struct Throttled(String);

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "429 twice: {}", self.0)
    }
}

impl std::error::Error for Throttled {}

/// One run of one demo.
struct Run<'a> {
    learner: &'a Learner,
    /// 32 hex digits, as the page makes it.
    id: String,
    next: Mutex<u32>,
    /// The request ids that got an answer: each must be in the server's trace.
    rids: Mutex<Vec<String>>,
}

fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(MAX_RETRY_AFTER)
}

impl<'a> Run<'a> {
    fn new(learner: &'a Learner) -> Run<'a> {
        Run {
            learner,
            id: format!("{:032x}", rand::random::<u128>()),
            next: Mutex::new(0),
            rids: Mutex::new(Vec::new()),
        }
    }

    /// The next request id, as the page counts them.
    fn rid(&self) -> String {
        let mut next = self.next.lock().expect("rid lock");
        *next += 1;
        next.to_string()
    }

    fn path(&self, path: &str, rid: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}run={}&rid={rid}", self.id)
    }

    fn must_trace(&self, rid: String) {
        self.rids.lock().expect("rids lock").push(rid);
    }

    /// Sends the request `build` makes for a URL, honouring one 429's `Retry-After`; an answer
    /// other than 429 is returned (its rid then must be in the trace).
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
        path: &str,
    ) -> anyhow::Result<reqwest::Response> {
        for attempt in 0..2 {
            let rid = self.rid();
            let url = format!("{}{}", self.learner.proxy.origin, self.path(path, &rid));
            let response = build(&self.learner.http, url)
                .send()
                .await
                .with_context(|| path.to_owned())?;
            if response.status() != 429 {
                self.must_trace(rid);
                return Ok(response);
            }
            let wait = retry_after(&response);
            let why = response.text().await.unwrap_or_default();
            if attempt == 1 {
                return Err(Throttled(format!("{path}: {why}")).into());
            }
            tokio::time::sleep(wait).await;
        }
        unreachable!("the second attempt returns")
    }

    /// [`Run::send`], then fails unless the status is `status`.
    async fn expect(
        &self,
        build: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
        path: &str,
        status: u16,
    ) -> anyhow::Result<reqwest::Response> {
        let response = self.send(build, path).await?;
        if response.status() != status {
            let got = response.status();
            bail!(
                "{path} answered {got}, not {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(response)
    }

    async fn post_json<T: serde::Serialize>(
        &self,
        path: &str,
        body: &T,
        status: u16,
    ) -> anyhow::Result<reqwest::Response> {
        let body = serde_json::to_vec(body)?;
        self.expect(
            |http, url| {
                http.post(url)
                    .header("content-type", "application/json")
                    .body(body.clone())
            },
            path,
            status,
        )
        .await
    }

    async fn get(&self, path: &str, status: u16) -> anyhow::Result<reqwest::Response> {
        self.expect(|http, url| http.get(url), path, status).await
    }

    async fn delete(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        self.send(|http, url| http.delete(url), path).await
    }

    /// A WebSocket of this run, as the page's `TracedSocket` opens it (its upgrade must be in
    /// the trace too). A refused upgrade is tried once more after a second.
    async fn websocket(&self, path: &str, peer: &str) -> anyhow::Result<Socket> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut last = None;
        for _ in 0..2 {
            let rid = self.rid();
            let target = self.path(&format!("{path}{sep}as={peer}"), &rid);
            match self
                .learner
                .proxy
                .websocket(self.learner.local, &target)
                .await
            {
                Ok(socket) => {
                    self.must_trace(rid);
                    return Ok(socket);
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(last.expect("two tries"))
    }

    async fn sequence(&self, sequence: Sequence) -> anyhow::Result<()> {
        let demo = match sequence {
            Sequence::Demo(demo) => demo,
            Sequence::Lane(lane) => {
                let job = self.job(6).await?;
                return match lane {
                    Lane::ShortPolling => self.short_poll(job).await,
                    Lane::LongPolling => self.long_poll(job, 5_000).await,
                    Lane::Sse => self.stream_events(job).await,
                    Lane::WebSocket => self.follow_over_socket(job).await,
                };
            }
        };
        match demo {
            Demo::RequestResponse => self.request_response().await,
            Demo::SyncAsync => self.sync_async().await,
            Demo::ShortPolling => self.short_poll(self.job(5).await?).await,
            Demo::LongPolling => self.long_poll(self.job(5).await?, 3_000).await,
            Demo::Sse => self.stream_events(self.job(8).await?).await,
            Demo::Push => self.push().await,
            Demo::PubSub => self.pubsub().await,
            Demo::Upload => self.upload().await,
            Demo::StatefulStateless => self.stateful_stateless().await,
            Demo::Sidecar => self.sidecar().await,
            Demo::Multiplexing => self.multiplexing().await,
            Demo::Compare => bail!("the comparison runs as four lanes"),
        }
    }

    /// The page's default: 20 items as JSON, 150 ms of processing.
    async fn request_response(&self) -> anyhow::Result<()> {
        let response = self
            .post_json("/api/echo?process_ms=150", &Order::sample(20), 200)
            .await?;
        let reply: serde_json::Value = response.json().await?;
        ensure!(reply["items"] == 20, "echo summarised {reply}");
        Ok(())
    }

    /// The page's default: four calls of 500 ms to the blocking handler, all at once.
    async fn sync_async(&self) -> anyhow::Result<()> {
        let path = "/api/work/blocking?ms=500";
        try_join_all((0..4).map(|_| self.get(path, 200))).await?;
        Ok(())
    }

    async fn job(&self, steps: u32) -> anyhow::Result<JobCreated> {
        let spec = JobSpec {
            steps,
            step_ms: 400,
            payload_bytes: 200,
        };
        Ok(self
            .post_json("/api/jobs", &spec, 202)
            .await?
            .json()
            .await?)
    }

    /// The job's state asked for every 250 ms until done (the short-polling demo: a job of 5
    /// steps of 400 ms).
    async fn short_poll(&self, job: JobCreated) -> anyhow::Result<()> {
        for _ in 0..100 {
            let update: JobUpdate = self.get(&job.status_url, 200).await?.json().await?;
            if update.done {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!("job {} never done", job.job.0)
    }

    /// The job waited for with long polls held at most `timeout_ms` (the long-polling demo: a
    /// job of 5 steps of 400 ms, 3 s; the comparison's lane: 5 s).
    async fn long_poll(&self, job: JobCreated, timeout_ms: u32) -> anyhow::Result<()> {
        let mut after = 0;
        for _ in 0..40 {
            let path = format!(
                "/api/jobs/{}/wait?after={after}&timeout_ms={timeout_ms}",
                job.job.0
            );
            let answer: LongPollAnswer = self.get(&path, 200).await?.json().await?;
            if answer.update.done {
                return Ok(());
            }
            after = answer.update.version;
        }
        bail!("job {} never done", job.job.0)
    }

    /// The job followed on its event stream until done (the SSE demo: a job of 8 steps of
    /// 400 ms).
    async fn stream_events(&self, job: JobCreated) -> anyhow::Result<()> {
        let path = format!("/api/jobs/{}/events", job.job.0);
        let response = self
            .expect(
                |http, url| http.get(url).header("accept", "text/event-stream"),
                &path,
                200,
            )
            .await?;
        let mut body = response.bytes_stream();
        let mut seen = String::new();
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk?));
            if seen.contains("\"done\":true") {
                return Ok(());
            }
        }
        bail!("the event stream ended before the job was done")
    }

    /// As the page: a job of 4 steps of 400 ms followed on the page's own socket, and two chat
    /// clients on sockets of their own joining the run's room; once both are in (each has seen
    /// its own join), each says hello, and each must hear both lines.
    async fn push(&self) -> anyhow::Result<()> {
        let job = self.job(4).await?;
        let mut follower = self.websocket("/api/push/ws", "browser").await?;
        send_frame(&mut follower, &ClientFrame::Follow { job: job.job }).await?;
        let names = ["client-1", "client-2"];
        let mut chatters = Vec::new();
        for name in names {
            let mut socket = self.websocket("/api/push/ws", name).await?;
            let join = ClientFrame::Join {
                room: String::new(),
                name: name.to_owned(),
            };
            send_frame(&mut socket, &join).await?;
            chatters.push(socket);
        }
        for (socket, name) in chatters.iter_mut().zip(names) {
            let joined = format!("{name} joined");
            next_push(
                socket,
                |frame| matches!(frame, ServerFrame::Notice { text } if text.starts_with(&joined)),
            )
            .await?;
        }
        for (socket, name) in chatters.iter_mut().zip(names) {
            let hello = ClientFrame::Say {
                text: format!("hello from {name}"),
            };
            send_frame(socket, &hello).await?;
        }
        for socket in &mut chatters {
            for _ in 0..names.len() {
                next_push(socket, |frame| matches!(frame, ServerFrame::Chat { .. })).await?;
            }
        }
        next_push(
            &mut follower,
            |frame| matches!(frame, ServerFrame::Progress { update } if update.done),
        )
        .await?;
        for mut socket in chatters.into_iter().chain([follower]) {
            let _ = socket.close(None).await;
        }
        Ok(())
    }

    /// The job followed on the page's pushing socket until done (the comparison's lane).
    async fn follow_over_socket(&self, job: JobCreated) -> anyhow::Result<()> {
        let mut follower = self.websocket("/api/push/ws", "browser").await?;
        send_frame(&mut follower, &ClientFrame::Follow { job: job.job }).await?;
        next_push(
            &mut follower,
            |frame| matches!(frame, ServerFrame::Progress { update } if update.done),
        )
        .await?;
        let _ = follower.close(None).await;
        Ok(())
    }

    /// Three subscribers of topic `news` in the run's room (two WebSockets, one event
    /// stream), two messages published; every subscriber must get both.
    async fn pubsub(&self) -> anyhow::Result<()> {
        const PUBLISHES: usize = 2;
        let mut sockets = Vec::new();
        for peer in ["sub1", "sub2"] {
            let mut socket = self.websocket("/api/pubsub/ws", peer).await?;
            let subscribe = SubscriberFrame::Subscribe {
                topic: "news".into(),
                replay: 0,
                prefetch: None,
            };
            socket
                .send(WsMessage::Text(serde_json::to_string(&subscribe)?.into()))
                .await?;
            // Wait for the subscription, so nothing published is missed.
            loop {
                match socket.next().await {
                    Some(Ok(WsMessage::Text(text))) => {
                        match serde_json::from_str::<BrokerFrame>(&text)? {
                            BrokerFrame::Subscribed { .. } => break,
                            BrokerFrame::Error { error } => bail!("subscribe refused: {error}"),
                            _ => {}
                        }
                    }
                    Some(Ok(_)) => {}
                    other => bail!("subscriber socket ended: {other:?}"),
                }
            }
            sockets.push(socket);
        }
        let stream = self
            .expect(
                |http, url| http.get(url).header("accept", "text/event-stream"),
                "/api/pubsub/events?as=sub3&topics=news&replay=0",
                200,
            )
            .await?;
        let mut events = stream.bytes_stream();
        for n in 0..PUBLISHES {
            let request = PublishRequest {
                room: None,
                topic: "news".into(),
                text: format!("message {n}"),
                publisher: None,
            };
            self.post_json("/api/pubsub/publish", &request, 202).await?;
        }
        for socket in &mut sockets {
            let mut got = 0;
            while got < PUBLISHES {
                match socket.next().await {
                    Some(Ok(WsMessage::Text(text))) => {
                        if let BrokerFrame::Message { .. } = serde_json::from_str(&text)? {
                            got += 1;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => bail!("subscriber socket ended: {other:?}"),
                }
            }
        }
        let mut seen = String::new();
        while seen.matches("event: message").count() < PUBLISHES {
            let chunk = events.next().await.context("the event stream ended")??;
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        for mut socket in sockets {
            let _ = socket.close(None).await;
        }
        Ok(())
    }

    /// 512 KiB announced, then sent in 64 KiB chunks 150 ms apart until the server holds it
    /// all with a matching checksum. The page leaves a finished upload to the server's expiry.
    async fn upload(&self) -> anyhow::Result<()> {
        let bytes: Vec<u8> = (0..512 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
        let new = NewUpload {
            name: "class.bin".into(),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        };
        let mut state: UploadState = self
            .post_json("/api/uploads", &new, 201)
            .await?
            .json()
            .await?;
        let id = state.id.clone().context("an upload id")?.0;
        for chunk in bytes.chunks(64 * 1024) {
            let path = format!("/api/uploads/{id}?offset={}", state.received);
            state = self
                .expect(
                    |http, url| {
                        http.put(url)
                            .header("content-type", "application/octet-stream")
                            .body(chunk.to_vec())
                    },
                    &path,
                    200,
                )
                .await?
                .json()
                .await?;
            if state.received < bytes.len() as u64 {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
        ensure!(state.sha256_matches == Some(true), "upload {id}: {state:?}");
        Ok(())
    }

    /// A cluster with sessions in memory, not sticky; a login, four profile reads 400 ms
    /// apart (a 401 from the other instance is what the demo shows), then the cluster stopped.
    async fn stateful_stateless(&self) -> anyhow::Result<()> {
        self.post_json(
            "/api/lb/cluster",
            &json!({ "mode": "memory", "sticky": false }),
            201,
        )
        .await?;
        let login = self
            .post_json("/api/lb/login", &json!({ "user": "ada" }), 200)
            .await?;
        let cookies: Vec<String> = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| Some(v.to_str().ok()?.split(';').next()?.to_owned()))
            .collect();
        let cookie = cookies.join("; ");
        for _ in 0..4 {
            let response = self
                .send(
                    |http, url| http.get(url).header("cookie", cookie.clone()),
                    "/api/lb/profile",
                )
                .await?;
            ensure!(
                response.status() == 200 || response.status() == 401,
                "profile answered {}",
                response.status()
            );
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        self.delete("/api/lb/cluster").await?;
        Ok(())
    }

    /// A sidecar failing half the calls, 5 per second; six orders 100 ms apart (each answer,
    /// retried or not, is what the demo shows), then the sidecar stopped.
    async fn sidecar(&self) -> anyhow::Result<()> {
        self.post_json(
            "/api/sidecar/setup",
            &json!({ "fail_percent": 50, "rate_per_s": 5 }),
            201,
        )
        .await?;
        for n in 1..=6 {
            let response = self
                .send(
                    |http, url| http.get(url),
                    &format!("/api/sidecar/orders/{n}"),
                )
                .await?;
            let _ = response.bytes().await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.delete("/api/sidecar/setup").await?;
        Ok(())
    }

    /// The page's default: twelve items of 300 ms through the server's proxy, over HTTP/2.
    async fn multiplexing(&self) -> anyhow::Result<()> {
        self.get("/api/mux/proxy?n=12&via=h2&item_ms=300", 200)
            .await?
            .bytes()
            .await?;
        Ok(())
    }
}
