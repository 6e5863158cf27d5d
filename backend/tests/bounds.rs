//! Every bound a client can meet, on a real server: the per-client connection cap (429, released
//! when connections close), the rate limits on job creation and publishing (429 with
//! `Retry-After`; a ticker's own publishes are not counted), WebSocket message sizes (close 1009)
//! on every socket, and store TTLs (everything let go, as `GET /api/debug/stats` shows). Each
//! also checks that the defaults leave normal use alone.

mod common;

use std::time::Duration;

use backend::{Config, limits::Limits, rate_limit::Rate};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    ApiError,
    job::JobSpec,
    pubsub::{BrokerFrame, PublishRequest, Published, SubscriberFrame},
    upload::{NewUpload, sha256_hex},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Error as WsError, Message as WsMessage, protocol::frame::coding::CloseCode},
};

fn with_limits(limits: Limits) -> Config {
    Config {
        limits,
        ..Config::default()
    }
}

async fn stats(server: &common::TestServer) -> Value {
    reqwest::get(server.url("/api/debug/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls the stats until `check` holds, for at most 10 s.
async fn stats_until(server: &common::TestServer, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let now = stats(server).await;
        if check(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stats never got there: {}", stats(server).await)
}

/// Waits (at most 5 s) until the server counts `n` open connections, read from its state: at
/// the cap, a stats request would be refused.
async fn open_connections_until(server: &common::TestServer, n: usize) {
    for _ in 0..100 {
        if server.state.connections.total() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} connections open, not {n}",
        server.state.connections.total()
    );
}

/// One raw HTTP/1.1 request on a fresh connection: the status line and the whole answer.
async fn raw_get(server: &common::TestServer, path: &str) -> String {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn a_client_over_its_connection_cap_gets_a_429_and_closing_one_makes_room() {
    let server = common::TestServer::with_config(with_limits(Limits {
        max_connections_per_client: 4,
        ..Limits::default()
    }))
    .await;
    // Four held connections of different kinds: two idle TCP, an SSE stream and a WebSocket.
    let idle_a = TcpStream::connect(server.addr).await.unwrap();
    let idle_b = TcpStream::connect(server.addr).await.unwrap();
    let job = common::create_job(server.url("/api/jobs"), 5, 2_000).await;
    let sse = reqwest::get(server.url(&format!("/api/jobs/{}/events", job.job.0)))
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let (socket, _) = connect_async(server.ws_url("/api/push/ws")).await.unwrap();
    open_connections_until(&server, 4).await;

    let refused = raw_get(&server, "/api/health").await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    let body = refused.split("\r\n\r\n").nth(1).unwrap();
    let error: ApiError = serde_json::from_str(body).unwrap();
    assert!(error.error.contains("at most 4"), "{}", error.error);
    match connect_async(server.ws_url("/api/pubsub/ws")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("a fifth connection upgraded: {other:?}"),
    }

    drop(idle_a);
    open_connections_until(&server, 3).await;
    assert_eq!(server.state.connections.clients(), 1);
    assert!(
        raw_get(&server, "/api/health")
            .await
            .starts_with("HTTP/1.1 200")
    );

    // Closing every kind of connection releases its count.
    drop((idle_b, sse, socket));
    open_connections_until(&server, 0).await;
    assert_eq!(server.state.connections.clients(), 0);
}

#[tokio::test]
async fn the_default_cap_leaves_a_browser_session_alone() {
    let server = common::TestServer::start().await;
    // Far more than a page (six HTTP/1.1 connections, a trace socket and a few demo sockets)
    // or the browser tests (several pages at once) hold.
    let mut held = Vec::new();
    for _ in 0..64 {
        let (socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
        held.push(socket);
    }
    let health = reqwest::get(server.url("/api/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    drop(health);
    // The 64 sockets and the stats request's own connection, once the health request's
    // connection has finished closing (on a loaded machine that can lag behind).
    stats_until(&server, |s| s["connections"] == 65).await;
}

async fn submit_job(client: &reqwest::Client, server: &common::TestServer) -> reqwest::Response {
    client
        .post(server.url("/api/jobs"))
        .json(&JobSpec {
            steps: 1,
            step_ms: 10,
            payload_bytes: 0,
        })
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn job_creation_is_rate_limited_per_client_with_retry_after() {
    let server = common::TestServer::with_config(with_limits(Limits {
        // One token a second: the five requests below that must find the bucket empty have a
        // whole second to arrive (at 4 a second they had 250 ms, too little on a loaded
        // machine).
        job_rate: Rate {
            per_second: 1,
            burst: 3,
        },
        ..Limits::default()
    }))
    .await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(submit_job(&client, &server).await.status(), 202);
    }
    let refused = submit_job(&client, &server).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: ApiError = refused.json().await.unwrap();
    assert!(
        error.error.contains("at most 1 job creations"),
        "{}",
        error.error
    );
    // The sync/async demo's work draws on the same bucket; other requests are not limited.
    let work = client
        .get(server.url("/api/work/async?ms=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(work.status(), 429);
    let echo = client
        .post(server.url("/api/echo"))
        .json(&json!({ "customer": "a", "items": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(submit_job(&client, &server).await.status(), 202, "refilled");
}

#[tokio::test]
async fn the_default_job_rate_leaves_the_demos_alone() {
    let server = common::TestServer::start().await;
    let client = reqwest::Client::new();
    // The compare demo starts four jobs at once; the sync/async demo fires its calls together:
    // several pages of both at once stay far below the default burst.
    let answers =
        futures_util::future::join_all((0..40).map(|_| submit_job(&client, &server))).await;
    assert!(answers.iter().all(|r| r.status() == 202));
}

async fn publish(server: &common::TestServer, text: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/pubsub/publish"))
        .json(&PublishRequest {
            room: Some("limits".into()),
            topic: "news".into(),
            text: text.into(),
            publisher: None,
        })
        .send()
        .await
        .unwrap()
}

use common::Socket;

/// The next broker frame on a pub/sub socket (10 s at most).
async fn broker_frame(socket: &mut Socket) -> BrokerFrame {
    common::next_json(socket, Duration::from_secs(10)).await
}

#[tokio::test]
async fn publishing_is_rate_limited_but_a_tickers_own_publishes_are_not() {
    // One token a second, two at most: the three publishes at the end have a whole second in
    // which the third must be refused.
    let server = common::TestServer::with_config(with_limits(Limits {
        publish_rate: Rate {
            per_second: 1,
            burst: 2,
        },
        ..Limits::default()
    }))
    .await;
    // A subscriber first: the ticker's deliveries say when it is done, where a sleep guessed.
    let (mut subscriber, _) = connect_async(server.ws_url("/api/pubsub/ws?room=limits"))
        .await
        .unwrap();
    let subscribe = SubscriberFrame::Subscribe {
        topic: "news".into(),
        replay: 0,
        prefetch: None,
    };
    subscriber
        .send(WsMessage::Text(
            serde_json::to_string(&subscribe).unwrap().into(),
        ))
        .await
        .unwrap();
    assert!(matches!(
        broker_frame(&mut subscriber).await,
        BrokerFrame::Subscribed { .. }
    ));
    // Starting the ticker takes one token; its 20 publishes take none.
    let ticker = reqwest::Client::new()
        .post(server.url("/api/pubsub/ticker"))
        .json(&json!({ "room": "limits", "topic": "news", "per_second": 20, "bytes": 8, "seconds": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(ticker.status(), 202);
    // The token was taken before the answer left: a second after it, the bucket is full again.
    let refilled = tokio::time::Instant::now() + Duration::from_secs(1);
    for n in 1..=20 {
        match broker_frame(&mut subscriber).await {
            BrokerFrame::Message { delivery } => {
                assert_eq!((delivery.seq, delivery.publisher.as_str()), (n, "ticker"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::time::sleep_until(refilled).await;
    let first: Published = publish(&server, "a").await.json().await.unwrap();
    assert_eq!(
        first.seq, 21,
        "all 20 of the ticker's publishes went through"
    );
    assert_eq!(publish(&server, "b").await.status(), 202);
    let refused = publish(&server, "c").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        refused
            .json::<ApiError>()
            .await
            .unwrap()
            .error
            .contains("publishes"),
        "the message names what is limited"
    );
}

#[tokio::test]
async fn the_default_publish_rate_leaves_the_demo_alone() {
    let server = common::TestServer::start().await;
    for n in 0..50 {
        assert_eq!(publish(&server, &format!("m{n}")).await.status(), 202);
    }
}

/// Sends `bytes` of text on a socket at `path` and returns how the server closed it, or
/// `Some(0)` if it did not `within` that time.
async fn close_after_sending(
    server: &common::TestServer,
    path: &str,
    bytes: usize,
    within: Duration,
) -> Option<u16> {
    let (mut socket, _) = connect_async(server.ws_url(path)).await.unwrap();
    socket
        .send(WsMessage::Text("x".repeat(bytes).into()))
        .await
        .unwrap();
    let wait = async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(WsMessage::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(within, wait).await.unwrap_or(Some(0))
}

#[tokio::test]
async fn every_socket_closes_an_oversize_message_with_1009_and_keeps_a_normal_one() {
    let server = common::TestServer::start().await;
    let limit = Limits::default().ws_max_message;
    // A close that must come may take long on a loaded machine (the wait ends when it comes);
    // watching for one that must not come, 1.5 s is enough.
    let (must_close, stays_open) = (Duration::from_secs(10), Duration::from_millis(1_500));
    for path in ["/api/push/ws", "/api/pubsub/ws", "/api/trace/ws"] {
        assert_eq!(
            close_after_sending(&server, path, limit + 1, must_close).await,
            Some(u16::from(CloseCode::Size)),
            "{path}"
        );
        // Just under the limit: an unreadable command, answered, the socket open (0: no close).
        assert_eq!(
            close_after_sending(&server, path, limit - 16, stays_open).await,
            Some(0),
            "{path}"
        );
    }
    let small = common::TestServer::with_config(with_limits(Limits {
        ws_max_message: 1024,
        ..Limits::default()
    }))
    .await;
    assert_eq!(
        close_after_sending(&small, "/api/push/ws", 2048, must_close).await,
        Some(1009),
        "the limit is configurable"
    );
}

#[tokio::test]
async fn with_a_short_ttl_every_store_lets_go_and_stats_report_it() {
    let server = common::TestServer::with_config(with_limits(Limits {
        store_ttl: Some(Duration::from_secs(2)),
        ..Limits::default()
    }))
    .await;
    let client = reqwest::Client::new();
    let traced = |path: &str, rid: &str| server.url(&format!("{path}?run=ttl&rid={rid}"));
    assert_eq!(
        client
            .post(traced("/api/jobs", "1"))
            .json(&JobSpec {
                steps: 1,
                step_ms: 10,
                payload_bytes: 0
            })
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    let bytes = b"hello".to_vec();
    let upload = client
        .post(server.url("/api/uploads"))
        .json(&NewUpload {
            name: "a".into(),
            size: 5,
            sha256: sha256_hex(&bytes),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let cluster = client
        .post(traced("/api/lb/cluster", "2"))
        .json(&json!({ "mode": "store", "sticky": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(cluster.status(), 201);
    let login = client
        .post(traced("/api/lb/login", "3"))
        .json(&json!({ "user": "ada" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let sidecar = client
        .post(traced("/api/sidecar/setup", "4"))
        .json(&json!({ "fail_percent": 0, "rate_per_s": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(sidecar.status(), 201);
    let slow = client
        .get(server.url("/api/mux/slow?ms=10&run=ttl&rid=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);
    assert_eq!(publish(&server, "kept a while").await.status(), 202);
    // A queue run: its puller keeps polling (and recording) until the run expires.
    let queue = client
        .post(traced("/api/queue/run", "6"))
        .json(&json!({ "consumers": 1, "prefetch": 1, "work_ms": 0, "poll_ms": 200 }))
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), 201);
    // A request over a shaped link: the run's link is kept.
    let shaped = client
        .get(server.url("/api/health?run=ttl&rid=7&link=4g"))
        .send()
        .await
        .unwrap();
    assert_eq!(shaped.status(), 200);

    let held = stats(&server).await;
    let stores = &held["stores"];
    for store in [
        "trace_runs",
        "jobs",
        "uploads",
        "clusters",
        "sessions",
        "sidecars",
        "mux_runs",
        "queue_runs",
        "shaped_runs",
        "pubsub_topics",
    ] {
        assert!(
            stores[store].as_u64().unwrap() >= 1,
            "{store} holds something: {held}"
        );
    }
    assert!(held["alive_tasks"].as_u64().unwrap() > 0);

    // The sweep (every quarter TTL) empties every store on its own, and the actors' tasks end;
    // the expired runs give back every byte they held.
    assert!(held["trace_bytes"].as_u64().unwrap() > 0);
    stats_until(&server, |s| {
        s["stores"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.as_u64().unwrap_or(0) == 0)
            && s["trace_bytes"] == 0
    })
    .await;
    drop(client);
    stats_until(&server, |s| s["connections"] == 1).await;
    let gone = reqwest::get(server.url("/api/trace/ttl")).await.unwrap();
    assert_eq!(gone.status(), 404);
}
