//! `GET /api/trace/{run}` and the trace WebSocket: one per page, replaying a run's backlog and
//! then its live messages, with the server's clock.
//!
//! The socket may sit idle for minutes (a finished run, a page left open), and a reverse proxy
//! closes an idle connection (nginx after `proxy_read_timeout`, 60 s by default): the server
//! pings every [`PING_EVERY`] (browsers answer by themselves), and closes a socket it has not
//! heard from for [`SILENCE_LIMIT`]. A page that reconnects watches again with `after` = the
//! highest `seq` it holds and the `log` it holds them of (each watch is answered `Watching` with
//! the log's id), and gets only the messages after it, or, from a log started since (a restart,
//! a run moved to this instance), all of them numbered on from there.

use std::time::Duration;

use axum::{
    Json,
    extract::{
        Path, State, WebSocketUpgrade,
        ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket},
    },
    http::HeaderMap,
    response::Response,
    routing::on,
};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    ApiError,
    trace::{Message, TraceClientMsg, TraceServerMsg},
};
use tokio::sync::broadcast;

use super::{clock::server_now_us, hub::Resume, ids::parse_run_id};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    openapi,
    server::{client::ClientId, origin, rate_limit::Client, ws_limits},
};

/// How long one send to a watching page may take before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the closing frame may take (shutdown waits for it).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the server pings a page: well under the idle timeouts of common proxies (nginx's
/// `proxy_read_timeout` is 60 s).
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// A page that has sent nothing (not even a pong) for this long is gone: closed with 1011.
pub const SILENCE_LIMIT: Duration = PING_EVERY.saturating_mul(3);

/// `GET /api/trace/{run}` and the trace WebSocket.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(openapi::served_as(
            routes!(trace_socket),
            "/trace/ws",
            on(origin::websocket_methods(), trace_socket),
        ))
        .routes(routes!(run_trace))
}

#[utoipa::path(get, path = "/trace/{run}", tag = "trace",
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

#[utoipa::path(get, path = "/trace/ws", tag = "trace",
    description = "The trace WebSocket (one per page): upgrade, then send `TraceClientMsg` frames and receive `TraceServerMsg` frames (4 KiB message limit: larger closes with 1009). Over HTTP/2 the same upgrade arrives as an extended CONNECT.",
    responses((status = 101, description = "Switched to WebSocket"),
        (status = 400, description = "Not a WebSocket upgrade request, or a bad run/rid", body = ApiError),
        (status = 403, description = "Cross-origin upgrade refused", body = ApiError),
        (status = 426, description = "The connection cannot be upgraded", body = ApiError)))]
async fn trace_socket(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    host: origin::RequestedHost,
    Client(client): Client,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    origin::check_upgrade(&headers, &host, &state.config.allowed_origins)?;
    Ok(
        ws_limits::bounded(ws, &state.config.limits).on_upgrade(move |socket| {
            let shutdown = state.shutdown.clone();
            shutdown.track(watch_loop(socket, state, client))
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
/// and shutdown. Ends when the page goes, lags too far behind, or the server stops. A run the
/// page watches first counts against `client`'s share of runs.
async fn watch_loop(socket: WebSocket, state: AppState, client: Option<ClientId>) {
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
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let outgoing: Vec<WsMessage> = tokio::select! {
            _ = &mut stopped => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, tx.send(close(1001, "server shutting down"))).await;
                break;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, tx.send(close(1011, "no pong"))).await;
                    break;
                }
                vec![WsMessage::Ping(Default::default())]
            }
            incoming = rx.next() => { last_heard = tokio::time::Instant::now(); match incoming {
                Some(Ok(WsMessage::Text(text))) => match serde_json::from_str::<TraceClientMsg>(&text) {
                    Ok(TraceClientMsg::Watch { run, after, log }) => match parse_run_id(&run.0) {
                        Ok(run) => match state.trace.watch(&run, after.map(|after| Resume { after, log }), client) {
                            Ok(watched) => {
                                watch = Some(watched.live);
                                let watching = TraceServerMsg::Watching { run, log: watched.log };
                                [clock(), encode(&watching)].into_iter()
                                    .chain(watched.backlog.into_iter().map(|m| encode(&TraceServerMsg::Message(Box::new(m)))))
                                    .collect()
                            }
                            Err(refused) => vec![encode(&TraceServerMsg::Error { error: AppError::from(refused).to_string() })],
                        },
                        Err(e) => vec![encode(&TraceServerMsg::Error { error: e.to_string() })],
                    },
                    Err(e) => vec![encode(&TraceServerMsg::Error { error: format!("bad command: {e}") })],
                },
                Some(Ok(WsMessage::Close(_))) | None => break,
                Some(Err(e)) => {
                    if let Some(frame) = ws_limits::for_error(&e) {
                        let _ = tx.send(WsMessage::Close(Some(frame))).await;
                    }
                    break;
                }
                Some(Ok(m)) if ws_limits::is_refused(&m) => {
                    let _ = tx.send(WsMessage::Close(Some(ws_limits::binary_refused()))).await;
                    break;
                }
                // A pong, or a ping (answered by the socket itself).
                Some(Ok(_)) => Vec::new(),
            }},
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
