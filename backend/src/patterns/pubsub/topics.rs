//! The subscribers this instance serves, by room and topic: each with a bounded queue, each
//! topic with a bounded history. The Redis engine hands every message to [`Topics::fan_out`], the
//! memory engine numbers and hands it out in one step ([`Topics::publish_here`]); a subscriber
//! whose queue is full is dropped there, with a reason, and everyone else goes on.
//! One message is one [`Shared`] delivery for all its subscribers (not a copy each), and each
//! topic holds its subscribers' queues itself, so a fan-out to thousands costs a reference count
//! and a queue push per subscriber under the lock, with nothing gathered or looked up. A socket
//! subscriber nobody traces is not even woken: while its task has nothing on the way, the
//! publisher writes the frame (made once per message, header and all) to its socket itself
//! ([`Direct`]), and queues only what the socket cannot take at once.
//!
//! Fairness: a room counts against the share of the client that made it ([`ROOM_SHARE`]). Past
//! its share a client's least recently used room that nobody follows is forgotten; when every
//! one of its rooms is followed, it is refused. The owner travels with a message through Redis,
//! so every instance counts a room against the same client.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use protocol::{
    pairing,
    pubsub::{
        BrokerFrame, Delivery, MAX_HISTORY, MAX_SUBSCRIBERS_PER_TOPIC, MAX_TOPICS_PER_ROOM,
        SUBSCRIBER_QUEUE,
    },
};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::{
    Utf8Bytes,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

use crate::{
    server::{
        client::ClientId,
        expiring::{BUSY_RETRY, CLASS_CLIENTS},
    },
    trace::TraceIds,
    trace::{Hop, TraceHub, Tracer},
    transport::shared_socket::Direct,
};

/// Rooms (named, or one per run) kept at once.
pub const MAX_ROOMS: usize = 1_000;
/// Rooms one client may have made and still be kept: its share of [`MAX_ROOMS`].
pub const ROOM_SHARE: usize = MAX_ROOMS / CLASS_CLIENTS;
/// A topic nobody subscribes to is forgotten (history included) this long after its last message.
pub const TOPIC_TTL: Duration = Duration::from_secs(10 * 60);

/// A message on its way from a publisher to the topic's subscribers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// The room's key: `room:<name>` or `run:<run id>`.
    pub room: String,
    pub topic: String,
    pub seq: u64,
    pub text: String,
    pub publisher: String,
    pub published_by: String,
    /// The client that published it: a room it makes counts against that client's share.
    #[serde(default)]
    pub owner: Option<ClientId>,
}

/// The key of a room: a named one other tabs can join, or this run's own.
pub fn room_key(room: Option<&str>, run: Option<&str>) -> String {
    match (room, run) {
        (Some(name), _) if !name.is_empty() => format!("room:{name}"),
        (_, Some(run)) => format!("run:{run}"),
        _ => "run:untraced".into(),
    }
}

/// What a subscribe or publish was refused for.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    #[error("{0}")]
    Full(String),
}

/// A live delivery as every subscriber's queue holds it: one per message, shared. Its wire
/// texts are made once, by the first subscriber that sends each, for all the others.
#[derive(Debug)]
pub struct Shared {
    pub delivery: Delivery,
    /// The text of the WebSocket frame carrying it (each socket takes a reference, not a copy).
    socket_frame: OnceLock<Utf8Bytes>,
    /// That frame as it goes on the wire (a server's frames are not masked, so every socket's
    /// is the same bytes), for the sockets written to directly.
    socket_wire: OnceLock<Vec<u8>>,
    /// Its JSON, as an event stream's `data:`.
    event_data: OnceLock<String>,
}

impl Shared {
    pub fn new(delivery: Delivery) -> Shared {
        Shared {
            delivery,
            socket_frame: OnceLock::new(),
            socket_wire: OnceLock::new(),
            event_data: OnceLock::new(),
        }
    }

    /// Its WebSocket frame's text (a `BrokerFrame::Message`), made the first time anyone asks.
    pub fn socket_frame(&self) -> &Utf8Bytes {
        self.socket_frame.get_or_init(|| {
            let frame = BrokerFrame::Message {
                delivery: self.delivery.clone(),
            };
            serde_json::to_string(&frame)
                .expect("frames serialize")
                .into()
        })
    }

    /// That frame, header and all, as written on every socket.
    fn socket_wire(&self) -> &[u8] {
        self.socket_wire.get_or_init(|| {
            let text = self.socket_frame().clone();
            let frame = Frame::message(text, OpCode::Data(Data::Text), true);
            let mut wire = Vec::with_capacity(frame.len());
            frame.format(&mut wire).expect("a Vec takes every byte");
            wire
        })
    }

    /// Its JSON for an event stream, serialized the first time anyone asks.
    pub fn event_data(&self) -> &str {
        self.event_data
            .get_or_init(|| serde_json::to_string(&self.delivery).expect("deliveries serialize"))
    }
}

impl std::ops::Deref for Shared {
    type Target = Delivery;

    fn deref(&self) -> &Delivery {
        &self.delivery
    }
}

/// How a subscriber is reached: its bounded queue (full means it is too slow) and, when its
/// socket can be written to directly, that socket.
#[derive(Clone)]
struct Follower {
    queue: mpsc::Sender<Arc<Shared>>,
    direct: Option<Direct>,
}

impl Follower {
    /// Writes `delivery` to the socket at once if it can (`true`), or queues it.
    fn hand(&self, delivery: &Arc<Shared>) -> Result<bool, mpsc::error::TrySendError<Arc<Shared>>> {
        let queue = || self.queue.try_send(delivery.clone());
        match &self.direct {
            Some(direct) => direct.write_or_queue(delivery.socket_wire(), queue),
            None => queue().map(|()| false),
        }
    }
}

struct Slot {
    follower: Follower,
    /// Set once, when the broker gives up on it.
    dropped: watch::Sender<Option<String>>,
    /// Its lifeline, for the drop note.
    name: String,
    trace: Option<TraceIds>,
    room: String,
    topics: BTreeSet<String>,
    /// The client it serves: a room its subscription makes counts against that client.
    owner: Option<ClientId>,
}

/// A room: its topics, and the client whose share it counts against (`None`: no client's).
#[derive(Default)]
struct Room {
    owner: Option<ClientId>,
    topics: HashMap<String, Topic>,
}

impl Room {
    /// Nobody follows any of its topics: forgetting it loses only history.
    fn unfollowed(&self) -> bool {
        self.topics.values().all(|t| t.subscribers.is_empty())
    }

    /// When its last message came, or never.
    fn touched(&self) -> Option<Instant> {
        self.topics.values().filter_map(|t| t.touched).max()
    }
}

#[derive(Default)]
struct Topic {
    /// How each subscriber is reached (as its slot says), by subscriber id.
    subscribers: BTreeMap<u64, Follower>,
    /// The last `MAX_HISTORY` messages, for subscribers that ask for a replay.
    history: VecDeque<Arc<Shared>>,
    /// The last sequence number seen; the memory engine numbers messages from it.
    last_seq: u64,
    touched: Option<Instant>,
}

impl Topic {
    fn expired(&self, ttl: Duration) -> bool {
        self.subscribers.is_empty() && self.touched.is_none_or(|t| t.elapsed() > ttl)
    }
}

struct Inner {
    rooms: HashMap<String, Room>,
    slots: HashMap<u64, Slot>,
    next_id: u64,
    /// How long a topic without subscribers keeps its history ([`TOPIC_TTL`] unless
    /// `--store-ttl` says).
    ttl: Duration,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            rooms: HashMap::new(),
            slots: HashMap::new(),
            next_id: 0,
            ttl: TOPIC_TTL,
        }
    }
}

impl Inner {
    /// Forgets expired topics and the rooms left empty.
    fn prune(&mut self) {
        let ttl = self.ttl;
        self.rooms.retain(|_, room| {
            room.topics.retain(|_, t| !t.expired(ttl));
            !room.topics.is_empty()
        });
    }

    /// Makes room for one more room of `owner`: past its share, its least recently used room
    /// that nobody follows is forgotten, or it is refused when it follows all of them.
    fn within_share(&mut self, owner: ClientId) -> Result<(), Refused> {
        let mine = self.rooms.values().filter(|r| r.owner == Some(owner));
        if mine.count() < ROOM_SHARE {
            return Ok(());
        }
        let oldest = self
            .rooms
            .iter()
            .filter(|(_, r)| r.owner == Some(owner) && r.unfollowed())
            .min_by_key(|(_, r)| r.touched())
            .map(|(key, _)| key.clone());
        match oldest {
            Some(key) => {
                self.rooms.remove(&key);
                Ok(())
            }
            None => Err(Refused::Full(format!(
                "one client may hold {ROOM_SHARE} rooms at once; you follow topics in {ROOM_SHARE}: leave one or retry in {} s",
                BUSY_RETRY.as_secs()
            ))),
        }
    }

    /// The topic, made if need be within the bounds (expired topics and empty rooms go first);
    /// a new room counts against `owner`'s share.
    fn topic(
        &mut self,
        room: &str,
        topic: &str,
        owner: Option<ClientId>,
    ) -> Result<&mut Topic, Refused> {
        let ttl = self.ttl;
        if !self.rooms.contains_key(room) {
            self.prune();
            if let Some(owner) = owner {
                self.within_share(owner)?;
            }
            if self.rooms.len() >= MAX_ROOMS {
                return Err(Refused::Full(format!(
                    "{MAX_ROOMS} rooms are open already; retry in {} s",
                    BUSY_RETRY.as_secs()
                )));
            }
        }
        let topics = &mut self
            .rooms
            .entry(room.to_owned())
            .or_insert_with(|| Room {
                owner,
                topics: HashMap::new(),
            })
            .topics;
        if !topics.contains_key(topic) {
            topics.retain(|_, t| !t.expired(ttl));
            if topics.len() >= MAX_TOPICS_PER_ROOM {
                return Err(Refused::Full(format!(
                    "a room has at most {MAX_TOPICS_PER_ROOM} topics"
                )));
            }
        }
        Ok(topics.entry(topic.to_owned()).or_default())
    }

    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        if let Some(room) = self.rooms.get_mut(&slot.room) {
            for name in &slot.topics {
                if let Some(t) = room.topics.get_mut(name) {
                    t.subscribers.remove(&id);
                }
            }
        }
        Some(slot)
    }
}

/// This instance's subscribers and topic histories. Cheap to clone.
#[derive(Clone)]
pub struct Topics {
    // std Mutex: short map operations only, never held across an await.
    inner: Arc<Mutex<Inner>>,
    hub: TraceHub,
    /// This instance's name, written into every delivery it makes.
    instance: Arc<str>,
    /// Subscribers one topic may have (`MAX_SUBSCRIBERS_PER_TOPIC` unless raised for a load test).
    subscriber_limit: usize,
    /// Deliveries written to a socket by the publisher itself (not queued for its task).
    written_directly: Arc<AtomicU64>,
}

/// One subscriber's end: its queue of deliveries and the word if it is dropped. Dropping it
/// unsubscribes it from everything.
pub struct Subscriber {
    id: u64,
    pub queue: mpsc::Receiver<Arc<Shared>>,
    pub dropped: watch::Receiver<Option<String>>,
    topics: Topics,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.topics.lock().remove(self.id);
    }
}

/// Which of a topic's kept messages a new subscription starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The last `n` (at most [`MAX_HISTORY`]).
    Last(u32),
    /// Every kept message numbered above this one: a subscriber resuming where it was.
    After(u64),
}

impl Subscriber {
    /// Subscribes to `topic` of its room; returns the last `replay` messages it kept (they are
    /// not queued: the caller sends them first, then what the queue brings).
    pub fn subscribe(&self, topic: &str, replay: u32) -> Result<Vec<Delivery>, Refused> {
        Ok(self.subscribe_from(topic, Replay::Last(replay))?.0)
    }

    /// Subscribes to `topic` of its room: the kept messages `from` asks for, and the `seq` of
    /// the newest one kept (0 when none is): everything after it comes through the queue.
    pub fn subscribe_from(
        &self,
        topic: &str,
        from: Replay,
    ) -> Result<(Vec<Delivery>, u64), Refused> {
        self.topics.subscribe(self.id, topic, from)
    }

    pub fn unsubscribe(&self, topic: &str) {
        self.topics.unsubscribe(self.id, topic)
    }

    /// From now on, deliveries are written to `direct` (this subscriber's socket) at once when
    /// it can take them, instead of waking its task. Called before it subscribes to anything:
    /// each subscription copies the slot's way of reaching it.
    pub fn write_directly(&self, direct: Direct) {
        if let Some(slot) = self.topics.lock().slots.get_mut(&self.id) {
            debug_assert!(slot.topics.is_empty(), "attached before subscribing");
            slot.follower.direct = Some(direct);
        }
    }
}

impl Topics {
    pub fn new(hub: TraceHub, instance: &str) -> Topics {
        Topics {
            inner: Arc::default(),
            hub,
            instance: instance.into(),
            subscriber_limit: MAX_SUBSCRIBERS_PER_TOPIC,
            written_directly: Arc::default(),
        }
    }

    /// The same topics with another bound on subscribers per topic: the fan-out benchmark
    /// holds thousands on one topic, a classroom server keeps the default.
    pub fn with_subscriber_limit(mut self, limit: usize) -> Topics {
        self.subscriber_limit = limit;
        self
    }

    /// Subscribers one topic may have.
    /// The same topics, a topic without subscribers forgotten `ttl` after its last message.
    pub fn with_ttl(self, ttl: Duration) -> Topics {
        self.lock().ttl = ttl;
        self
    }

    /// How long a topic without subscribers is kept.
    pub fn ttl(&self) -> Duration {
        self.lock().ttl
    }

    /// Forgets expired topics and empty rooms (the periodic sweep calls it).
    pub fn prune(&self) {
        self.lock().prune();
    }

    /// Rooms and topics kept now.
    pub fn rooms_and_topics(&self) -> (usize, usize) {
        let inner = self.lock();
        let topics = inner.rooms.values().map(|r| r.topics.len()).sum();
        (inner.rooms.len(), topics)
    }

    pub fn subscriber_limit(&self) -> usize {
        self.subscriber_limit
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("topics lock poisoned")
    }

    /// A new subscriber in `room` (a key from [`room_key`]), subscribed to nothing yet, that
    /// counts against no client's share.
    pub fn subscriber(&self, room: &str, name: &str, trace: Option<TraceIds>) -> Subscriber {
        self.subscriber_of(None, room, name, trace)
    }

    /// A new subscriber of `owner` in `room`: if its subscriptions make the room, the room
    /// counts against `owner`'s share.
    pub fn subscriber_of(
        &self,
        owner: Option<ClientId>,
        room: &str,
        name: &str,
        trace: Option<TraceIds>,
    ) -> Subscriber {
        let (queue_tx, queue) = mpsc::channel(SUBSCRIBER_QUEUE);
        let (dropped_tx, dropped) = watch::channel(None);
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.slots.insert(
            id,
            Slot {
                follower: Follower {
                    queue: queue_tx,
                    direct: None,
                },
                dropped: dropped_tx,
                name: name.to_owned(),
                trace,
                room: room.to_owned(),
                topics: BTreeSet::new(),
                owner,
            },
        );
        Subscriber {
            id,
            queue,
            dropped,
            topics: self.clone(),
        }
    }

    fn subscribe(
        &self,
        id: u64,
        topic: &str,
        from: Replay,
    ) -> Result<(Vec<Delivery>, u64), Refused> {
        let mut inner = self.lock();
        let Some((room, follower, owner)) = inner
            .slots
            .get(&id)
            .map(|s| (s.room.clone(), s.follower.clone(), s.owner))
        else {
            return Err(Refused::Full("this subscriber was dropped".into()));
        };
        let instance = self.instance.to_string();
        let t = inner.topic(&room, topic, owner)?;
        if !t.subscribers.contains_key(&id) && t.subscribers.len() >= self.subscriber_limit {
            return Err(Refused::Full(format!(
                "a topic has at most {} subscribers",
                self.subscriber_limit
            )));
        }
        t.subscribers.insert(id, follower);
        let skip = match from {
            Replay::Last(n) => t.history.len().saturating_sub(n.min(MAX_HISTORY) as usize),
            Replay::After(seq) => t.history.iter().take_while(|d| d.seq <= seq).count(),
        };
        let newest = t.history.back().map_or(0, |d| d.seq);
        let replayed = t
            .history
            .iter()
            .skip(skip)
            .filter(|d| !matches!(from, Replay::After(seq) if d.seq <= seq))
            .map(|d| Delivery {
                replayed: true,
                delivered_by: instance.clone(),
                ..d.delivery.clone()
            })
            .collect();
        if let Some(slot) = inner.slots.get_mut(&id) {
            slot.topics.insert(topic.to_owned());
        }
        Ok((replayed, newest))
    }

    fn unsubscribe(&self, id: u64, topic: &str) {
        let mut inner = self.lock();
        let Some(slot) = inner.slots.get_mut(&id) else {
            return;
        };
        slot.topics.remove(topic);
        let room = slot.room.clone();
        if let Some(t) = inner
            .rooms
            .get_mut(&room)
            .and_then(|r| r.topics.get_mut(topic))
        {
            t.subscribers.remove(&id);
        }
    }

    /// Numbers a message published on this instance and hands it out (the memory engine's
    /// publish), under one lock: racing publishes reach the history and every subscriber in the
    /// order of their numbers, so a subscriber resuming after the last number it saw misses
    /// nothing. Refuses a topic that cannot be made within the bounds.
    pub fn publish_here(
        &self,
        room: &str,
        topic: &str,
        owner: Option<ClientId>,
        envelope: impl FnOnce(u64) -> Envelope,
    ) -> Result<u64, Refused> {
        let mut inner = self.lock();
        let t = inner.topic(room, topic, owner)?;
        t.last_seq += 1;
        let seq = t.last_seq;
        self.fan_out_locked(&mut inner, &envelope(seq));
        Ok(seq)
    }

    /// Checks that a publish to `topic` by `owner` fits the bounds, without numbering it.
    pub fn check(&self, room: &str, topic: &str, owner: Option<ClientId>) -> Result<(), Refused> {
        self.lock().topic(room, topic, owner).map(|_| ())
    }

    /// Hands `envelope` to every local subscriber of its topic and keeps it in the history.
    /// Returns how many subscribers it was handed to (written or queued). A subscriber whose
    /// queue is full is dropped with a reason (and a note on its run's diagram); the others are
    /// not held up.
    pub fn fan_out(&self, envelope: &Envelope) -> usize {
        self.fan_out_locked(&mut self.lock(), envelope)
    }

    fn fan_out_locked(&self, inner: &mut Inner, envelope: &Envelope) -> usize {
        let delivery = Arc::new(Shared::new(Delivery {
            topic: envelope.topic.clone(),
            seq: envelope.seq,
            text: envelope.text.clone(),
            publisher: envelope.publisher.clone(),
            published_by: envelope.published_by.clone(),
            delivered_by: self.instance.to_string(),
            replayed: false,
        }));
        let Ok(t) = inner.topic(&envelope.room, &envelope.topic, envelope.owner) else {
            return 0;
        };
        t.last_seq = t.last_seq.max(envelope.seq);
        t.touched = Some(Instant::now());
        if t.history.len() == MAX_HISTORY as usize {
            t.history.pop_front();
        }
        t.history.push_back(delivery.clone());
        let (mut handed, mut written) = (0, 0);
        let mut too_slow = Vec::new();
        for (&id, follower) in &t.subscribers {
            match follower.hand(&delivery) {
                Ok(direct) => {
                    handed += 1;
                    written += u64::from(direct);
                }
                Err(mpsc::error::TrySendError::Full(_)) => too_slow.push(id),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for id in too_slow {
            if let Some(slot) = inner.remove(id) {
                let reason =
                    format!("too slow: {SUBSCRIBER_QUEUE} deliveries were waiting in its queue");
                tracing::info!(subscriber = %slot.name, topic = %envelope.topic, "dropping a slow subscriber");
                self.note(&slot, format!("drops {}: {reason}", slot.name));
                slot.dropped.send_replace(Some(reason));
            }
        }
        self.written_directly.fetch_add(written, Ordering::Relaxed);
        handed
    }

    /// Puts a note on the broker's lifeline of every run with a subscriber here (Redis lost, back).
    pub fn note_all(&self, text: &str) {
        let inner = self.lock();
        let mut runs = BTreeSet::new();
        for slot in inner.slots.values() {
            if let Some(ids) = &slot.trace
                && runs.insert(ids.run.clone())
            {
                self.note(slot, text.to_owned());
            }
        }
    }

    fn note(&self, slot: &Slot, label: String) {
        Tracer::new(&self.hub, slot.trace.clone()).record(|rid| {
            Hop::note("broker", pairing::note(rid, crate::trace::server_now_us())).label(label)
        });
    }

    /// Deliveries written to subscribers' sockets directly so far.
    pub fn written_directly(&self) -> u64 {
        self.written_directly.load(Ordering::Relaxed)
    }

    /// Subscribers served here now.
    pub fn subscriber_count(&self) -> usize {
        self.lock().slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_nobody_follows_expires_with_its_history() {
        let topics = Topics::new(TraceHub::default(), "main").with_ttl(Duration::from_millis(40));
        let subscriber = topics.subscriber("room", "client-1", None);
        subscriber.subscribe("news", 0).unwrap();
        assert_eq!(topics.rooms_and_topics(), (1, 1));
        topics.prune();
        assert_eq!(topics.rooms_and_topics(), (1, 1), "followed: kept");
        drop(subscriber);
        std::thread::sleep(Duration::from_millis(60));
        topics.prune();
        assert_eq!(
            topics.rooms_and_topics(),
            (0, 0),
            "nobody follows it: forgotten"
        );
    }

    fn client(last: u8) -> Option<ClientId> {
        Some(ClientId::of(std::net::IpAddr::from([127, 0, 0, last])))
    }

    #[test]
    fn a_client_past_its_share_of_rooms_loses_its_own_unfollowed_ones_first() {
        let topics = Topics::new(TraceHub::default(), "main");
        let (abuser, learner) = (client(2), client(10));
        let learners_room = topics.subscriber_of(learner, "run:learner", "client-1", None);
        learners_room.subscribe("news", 0).unwrap();
        // The abuser publishes into more rooms than its share: its oldest unfollowed ones go.
        for n in 0..ROOM_SHARE * 3 {
            let room = format!("run:{n}");
            topics
                .publish_here(&room, "t", abuser, |seq| Envelope {
                    room: room.clone(),
                    topic: "t".into(),
                    seq,
                    text: "x".into(),
                    publisher: "p".into(),
                    published_by: "main".into(),
                    owner: abuser,
                })
                .unwrap();
        }
        assert_eq!(topics.rooms_and_topics().0, ROOM_SHARE + 1);
        // Rooms it follows are kept: past its share in followed rooms it is refused.
        let held: Vec<_> = (0..ROOM_SHARE)
            .map(|n| {
                let s = topics.subscriber_of(abuser, &format!("run:held{n}"), "c", None);
                s.subscribe("t", 0).unwrap();
                s
            })
            .collect();
        let one_more = topics.subscriber_of(abuser, "run:one-more", "c", None);
        let Err(Refused::Full(why)) = one_more.subscribe("t", 0) else {
            panic!("a client following topics in its whole share was let in");
        };
        assert!(why.contains("one client may hold"), "{why}");
        // The learner's room stood through it all, and a new one is still theirs to make.
        assert_eq!(learners_room.subscribe("news", 0), Ok(vec![]));
        let another = topics.subscriber_of(learner, "run:learner-2", "client-1", None);
        assert!(another.subscribe("news", 0).is_ok());
        drop(held);
    }

    #[test]
    fn an_envelope_carries_its_owner_through_redis() {
        let envelope = Envelope {
            room: "run:r".into(),
            topic: "t".into(),
            seq: 3,
            text: "x".into(),
            publisher: "p".into(),
            published_by: "a".into(),
            owner: client(7),
        };
        let json = serde_json::to_string(&envelope).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), envelope);
        let older = json.replace(",\"owner\":\"127.0.0.7\"", "");
        assert_ne!(older, json, "{json}");
        assert_eq!(
            serde_json::from_str::<Envelope>(&older).unwrap().owner,
            None,
            "an instance without owners still reads it"
        );
    }
}
