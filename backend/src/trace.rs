//! The server half of the trace: a bounded log per run of what the server saw, fanned out to
//! the pages watching that run over the trace WebSocket, and readable as JSON.

use protocol::ApiError;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{
        Path, State, WebSocketUpgrade,
        ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket},
    },
    http::{HeaderMap, Uri},
    response::Response,
    routing::{get, on},
};
use futures_util::{SinkExt, StreamExt};
use protocol::trace::{
    Actor, Detail, Kind, Message, Observer, RequestId, RunId, TraceClientMsg, TraceServerMsg,
    Transport,
};
use tokio::sync::broadcast;

use crate::{AppState, error::AppError, exchange::HttpHalf, origin, socket, ws_close};

/// Runs kept at once; creating one more evicts the least recently touched.
pub const MAX_RUNS: usize = 512;
/// Messages kept per run; older ones are dropped first.
pub const MAX_MESSAGES_PER_RUN: usize = 2_000;
/// A run untouched for this long is forgotten.
pub const RUN_TTL: Duration = Duration::from_secs(15 * 60);
/// Messages a watching page may fall behind before it is told it is too slow and dropped.
pub const WATCH_BUFFER: usize = 512;
/// How long one send to a watching page may take before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the closing frame may take (shutdown waits for it).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The server's clock for traces: microseconds since the process first read it.
pub fn server_now_us() -> i64 {
    i64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(i64::MAX)
}

/// One server-observed hop, for [`TraceHub::hop`].
pub struct Hop<'a> {
    pub run: &'a RunId,
    pub request_id: String,
    pub from: &'a str,
    pub to: &'a str,
    pub kind: Kind,
    pub transport: Transport,
    /// Which ends of the hop the server saw.
    pub at: HopTime,
    pub label: String,
    pub bytes: Option<u64>,
    pub body: Option<String>,
}

/// What [`TraceHub::hop_on`] adds to a [`Hop`]: the connection and stream it travelled on, and
/// its full detail (start line, headers) where the plain body is not enough.
#[derive(Debug, Default)]
pub struct HopWire {
    pub connection: Option<u64>,
    pub stream: Option<u64>,
    pub detail: Option<Detail>,
}

/// Which ends of a hop the server saw, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopTime {
    /// Both, now: a hop inside the server.
    Whole,
    /// It left now; the other end will say when it arrived (a pushed event or frame).
    Sent,
    /// It arrived now (a frame from a client).
    Received,
    /// Both, at these server times (a ping and its pong).
    Span(i64, i64),
}

/// Per-run logs of server-side messages. Cheap to clone.
#[derive(Clone)]
pub struct TraceHub {
    // std Mutex: never held across an await; every operation is a short map update.
    runs: Arc<Mutex<HashMap<RunId, RunLog>>>,
    /// How long an untouched run is kept ([`RUN_TTL`] unless `--store-ttl` says otherwise).
    ttl: Duration,
}

impl Default for TraceHub {
    fn default() -> Self {
        TraceHub {
            runs: Arc::default(),
            ttl: RUN_TTL,
        }
    }
}

struct RunLog {
    /// The newest messages, at most `MAX_MESSAGES_PER_RUN`, replayed to a page that starts watching.
    messages: VecDeque<Entry>,
    next_seq: u64,
    /// Fan-out to watching pages; bounded, so a slow page lags and is dropped.
    live: broadcast::Sender<Message>,
    /// Last record or watch, for expiry and eviction.
    touched: Instant,
}

/// One message of a run's log: made, or one half of an HTTP exchange as the trace middleware
/// saw it, made into a message only when the trace is read. Every traced request records two
/// halves and the trace is read far less often, so the strings (start line, label, headers) are
/// not built for most of them.
#[derive(Clone)]
enum Entry {
    /// Boxed: a message is four times the size of a half, which most entries are.
    Made(Box<Message>),
    Http {
        seq: u64,
        half: HttpHalf,
    },
}

impl Entry {
    fn run(&self) -> &RunId {
        match self {
            Entry::Made(message) => &message.run,
            Entry::Http { half, .. } => half.run(),
        }
    }

    fn set_seq(&mut self, to: u64) {
        match self {
            Entry::Made(message) => message.seq = to,
            Entry::Http { seq, .. } => *seq = to,
        }
    }

    fn message(&self) -> Message {
        match self {
            Entry::Made(message) => Message::clone(message),
            Entry::Http { seq, half } => half.message(*seq),
        }
    }

    fn into_message(self) -> Message {
        match self {
            Entry::Made(message) => *message,
            Entry::Http { seq, half } => half.message(seq),
        }
    }
}

impl RunLog {
    fn new() -> Self {
        RunLog {
            messages: VecDeque::new(),
            next_seq: 0,
            live: broadcast::channel(WATCH_BUFFER).0,
            touched: Instant::now(),
        }
    }
}

impl TraceHub {
    /// The same hub, forgetting runs untouched for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> TraceHub {
        self.ttl = ttl;
        self
    }

    /// Forgets the runs untouched for longer than the TTL (the periodic sweep calls it).
    pub fn prune(&self) {
        let ttl = self.ttl;
        let mut runs = self.runs.lock().expect("trace hub lock poisoned");
        runs.retain(|_, log| log.touched.elapsed() < ttl);
    }

    /// Records `message` (its `seq` is assigned here) and sends it to the run's watchers.
    pub fn record(&self, message: Message) {
        self.push(Entry::Made(Box::new(message)));
    }

    /// Records one half of a traced HTTP exchange, kept as it is until the trace is read (or
    /// made into its message at once when a page is watching the run).
    pub fn record_http(&self, half: HttpHalf) {
        self.push(Entry::Http { seq: 0, half });
    }

    /// Appends `entry` to its run's log with the run's next `seq`, and sends it to the watchers.
    fn push(&self, mut entry: Entry) {
        let now = Instant::now();
        let evicted = {
            let mut runs = self.runs.lock().expect("trace hub lock poisoned");
            let log = Self::log_for(&mut runs, entry.run(), self.ttl);
            entry.set_seq(log.next_seq);
            log.next_seq += 1;
            let evicted = if log.messages.len() == MAX_MESSAGES_PER_RUN {
                log.messages.pop_front()
            } else {
                None
            };
            log.touched = now;
            // No watcher is fine: the log keeps the message for a later watch or GET (and with
            // none, the copy for them is not made).
            if log.live.receiver_count() > 0 {
                let _ = log.live.send(entry.message());
            }
            log.messages.push_back(entry);
            evicted
        };
        // Freed once the lock is released: the oldest entry's memory is cold, and every traced
        // request waits for this lock.
        drop(evicted);
    }

    /// Records a hop the server saw whole (sent and received at once), such as one between the
    /// server and its worker, or an event it pushed.
    pub fn hop(&self, hop: Hop<'_>) {
        self.hop_on(hop, HopWire::default());
    }

    /// [`TraceHub::hop`] for a hop whose connection and stream are known, with its detail.
    pub fn hop_on(&self, hop: Hop<'_>, wire: HopWire) {
        let now = server_now_us();
        let (sent_us, recv_us) = match hop.at {
            HopTime::Whole => (Some(now), Some(now)),
            HopTime::Sent => (Some(now), None),
            HopTime::Received => (None, Some(now)),
            HopTime::Span(sent, recv) => (Some(sent), Some(recv)),
        };
        self.record(Message {
            run: hop.run.clone(),
            seq: 0,
            observer: Observer::Server,
            request_id: Some(RequestId(hop.request_id)),
            from: Actor::new(hop.from),
            to: Actor::new(hop.to),
            kind: hop.kind,
            transport: hop.transport,
            sent_us,
            recv_us,
            connection: wire.connection,
            stream: wire.stream,
            label: hop.label,
            bytes: hop.bytes,
            status: None,
            detail: wire.detail.or_else(|| hop.body.map(Detail::of_body)),
        });
    }

    /// The run's recorded messages and a receiver for the ones to come, taken under one lock
    /// so nothing falls between them (the messages are made after it is released).
    pub fn watch(&self, run: &RunId) -> (Vec<Message>, broadcast::Receiver<Message>) {
        let (entries, live) = {
            let mut runs = self.runs.lock().expect("trace hub lock poisoned");
            let log = Self::log_for(&mut runs, run, self.ttl);
            log.touched = Instant::now();
            (log.messages.clone(), log.live.subscribe())
        };
        (entries.into_iter().map(Entry::into_message).collect(), live)
    }

    /// The run's recorded messages, or `None` for a run never seen (or expired).
    pub fn snapshot(&self, run: &RunId) -> Option<Vec<Message>> {
        let entries = {
            let runs = self.runs.lock().expect("trace hub lock poisoned");
            runs.get(run)?.messages.clone()
        };
        Some(entries.into_iter().map(Entry::into_message).collect())
    }

    /// How many runs are kept now.
    pub fn run_count(&self) -> usize {
        self.runs.lock().expect("trace hub lock poisoned").len()
    }

    fn log_for<'a>(
        runs: &'a mut HashMap<RunId, RunLog>,
        run: &RunId,
        ttl: Duration,
    ) -> &'a mut RunLog {
        if !runs.contains_key(run) {
            runs.retain(|_, log| log.touched.elapsed() < ttl);
            if runs.len() >= MAX_RUNS {
                let oldest = runs
                    .iter()
                    .min_by_key(|(_, log)| log.touched)
                    .map(|(id, _)| id.clone());
                if let Some(oldest) = oldest {
                    runs.remove(&oldest);
                }
            }
            runs.insert(run.clone(), RunLog::new());
        }
        // A second lookup, but no copy of the run id for each message of a run already kept.
        runs.get_mut(run).expect("inserted above")
    }
}

/// `GET /api/trace/{run}` and the trace WebSocket.
pub fn router() -> Router<AppState> {
    Router::new()
        // GET for WebSocket over HTTP/1.1, CONNECT for WebSocket over HTTP/2 (a page served by
        // the TLS listener), which axum supports and browsers then use.
        .route("/trace/ws", on(origin::websocket_methods(), trace_socket))
        .route("/trace/{run}", get(run_trace))
}

/// Parses a run id from a path or query, refusing bad ones with a 400.
pub fn parse_run_id(s: &str) -> Result<RunId, AppError> {
    if RunId::is_valid(s) {
        Ok(RunId(s.to_owned()))
    } else {
        Err(AppError::BadRequest(format!(
            "invalid run id {s:?}: use 1 to {} characters of A-Z a-z 0-9 - _",
            RunId::MAX_LEN
        )))
    }
}

#[utoipa::path(get, path = "/api/trace/{run}", tag = "trace",
    params(("run" = String, Path, description = "Run id: 1 to 64 characters of A-Z a-z 0-9 - _")),
    responses((status = 200, description = "What the server recorded for the run", body = Vec<Message>),
        (status = 400, description = "Invalid run id", body = ApiError), (status = 404, description = "No trace for this run (never seen, or expired)", body = ApiError)))]
async fn run_trace(
    State(state): State<AppState>,
    Path(run): Path<String>,
) -> Result<Json<Vec<Message>>, AppError> {
    let run = parse_run_id(&run)?;
    state
        .trace
        .snapshot(&run)
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no trace for run {}", run.0)))
}

#[utoipa::path(get, path = "/api/trace/ws", tag = "trace",
    description = "The trace WebSocket (one per page): upgrade, then send `TraceClientMsg` frames and receive `TraceServerMsg` frames (4 KiB message limit: larger closes with 1009). Over HTTP/2 the same upgrade arrives as an extended CONNECT.",
    responses((status = 101, description = "Switched to WebSocket"),
        (status = 400, description = "Not a WebSocket upgrade request, or a bad run/rid", body = ApiError),
        (status = 403, description = "Cross-origin upgrade refused", body = ApiError),
        (status = 426, description = "The connection cannot be upgraded", body = ApiError)))]
async fn trace_socket(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    uri: Uri,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    origin::check_upgrade(&headers, &uri, &state.config.allowed_origins)?;
    Ok(
        socket::bounded(ws, &state.config.limits).on_upgrade(move |socket| {
            let shutdown = state.shutdown.clone();
            shutdown.track(watch_loop(socket, state))
        }),
    )
}

fn encode(msg: &TraceServerMsg) -> WsMessage {
    WsMessage::Text(
        serde_json::to_string(msg)
            .expect("trace messages serialize")
            .into(),
    )
}

fn close(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

async fn next_live(
    watch: &mut Option<broadcast::Receiver<Message>>,
) -> Result<Message, broadcast::error::RecvError> {
    match watch {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// One page's trace socket: a `select!` over the page's commands, the watched run's messages
/// and shutdown. Ends when the page goes, lags too far behind, or the server stops.
async fn watch_loop(socket: WebSocket, state: AppState) {
    let (mut tx, mut rx) = socket.split();
    let stopped = state.stopped();
    tokio::pin!(stopped);
    let mut watch: Option<broadcast::Receiver<Message>> = None;
    let clock = || {
        encode(&TraceServerMsg::Clock {
            server_now_us: server_now_us(),
        })
    };
    if tx.send(clock()).await.is_err() {
        return;
    }
    loop {
        let outgoing: Vec<WsMessage> = tokio::select! {
            _ = &mut stopped => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, tx.send(close(1001, "server shutting down"))).await;
                break;
            }
            incoming = rx.next() => match incoming {
                Some(Ok(WsMessage::Text(text))) => match serde_json::from_str::<TraceClientMsg>(&text) {
                    Ok(TraceClientMsg::Watch { run }) => match parse_run_id(&run.0) {
                        Ok(run) => {
                            let (backlog, live) = state.trace.watch(&run);
                            watch = Some(live);
                            std::iter::once(clock())
                                .chain(backlog.iter().map(|m| encode(&TraceServerMsg::Message(Box::new(m.clone())))))
                                .collect()
                        }
                        Err(e) => vec![encode(&TraceServerMsg::Error { error: e.to_string() })],
                    },
                    Err(e) => vec![encode(&TraceServerMsg::Error { error: format!("bad command: {e}") })],
                },
                Some(Ok(WsMessage::Close(_))) | None => break,
                Some(Err(e)) => {
                    if let Some(frame) = ws_close::for_error(&e) {
                        let _ = tx.send(WsMessage::Close(Some(frame))).await;
                    }
                    break;
                }
                Some(Ok(m)) if ws_close::is_refused(&m) => {
                    let _ = tx.send(WsMessage::Close(Some(ws_close::binary_refused()))).await;
                    break;
                }
                Some(Ok(_)) => Vec::new(),
            },
            live = next_live(&mut watch) => match live {
                Ok(m) => vec![encode(&TraceServerMsg::Message(Box::new(m)))],
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "trace watcher too slow: dropping it");
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, tx.send(close(1008, "too slow: trace messages were dropped"))).await;
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    watch = None;
                    Vec::new()
                }
            },
        };
        for m in outgoing {
            match tokio::time::timeout(SEND_TIMEOUT, tx.send(m)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(run: &str) -> Message {
        Message {
            run: RunId(run.into()),
            seq: 0,
            observer: Observer::Server,
            request_id: None,
            from: Actor::browser(),
            to: Actor::server(),
            kind: Kind::Request,
            transport: Transport::Http1,
            sent_us: None,
            recv_us: Some(server_now_us()),
            connection: None,
            stream: None,
            label: "GET /".into(),
            bytes: None,
            status: None,
            detail: None,
        }
    }

    #[test]
    fn runs_and_messages_are_bounded() {
        let hub = TraceHub::default();
        for i in 0..MAX_RUNS + 10 {
            hub.record(msg(&format!("r{i}")));
        }
        assert_eq!(hub.run_count(), MAX_RUNS);
        assert!(
            hub.snapshot(&RunId("r0".into())).is_none(),
            "oldest run evicted"
        );
        for _ in 0..MAX_MESSAGES_PER_RUN + 5 {
            hub.record(msg("busy"));
        }
        let kept = hub.snapshot(&RunId("busy".into())).unwrap();
        assert_eq!(kept.len(), MAX_MESSAGES_PER_RUN);
        assert_eq!(kept[0].seq, 5, "oldest messages dropped first");
    }

    #[test]
    fn untouched_runs_expire_on_the_sweep() {
        // A TTL that a loaded machine's preemption between the record and the prune below
        // does not use up (with 50 ms, "new" could expire before the prune saw it).
        const TTL: Duration = Duration::from_millis(300);
        let past_the_ttl = || std::thread::sleep(TTL + Duration::from_millis(100));
        let hub = TraceHub::default().with_ttl(TTL);
        hub.record(msg("old"));
        past_the_ttl();
        hub.record(msg("new"));
        hub.prune();
        assert_eq!(hub.run_count(), 1);
        assert!(
            hub.snapshot(&RunId("old".into())).is_none(),
            "expired run forgotten"
        );
        past_the_ttl();
        hub.prune();
        assert_eq!(hub.run_count(), 0, "nothing kept past the TTL");
    }

    #[tokio::test]
    async fn watch_sees_backlog_then_live() {
        let hub = TraceHub::default();
        hub.record(msg("w"));
        let (backlog, mut live) = hub.watch(&RunId("w".into()));
        assert_eq!(backlog.len(), 1);
        hub.record(msg("w"));
        assert_eq!(live.recv().await.unwrap().seq, 1);
    }
}
