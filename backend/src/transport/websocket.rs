//! The pushing WebSocket every socket demo shares (push, pub/sub): the upgrade with small
//! buffers, and one `select!` loop that reads the client, waits for what the demo has to push,
//! pings, and honours shutdown, writing each frame under a timeout. Every frame is traced.
//!
//! A demo supplies a [`Conversation`]: what to do with a client frame, and what to push next.
//! A client whose outbox fills or whose socket stops taking writes (it is not reading) is closed
//! with 1008 "too slow"; nothing is buffered without bound. (One task rather than split halves:
//! a separate writer task on a split axum socket stalled under load here, and one loop makes
//! the bound easy to see.)
//!
//! The upgrade is the server's own ([`Handshake`]): a plain connection comes back out of hyper
//! and is shared with whoever delivers to the socket directly ([`Direct`]: pub/sub's publishers,
//! for subscribers nobody traces), so the loop marks when it has frames of its own on the way
//! and finishes any frame a direct write could not.
//!
//! Over a shaped link ([`Shaper`]) each frame, pings and pongs included, is held until the link
//! would have carried it: the client's before the demo sees them, the server's before they are
//! written (a frame is traced as sent when handed to the link).

use std::{collections::VecDeque, future::Future, pin::Pin, task::Poll, time::Duration};

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::request::Parts,
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    pairing,
    push::{Frame, frame_bytes},
    trace::{Kind, Transport},
};

use tokio::time::{Instant, Sleep};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message as WsMessage, Utf8Bytes,
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

use crate::{
    AppState,
    link::{Shaper, Way},
    server::ws_limits,
    trace::{Hop, HopTime, Tracer, server_now_us},
    transport::{
        shared_socket::{Direct, SocketIo},
        upgrade::Handshake,
    },
};

/// Frames a socket may have waiting to be written before it is closed as too slow.
pub const OUTBOX: usize = 32;
/// The same over a shaped link, where frames also wait for the link: up to 8 times as many
/// (and as many of the client's, after which the socket is not read until the link catches up).
pub const SHAPED_OUTBOX: usize = 8 * OUTBOX;
/// How often the server pings each socket, unless its demo says otherwise
/// ([`Conversation::PING_EVERY`]).
pub const PING_EVERY: Duration = Duration::from_secs(3);
/// A socket that answers no ping for this long (or for two ping intervals, if longer) is closed.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may take before the client is given up on.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the closing frame may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// One frame ready to go: its text, and how the trace draws it.
pub struct Outgoing {
    /// Shared, not copied: a fan-out hands every socket the same bytes (a reference count each).
    text: Utf8Bytes,
    kind: Kind,
    from: &'static str,
    label: String,
}

impl Outgoing {
    pub fn frame(frame: &impl Frame) -> Outgoing {
        let (kind, from) = frame.drawn_as();
        Outgoing {
            text: serde_json::to_string(frame)
                .expect("frames serialize")
                .into(),
            kind,
            from,
            label: frame.summary(),
        }
    }

    /// A frame whose text is already made (one text shared by every socket a message goes
    /// to). `label` is how the trace draws it: left empty when nobody traces this socket.
    pub fn prepared(text: Utf8Bytes, kind: Kind, from: &'static str, label: String) -> Outgoing {
        Outgoing {
            text,
            kind,
            from,
            label,
        }
    }
}

/// What a demo has to push next.
pub enum Next {
    /// These frames, in order.
    Send(Vec<Outgoing>),
    /// Nothing (a source ended); wait again.
    Nothing,
    /// Give up on this client: it fell too far behind. The reason goes in the close frame.
    TooSlow(String),
}

/// One demo's side of a socket.
pub trait Conversation: Send + 'static {
    /// How often the server pings this kind of socket.
    const PING_EVERY: Duration = PING_EVERY;

    /// Handles one text frame from the client: the label the trace draws it with, and the
    /// frames to answer with (errors included: the socket stays open).
    fn on_text(&mut self, text: &str) -> (String, Vec<Outgoing>);
    /// Waits for something to push.
    fn next(&mut self) -> impl Future<Output = Next> + Send;

    /// Offered, on a socket that can be shared (plain HTTP/1.1, no shaped link), a handle for
    /// writing to it from outside this socket's task ([`Direct`]); `true` when the conversation
    /// keeps it (every frame written that way bypasses the trace). Only then does the loop
    /// mark its own writes for publishers to wait behind.
    fn attach(&mut self, direct: &Direct) -> bool {
        let _ = direct;
        false
    }
}

/// A WebSocket upgrade request and the run's link it came over, if it named one: what a
/// socket demo's handler extracts and hands to [`accept`].
pub struct Upgrade {
    ws: Handshake,
    link: Option<Shaper>,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = <Handshake as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ws = Handshake::from_request_parts(parts, state).await?;
        let Ok(link) =
            <Shaper as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await;
        Ok(Upgrade { ws, link })
    }
}

/// Accepts the upgrade within [`ws_limits::config`] and runs `conversation` on it, tracing its
/// frames with `tracer` (the client's lifeline is `peer`) and holding them to the run's link,
/// if it has one; shutdown waits for the loop (it closes the socket with 1001).
pub fn accept(
    Upgrade { ws, link: shaper }: Upgrade,
    state: AppState,
    tracer: Tracer,
    peer: String,
    conversation: impl Conversation,
) -> Response {
    let frame_trace = FrameTrace {
        tracer,
        peer,
        sent: 0,
        received: 0,
    };
    // Boxed here, not in the callback: what the callback captures is kept in every socket's
    // task beside the loop. A `Shaper` (56 bytes) captured there cost each idle socket 1 KiB
    // in `held` (8.9 against 7.9 KiB), presumably the task crossing an allocator size class.
    let on_link = shaper.map(|shaper| {
        Box::new(OnLink {
            shaper,
            inbox: VecDeque::new(),
            timer: None,
        })
    });
    let config = ws_limits::config(&state.config.limits);
    ws.accept(config, move |socket| {
        let shutdown = state.shutdown.clone();
        // The loop's future (1,760 bytes) boxed apart from the upgrade's task, which also holds
        // the socket: inline, the task took the next allocator size class up. `held`, back to
        // back: 7.9 KiB per idle socket inline, 6.5 KiB boxed. It is just under jemalloc's
        // 1,792-byte class: at 1,824 (two `async fn` futures where polls now are) `held` measured
        // 7.1 KiB.
        shutdown.track(Box::pin(run(
            socket,
            state,
            frame_trace,
            on_link,
            conversation,
        )))
    })
}

/// Names this socket's frames in the trace the way the page does, so both halves pair up:
/// the n-th text frame the server sends is `{rid}-e{n}`, the n-th the client sends `{rid}-c{n}`.
struct FrameTrace {
    tracer: Tracer,
    /// The client's lifeline.
    peer: String,
    sent: u32,
    received: u32,
}

impl FrameTrace {
    fn sent(&mut self, frame: &Outgoing) {
        self.sent += 1;
        let (n, peer) = (self.sent, self.peer.as_str());
        self.tracer.record(|rid| {
            let text = frame.text.as_str();
            Hop::new(frame.kind, frame.from, peer, pairing::event(rid, n))
                .transport(Transport::WebSocket)
                .at(HopTime::Sent)
                .label(frame.label.clone())
                .bytes(frame_bytes(text.len(), frame.from != peer))
                .body(text.to_owned())
        });
    }

    fn received(&mut self, label: String, text: &str) {
        self.received += 1;
        let (n, peer) = (self.received, self.peer.as_str());
        self.tracer.record(|rid| {
            Hop::new(Kind::Push, peer, "server", pairing::client_frame(rid, n))
                .transport(Transport::WebSocket)
                .at(HopTime::Received)
                .label(label)
                .bytes(frame_bytes(text.len(), false))
                .body(text.to_owned())
        });
    }

    fn ping_pong(&self, n: u32, ping_us: i64, pong_us: i64) {
        let mid = (ping_us + pong_us) / 2;
        let peer = self.peer.as_str();
        self.tracer.record(|rid| {
            Hop::new(Kind::Push, "server", peer, pairing::ping(rid, n))
                .transport(Transport::WebSocket)
                .at(HopTime::Span(ping_us, mid))
                .label("ping".into())
                .bytes(frame_bytes(0, peer != "server"))
        });
        self.tracer.record(|rid| {
            Hop::new(Kind::Push, peer, "server", pairing::pong(rid, n))
                .transport(Transport::WebSocket)
                .at(HopTime::Span(mid, pong_us))
                .label("pong".into())
                .bytes(frame_bytes(0, false))
        });
    }

    fn closed(&self, by_client: bool) {
        let peer = self.peer.as_str();
        let (from, to, at, label) = if by_client {
            (peer, "server", HopTime::Received, "close")
        } else {
            ("server", peer, HopTime::Sent, "close (server)")
        };
        self.tracer.record(|rid| {
            Hop::new(Kind::Close, from, to, pairing::close(rid))
                .transport(Transport::WebSocket)
                .at(at)
                .label(label.into())
        });
    }
}

/// Why the server closed a socket.
fn close(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason),
    }))
}

/// Why the loop ended, and so the close frame the client gets.
enum Ending {
    ClientLeft,
    /// The client sent what this socket refuses (too big, not UTF-8, binary): closed with the
    /// code saying which, and why.
    Refused(u16, String),
    TooSlow(String),
    NoPong,
    Shutdown,
}

/// Frames on their way, each with when the link has carried it (`None`: at once, unshaped).
type OnTheWay = VecDeque<(Option<Instant>, WsMessage)>;

/// A socket's side of a shaped link: the link, the client's frames still on it, and one timer
/// for the next delivery either way. Boxed, and only over a shaped link, so an unshaped socket's
/// loop (10,000 of them held idle in `make bench`) is no bigger for it.
struct OnLink {
    shaper: Shaper,
    inbox: OnTheWay,
    timer: Option<Pin<Box<Sleep>>>,
}

impl OnLink {
    /// Sets the timer to the next delivery either way; `false` when nothing is on the link.
    fn arm(&mut self, outbox: &OnTheWay) -> bool {
        let next = match (due(outbox), due(&self.inbox)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(at) = next else { return false };
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(at),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        true
    }
}

/// Ready when a publisher's direct write left a tail to finish; never without one. (A poll, not
/// an `async fn`: every byte of the loop's future is kept by every idle socket.)
fn poll_tail_left(direct: Option<&Direct>, cx: &mut std::task::Context<'_>) -> Poll<()> {
    match direct {
        Some(direct) => direct.poll_tail_left(cx),
        None => Poll::Pending,
    }
}

/// Completes when the link's timer fires; never without a link.
async fn link_timer(on_link: &mut Option<Box<OnLink>>) {
    std::future::poll_fn(|cx| match on_link.as_mut().and_then(|l| l.timer.as_mut()) {
        Some(timer) => timer.as_mut().poll(cx),
        None => Poll::Pending,
    })
    .await
}

/// When the first of `frames` is due, if it is still on the link.
fn due(frames: &OnTheWay) -> Option<Instant> {
    frames
        .front()
        .and_then(|(at, _)| *at)
        .filter(|at| *at > Instant::now())
}

/// The first of `frames` if the link has carried it.
fn carried(frames: &mut OnTheWay) -> Option<WsMessage> {
    match frames.front() {
        Some((Some(at), _)) if *at > Instant::now() => None,
        Some(_) => frames.pop_front().map(|(_, m)| m),
        None => None,
    }
}

/// Bytes a frame takes on the wire, near enough: its payload and a frame header.
fn wire_bytes(message: &WsMessage) -> usize {
    let payload = match message {
        WsMessage::Text(t) => t.len(),
        WsMessage::Binary(b) | WsMessage::Ping(b) | WsMessage::Pong(b) => b.len(),
        WsMessage::Close(_) => 2,
        WsMessage::Frame(f) => f.len(),
    };
    payload + 6
}

/// Queues a frame to be written when the link (if any) has carried it; `false` when the outbox
/// is full, i.e. the client is not reading.
fn send(outbox: &mut OnTheWay, on_link: Option<&OnLink>, message: WsMessage) -> bool {
    let room = if on_link.is_some() {
        SHAPED_OUTBOX
    } else {
        OUTBOX
    };
    if outbox.len() >= room {
        return false;
    }
    let at = on_link.map(|l| l.shaper.arrival(Way::Down, wire_bytes(&message)));
    outbox.push_back((at, message));
    true
}

/// The pings sent and the pongs heard.
struct Pinging {
    count: u32,
    sent_us: Option<i64>,
    last_pong: Instant,
}

/// A client frame the demo sees now (it has arrived, over the link if shaped): a text frame is
/// handed to the conversation and its answers queued; a pong is timed. `false` when the answers
/// overflow the outbox.
fn take_in<C: Conversation>(
    message: WsMessage,
    conversation: &mut C,
    frame_trace: &mut FrameTrace,
    outbox: &mut OnTheWay,
    on_link: Option<&OnLink>,
    pinging: &mut Pinging,
) -> bool {
    match message {
        WsMessage::Text(text) => {
            let (label, answers) = conversation.on_text(&text);
            frame_trace.received(label, &text);
            answers.into_iter().all(|frame| {
                frame_trace.sent(&frame);
                send(outbox, on_link, WsMessage::Text(frame.text))
            })
        }
        _ => {
            pinging.last_pong = Instant::now();
            if let Some(sent) = pinging.sent_us.take() {
                frame_trace.ping_pong(pinging.count, sent, server_now_us());
            }
            true
        }
    }
}

async fn run<C: Conversation>(
    mut socket: WebSocketStream<SocketIo>,
    state: AppState,
    mut frame_trace: FrameTrace,
    mut on_link: Option<Box<OnLink>>,
    mut conversation: C,
) {
    // Frames produced but not yet written. The loop writes them itself after each event, each
    // write bounded by a timeout, so a client that stops reading is noticed either way: its
    // outbox fills, or a write to its full socket times out. Bounded by its length, not
    // allocated up front: an idle socket's outbox is empty, and 32 frames' room (1.25 KiB)
    // per held socket showed in the connections-held benchmark.
    let mut outbox: OnTheWay = VecDeque::new();
    // A plain connection can be written to by a publisher directly (`shared_socket`), unless
    // frames go over a shaped link, where each waits for the link.
    let direct = socket
        .get_ref()
        .direct()
        .filter(|direct| on_link.is_none() && conversation.attach(direct));
    let stopped = state.stopped();
    tokio::pin!(stopped);
    let ping_every = C::PING_EVERY;
    let pong_timeout = PONG_TIMEOUT.max(2 * ping_every);
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    let mut pinging = Pinging {
        count: 0,
        sent_us: None,
        last_pong: Instant::now(),
    };
    const OUTBOX_FULL: &str = "too slow: frames were piling up";

    let ending = loop {
        let on_the_link = on_link.as_mut().is_some_and(|l| l.arm(&outbox));
        let reading = on_link
            .as_ref()
            .is_none_or(|l| l.inbox.len() < SHAPED_OUTBOX);
        let queued = tokio::select! {
            _ = &mut stopped => break Ending::Shutdown,
            incoming = socket.next(), if reading => match incoming {
                Some(Ok(m @ (WsMessage::Text(_) | WsMessage::Pong(_)))) => match on_link.as_mut() {
                    Some(link) => {
                        let at = link.shaper.arrival(Way::Up, wire_bytes(&m));
                        link.inbox.push_back((Some(at), m));
                        true
                    }
                    None => {
                        // Its answers go out before any delivery a publisher makes from now on.
                        if let Some(direct) = &direct {
                            direct.busy();
                        }
                        take_in(m, &mut conversation, &mut frame_trace, &mut outbox, None, &mut pinging)
                    }
                },
                Some(Ok(WsMessage::Close(_))) | None => break Ending::ClientLeft,
                Some(Err(e)) => match ws_limits::for_tungstenite_error(&e) {
                    Some((code, reason)) => break Ending::Refused(code, reason),
                    None => break Ending::ClientLeft,
                },
                Some(Ok(WsMessage::Binary(_))) => {
                    let (code, reason) = ws_limits::BINARY_REFUSED;
                    break Ending::Refused(code, reason.into());
                }
                Some(Ok(_)) => true,
            },
            _ = link_timer(&mut on_link), if on_the_link => true,
            next = conversation.next() => match next {
                Next::Send(frames) => frames.into_iter().all(|frame| {
                    frame_trace.sent(&frame);
                    send(&mut outbox, on_link.as_deref(), WsMessage::Text(frame.text))
                }),
                Next::Nothing => true,
                Next::TooSlow(reason) => break Ending::TooSlow(reason),
            },
            () = std::future::poll_fn(|cx| poll_tail_left(direct.as_ref(), cx)), if direct.is_some() => {
                // A publisher's write left the tail of a frame: finished here, within the same
                // bound as any write.
                match tokio::time::timeout(WRITE_TIMEOUT, socket.flush()).await {
                    Ok(Ok(())) => true,
                    Ok(Err(_)) => break Ending::ClientLeft,
                    Err(_) => break Ending::TooSlow("too slow: a frame could not be written".into()),
                }
            }
            _ = ping.tick() => {
                if pinging.last_pong.elapsed() > pong_timeout {
                    break Ending::NoPong;
                }
                pinging.count += 1;
                pinging.sent_us = Some(server_now_us());
                send(&mut outbox, on_link.as_deref(), WsMessage::Ping(Default::default()))
            }
        };
        if !queued {
            break Ending::TooSlow(OUTBOX_FULL.into());
        }
        // What the client sent over the link that has arrived: the demo sees it now.
        let mut answered = true;
        if let Some(link) = on_link.as_mut() {
            let mut arrived = Vec::new();
            while let Some(message) = carried(&mut link.inbox) {
                arrived.push(message);
            }
            for message in arrived {
                answered &= take_in(
                    message,
                    &mut conversation,
                    &mut frame_trace,
                    &mut outbox,
                    on_link.as_deref(),
                    &mut pinging,
                );
            }
        }
        if !answered {
            break Ending::TooSlow(OUTBOX_FULL.into());
        }
        while let Some(frame) = carried(&mut outbox) {
            match tokio::time::timeout(WRITE_TIMEOUT, socket.send(frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    outbox.clear();
                    break;
                }
            }
        }
        if outbox.is_empty()
            && let Some(direct) = &direct
        {
            direct.done();
        }
    };
    frame_trace.closed(matches!(ending, Ending::ClientLeft));
    let frame = match &ending {
        Ending::ClientLeft => close(1000, "bye"),
        Ending::TooSlow(reason) => {
            tracing::info!(peer = %frame_trace.peer, %reason, "socket too slow: closing it");
            // A close reason is at most 123 bytes.
            let mut reason = reason.clone();
            while reason.len() > 120 {
                reason.pop();
            }
            close(1008, &reason)
        }
        Ending::NoPong => close(1011, "no pong"),
        Ending::Refused(code, reason) => {
            tracing::debug!(peer = %frame_trace.peer, code, %reason, "socket refused input");
            close(*code, reason)
        }
        Ending::Shutdown => close(1001, "server shutting down"),
    };
    drop(conversation);
    // Told why where it can still be told: a client whose buffers are full only sees the end.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await;
}
