//! Fair shares of the server-wide stores, on a real server behind a trusted proxy (clients
//! named by `X-Forwarded-For`): a client past its share gets a 429 with `Retry-After` and a
//! reason naming what and how many, or loses only its own idle entries, while another client is
//! still served. TLS handshakes, which happen before any client header, are counted per peer.

mod common;

use std::time::Duration;

use backend::{Config, limits::Limits, rate_limit::Rate};
use protocol::{ApiError, stateful_stateless::ClusterInfo};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::{io::AsyncReadExt, net::TcpSocket};

/// Behind a trusted proxy on 127.0.0.1, with the per-client rates off (a share, not a rate,
/// is what these tests meet).
async fn start() -> common::TestServer {
    let unlimited = Rate {
        per_second: 0,
        burst: 0,
    };
    common::TestServer::with_config(Config {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        limits: Limits {
            job_rate: unlimited,
            publish_rate: unlimited,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await
}

/// `POST path` with a JSON body, as `client`.
async fn post(server: &common::TestServer, client: &str, path: &str, body: Value) -> Response {
    reqwest::Client::new()
        .post(server.url(path))
        .header("x-forwarded-for", client)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Checks `response` is a 429 with a whole-seconds `Retry-After` of at least one, whose
/// reason contains `reason`.
async fn assert_refused(response: Response, reason: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let error = response.json::<ApiError>().await.unwrap().error;
    assert!(error.contains(reason), "{error:?} lacks {reason:?}");
}

#[tokio::test]
async fn jobs_past_a_clients_share_are_refused_while_another_client_is_served() {
    let server = start().await;
    // Long jobs: still running (so in use) when the share is full.
    let long = json!({ "steps": 4, "step_ms": 5_000, "payload_bytes": 0 });
    for _ in 0..backend::JOBS_PER_CLIENT {
        let created = post(&server, "203.0.113.1", "/api/jobs", long.clone()).await;
        assert_eq!(created.status(), StatusCode::ACCEPTED);
    }
    let refused = post(&server, "203.0.113.1", "/api/jobs", long.clone()).await;
    assert_refused(
        refused,
        &format!(
            "one client may hold {} jobs at once; you hold {}",
            backend::JOBS_PER_CLIENT,
            backend::JOBS_PER_CLIENT
        ),
    )
    .await;
    let other = post(&server, "203.0.113.2", "/api/jobs", long).await;
    assert_eq!(other.status(), StatusCode::ACCEPTED, "another client");
}

#[tokio::test]
async fn a_clients_finished_jobs_make_room_for_its_new_ones() {
    let server = start().await;
    let quick = json!({ "steps": 1, "step_ms": 10, "payload_bytes": 0 });
    for _ in 0..backend::JOBS_PER_CLIENT + 5 {
        let created = post(&server, "203.0.113.1", "/api/jobs", quick.clone()).await;
        assert_eq!(created.status(), StatusCode::ACCEPTED);
        // Finished (its worker let go of it) before the next one comes.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(server.state.jobs.len(), backend::JOBS_PER_CLIENT);
}

#[tokio::test]
async fn uploads_and_their_bytes_are_shared_per_client() {
    let server = start().await;
    let announce = |size: u64| json!({ "name": "a.bin", "size": size, "sha256": "0".repeat(64) });
    for _ in 0..backend::UPLOADS_PER_CLIENT {
        let created = post(&server, "203.0.113.1", "/api/uploads", announce(1_000)).await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let refused = post(&server, "203.0.113.1", "/api/uploads", announce(1_000)).await;
    assert_refused(refused, "one client may hold 16 uploads at once").await;
    // Bytes: a whole largest file, then one byte more.
    let largest = protocol::upload::MAX_FILE_BYTES;
    let created = post(&server, "203.0.113.2", "/api/uploads", announce(largest)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let refused = post(&server, "203.0.113.2", "/api/uploads", announce(1)).await;
    assert_refused(
        refused,
        "one client may announce 16.0 MiB of uploads at once",
    )
    .await;
    let other = post(&server, "203.0.113.3", "/api/uploads", announce(1_000)).await;
    assert_eq!(other.status(), StatusCode::CREATED, "another client");
}

#[tokio::test]
async fn tickers_past_a_clients_share_are_refused_while_another_client_is_served() {
    let server = start().await;
    let ticker = |room: &str| json!({ "room": room, "topic": "news", "per_second": 1, "bytes": 8, "seconds": 30 });
    for n in 0..backend::TICKERS_PER_CLIENT {
        let started = post(
            &server,
            "203.0.113.1",
            "/api/pubsub/ticker",
            ticker(&format!("r{n}")),
        )
        .await;
        assert_eq!(started.status(), StatusCode::ACCEPTED);
    }
    // Restarting one of its own rooms' tickers replaces it: not one more.
    let again = post(&server, "203.0.113.1", "/api/pubsub/ticker", ticker("r0")).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let refused = post(&server, "203.0.113.1", "/api/pubsub/ticker", ticker("more")).await;
    assert_refused(refused, "one client may hold 4 running tickers at once").await;
    let other = post(&server, "203.0.113.2", "/api/pubsub/ticker", ticker("more")).await;
    assert_eq!(other.status(), StatusCode::ACCEPTED, "another client");
}

#[tokio::test]
async fn a_clients_third_cluster_stops_its_own_oldest_not_another_clients() {
    let server = start().await;
    let cluster = |run: &str| format!("/api/lb/cluster?run={run}&rid=1");
    let spec = json!({ "mode": "memory", "sticky": false });
    let theirs = post(&server, "203.0.113.2", &cluster("theirs"), spec.clone()).await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    for run in ["mine-1", "mine-2", "mine-3"] {
        let started = post(&server, "203.0.113.1", &cluster(run), spec.clone()).await;
        assert_eq!(started.status(), StatusCode::CREATED);
        started.json::<ClusterInfo>().await.unwrap();
    }
    assert_eq!(server.state.clusters.len(), 3);
    let login = |run: &str| format!("/api/lb/login?run={run}&rid=2");
    let user = json!({ "user": "ada" });
    let gone = post(&server, "203.0.113.1", &login("mine-1"), user.clone()).await;
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "its oldest was stopped"
    );
    for (client, run) in [("203.0.113.2", "theirs"), ("203.0.113.1", "mine-3")] {
        let answer = post(&server, client, &login(run), user.clone()).await;
        assert_eq!(answer.status(), StatusCode::OK, "{run} still runs");
    }
}

#[tokio::test]
async fn the_blocking_pools_queue_is_shared_per_client() {
    let server = start().await;
    let work = |client: &'static str| {
        let url = server.url("/api/work/blocking?ms=1000");
        async move {
            reqwest::Client::new()
                .get(url)
                .header("x-forwarded-for", client)
                .send()
                .await
                .unwrap()
        }
    };
    let mine: Vec<_> = (0..backend::QUEUE_PER_CLIENT)
        .map(|_| tokio::spawn(work("203.0.113.1")))
        .collect();
    // Every one of them queued or running (the first two finish after a second).
    let queued = tokio::time::Instant::now();
    while server.state.pool.waiting() < backend::QUEUE_PER_CLIENT {
        assert!(
            queued.elapsed() < Duration::from_millis(900),
            "not all queued in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_refused(
        work("203.0.113.1").await,
        "one client may hold 12 jobs queued for the pool at once",
    )
    .await;
    let other = work("203.0.113.2").await;
    assert_eq!(other.status(), StatusCode::OK, "another client");
    for answer in mine {
        assert_eq!(answer.await.unwrap().status(), StatusCode::OK);
    }
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the server closes `tcp` within `within` (rather than waiting for a handshake).
async fn closed_within(tcp: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, tcp.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn tls_handshakes_past_a_peers_share_are_closed_while_another_peer_is_served() {
    let server = common::TestServer::start().await;
    let identity = backend::tls::self_signed(vec!["localhost".into()]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = server.state.clone();
    tokio::spawn(async move {
        let stopped = state.stopped();
        backend::tls::serve_tls(listener, identity.config, state, stopped).await
    });
    // Handshakes begun and never finished, each holding a slot for up to ten seconds.
    let mut stalled = Vec::new();
    for _ in 0..backend::tls::HANDSHAKES_PER_CLIENT {
        stalled.push(connect_from([127, 0, 0, 1], addr).await);
    }
    let mut one_more = connect_from([127, 0, 0, 1], addr).await;
    assert!(
        closed_within(&mut one_more, Duration::from_secs(2)).await,
        "past the share: closed at once"
    );
    let mut other = connect_from([127, 0, 0, 2], addr).await;
    assert!(
        !closed_within(&mut other, Duration::from_millis(500)).await,
        "another peer waits for its handshake"
    );
    for tcp in &mut stalled {
        assert!(
            !closed_within(tcp, Duration::from_millis(50)).await,
            "the stalled ones are still open"
        );
    }
}
