//! Publish/subscribe: the broker contract run against both engines (the same test functions,
//! in memory and on Redis), the HTTP and WebSocket/SSE endpoints with real clients, the slow
//! subscriber's drop, and two real backend processes sharing one Redis.
//!
//! Redis tests need `PATTERNSCOPE_TEST_REDIS` (a redis:// URL; `make test` starts a private
//! Redis and sets it). Without it they say so loudly and pass without running.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use backend::{
    AppState, Config, TraceHub,
    limits::Limits,
    pubsub::{
        Broker, Publish, Replay, Subscriber, Topics, memory::MemoryBroker, redis::RedisBroker,
    },
    rate_limit::Rate,
};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    ApiError,
    pubsub::{
        BrokerFrame, Delivery, MAX_HISTORY, MAX_MESSAGE_BYTES, PublishRequest, Published,
        SUBSCRIBER_QUEUE, SubscriberFrame,
    },
    trace::{Kind, RunId},
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message as WsMessage, protocol::frame::coding::CloseCode},
};

const REDIS_ENV: &str = "PATTERNSCOPE_TEST_REDIS";

fn redis_url() -> Option<String> {
    common::engine_url(REDIS_ENV, "Redis")
}

/// A room name no other test (or earlier run against the same Redis) uses.
fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "room:{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn memory_broker() -> Arc<dyn Broker> {
    Arc::new(MemoryBroker::new(Topics::new(TraceHub::default(), "solo")))
}

async fn redis_broker(instance: &str) -> Option<Arc<dyn Broker>> {
    let url = redis_url()?;
    let topics = Topics::new(TraceHub::default(), instance);
    let broker = RedisBroker::connect(&url, topics, std::future::pending())
        .await
        .expect("the test Redis answers");
    Some(Arc::new(broker))
}

async fn publish(broker: &dyn Broker, room: &str, topic: &str, text: &str) -> u64 {
    broker
        .publish(Publish {
            room,
            topic,
            text: text.into(),
            publisher: "browser",
            owner: None,
        })
        .await
        .expect("published")
}

async fn next(subscriber: &mut Subscriber) -> Delivery {
    let shared = tokio::time::timeout(Duration::from_secs(5), subscriber.queue.recv())
        .await
        .expect("a delivery within 5 s")
        .expect("still subscribed");
    shared.delivery.clone()
}

async fn nothing_more(subscriber: &mut Subscriber) {
    assert!(
        tokio::time::timeout(Duration::from_millis(150), subscriber.queue.recv())
            .await
            .is_err(),
        "no delivery expected"
    );
}

// ---- The broker contract: every engine must pass these. ----

async fn every_subscriber_of_a_topic_gets_each_message_in_order(broker: Arc<dyn Broker>) {
    let room = unique("fanout");
    let topics = broker.topics();
    let mut subs: Vec<Subscriber> = (1..=3)
        .map(|k| topics.subscriber(&room, &format!("client-{k}"), None))
        .collect();
    for s in &subs {
        assert!(s.subscribe("news", 0).unwrap().is_empty());
    }
    let mut other = topics.subscriber(&room, "client-9", None);
    other.subscribe("sport", 0).unwrap();
    let first = publish(&*broker, &room, "news", "one").await;
    let second = publish(&*broker, &room, "news", "two").await;
    assert_eq!(second, first + 1, "numbered in order");
    for s in &mut subs {
        let (a, b) = (next(s).await, next(s).await);
        assert_eq!((a.text.as_str(), b.text.as_str()), ("one", "two"));
        assert_eq!((a.seq, b.seq), (first, second));
        assert_eq!(a.publisher, "browser");
        assert!(!a.replayed);
    }
    nothing_more(&mut other).await;
}

async fn a_late_joiner_misses_earlier_messages_unless_it_asks_for_a_replay(
    broker: Arc<dyn Broker>,
) {
    let room = unique("late");
    let topics = broker.topics();
    let mut early = topics.subscriber(&room, "client-1", None);
    early.subscribe("news", 0).unwrap();
    for text in ["a", "b", "c"] {
        publish(&*broker, &room, "news", text).await;
    }
    for _ in 0..3 {
        next(&mut early).await;
    }
    let mut late = topics.subscriber(&room, "client-2", None);
    assert!(
        late.subscribe("news", 0).unwrap().is_empty(),
        "no replay asked"
    );
    nothing_more(&mut late).await;
    let replaying = topics.subscriber(&room, "client-3", None);
    let replayed = replaying.subscribe("news", 2).unwrap();
    assert_eq!(
        replayed.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(),
        ["b", "c"],
        "the last two, oldest first"
    );
    assert!(replayed.iter().all(|d| d.replayed));
    publish(&*broker, &room, "news", "d").await;
    assert_eq!(
        next(&mut late).await.text,
        "d",
        "the late joiner gets what follows"
    );
}

async fn a_subscriber_that_does_not_read_is_dropped_and_the_others_go_on(broker: Arc<dyn Broker>) {
    let room = unique("slow");
    let topics = broker.topics();
    let slow = topics.subscriber(&room, "client-1", None);
    let mut reader = topics.subscriber(&room, "client-2", None);
    slow.subscribe("news", 0).unwrap();
    reader.subscribe("news", 0).unwrap();
    for n in 1..=SUBSCRIBER_QUEUE + 3 {
        publish(&*broker, &room, "news", &format!("m{n}")).await;
        assert_eq!(next(&mut reader).await.text, format!("m{n}"), "on time");
    }
    let reason = slow.dropped.borrow().clone().expect("dropped");
    assert!(reason.starts_with("too slow"), "{reason}");
}

async fn rooms_keep_their_topics_apart(broker: Arc<dyn Broker>) {
    let (here, there) = (unique("here"), unique("there"));
    let topics = broker.topics();
    let mut a = topics.subscriber(&here, "client-1", None);
    let mut b = topics.subscriber(&there, "client-1", None);
    a.subscribe("news", 0).unwrap();
    b.subscribe("news", 0).unwrap();
    publish(&*broker, &here, "news", "only here").await;
    assert_eq!(next(&mut a).await.text, "only here");
    nothing_more(&mut b).await;
    a.unsubscribe("news");
    publish(&*broker, &here, "news", "after").await;
    nothing_more(&mut a).await;
}

async fn racing_publishes_reach_subscribers_and_history_in_the_order_of_their_numbers(
    broker: Arc<dyn Broker>,
) {
    // Fewer than a subscriber's queue holds, so the reader may wait until all are out.
    const AT_ONCE: usize = SUBSCRIBER_QUEUE - 1;
    let room = unique("race");
    let topics = broker.topics();
    let mut live = topics.subscriber(&room, "client-1", None);
    live.subscribe("news", 0).unwrap();
    for round in 0..3 {
        let publishes = (0..AT_ONCE).map(|k| {
            let broker = broker.clone();
            let room = room.clone();
            tokio::spawn(
                async move { publish(&*broker, &room, "news", &format!("{round}.{k}")).await },
            )
        });
        let mut numbers = Vec::new();
        for p in publishes.collect::<Vec<_>>() {
            numbers.push(p.await.unwrap());
        }
        numbers.sort();
        let mut seen = Vec::new();
        for _ in 0..AT_ONCE {
            seen.push(next(&mut live).await.seq);
        }
        assert_eq!(
            seen, numbers,
            "round {round}: delivered in the order of their numbers"
        );
        // A subscriber resuming after any of them gets exactly the later ones, in order.
        let resumed_after = numbers[AT_ONCE / 2];
        let resuming = topics.subscriber(&room, "client-2", None);
        let (replayed, _) = resuming
            .subscribe_from("news", Replay::After(resumed_after))
            .unwrap();
        let expected: Vec<u64> = numbers
            .iter()
            .copied()
            .filter(|&n| n > resumed_after)
            .collect();
        assert_eq!(replayed.iter().map(|d| d.seq).collect::<Vec<_>>(), expected);
    }
}

macro_rules! broker_contract {
    ($($test:ident),* $(,)?) => {
        // Several worker threads, so publishes really race.
        mod memory_engine {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                super::$test(super::memory_broker()).await
            })*
        }
        mod redis_engine {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let Some(broker) = super::redis_broker("r1").await else { return };
                super::$test(broker).await
            })*
        }
    };
}

broker_contract!(
    every_subscriber_of_a_topic_gets_each_message_in_order,
    a_late_joiner_misses_earlier_messages_unless_it_asks_for_a_replay,
    a_subscriber_that_does_not_read_is_dropped_and_the_others_go_on,
    rooms_keep_their_topics_apart,
    racing_publishes_reach_subscribers_and_history_in_the_order_of_their_numbers,
);

// ---- Over the wire: one server, real clients. ----

use common::Socket;

async fn open(base: &str, query: &str) -> Socket {
    let url = format!("{}/api/pubsub/ws?{query}", base.replace("http://", "ws://"));
    connect_async(url).await.expect("upgrade").0
}

async fn send(socket: &mut Socket, frame: SubscriberFrame) {
    let text = serde_json::to_string(&frame).unwrap();
    socket.send(WsMessage::Text(text.into())).await.unwrap();
}

async fn frame(socket: &mut Socket) -> BrokerFrame {
    common::next_json(socket, Duration::from_secs(5)).await
}

async fn subscribe(socket: &mut Socket, topic: &str, prefetch: Option<u32>) {
    send(
        socket,
        SubscriberFrame::Subscribe {
            topic: topic.into(),
            replay: 0,
            prefetch,
        },
    )
    .await;
    assert!(matches!(
        frame(socket).await,
        BrokerFrame::Subscribed { .. }
    ));
}

async fn post_publish(base: &str, query: &str, body: &PublishRequest) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/pubsub/publish?{query}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn message(room: Option<&str>, topic: &str, text: &str) -> PublishRequest {
    PublishRequest {
        room: room.map(str::to_owned),
        topic: topic.into(),
        text: text.into(),
        publisher: None,
    }
}

#[tokio::test]
async fn a_publish_reaches_three_socket_subscribers_and_is_drawn_through_the_broker() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let mut clients = Vec::new();
    for k in 1..=3 {
        let mut socket = open(&base, &format!("as=client-{k}&run=ps-1&rid={k}")).await;
        subscribe(&mut socket, "news", None).await;
        clients.push(socket);
    }
    let response = post_publish(&base, "run=ps-1&rid=9", &message(None, "news", "hello")).await;
    assert_eq!(response.status(), 202);
    let published: Published = response.json().await.unwrap();
    assert_eq!((published.seq, published.engine.as_str()), (1, "memory"));
    for socket in &mut clients {
        match frame(socket).await {
            BrokerFrame::Message { delivery } => assert_eq!(delivery.text, "hello"),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Another run's subscriber, same topic name, hears nothing: runs are isolated.
    let mut stranger = open(&base, "as=client-1&run=ps-2&rid=1").await;
    subscribe(&mut stranger, "news", None).await;
    post_publish(&base, "run=ps-1&rid=10", &message(None, "news", "again")).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stranger.next())
            .await
            .is_err()
    );

    let trace = server.state.trace.snapshot(&RunId("ps-1".into())).unwrap();
    let publishes: Vec<_> = trace.iter().filter(|m| m.kind == Kind::Publish).collect();
    assert_eq!(publishes[0].to.0, "broker");
    assert_eq!(publishes[0].label, "publish news #1");
    let mut delivered_to: Vec<&str> = trace
        .iter()
        .filter(|m| m.kind == Kind::Deliver && m.label == "deliver news #1 via main")
        .map(|m| {
            assert_eq!(m.from.0, "broker");
            m.to.0.as_str()
        })
        .collect();
    delivered_to.sort();
    assert_eq!(delivered_to, ["client-1", "client-2", "client-3"]);
}

#[tokio::test]
async fn an_event_stream_subscriber_gets_a_replay_then_live_messages() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let room = format!("sse-{}", std::process::id());
    for text in ["old-1", "old-2"] {
        post_publish(&base, "", &message(Some(&room), "news", text)).await;
    }
    let response = reqwest::get(format!(
        "{base}/api/pubsub/events?as=client-4&room={room}&topics=news&replay=1"
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    post_publish(&base, "", &message(Some(&room), "news", "live")).await;
    let mut text = String::new();
    while !text.contains("live") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("events within 5 s")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !text.contains("old-1"),
        "only the last one replayed: {text}"
    );
    // The id is the topic's seq (old-2 is news #2), so a reconnect can resume after it.
    assert!(text.contains("event: message\nid: 2\n"), "{text}");
    assert!(text.contains("\"replayed\":true"), "{text}");
    assert!(text.contains("old-2") && text.contains("live"), "{text}");
}

#[tokio::test]
async fn bad_input_gets_a_named_4xx() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let too_big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    let cases = [
        (message(None, "news", &too_big), 413, "at most"),
        (message(None, "<bad>", "x"), 400, "invalid topic"),
        (message(Some("a:b"), "news", "x"), 400, "invalid room"),
    ];
    for (body, status, says) in cases {
        let response = post_publish(&base, "", &body).await;
        assert_eq!(response.status(), status);
        let error: ApiError = response.json().await.unwrap();
        assert!(error.error.contains(says), "{}", error.error);
    }
    let response = reqwest::Client::new()
        .post(format!("{base}/api/pubsub/publish"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = reqwest::Client::new()
        .post(format!("{base}/api/pubsub/ticker"))
        .json(&serde_json::json!({ "topic": "t", "per_second": 1000, "bytes": 10, "seconds": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = reqwest::get(format!("{base}/api/pubsub/events?topics=a,<b>"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let mut socket = open(&base, "").await;
    send(
        &mut socket,
        SubscriberFrame::Subscribe {
            topic: "news".into(),
            replay: 1000,
            prefetch: None,
        },
    )
    .await;
    assert!(
        matches!(frame(&mut socket).await, BrokerFrame::Error { error } if error.contains("replay"))
    );
}

#[tokio::test]
async fn a_slow_acknowledger_is_dropped_with_a_reason_while_the_others_keep_receiving() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let room = format!("slow-{}", std::process::id());
    // The slow one takes one delivery at a time and never acknowledges it.
    let mut slow = open(&base, &format!("as=client-3&room={room}")).await;
    subscribe(&mut slow, "news", Some(1)).await;
    let mut fast = open(&base, &format!("as=client-1&room={room}")).await;
    subscribe(&mut fast, "news", None).await;
    let total = SUBSCRIBER_QUEUE + 4;
    for n in 1..=total {
        post_publish(&base, "", &message(Some(&room), "news", &format!("m{n}"))).await;
        match frame(&mut fast).await {
            BrokerFrame::Message { delivery } => assert_eq!(delivery.text, format!("m{n}")),
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut got = 0;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .expect("closed within 5 s")
        {
            Some(Ok(WsMessage::Close(Some(c)))) => break c,
            Some(Ok(WsMessage::Text(_))) => got += 1,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(got, 1, "one delivery within its prefetch window");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("too slow"), "{}", close.reason);
}

/// The seqs of the deliveries `socket` reads until `until` has come (replayed ones included).
async fn seqs_until(socket: &mut Socket, until: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.last() != Some(&until) {
        match frame(socket).await {
            BrokerFrame::Message { delivery } => seqs.push(delivery.seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    seqs
}

/// A server whose publish rate is off: these tests publish as fast as they can.
async fn unlimited_server() -> common::TestServer {
    let limits = Limits {
        publish_rate: Rate {
            per_second: 0,
            burst: 0,
        },
        ..Limits::default()
    };
    common::TestServer::with_config(Config {
        limits,
        ..Config::default()
    })
    .await
}

#[tokio::test]
async fn an_untraced_subscriber_written_to_directly_gets_its_answers_and_deliveries_in_order() {
    // Nobody traces these sockets, so publishers write to them directly (`shared_socket`);
    // a subscribe with a replay, made while publishes race in, must still come out as the
    // answer, the replayed messages, then the live ones: no gap, no repeat, no overtaking.
    let server = unlimited_server().await;
    let base = server.url("");
    let room = format!("direct-{}", std::process::id());
    let mut early = open(&base, &format!("as=client-1&room={room}")).await;
    subscribe(&mut early, "news", None).await;
    let publisher = {
        let base = base.clone();
        let room = room.clone();
        tokio::spawn(async move {
            for n in 1..=300 {
                let response =
                    post_publish(&base, "", &message(Some(&room), "news", &format!("m{n}"))).await;
                assert_eq!(response.status(), 202);
            }
        })
    };
    // Joins while the publishes go on, asking for the whole history.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut late = open(&base, &format!("as=client-2&room={room}")).await;
    send(
        &mut late,
        SubscriberFrame::Subscribe {
            topic: "news".into(),
            replay: MAX_HISTORY,
            prefetch: None,
        },
    )
    .await;
    let BrokerFrame::Subscribed { replayed, .. } = frame(&mut late).await else {
        panic!("the answer comes before any delivery");
    };
    publisher.await.unwrap();
    let all = seqs_until(&mut early, 300).await;
    assert_eq!(all, (1..=300).collect::<Vec<_>>());
    let seqs = seqs_until(&mut late, 300).await;
    let first = seqs[0];
    assert_eq!(seqs, (first..=300).collect::<Vec<_>>(), "in order, no gap");
    assert!(replayed as u64 <= MAX_HISTORY as u64 && first > 0);
    let direct = server.state.pubsub.broker.topics().written_directly();
    assert!(
        direct > 300,
        "most deliveries were written directly: {direct}"
    );
}

/// Publishes 8 KB messages to `room`'s `news` as fast as `reader` (a subscriber that keeps up)
/// takes them, until the room's other subscriber, which reads nothing, has been dropped; how
/// many were published.
async fn publish_until_dropped(
    server: &common::TestServer,
    room: &str,
    reader: &mut Socket,
) -> u64 {
    let topics = server.state.pubsub.broker.topics();
    let text = "x".repeat(MAX_MESSAGE_BYTES - 16);
    let (mut sent, client) = (0u64, reqwest::Client::new());
    while topics.subscriber_count() == 2 {
        sent += 1;
        assert!(sent < 20_000, "the stalled subscriber was never dropped");
        let response = client
            .post(server.url("/api/pubsub/publish"))
            .json(&message(Some(room), "news", &format!("{sent}{text}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        match frame(reader).await {
            BrokerFrame::Message { delivery } => assert_eq!(delivery.seq, sent),
            other => panic!("unexpected {other:?}"),
        }
    }
    sent
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_dropped_and_every_frame_it_got_is_whole() {
    // Written to directly, a socket whose client reads nothing fills; what it could not take
    // waits (a tail the task finishes, or the queue), then it is dropped as too slow. Every
    // frame it was sent must arrive whole and in order: no frame written inside another.
    let server = unlimited_server().await;
    let base = server.url("");
    let room = format!("stalled-{}", std::process::id());
    let mut stalled = open(&base, &format!("as=client-3&room={room}")).await;
    subscribe(&mut stalled, "news", None).await;
    let mut reader = open(&base, &format!("as=client-1&room={room}")).await;
    subscribe(&mut reader, "news", None).await;
    let topics = server.state.pubsub.broker.topics().clone();
    let sent = publish_until_dropped(&server, &room, &mut reader).await;
    // Now it reads: whole frames, seq 1, 2, 3, … then the end.
    let mut expected = 1;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled.next())
            .await
            .expect("the stalled socket ends")
        {
            Some(Ok(WsMessage::Text(t))) => {
                let BrokerFrame::Message { delivery } =
                    serde_json::from_str::<BrokerFrame>(&t).expect("a whole frame")
                else {
                    panic!("a delivery");
                };
                assert_eq!(delivery.seq, expected);
                assert!(delivery.text.starts_with(&expected.to_string()));
                expected += 1;
            }
            Some(Ok(WsMessage::Close(Some(close)))) => {
                assert_eq!(close.code, CloseCode::Policy);
                break;
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            // The close frame may not fit either: then the connection just ends.
            Some(Err(_)) | None => break,
            Some(Ok(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert!(expected > 1 && expected <= sent + 1, "{expected} of {sent}");
    // Written directly while the socket took them, then queued for its task.
    assert!(topics.written_directly() >= expected - 1);
}

// ---- Two processes, one Redis. ----

/// A backend process on a free port; killed when dropped.
struct Instance {
    child: std::process::Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // `Instance::drop` kills and waits for it.
async fn instance(name: &str, redis: &str) -> Instance {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_backend"))
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--dist",
            "/nonexistent",
        ])
        .args(["--redis-url", redis, "--instance", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the backend binary starts");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/api/health")).await.is_ok() {
            return Instance { child, base };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instance {name} did not start");
}

#[tokio::test]
async fn a_publish_on_one_instance_reaches_subscribers_on_the_other() {
    let Some(redis) = redis_url() else { return };
    let (a, b) = (instance("a", &redis).await, instance("b", &redis).await);
    let room = format!("x-{}", std::process::id());
    let mut on_a = open(&a.base, &format!("as=client-1&room={room}")).await;
    let mut on_b = open(&b.base, &format!("as=client-2&room={room}")).await;
    subscribe(&mut on_a, "news", None).await;
    subscribe(&mut on_b, "news", None).await;
    let response = post_publish(&a.base, "", &message(Some(&room), "news", "across")).await;
    assert_eq!(response.status(), 202);
    let published: Published = response.json().await.unwrap();
    assert_eq!(
        (published.engine.as_str(), published.instance.as_str()),
        ("redis", "a")
    );
    for (socket, delivered_by) in [(&mut on_a, "a"), (&mut on_b, "b")] {
        match frame(socket).await {
            BrokerFrame::Message { delivery } => {
                assert_eq!(delivery.text, "across");
                assert_eq!(delivery.published_by, "a");
                assert_eq!(delivery.delivered_by, delivered_by);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn start_up_with_unreachable_redis_fails_fast_with_a_clear_message() {
    let started = std::time::Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_backend"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--redis-url",
            "redis://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach Redis at redis://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_topic_takes_subscribers_up_to_its_limit_which_a_load_test_may_raise() {
    let room = unique("full");
    let topics = Topics::new(TraceHub::default(), "solo");
    assert_eq!(
        topics.subscriber_limit(),
        protocol::pubsub::MAX_SUBSCRIBERS_PER_TOPIC
    );
    let topics = topics.with_subscriber_limit(2);
    let subs: Vec<Subscriber> = (1..=3)
        .map(|k| topics.subscriber(&room, &format!("client-{k}"), None))
        .collect();
    assert!(subs[0].subscribe("news", 0).is_ok());
    assert!(subs[1].subscribe("news", 0).is_ok());
    let refused = subs[2].subscribe("news", 0).unwrap_err();
    assert!(refused.to_string().contains("at most 2"), "{refused}");
    drop(subs);
    let state = AppState::new(Config {
        max_subscribers_per_topic: Some(10_000),
        ..Config::default()
    });
    assert_eq!(state.pubsub.broker.topics().subscriber_limit(), 10_000);
}

#[tokio::test]
async fn the_default_server_runs_the_embedded_engine() {
    let state = AppState::new(Config::default());
    assert_eq!(state.pubsub.broker.engine(), "memory");
}

/// A private `redis-server` of this test alone (so it can be stopped and started again);
/// stopped when dropped.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    #[allow(clippy::zombie_processes)] // `Drop` kills and waits for it.
    async fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (make test installs it)");
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return OwnRedis { child, port };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("redis-server did not start on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `publish` answers `status`, for at most 15 s.
async fn publish_until(base: &str, room: &str, text: &str, status: u16) -> reqwest::Response {
    for _ in 0..150 {
        let response = post_publish(base, "", &message(Some(room), "news", text)).await;
        if response.status() == status {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("publish never answered {status}");
}

#[tokio::test]
async fn losing_redis_is_reported_and_the_server_reconnects_without_a_restart() {
    // Only where the suite runs with Redis; this test runs its own, to stop it.
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = OwnRedis::start(port).await;
    let a = instance("a", &redis.url()).await;
    let room = format!("loss-{}", std::process::id());
    let run = format!("loss{}", std::process::id());
    let mut subscriber = open(
        &a.base,
        &format!("as=client-1&room={room}&run={run}&rid=s1"),
    )
    .await;
    subscribe(&mut subscriber, "news", None).await;
    assert_eq!(
        publish_until(&a.base, &room, "before", 202).await.status(),
        202
    );
    assert!(matches!(
        frame(&mut subscriber).await,
        BrokerFrame::Message { .. }
    ));

    // Redis goes away: publishing is refused with a JSON 503, and the run's diagram says why.
    drop(redis);
    let refused = publish_until(&a.base, &room, "during", 503).await;
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().is_some(), "{body}");
    let trace: serde_json::Value = reqwest::get(format!("{}/api/trace/{run}", a.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        trace.to_string().contains("lost Redis"),
        "a note on the diagram: {trace}"
    );

    // Redis comes back on the same address: the same server publishes and delivers again
    // (once its subscription is restored: what is published before that is lost, as pub/sub
    // keeps nothing, so keep publishing until one arrives).
    let _redis = OwnRedis::start(port).await;
    let mut delivered = false;
    for attempt in 0..30 {
        publish_until(&a.base, &room, &format!("after-{attempt}"), 202).await;
        if let Ok(BrokerFrame::Message { delivery }) =
            tokio::time::timeout(Duration::from_millis(500), frame(&mut subscriber)).await
        {
            assert!(delivery.text.starts_with("after-"), "{}", delivery.text);
            delivered = true;
            break;
        }
    }
    assert!(delivered, "delivered again after Redis came back");
}

/// One event of an event stream: its name, id and data.
#[derive(Debug)]
struct SseEvent {
    name: String,
    id: String,
    data: String,
}

/// An event stream's body, read event by event.
struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    async fn open(url: String, last_event_id: Option<&str>) -> Events {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Events {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event with a name (comments and `retry:` skipped); `None` if none comes `within`.
    async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_owned())
                };
                if let Some(name) = field("event:") {
                    return Some(SseEvent {
                        name,
                        id: field("id:").unwrap_or_default(),
                        data: field("data:").unwrap_or_default(),
                    });
                }
            }
            let chunk = tokio::time::timeout(within, self.body.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }

    /// The next `n` deliveries, with their event ids; panics on anything else.
    async fn deliveries(&mut self, n: usize) -> Vec<(String, Delivery)> {
        let mut got = Vec::new();
        while got.len() < n {
            let event = self
                .next(Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("{n} deliveries within 5 s, got {got:?}"));
            assert_eq!(event.name, "message", "{event:?}");
            got.push((event.id, serde_json::from_str(&event.data).unwrap()));
        }
        got
    }
}

#[tokio::test]
async fn an_event_stream_reconnecting_with_last_event_id_gets_exactly_what_it_missed() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let room = format!("resume-{}", std::process::id());
    let url = format!("{base}/api/pubsub/events?as=client-2&room={room}&topics=news");
    let mut first = Events::open(url.clone(), None).await;
    for text in ["m1", "m2"] {
        post_publish(&base, "", &message(Some(&room), "news", text)).await;
    }
    let got = first.deliveries(2).await;
    assert_eq!(got.last().unwrap().0, "2", "the id is the topic's seq");
    drop(first);
    // Two more while the subscriber is away.
    for text in ["m3", "m4"] {
        post_publish(&base, "", &message(Some(&room), "news", text)).await;
    }
    let mut again = Events::open(url, Some("2")).await;
    let got: Vec<(String, u64, String, bool)> = again
        .deliveries(2)
        .await
        .into_iter()
        .map(|(id, d)| (id, d.seq, d.text, d.replayed))
        .collect();
    assert_eq!(
        got,
        [
            ("3".to_owned(), 3, "m3".to_owned(), true),
            ("4".to_owned(), 4, "m4".to_owned(), true)
        ]
    );
    // Nothing repeated; then live again.
    post_publish(&base, "", &message(Some(&room), "news", "m5")).await;
    let (id, live) = again.deliveries(1).await.remove(0);
    assert_eq!(
        (id.as_str(), live.text.as_str(), live.replayed),
        ("5", "m5", false)
    );
}

#[tokio::test]
async fn a_stream_of_several_topics_resumes_each_topic_after_its_own_seq() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let room = format!("resume-2-{}", std::process::id());
    let url = format!("{base}/api/pubsub/events?as=client-2&room={room}&topics=news,sport");
    let mut first = Events::open(url.clone(), None).await;
    post_publish(&base, "", &message(Some(&room), "news", "n1")).await;
    post_publish(&base, "", &message(Some(&room), "sport", "s1")).await;
    let got = first.deliveries(2).await;
    assert_eq!(got[0].0, "news:1,sport:0");
    assert_eq!(got[1].0, "news:1,sport:1");
    drop(first);
    post_publish(&base, "", &message(Some(&room), "sport", "s2")).await;
    post_publish(&base, "", &message(Some(&room), "news", "n2")).await;
    let mut again = Events::open(url.clone(), Some("news:1,sport:1")).await;
    let mut texts: Vec<String> = again
        .deliveries(2)
        .await
        .into_iter()
        .map(|(_, d)| d.text)
        .collect();
    texts.sort();
    assert_eq!(texts, ["n2", "s2"]);
    // A position that is not this stream's is refused plainly, not guessed at.
    let refused = reqwest::Client::new()
        .get(url)
        .header("Last-Event-ID", "7")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn a_replay_of_the_whole_history_keeps_the_stream_open() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let room = format!("full-replay-{}", std::process::id());
    // More than the stream's own queue holds (16): the replay must not count against it.
    for n in 1..=MAX_HISTORY {
        post_publish(&base, "", &message(Some(&room), "news", &format!("m{n}"))).await;
    }
    let url = format!(
        "{base}/api/pubsub/events?as=client-2&room={room}&topics=news&replay={MAX_HISTORY}"
    );
    for last_event_id in [None, Some("0")] {
        let mut events = Events::open(url.clone(), last_event_id).await;
        let seqs: Vec<u64> = events
            .deliveries(MAX_HISTORY as usize)
            .await
            .into_iter()
            .map(|(_, d)| d.seq)
            .collect();
        // The whole history: the last MAX_HISTORY published (the first pass's live one is
        // among them on the second).
        let newest = seqs.last().copied().unwrap();
        let whole: Vec<u64> = (newest + 1 - u64::from(MAX_HISTORY)..=newest).collect();
        assert_eq!(seqs, whole);
        assert_eq!(
            newest,
            u64::from(MAX_HISTORY) + u64::from(last_event_id.is_some())
        );
        // Still open, still delivering.
        let text = format!("live {last_event_id:?}");
        post_publish(&base, "", &message(Some(&room), "news", &text)).await;
        let (_, live) = events.deliveries(1).await.remove(0);
        assert_eq!(live.text, text);
    }
}

#[tokio::test]
async fn an_event_stream_that_stops_reading_is_dropped_with_a_reason_after_whole_events() {
    // The stream's events are pulled from the subscriber's queue as the client takes them: a
    // client that stops reading stops the pulling, its queue fills, and the broker drops it.
    // What it was sent reads whole and in order, then a `dropped` event saying why.
    let server = unlimited_server().await;
    let base = server.url("");
    let room = format!("stalled-sse-{}", std::process::id());
    let url = server.url(&format!(
        "/api/pubsub/events?as=client-3&room={room}&topics=news"
    ));
    let mut stalled = Events::open(url, None).await;
    let mut reader = open(&base, &format!("as=client-1&room={room}")).await;
    subscribe(&mut reader, "news", None).await;
    let sent = publish_until_dropped(&server, &room, &mut reader).await;
    let mut expected = 1;
    loop {
        let event = stalled
            .next(Duration::from_secs(10))
            .await
            .expect("a dropped event ends the stream");
        if event.name == "dropped" {
            assert!(event.data.contains("too slow"), "{event:?}");
            break;
        }
        let delivery: Delivery = serde_json::from_str(&event.data).expect("a whole event");
        assert_eq!((event.name.as_str(), delivery.seq), ("message", expected));
        expected += 1;
    }
    assert!(expected > 1 && expected <= sent, "{expected} of {sent}");
    assert!(
        stalled.next(Duration::from_secs(2)).await.is_none(),
        "the stream ended"
    );
}
