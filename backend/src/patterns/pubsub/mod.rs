//! Publish/subscribe through a real broker. Publishers (the page over HTTP, or a ticker inside
//! the server) hand messages to the broker; it delivers each to every subscriber of the topic,
//! each over its own connection: a WebSocket (`GET /api/pubsub/ws`, the shared [`socket`] loop)
//! or an event stream (`GET /api/pubsub/events`, the shared [`event_stream`]).
//!
//! - `POST /api/pubsub/publish`: one message (`413` past `MAX_MESSAGE_BYTES`).
//! - `POST /api/pubsub/ticker`, `DELETE /api/pubsub/ticker`: a server-side publisher.
//! - `GET /api/pubsub/info`: the engine and this instance's name.
//!
//! Topics belong to the run unless a named room is given (`?room=`), which other tabs (and,
//! with Redis, other instances) share. Everything kept is bounded; a subscriber that falls
//! `SUBSCRIBER_QUEUE` deliveries behind is dropped with a reason while the others go on.
//!
//! An event stream resumes: each event's `id` is the stream's [`Position`] in its topics (the
//! topic's `seq`, or `topic:seq` for each of several), so an EventSource that reconnects with
//! `Last-Event-ID` gets every kept message it missed, each topic after its own `seq`, within
//! the topic's history ([`MAX_HISTORY`]). A replay (asked for, or a resume) is written ahead of
//! the stream's bounded queue, so it never gets the subscriber dropped as slow.
//!
//! [`socket`]: crate::transport::websocket
//! [`event_stream`]: crate::transport::event_stream

pub mod broker;
pub mod memory;
pub mod redis;
pub mod topics;

use protocol::ApiError;
use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{Response, sse::Event},
    routing::on,
};
use protocol::{
    Stopped, pairing,
    pubsub::{
        BrokerFrame, BrokerInfo, Delivery, EVENT_MESSAGE, MAX_HISTORY, MAX_MESSAGE_BYTES,
        PublishRequest, Published, SUBSCRIBER_QUEUE, SubscriberFrame, TickerSpec, TickerStarted,
        filler_text,
    },
    push::{Frame, is_valid_name},
    trace::{Kind, Transport},
};
use serde::Deserialize;
use tokio::task::AbortHandle;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    extract::AppJson,
    openapi,
    server::expiring::{BUSY_RETRY, CLASS_CLIENTS, Expiring, WhenFull},
    server::origin,
    server::rate_limit::Client,
    trace::{Hop, HopTime, TraceIds, Tracer, last_event_id_text},
    transport::event_stream::{self, wire_bytes},
    transport::shared_socket::Direct,
    transport::websocket::{self, Conversation, Next, Outgoing},
};

pub use broker::{Broker, BrokerError, Publish};
pub use topics::{Replay, Shared, Subscriber, Topics, room_key};

/// Tickers one client may have running at once (one per room or run): the pub/sub demo and
/// the comparison run one each, a learner's other tabs a few more.
pub const TICKERS_PER_CLIENT: usize = 4;
/// Tickers running at once: every client's share for [`CLASS_CLIENTS`] clients (192).
pub const MAX_TICKERS: usize = TICKERS_PER_CLIENT * CLASS_CLIENTS;

/// The broker and the tickers. Cheap to clone.
#[derive(Clone)]
pub struct PubSub {
    pub broker: Arc<dyn Broker>,
    /// The ticker of each room, kept while it runs (a TTL of zero), counted against the share
    /// of the client that started it; past it, or [`MAX_TICKERS`], a 429.
    tickers: Expiring<String, AbortHandle>,
}

impl PubSub {
    pub fn new(broker: Arc<dyn Broker>) -> PubSub {
        PubSub {
            broker,
            tickers: Expiring::new(Duration::ZERO)
                .bounded(MAX_TICKERS, WhenFull::Refuse)
                .shared(TICKERS_PER_CLIENT, "running tickers")
                .kept_while(|ticker| !ticker.is_finished()),
        }
    }

    /// Forgets finished tickers and the broker's expired topics (the periodic sweep calls it).
    pub fn prune(&self) {
        self.tickers.prune();
        self.broker.topics().prune();
    }

    /// Tickers kept now (running, or finished and not yet swept).
    pub fn ticker_count(&self) -> usize {
        self.tickers.len()
    }

    /// The embedded engine, serving `topics`.
    pub fn memory(topics: Topics) -> PubSub {
        PubSub::new(Arc::new(memory::MemoryBroker::new(topics)))
    }
}

impl From<BrokerError> for AppError {
    fn from(e: BrokerError) -> AppError {
        match e {
            // A bound of the subscriptions held (topics, subscribers): waiting frees it only
            // when some of them end, so no expiry to name.
            BrokerError::Refused(why) => AppError::RateLimited {
                message: why,
                retry_after: BUSY_RETRY,
            },
            e @ BrokerError::Unavailable(_) => AppError::Unavailable(e.to_string()),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(start_ticker, stop_ticker))
        .merge(openapi::served_as(
            routes!(subscribe_socket),
            "/pubsub/ws",
            on(origin::websocket_methods(), subscribe_socket),
        ))
        .routes(routes!(subscribe_stream))
        .routes(routes!(info))
}

#[utoipa::path(get, path = "/pubsub/info", tag = "pubsub",
    responses((status = 200, description = "The broker engine and this instance", body = BrokerInfo)))]
async fn info(State(state): State<AppState>) -> Json<BrokerInfo> {
    let broker = &state.pubsub.broker;
    Json(BrokerInfo {
        engine: broker.engine().to_owned(),
        instance: broker.topics().instance().to_owned(),
    })
}

fn check_name(what: &str, name: &str) -> Result<(), AppError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "invalid {what} {name:?}: 1 to 40 letters, digits, spaces, - or _"
        )))
    }
}

/// The room a request belongs to: its named room, or its run's own.
fn room_of(room: Option<&str>, trace: Option<&TraceIds>) -> Result<String, AppError> {
    let room = room.filter(|r| !r.is_empty());
    if let Some(name) = room {
        check_name("room", name)?;
    }
    Ok(room_key(room, trace.map(|t| t.run.0.as_str())))
}

#[utoipa::path(post, path = "/pubsub/publish", tag = "pubsub", request_body = PublishRequest,
    responses((status = 202, description = "Handed to the broker", body = Published),
        (status = 400, description = "Malformed JSON or an invalid topic, publisher or room name", body = ApiError), (status = 413, description = "Text over the message limit", body = ApiError),
        (status = 415, description = "Content-Type is not application/json", body = ApiError), (status = 422, description = "Wrong field types", body = ApiError),
        (status = 429, description = "The broker refused (too many topics)", body = ApiError), (status = 503, description = "The broker (Redis) cannot be reached", body = ApiError)))]
async fn publish(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    body: Result<AppJson<PublishRequest>, AppError>,
) -> Result<(StatusCode, Json<Published>), AppError> {
    state.publish_rate.check(client)?;
    let AppJson(request) = body?;
    check_name("topic", &request.topic)?;
    let publisher = request.publisher.as_deref().unwrap_or("browser");
    check_name("publisher", publisher)?;
    if request.text.len() > MAX_MESSAGE_BYTES {
        return Err(AppError::PayloadTooLarge(format!(
            "a message is at most {MAX_MESSAGE_BYTES} bytes, this one is {}",
            request.text.len()
        )));
    }
    let room = room_of(request.room.as_deref(), trace.as_ref())?;
    let broker = &state.pubsub.broker;
    let bytes = request.text.len() as u64;
    let seq = broker
        .publish(Publish {
            room: &room,
            topic: &request.topic,
            text: request.text,
            publisher,
            owner: client,
        })
        .await?;
    record_publish(
        &Tracer::new(&state.trace, trace),
        "server",
        &request.topic,
        seq,
        bytes,
        broker.engine(),
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(Published {
            topic: request.topic,
            seq,
            engine: broker.engine().into(),
            instance: broker.topics().instance().into(),
        }),
    ))
}

fn record_publish(tracer: &Tracer, from: &str, topic: &str, seq: u64, bytes: u64, engine: &str) {
    tracer.record(|rid| {
        Hop::new(Kind::Publish, from, "broker", pairing::published(rid, seq))
            .label(format!("publish {topic} #{seq}"))
            .bytes(bytes)
            .body(format!("engine: {engine}, {bytes} bytes of text"))
    });
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TickerQuery {
    room: Option<String>,
}

#[utoipa::path(post, path = "/pubsub/ticker", tag = "pubsub", request_body = TickerSpec,
    responses((status = 202, description = "Ticker started", body = protocol::pubsub::TickerStarted),
        (status = 400, description = "Malformed JSON or an invalid topic or room name", body = ApiError), (status = 413, description = "Body too large", body = ApiError),
        (status = 415, description = "Content-Type is not application/json", body = ApiError), (status = 422, description = "Wrong field types or values out of range", body = ApiError),
        (status = 429, description = "Over the publish rate, or this client (or the server) runs as many tickers as it may (Retry-After)", body = ApiError)))]
async fn start_ticker(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    body: Result<AppJson<TickerSpec>, AppError>,
) -> Result<(StatusCode, Json<TickerStarted>), AppError> {
    // Starting a ticker counts as one publish; its own publishes (bounded by the spec) do not.
    state.publish_rate.check(client)?;
    let AppJson(spec) = body?;
    spec.validate().map_err(AppError::Unprocessable)?;
    check_name("topic", &spec.topic)?;
    let room = room_of(spec.room.as_deref(), trace.as_ref())?;
    let mut tickers = state.pubsub.tickers.lock();
    // One more for this client unless it replaces the room's running ticker (whoever started
    // it): a refusal comes before anything starts.
    if tickers.get(&room).is_none() {
        tickers.make_room_for(client)?;
    }
    let broker = state.pubsub.broker.clone();
    let tracer = Tracer::new(&state.trace, trace);
    let stopped = state.stopped();
    let key = room.clone();
    let task = tokio::spawn(async move {
        tokio::pin!(stopped);
        let every = Duration::from_secs(1) / spec.per_second;
        let mut tick = tokio::time::interval(every);
        for n in 1..=u64::from(spec.per_second * spec.seconds) {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stopped => return,
            }
            let text = filler_text(&format!("tick {n}"), spec.bytes as usize);
            let published = broker
                .publish(Publish {
                    room: &key,
                    topic: &spec.topic,
                    text,
                    publisher: "ticker",
                    owner: client,
                })
                .await;
            match published {
                Ok(seq) => record_publish(
                    &tracer,
                    "ticker",
                    &spec.topic,
                    seq,
                    spec.bytes.into(),
                    broker.engine(),
                ),
                Err(e) => tracing::warn!(cause = %e, "ticker could not publish"),
            }
        }
    });
    if let Some(old) = tickers.insert_for(client, room, task.abort_handle())? {
        old.abort();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(TickerStarted {
            ticker: "started".to_owned(),
        }),
    ))
}

#[utoipa::path(delete, path = "/pubsub/ticker", tag = "pubsub", params(TickerQuery),
    responses((status = 200, description = "Whether a ticker was running", body = Stopped),
        (status = 400, description = "An invalid room name", body = ApiError)))]
async fn stop_ticker(
    State(state): State<AppState>,
    trace: Option<TraceIds>,
    Query(query): Query<TickerQuery>,
) -> Result<Json<Stopped>, AppError> {
    let room = room_of(query.room.as_deref(), trace.as_ref())?;
    let stopped = state
        .pubsub
        .tickers
        .remove(&room)
        .map(|t| t.abort())
        .is_some();
    Ok(Json(Stopped { stopped }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SubscriberQuery {
    /// The subscriber's lifeline (`client-1`, …).
    #[serde(rename = "as", default = "client")]
    peer: String,
    room: Option<String>,
    /// Event streams only: the topics, comma-separated (an event stream cannot say more later).
    #[serde(default)]
    topics: String,
    /// Event streams only: how many kept messages of each topic to replay first.
    #[serde(default)]
    replay: u32,
}

fn client() -> String {
    "client".into()
}

/// An event-stream subscriber's side of its stream: what turns its deliveries into events.
struct Feed {
    subscriber: Subscriber,
    /// Where the stream stands, for each event's id.
    position: Position,
    tracer: Tracer,
    peer: String,
}

/// A subscriber on a WebSocket: subscribes and unsubscribes by frame, may ask for a prefetch
/// window (then deliveries beyond it wait in its bounded queue until it acknowledges).
struct SubscriberConversation {
    subscriber: Subscriber,
    /// At most this many deliveries unacknowledged; `None` means every delivery counts as
    /// acknowledged once sent (auto-ack).
    prefetch: Option<u32>,
    /// Deliveries sent on this socket, and acknowledged.
    delivered: u64,
    acked: u64,
    /// Whether a run traces this socket (only then are labels worth making).
    traced: bool,
    /// This subscriber's socket, when publishers write to it directly (untraced, no prefetch).
    direct: Option<Direct>,
}

impl SubscriberConversation {
    /// A replayed delivery: this subscriber's own.
    fn deliver(&mut self, delivery: Delivery) -> Outgoing {
        self.delivered += 1;
        Outgoing::frame(&BrokerFrame::Message { delivery })
    }

    /// A live delivery: its frame text is made once for every socket it goes to.
    fn deliver_shared(&mut self, shared: &Shared) -> Outgoing {
        self.delivered += 1;
        let text = shared.socket_frame();
        let label = if self.traced {
            shared.summary()
        } else {
            String::new()
        };
        Outgoing::prepared(text.clone(), Kind::Deliver, "broker", label)
    }

    fn handle(&mut self, frame: SubscriberFrame) -> Result<Vec<Outgoing>, String> {
        match frame {
            SubscriberFrame::Subscribe {
                topic,
                replay,
                prefetch,
            } => {
                check_name("topic", &topic).map_err(|e| e.to_string())?;
                if replay > MAX_HISTORY {
                    return Err(format!("replay is at most {MAX_HISTORY}, got {replay}"));
                }
                if let Some(p) = prefetch {
                    if !(1..=SUBSCRIBER_QUEUE as u32).contains(&p) {
                        return Err(format!(
                            "prefetch must be between 1 and {SUBSCRIBER_QUEUE}, got {p}"
                        ));
                    }
                    self.prefetch = Some(self.prefetch.map_or(p, |q| q.min(p)));
                    // Only the task can count what it sends against the window.
                    if let Some(direct) = &self.direct {
                        direct.task_only();
                    }
                }
                let replayed = self
                    .subscriber
                    .subscribe(&topic, replay)
                    .map_err(|e| e.to_string())?;
                let mut frames = vec![Outgoing::frame(&BrokerFrame::Subscribed {
                    topic,
                    replayed: replayed.len() as u32,
                })];
                for delivery in replayed {
                    frames.push(self.deliver(delivery));
                }
                Ok(frames)
            }
            SubscriberFrame::Unsubscribe { topic } => {
                self.subscriber.unsubscribe(&topic);
                Ok(vec![Outgoing::frame(&BrokerFrame::Unsubscribed { topic })])
            }
            SubscriberFrame::Ack { upto } => {
                self.acked = self.acked.max(upto.min(self.delivered));
                Ok(Vec::new())
            }
        }
    }
}

impl Conversation for SubscriberConversation {
    /// Deliveries keep a busy subscriber's connection alive, and every ping costs both ends a
    /// frame (3,300 ping/pong exchanges a second over 10,000 sockets pinged every 3 s, about
    /// 10 ms of a fan-out to all of them): pub/sub sockets are pinged rarely, still well within
    /// the idle timeouts of common proxies (60 s).
    const PING_EVERY: Duration = Duration::from_secs(25);

    fn on_text(&mut self, text: &str) -> (String, Vec<Outgoing>) {
        match serde_json::from_str::<SubscriberFrame>(text) {
            Ok(frame) => {
                let label = frame.summary();
                let answer = self
                    .handle(frame)
                    .unwrap_or_else(|error| vec![Outgoing::frame(&BrokerFrame::Error { error })]);
                (label, answer)
            }
            Err(e) => (
                "unreadable frame".into(),
                vec![Outgoing::frame(&BrokerFrame::Error {
                    error: format!("unreadable frame: {e}"),
                })],
            ),
        }
    }

    /// A subscriber nobody traces, without a prefetch window, is written to directly by
    /// publishers: the trace would miss those frames, and the window counts what the task sends.
    fn attach(&mut self, direct: &Direct) -> bool {
        if self.traced || self.prefetch.is_some() {
            return false;
        }
        self.subscriber.write_directly(direct.clone());
        self.direct = Some(direct.clone());
        true
    }

    async fn next(&mut self) -> Next {
        let credit = self
            .prefetch
            .is_none_or(|p| self.delivered - self.acked < u64::from(p));
        tokio::select! {
            biased;
            changed = self.subscriber.dropped.changed() => match changed {
                Ok(()) => match self.subscriber.dropped.borrow().clone() {
                    Some(reason) => Next::TooSlow(reason),
                    None => Next::Nothing,
                },
                Err(_) => std::future::pending().await,
            },
            delivery = std::future::poll_fn(|cx| poll_take(&mut self.subscriber.queue, self.direct.as_ref(), cx)), if credit => match delivery {
                Some(delivery) => Next::Send(vec![self.deliver_shared(&delivery)]),
                None => Next::TooSlow("dropped by the broker".into()),
            },
        }
    }
}

/// The next delivery in `queue`; taken under the socket's lock when publishers also write to it
/// directly, so that none of theirs overtakes it.
fn poll_take(
    queue: &mut tokio::sync::mpsc::Receiver<Arc<Shared>>,
    direct: Option<&Direct>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<Arc<Shared>>> {
    match direct {
        Some(direct) => direct.poll_take(cx, |cx| queue.poll_recv(cx)),
        None => queue.poll_recv(cx),
    }
}

#[utoipa::path(get, path = "/pubsub/ws", tag = "pubsub",
    description = "A subscriber WebSocket: upgrade, then send `SubscriberFrame`s and receive `BrokerFrame`s. Invalid UTF-8 closes with 1007, oversize messages with 1009, a subscriber too far behind with 1008.",
    params(SubscriberQuery),
    responses((status = 101, description = "Switched to WebSocket"),
        (status = 400, description = "Not a WebSocket upgrade request, or an invalid name", body = ApiError),
        (status = 403, description = "Cross-origin upgrade refused", body = ApiError), (status = 422, description = "A query parameter of the wrong type", body = ApiError),
        (status = 426, description = "The connection cannot be upgraded", body = ApiError), (status = 429, description = "Too many subscribers", body = ApiError)))]
async fn subscribe_socket(
    ws: websocket::Upgrade,
    headers: HeaderMap,
    host: origin::RequestedHost,
    Query(query): Query<SubscriberQuery>,
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
) -> Result<Response, AppError> {
    origin::check_upgrade(&headers, &host, &state.config.allowed_origins)?;
    check_name("`as` name", &query.peer)?;
    let room = room_of(query.room.as_deref(), trace.as_ref())?;
    let subscriber =
        state
            .pubsub
            .broker
            .topics()
            .subscriber_of(client, &room, &query.peer, trace.clone());
    let conversation = SubscriberConversation {
        subscriber,
        prefetch: None,
        delivered: 0,
        acked: 0,
        traced: trace.is_some(),
        direct: None,
    };
    let tracer = Tracer::new(&state.trace, trace);
    Ok(websocket::accept(
        ws,
        state,
        tracer,
        query.peer,
        conversation,
    ))
}

#[utoipa::path(get, path = "/pubsub/events", tag = "pubsub",
    description = "A subscriber event stream: `message` events (data: a Delivery) for the topics named in `topics`. Each event's `id` is the stream's position: the topic's `seq` when it follows one topic, `topic:seq` for each of its topics (comma-separated) when several. A reconnect with `Last-Event-ID` gets every kept message after that position (then `replay` is ignored).",
    params(SubscriberQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this position (an `id` this stream sent)")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Invalid topics, room, name or Last-Event-ID", body = ApiError), (status = 422, description = "A query parameter of the wrong type", body = ApiError),
        (status = 429, description = "Too many subscribers", body = ApiError), (status = 503, description = "The broker (Redis) cannot be reached", body = ApiError)))]
async fn subscribe_stream(
    Query(query): Query<SubscriberQuery>,
    headers: HeaderMap,
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
) -> Result<Response, AppError> {
    check_name("`as` name", &query.peer)?;
    if query.replay > MAX_HISTORY {
        return Err(AppError::Unprocessable(format!(
            "replay is at most {MAX_HISTORY}, got {}",
            query.replay
        )));
    }
    let mut topics: Vec<&str> = Vec::new();
    for topic in query.topics.split(',').filter(|t| !t.is_empty()) {
        check_name("topic", topic)?;
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    if topics.is_empty() {
        // An event stream cannot subscribe later: without a topic it would only be held open.
        return Err(AppError::Unprocessable(
            "name at least one topic: topics=a,b".into(),
        ));
    }
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(
            last_event_id_text(&headers)
                .and_then(|text| Position::parse(text, &topics))
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "Last-Event-ID {value:?} is not a position of this stream: its seq, or topic:seq for each of {}",
                        topics.join(",")
                    ))
                })?,
        ),
        None => None,
    };
    let room = room_of(query.room.as_deref(), trace.as_ref())?;
    let subscriber =
        state
            .pubsub
            .broker
            .topics()
            .subscriber_of(client, &room, &query.peer, trace.clone());
    let mut position = Position::default();
    let mut replayed = Vec::new();
    for topic in topics {
        let from = match resume.as_ref().and_then(|r| r.of(topic)) {
            Some(seq) => Replay::After(seq),
            None => Replay::Last(query.replay),
        };
        let (kept, newest) = subscriber
            .subscribe_from(topic, from)
            .map_err(BrokerError::from)?;
        // Where the stream stands before its replay: an event's id is the position after it.
        let start = kept.first().map_or(newest, |d| d.seq.saturating_sub(1));
        position.topics.push((topic.to_owned(), start));
        replayed.extend(kept);
    }
    let tracer = Tracer::new(&state.trace, trace);
    let peer = query.peer;
    // The replay goes out ahead of the stream's bounded queue: as long as the history, it can
    // never get the subscriber dropped as slow.
    let first: Vec<Event> = replayed
        .iter()
        .map(|delivery| {
            let data = serde_json::to_string(delivery).expect("deliveries serialize");
            let id = position.advance(&delivery.topic, delivery.seq);
            trace_event(&tracer, &peer, &id, delivery, &data);
            Event::default().event(EVENT_MESSAGE).id(id).data(data)
        })
        .collect();
    // Deliveries are pulled from the subscriber's queue as the client takes them: no channel
    // and no task of its own per stream (0.8 KiB of an idle one in `held`). A client that stops reading
    // stops the pulling; its queue fills and the broker drops it, with the reason, as any slow
    // subscriber.
    let feed = Feed {
        subscriber,
        position,
        tracer,
        peer,
    };
    let source = futures_util::stream::unfold(Some(feed), |feed| async move {
        let mut feed = feed?;
        loop {
            tokio::select! {
                biased;
                changed = feed.subscriber.dropped.changed() => match changed {
                    Ok(()) => {
                        if let Some(reason) = feed.subscriber.dropped.borrow().clone() {
                            return Some((Event::default().event("dropped").data(reason), None));
                        }
                    }
                    Err(_) => return None,
                },
                delivery = feed.subscriber.queue.recv() => {
                    let shared = delivery?;
                    let id = feed.position.advance(&shared.topic, shared.seq);
                    let data = shared.event_data();
                    trace_event(&feed.tracer, &feed.peer, &id, &shared, data);
                    let event = Event::default().event(EVENT_MESSAGE).id(id).data(data);
                    return Some((event, Some(feed)));
                }
            }
        }
    });
    let response = event_stream::open_pulling(state.stopped(), first, source);
    Ok(response)
}

/// Records a delivery the event stream of `peer` sent as event `id`.
fn trace_event(tracer: &Tracer, peer: &str, id: &str, delivery: &Delivery, data: &str) {
    tracer.record(|rid| {
        Hop::new(Kind::Deliver, "broker", peer, pairing::event(rid, id))
            .transport(Transport::Sse)
            .at(HopTime::Sent)
            .label(delivery.summary())
            .bytes(wire_bytes(EVENT_MESSAGE, id, data))
            .body(data.to_owned())
    });
}

/// Where a subscriber's event stream stands in each of its topics: the `seq` of the last
/// message of each it was sent (or that it did not want: the history before its replay). It is
/// every event's `id`, so a reconnecting EventSource hands it back as `Last-Event-ID` and the
/// stream resumes exactly: each topic after its own `seq` (a topic's `seq` says nothing about
/// another's). A stream of one topic writes it as that topic's `seq` alone (`7`), as the job
/// stream writes its version; a stream of several as `topic:seq` pairs in the order the query
/// named them (`news:7,sport:3`; names hold no `:` or `,`). What a reconnect finds is bounded by
/// the topic's history: messages older than the last [`MAX_HISTORY`] are gone.
#[derive(Debug, Default, PartialEq)]
struct Position {
    topics: Vec<(String, u64)>,
}

impl Position {
    /// Moves `topic` to `seq` and returns the id to send.
    fn advance(&mut self, topic: &str, seq: u64) -> String {
        if let Some((_, at)) = self.topics.iter_mut().find(|(t, _)| t == topic) {
            *at = seq;
        }
        self.id()
    }

    fn id(&self) -> String {
        match self.topics.as_slice() {
            [(_, seq)] => seq.to_string(),
            several => several
                .iter()
                .map(|(topic, seq)| format!("{topic}:{seq}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The position `text` (an id this stream sent) names, for a stream of `topics`; `None`
    /// when it is not one (a bare number for several topics, a topic it does not follow).
    fn parse(text: &str, topics: &[&str]) -> Option<Position> {
        if let [topic] = topics
            && let Ok(seq) = text.parse()
        {
            return Some(Position {
                topics: vec![((*topic).to_owned(), seq)],
            });
        }
        let mut position = Position::default();
        for pair in text.split(',') {
            let (topic, seq) = pair.rsplit_once(':')?;
            if !topics.contains(&topic) || position.of(topic).is_some() {
                return None;
            }
            position.topics.push((topic.to_owned(), seq.parse().ok()?));
        }
        Some(position)
    }

    /// Where it stands in `topic`, if it names it.
    fn of(&self, topic: &str) -> Option<u64> {
        self.topics
            .iter()
            .find(|(t, _)| t == topic)
            .map(|(_, seq)| *seq)
    }
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn a_position_is_the_seq_for_one_topic_and_pairs_for_several() {
        let mut one = Position {
            topics: vec![("news".into(), 0)],
        };
        assert_eq!(one.advance("news", 7), "7");
        assert_eq!(Position::parse("7", &["news"]), Some(one));
        let mut two = Position {
            topics: vec![("news".into(), 2), ("sport x".into(), 0)],
        };
        assert_eq!(two.advance("sport x", 3), "news:2,sport x:3");
        assert_eq!(
            Position::parse("news:2,sport x:3", &["news", "sport x"]),
            Some(two)
        );
    }

    #[test]
    fn a_position_of_another_stream_is_refused() {
        assert_eq!(Position::parse("7", &["news", "sport"]), None);
        assert_eq!(Position::parse("weather:1", &["news"]), None);
        assert_eq!(Position::parse("news:x", &["news"]), None);
        assert_eq!(Position::parse("news:1,news:2", &["news", "sport"]), None);
        // A stream that never got an event of one topic: that one resumes as new.
        let partial = Position::parse("news:4", &["news", "sport"]).unwrap();
        assert_eq!((partial.of("news"), partial.of("sport")), (Some(4), None));
    }
}
