//! Push over WebSocket: `GET /api/push/ws` upgrades (same-origin only), then the server sends
//! frames whenever it has something: a followed job's progress, notices such as someone joining,
//! chat lines of the client's room. Ping/pong keeps the connection alive.
//!
//! One `select!` loop per socket reads the client, the job, the room, a ping timer and shutdown,
//! then writes what it queued, each write bounded by a timeout. A client whose outbox fills or
//! whose socket stops taking writes (it is not reading) is closed with 1008 "too slow"; nothing
//! is buffered without bound. (One task rather than split halves: a separate writer task on a
//! split axum socket stalled under load here, and one loop makes the bound easy to see.)

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Extension, Router,
    extract::{
        Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket},
    },
    http::HeaderMap,
    response::Response,
    routing::get,
};
use protocol::{
    job::{JobUpdate, event_request_id},
    push::{ClientFrame, MAX_TEXT, ServerFrame, frame_bytes, is_valid_name},
    trace::{Kind, Transport},
};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use crate::{
    AppState,
    error::AppError,
    exchange::TraceIds,
    origin,
    trace::{Hop, HopTime, TraceHub, server_now_us},
};

/// Frames a socket may have waiting to be written before it is closed as too slow.
pub const OUTBOX: usize = 32;
/// Room lines a member may fall behind before it is closed as too slow.
pub const ROOM_BUFFER: usize = 64;
/// Rooms kept at once (empty rooms are removed when a new one is made).
pub const MAX_ROOMS: usize = 1_000;
/// How often the server pings each socket.
pub const PING_EVERY: Duration = Duration::from_secs(3);
/// A socket that answers no ping for this long is closed.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may take before the client is given up on.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the closing frame may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Something said in a room, fanned out to every member.
#[derive(Debug, Clone)]
enum RoomEvent {
    Joined { name: String },
    Said { from: String, text: String },
}

/// Chat rooms by name: the one thing shared across runs on purpose (other tabs join by name).
#[derive(Clone, Default)]
pub struct Rooms {
    // std Mutex: short map operations only.
    rooms: Arc<Mutex<HashMap<String, broadcast::Sender<RoomEvent>>>>,
}

impl Rooms {
    fn join(
        &self,
        room: &str,
    ) -> Result<(broadcast::Sender<RoomEvent>, broadcast::Receiver<RoomEvent>), AppError> {
        let mut rooms = self.rooms.lock().expect("rooms lock poisoned");
        if !rooms.contains_key(room) {
            rooms.retain(|_, tx| tx.receiver_count() > 0);
            if rooms.len() >= MAX_ROOMS {
                return Err(AppError::TooManyRequests(format!(
                    "{MAX_ROOMS} rooms are open already"
                )));
            }
        }
        let tx = rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(ROOM_BUFFER).0);
        Ok((tx.clone(), tx.subscribe()))
    }

    /// Rooms with at least one member.
    pub fn occupied(&self) -> usize {
        self.rooms
            .lock()
            .expect("rooms lock poisoned")
            .values()
            .filter(|tx| tx.receiver_count() > 0)
            .count()
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/push/ws", get(upgrade))
}

#[derive(Deserialize)]
struct PushQuery {
    /// The lifeline this socket is drawn as (`browser`, `client-2`, …).
    #[serde(rename = "as", default = "browser")]
    peer: String,
}

fn browser() -> String {
    "browser".into()
}

async fn upgrade(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    Query(query): Query<PushQuery>,
    State(state): State<AppState>,
    trace: Option<Extension<TraceIds>>,
) -> Result<Response, AppError> {
    origin::check(&headers, &state.config.allowed_origins)?;
    if !is_valid_name(&query.peer) {
        return Err(AppError::BadRequest(format!(
            "invalid `as` name {:?}",
            query.peer
        )));
    }
    let tracer = FrameTracer {
        hub: state.trace.clone(),
        ids: trace.map(|Extension(t)| t),
        peer: query.peer,
        sent: 0,
        received: 0,
    };
    Ok(ws
        // Small buffers: an idle socket should cost kilobytes, not tungstenite's 128 KiB default.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(16 * 1024)
        .on_upgrade(move |socket| session(socket, state, tracer)))
}

/// Names this socket's frames in the trace the way the page does, so both halves pair up:
/// the n-th text frame the server sends is `{rid}-e{n}`, the n-th the client sends `{rid}-c{n}`.
struct FrameTracer {
    hub: TraceHub,
    ids: Option<TraceIds>,
    /// The client's lifeline.
    peer: String,
    sent: u32,
    received: u32,
}

impl FrameTracer {
    fn record(
        &self,
        request_id: String,
        from: &str,
        to: &str,
        at: HopTime,
        label: String,
        body: Option<&str>,
    ) {
        if let Some(ids) = &self.ids {
            self.hub.hop(Hop {
                run: &ids.run,
                request_id,
                from,
                to,
                kind: Kind::Push,
                transport: Transport::WebSocket,
                at,
                label,
                bytes: Some(frame_bytes(body.map_or(0, str::len), from == "server")),
                body: body.map(str::to_owned),
            });
        }
    }

    fn sent(&mut self, label: String, text: &str) {
        self.sent += 1;
        let rid = self
            .ids
            .as_ref()
            .map(|i| event_request_id(&i.request.0, self.sent))
            .unwrap_or_default();
        self.record(
            rid,
            "server",
            &self.peer.clone(),
            HopTime::Sent,
            label,
            Some(text),
        );
    }

    fn received(&mut self, label: String, text: &str) {
        self.received += 1;
        let rid = self
            .ids
            .as_ref()
            .map(|i| format!("{}-c{}", i.request.0, self.received))
            .unwrap_or_default();
        self.record(
            rid,
            &self.peer.clone(),
            "server",
            HopTime::Received,
            label,
            Some(text),
        );
    }

    fn ping_pong(&self, n: u32, ping_us: i64, pong_us: i64) {
        let Some(ids) = &self.ids else { return };
        let mid = (ping_us + pong_us) / 2;
        let peer = self.peer.as_str();
        self.record(
            format!("{}-p{n}", ids.request.0),
            "server",
            peer,
            HopTime::Span(ping_us, mid),
            "ping".into(),
            None,
        );
        self.record(
            format!("{}-q{n}", ids.request.0),
            peer,
            "server",
            HopTime::Span(mid, pong_us),
            "pong".into(),
            None,
        );
    }
}

/// Why the server closed a socket.
fn close(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

async fn next_update(follow: &mut Option<watch::Receiver<JobUpdate>>) -> Option<JobUpdate> {
    match follow {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

async fn next_room_event(
    room: &mut Option<Membership>,
) -> Result<RoomEvent, broadcast::error::RecvError> {
    match room {
        Some(m) => m.rx.recv().await,
        None => std::future::pending().await,
    }
}

struct Membership {
    room: String,
    name: String,
    tx: broadcast::Sender<RoomEvent>,
    rx: broadcast::Receiver<RoomEvent>,
}

/// Why the loop ended, and so the close frame the client gets.
enum Ending {
    ClientLeft,
    TooSlow,
    NoPong,
    Shutdown,
}

async fn session(mut socket: WebSocket, state: AppState, mut tracer: FrameTracer) {
    // Frames produced but not yet written. The loop writes them itself after each event, each
    // write bounded by a timeout, so a client that stops reading is noticed either way: its
    // outbox fills, or a write to its full socket times out.
    let mut outbox: VecDeque<WsMessage> = VecDeque::with_capacity(OUTBOX);
    let stopped = state.stopped();
    tokio::pin!(stopped);
    let mut follow: Option<watch::Receiver<JobUpdate>> = None;
    let mut room: Option<Membership> = None;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut pings = 0u32;
    let mut ping_sent: Option<i64> = None;
    let mut last_pong = tokio::time::Instant::now();

    // Queues a frame; `false` when the outbox is full, i.e. the client is not reading.
    fn push(
        outbox: &mut VecDeque<WsMessage>,
        tracer: &mut FrameTracer,
        frame: ServerFrame,
    ) -> bool {
        if outbox.len() >= OUTBOX {
            return false;
        }
        let text = serde_json::to_string(&frame).expect("frames serialize");
        outbox.push_back(WsMessage::Text(text.clone().into()));
        tracer.sent(frame.summary(), &text);
        true
    }

    let ending = loop {
        let delivered = tokio::select! {
            _ = &mut stopped => break Ending::Shutdown,
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    let parsed = serde_json::from_str::<ClientFrame>(&text);
                    let label = parsed.as_ref().map(ClientFrame::summary).unwrap_or_else(|_| "unreadable frame".into());
                    tracer.received(label, &text);
                    match handle(parsed, &state, &mut follow, &mut room) {
                        Ok(Some(frame)) => push(&mut outbox, &mut tracer, frame),
                        Ok(None) => true,
                        Err(error) => push(&mut outbox, &mut tracer, ServerFrame::Error { error }),
                    }
                }
                Some(Ok(WsMessage::Pong(_))) => {
                    last_pong = tokio::time::Instant::now();
                    if let Some(sent) = ping_sent.take() {
                        tracer.ping_pong(pings, sent, server_now_us());
                    }
                    true
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break Ending::ClientLeft,
                Some(Ok(_)) => true,
            },
            update = next_update(&mut follow) => match update {
                Some(update) => {
                    let done = update.done;
                    let ok = push(&mut outbox, &mut tracer, ServerFrame::Progress { update });
                    if done {
                        follow = None;
                    }
                    ok
                }
                None => {
                    follow = None;
                    true
                }
            },
            event = next_room_event(&mut room) => match event {
                Ok(RoomEvent::Joined { name }) => {
                    let here = room.as_ref().map(|m| m.room.clone()).unwrap_or_default();
                    push(&mut outbox, &mut tracer, ServerFrame::Notice { text: format!("{name} joined {here}") })
                }
                Ok(RoomEvent::Said { from, text }) => {
                    let here = room.as_ref().map(|m| m.room.clone()).unwrap_or_default();
                    push(&mut outbox, &mut tracer, ServerFrame::Chat { room: here, from, text })
                }
                Err(broadcast::error::RecvError::Lagged(_)) => false,
                Err(broadcast::error::RecvError::Closed) => {
                    room = None;
                    true
                }
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > PONG_TIMEOUT {
                    break Ending::NoPong;
                }
                pings += 1;
                ping_sent = Some(server_now_us());
                outbox.len() < OUTBOX && { outbox.push_back(WsMessage::Ping(Default::default())); true }
            }
        };
        if !delivered {
            break Ending::TooSlow;
        }
        while let Some(frame) = outbox.pop_front() {
            match tokio::time::timeout(WRITE_TIMEOUT, socket.send(frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    outbox.clear();
                    break;
                }
            }
        }
    };
    if let Some(ids) = &tracer.ids {
        let (from, to, at, label) = match ending {
            Ending::ClientLeft => (
                tracer.peer.as_str(),
                "server",
                HopTime::Received,
                "close".to_owned(),
            ),
            _ => (
                "server",
                tracer.peer.as_str(),
                HopTime::Sent,
                "close (server)".to_owned(),
            ),
        };
        tracer.hub.hop(Hop {
            run: &ids.run,
            request_id: format!("{}-close", ids.request.0),
            from,
            to,
            kind: Kind::Close,
            transport: Transport::WebSocket,
            at,
            label,
            bytes: None,
            body: None,
        });
    }
    let frame = match ending {
        Ending::ClientLeft => close(1000, "bye"),
        Ending::TooSlow => {
            tracing::info!(peer = %tracer.peer, "push socket too slow: closing it");
            close(1008, "too slow: frames were piling up")
        }
        Ending::NoPong => close(1011, "no pong"),
        Ending::Shutdown => close(1001, "server shutting down"),
    };
    drop(room);
    // Told why where it can still be told: a client whose buffers are full only sees the end.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await;
}

/// Applies one client frame; may answer with a frame of its own.
fn handle(
    frame: Result<ClientFrame, serde_json::Error>,
    state: &AppState,
    follow: &mut Option<watch::Receiver<JobUpdate>>,
    room: &mut Option<Membership>,
) -> Result<Option<ServerFrame>, String> {
    match frame.map_err(|e| format!("unreadable frame: {e}"))? {
        ClientFrame::Follow { job } => {
            let job = state.jobs.get(&job.0).map_err(|e| e.to_string())?;
            let mut rx = job.subscribe();
            let now = rx.borrow_and_update().clone();
            *follow = (!now.done).then_some(rx);
            Ok(Some(ServerFrame::Progress { update: now }))
        }
        ClientFrame::Join {
            room: name_of_room,
            name,
        } => {
            if !is_valid_name(&name_of_room) || !is_valid_name(&name) {
                return Err("room and name: 1 to 40 letters, digits, spaces, - or _".into());
            }
            let (tx, rx) = state.rooms.join(&name_of_room).map_err(|e| e.to_string())?;
            let _ = tx.send(RoomEvent::Joined { name: name.clone() });
            *room = Some(Membership {
                room: name_of_room,
                name,
                tx,
                rx,
            });
            Ok(None)
        }
        ClientFrame::Say { text } => {
            let Some(m) = room else {
                return Err("join a room first".into());
            };
            if text.is_empty() || text.len() > MAX_TEXT {
                return Err(format!("text must be 1 to {MAX_TEXT} bytes"));
            }
            let _ = m.tx.send(RoomEvent::Said {
                from: m.name.clone(),
                text,
            });
            Ok(None)
        }
    }
}
