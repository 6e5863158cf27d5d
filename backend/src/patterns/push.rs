//! Push over WebSocket: `GET /api/push/ws` upgrades (same-origin only), then the server sends
//! frames whenever it has something: a followed job's progress, notices such as someone joining,
//! chat lines of the client's room. Ping/pong keeps the connection alive.
//!
//! A chat room is the socket's run's own (`run:<id>`) unless the client names one; a named room
//! is shared by whoever names it (other tabs), and can never be a run's, as names have no `:`.
//!
//! The socket loop itself (bounds, pings, slow readers, shutdown) is [`crate::transport::websocket`]'s, shared
//! with the pub/sub demo; this module is only what a push socket says.

use protocol::ApiError;
use std::time::Duration;

use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::Response,
    routing::on,
};
use protocol::{
    job::JobUpdate,
    push::{ClientFrame, Frame, MAX_TEXT, ServerFrame, is_valid_name},
    trace::RunId,
};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    openapi,
    server::client::ClientId,
    server::expiring::{BUSY_RETRY, CLASS_CLIENTS, Expiring, WhenFull},
    server::origin,
    server::rate_limit::{Client, TokenBucket},
    trace::{TraceIds, Tracer},
    transport::websocket::{self, Conversation, Next, Outgoing},
};

/// Room lines a member may fall behind before it is closed as too slow.
pub const ROOM_BUFFER: usize = 64;
/// Chat lines one socket may say in a burst before [`crate::server::limits::CHAT_RATE`] (per
/// second) applies.
pub const CHAT_BURST: u32 = 20;
/// Members one room holds at once; a join past it gets an error frame.
pub const MAX_MEMBERS: usize = 32;
/// Rooms one client may have made that are open at once (a room counts against the client
/// that made it while anyone is in it): each push run has its own room, so a learner's tabs
/// and runs each hold one, with a few named ones. Past it, an error frame with the reason;
/// joining an open room always works.
pub const ROOMS_PER_CLIENT: usize = 16;
/// Rooms kept at once: every client's share for [`CLASS_CLIENTS`] clients (768); empty rooms
/// are removed when a new one is made.
pub const MAX_ROOMS: usize = ROOMS_PER_CLIENT * CLASS_CLIENTS;

/// Something said in a room, fanned out to every member.
#[derive(Debug, Clone)]
enum RoomEvent {
    Joined { name: String },
    Said { from: String, text: String },
}

/// Chat rooms by key: a run's own (`run:<id>`) or a named one, the one thing shared across runs
/// on purpose (other tabs join by name).
#[derive(Clone)]
pub struct Rooms {
    /// Each room's fan-out, kept while anyone is in it and forgotten the moment nobody is (a
    /// TTL of zero); beyond [`ROOMS_PER_CLIENT`] made by one client, or [`MAX_ROOMS`] occupied
    /// rooms, new ones are refused.
    rooms: Expiring<String, broadcast::Sender<RoomEvent>>,
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms {
            rooms: Expiring::new(Duration::ZERO)
                .bounded(MAX_ROOMS, WhenFull::Refuse)
                .shared(ROOMS_PER_CLIENT, "open chat rooms")
                .kept_while(|tx| tx.receiver_count() > 0),
        }
    }
}

impl Rooms {
    /// Joins `room` (made for `client` if new), unless it has [`MAX_MEMBERS`] already;
    /// `rejoining` is for a socket in that room already, which is not counted twice.
    fn join(
        &self,
        client: Option<ClientId>,
        room: &str,
        rejoining: bool,
    ) -> Result<(broadcast::Sender<RoomEvent>, broadcast::Receiver<RoomEvent>), AppError> {
        let mut rooms = self.rooms.lock();
        let tx = rooms.get_or_insert_for(client, &room.to_owned(), || {
            broadcast::channel(ROOM_BUFFER).0
        })?;
        if tx.receiver_count() - usize::from(rejoining) >= MAX_MEMBERS {
            return Err(AppError::RateLimited {
                message: format!("room {room} is full: at most {MAX_MEMBERS} members"),
                retry_after: BUSY_RETRY,
            });
        }
        Ok((tx.clone(), tx.subscribe()))
    }

    /// Forgets the rooms nobody is in (the periodic sweep calls it).
    pub fn prune(&self) {
        self.rooms.prune();
    }

    /// Rooms kept now, occupied or not.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rooms with at least one member.
    pub fn occupied(&self) -> usize {
        self.rooms.lock().values().count()
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(openapi::served_as(
        routes!(upgrade),
        "/push/ws",
        on(origin::websocket_methods(), upgrade),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PushQuery {
    /// The lifeline this socket is drawn as (`browser`, `client-2`, …).
    #[serde(rename = "as", default = "browser")]
    peer: String,
}

fn browser() -> String {
    "browser".into()
}

#[utoipa::path(get, path = "/push/ws", tag = "push",
    description = "The push WebSocket: upgrade, then send `ClientFrame`s and receive `ServerFrame`s. Unreadable text frames are answered with an error frame; invalid UTF-8 closes with 1007, oversize messages with 1009, a too-slow reader with 1008.",
    params(PushQuery),
    responses((status = 101, description = "Switched to WebSocket"),
        (status = 400, description = "Not a WebSocket upgrade request, or an invalid `as` name", body = ApiError),
        (status = 403, description = "Cross-origin upgrade refused", body = ApiError), (status = 426, description = "The connection cannot be upgraded", body = ApiError)))]
async fn upgrade(
    ws: websocket::Upgrade,
    headers: HeaderMap,
    host: origin::RequestedHost,
    Query(query): Query<PushQuery>,
    Client(client): Client,
    State(state): State<AppState>,
    trace: Option<TraceIds>,
) -> Result<Response, AppError> {
    origin::check_upgrade(&headers, &host, &state.config.allowed_origins)?;
    if !is_valid_name(&query.peer) {
        return Err(AppError::BadRequest(format!(
            "invalid `as` name {:?}",
            query.peer
        )));
    }
    let run = trace.as_ref().map(|ids| ids.run.clone());
    let tracer = Tracer::new(&state.trace, trace);
    let chat_rate = state.config.limits.chat_rate;
    let conversation = PushConversation {
        state: state.clone(),
        client,
        follow: None,
        room: None,
        run,
        chat: Talk {
            rate: chat_rate,
            bucket: TokenBucket::with_burst(chat_rate, CHAT_BURST),
        },
    };
    Ok(websocket::accept(
        ws,
        state,
        tracer,
        query.peer,
        conversation,
    ))
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

/// How fast one socket may chat: `rate` lines a second (0: no limit), drawn from `bucket`.
struct Talk {
    rate: u32,
    bucket: TokenBucket,
}

/// One push socket's state: the job it follows, the room it is in and its chat budget.
struct PushConversation {
    state: AppState,
    /// Who opened the socket: a room it makes counts against this client's share.
    client: Option<ClientId>,
    follow: Option<watch::Receiver<JobUpdate>>,
    room: Option<Membership>,
    /// The run the socket was opened with, whose room an unnamed join is for.
    run: Option<RunId>,
    chat: Talk,
}

impl Conversation for PushConversation {
    fn on_text(&mut self, text: &str) -> (String, Vec<Outgoing>) {
        let parsed = serde_json::from_str::<ClientFrame>(text);
        let label = parsed
            .as_ref()
            .map(ClientFrame::summary)
            .unwrap_or_else(|_| "unreadable frame".into());
        let answer = match handle(
            parsed,
            &self.state,
            self.client,
            &mut self.follow,
            &mut self.room,
            self.run.as_ref(),
            &self.chat,
        ) {
            Ok(Some(frame)) => vec![Outgoing::frame(&frame)],
            Ok(None) => Vec::new(),
            Err(error) => vec![Outgoing::frame(&ServerFrame::Error { error })],
        };
        (label, answer)
    }

    async fn next(&mut self) -> Next {
        tokio::select! {
            update = next_update(&mut self.follow) => match update {
                Some(update) => {
                    if update.done {
                        self.follow = None;
                    }
                    Next::Send(vec![Outgoing::frame(&ServerFrame::Progress { update })])
                }
                None => {
                    self.follow = None;
                    Next::Nothing
                }
            },
            event = next_room_event(&mut self.room) => {
                let here = self.room.as_ref().map(|m| m.room.clone()).unwrap_or_default();
                match event {
                    Ok(RoomEvent::Joined { name }) => Next::Send(vec![Outgoing::frame(
                        &ServerFrame::Notice { text: format!("{name} joined {here}") },
                    )]),
                    Ok(RoomEvent::Said { from, text }) => Next::Send(vec![Outgoing::frame(
                        &ServerFrame::Chat { room: here, from, text },
                    )]),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Next::TooSlow("too slow: room lines were piling up".into())
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        self.room = None;
                        Next::Nothing
                    }
                }
            }
        }
    }
}

/// Applies one client frame; may answer with a frame of its own.
fn handle(
    frame: Result<ClientFrame, serde_json::Error>,
    state: &AppState,
    client: Option<ClientId>,
    follow: &mut Option<watch::Receiver<JobUpdate>>,
    room: &mut Option<Membership>,
    run: Option<&RunId>,
    chat: &Talk,
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
            if !(name_of_room.is_empty() || is_valid_name(&name_of_room)) || !is_valid_name(&name) {
                return Err("room and name: 1 to 40 letters, digits, spaces, - or _".into());
            }
            let name_of_room = if name_of_room.is_empty() {
                let run = run.ok_or("name a room, or open the socket with run=…")?;
                format!("run:{}", run.0)
            } else {
                name_of_room
            };
            let rejoining = room.as_ref().is_some_and(|m| m.room == name_of_room);
            let (tx, rx) = state
                .rooms
                .join(client, &name_of_room, rejoining)
                .map_err(|e| e.to_string())?;
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
            if chat.bucket.take().is_err() {
                return Err(format!(
                    "too many chat lines: at most {} per second",
                    chat.rate
                ));
            }
            let _ = m.tx.send(RoomEvent::Said {
                from: m.name.clone(),
                text,
            });
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_nobody_is_in_are_forgotten_and_rooms_are_capped() {
        let rooms = Rooms::default();
        let (_tx, rx) = rooms.join(None, "a", false).unwrap();
        let kept = rooms.join(None, "b", false).unwrap();
        drop(rx);
        rooms.prune();
        assert_eq!(rooms.len(), 1, "a is empty; b is not");
        drop(kept);
        rooms.prune();
        assert!(rooms.is_empty());
        let held: Vec<_> = (0..MAX_ROOMS)
            .map(|n| rooms.join(None, &n.to_string(), false).unwrap())
            .collect();
        assert!(rooms.join(None, "one more", false).is_err());
        drop(held);
        assert!(
            rooms.join(None, "one more", false).is_ok(),
            "empty rooms make room"
        );
    }

    #[test]
    fn a_room_holds_at_most_max_members_and_a_member_may_rejoin() {
        let rooms = Rooms::default();
        let members: Vec<_> = (0..MAX_MEMBERS)
            .map(|_| rooms.join(None, "full", false).unwrap())
            .collect();
        let refused = rooms.join(None, "full", false).unwrap_err().to_string();
        assert_eq!(refused, "room full is full: at most 32 members");
        assert!(
            rooms.join(None, "full", true).is_ok(),
            "a member is not counted twice"
        );
        drop(members);
        assert!(rooms.join(None, "full", false).is_ok());
    }

    #[test]
    fn a_client_may_make_its_share_of_rooms_and_join_any() {
        let client = |n| Some(ClientId::of(std::net::IpAddr::from([10, 0, 0, n])));
        let rooms = Rooms::default();
        let held: Vec<_> = (0..ROOMS_PER_CLIENT)
            .map(|n| rooms.join(client(1), &format!("r{n}"), false).unwrap())
            .collect();
        let AppError::RateLimited { message, .. } =
            rooms.join(client(1), "one more", false).unwrap_err()
        else {
            panic!("a 429 with Retry-After")
        };
        assert!(
            message.contains(&format!(
                "one client may hold {ROOMS_PER_CLIENT} open chat rooms"
            )),
            "{message}"
        );
        assert!(rooms.join(client(1), "r0", false).is_ok(), "joining one");
        assert!(rooms.join(client(2), "one more", false).is_ok(), "another");
        drop(held);
        assert!(rooms.join(client(1), "again", false).is_ok(), "once left");
    }
}
