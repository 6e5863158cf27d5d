//! The multiplexing demo with real clients: the proxy really uses one HTTP/2 connection or K
//! HTTP/1.1 ones (counted where the upstream accepts them), bad input is a named 4xx, an
//! abandoned run closes its connections, and the TLS listener speaks HTTP/2.

mod common;

use std::{collections::BTreeSet, time::Duration};

use backend::{MAX_PROXY_RUNS, tls};
use bytes::Bytes;
use protocol::{
    ApiError,
    multiplexing::{ProxyReport, SlowAnswer},
    trace::{Kind, Message, RunId, Transport},
};

async fn proxy(server: &common::TestServer, query: &str) -> ProxyReport {
    let response = reqwest::get(server.url(&format!("/api/mux/proxy?{query}")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn server_trace(server: &common::TestServer, run: &str) -> Vec<Message> {
    server.state.trace.snapshot(&RunId(run.into())).unwrap()
}

#[tokio::test]
async fn h2_forwards_every_item_as_a_stream_of_one_connection() {
    let server = common::TestServer::start().await;
    let upstream = server.state.mux.upstream(&server.state).await.unwrap();
    let before = upstream.accepted();

    // Items of 1 s: if they went one after another, or even in two waves, the run would take
    // 2 s or more; overlapped, about one item's time. Bounds relative to the item time leave a
    // loaded machine a whole item's time of slack.
    const ITEM_MS: f64 = 1_000.0;
    let report = proxy(&server, "n=16&via=h2&item_ms=1000&run=h2run&rid=1").await;

    assert_eq!(
        upstream.accepted() - before,
        1,
        "one TCP connection accepted"
    );
    assert_eq!(
        (report.connections_opened, report.upstream_connections),
        (1, 1)
    );
    assert_eq!(report.max_concurrent, 16, "all sixteen in flight at once");
    assert!(
        report.total_ms >= ITEM_MS && report.total_ms < 2.0 * ITEM_MS,
        "they overlapped: {} ms for items of {ITEM_MS} ms",
        report.total_ms
    );
    let streams: BTreeSet<u64> = report.forwarded.iter().filter_map(|f| f.stream).collect();
    assert_eq!(
        streams,
        (0..16).map(|i| 2 * i + 1).collect(),
        "client streams are odd"
    );

    let trace = server_trace(&server, "h2run");
    let requests: Vec<&Message> = trace
        .iter()
        .filter(|m| m.kind == Kind::Request && m.to.0 == "conn-1")
        .collect();
    assert_eq!(requests.len(), 16);
    assert!(
        requests
            .iter()
            .all(|m| m.transport == Transport::H2 && m.stream.is_some())
    );
    let answers = trace
        .iter()
        .filter(|m| m.kind == Kind::Response && m.from.0 == "conn-1")
        .count();
    assert_eq!(answers, 16);
    assert!(trace.iter().any(|m| m.kind == Kind::Connect));
    assert!(trace.iter().any(|m| m.kind == Kind::Close));
}

#[tokio::test]
async fn an_http1_pool_uses_k_connections_and_items_wait_for_a_free_one() {
    let server = common::TestServer::start().await;
    let upstream = server.state.mux.upstream(&server.state).await.unwrap();
    let before = upstream.accepted();

    let report = proxy(&server, "n=16&via=h1&pool=4&item_ms=200&run=h1run&rid=1").await;

    assert_eq!(
        upstream.accepted() - before,
        4,
        "four TCP connections accepted"
    );
    assert_eq!(
        (report.connections_opened, report.upstream_connections),
        (4, 4)
    );
    assert_eq!(
        report.max_concurrent, 4,
        "one item per connection at a time"
    );
    assert!(
        report.total_ms >= 790.0,
        "four waves of 200 ms: {} ms",
        report.total_ms
    );
    // The first four wait only for their connection to open (however long a loaded machine
    // takes); every later one waits for an item to finish (200 ms) on top: each of them waited
    // longer than any of the first four.
    let waited: Vec<f64> = report.forwarded.iter().map(|f| f.waited_ms).collect();
    let first_wave = waited[..4].iter().copied().fold(f64::MIN, f64::max);
    let later = waited[4..].iter().copied().fold(f64::MAX, f64::min);
    assert!(first_wave < later, "{waited:?}");
    assert!(waited[4..].iter().all(|w| *w > 150.0), "{waited:?}");

    let trace = server_trace(&server, "h1run");
    for lane in ["conn-1", "conn-2", "conn-3", "conn-4"] {
        let on_lane: Vec<&Message> = trace
            .iter()
            .filter(|m| m.kind == Kind::Request && m.to.0 == lane)
            .collect();
        assert_eq!(on_lane.len(), 4, "{lane}");
        assert!(
            on_lane
                .iter()
                .all(|m| m.transport == Transport::Http1 && m.stream.is_none())
        );
        assert_eq!(
            on_lane
                .iter()
                .filter_map(|m| m.connection)
                .collect::<BTreeSet<_>>()
                .len(),
            1,
            "{lane} is one connection"
        );
    }
    assert!(
        trace
            .iter()
            .any(|m| m.kind == Kind::Note && m.label.contains("wait for a free one"))
    );
}

#[tokio::test]
async fn bad_parameters_are_named_422s_and_open_nothing() {
    let server = common::TestServer::start().await;
    let upstream = server.state.mux.upstream(&server.state).await.unwrap();
    for (query, names) in [
        ("n=0&via=h2&item_ms=10", "n"),
        ("n=65&via=h2&item_ms=10", "n"),
        ("n=4&via=h3&item_ms=10", "via"),
        ("n=4&via=h1&item_ms=10", "pool"),
        ("n=4&via=h1&pool=17&item_ms=10", "pool"),
        ("n=4&via=h2&item_ms=999999", "item_ms"),
        ("via=h2&item_ms=10", "n"),
        ("n=lots&via=h2&item_ms=10", "n"),
    ] {
        let response = reqwest::get(server.url(&format!("/api/mux/proxy?{query}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{query}");
        let body: ApiError = response.json().await.unwrap();
        assert!(body.error.contains(names), "{query}: {}", body.error);
    }
    for (query, status) in [
        ("ms=20000&run=r&rid=1", 422),
        ("ms=10", 400),
        ("ms=x&run=r&rid=1", 422),
    ] {
        let response = reqwest::get(server.url(&format!("/api/mux/slow?{query}")))
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{query}");
        response.json::<ApiError>().await.unwrap();
    }
    assert_eq!(upstream.accepted(), 0, "no connection was opened upstream");
    assert_eq!(server.state.mux.free_run_slots(), MAX_PROXY_RUNS);
}

#[tokio::test]
async fn a_run_abandoned_by_its_client_closes_its_connections() {
    let server = common::TestServer::start().await;
    let upstream = server.state.mux.upstream(&server.state).await.unwrap();
    // Two waves of 5 s items: left alone, the run would hold its connections for 10 s.
    const ITEM_MS: u64 = 5_000;
    let started = std::time::Instant::now();
    let run = tokio::spawn(
        reqwest::Client::new()
            .get(server.url(&format!(
                "/api/mux/proxy?n=8&via=h1&pool=4&item_ms={ITEM_MS}"
            )))
            .send(),
    );
    // The client gives up once the run is under way (all four connections open), however long
    // a loaded machine takes to get there.
    tokio::time::timeout(Duration::from_secs(5), async {
        while upstream.accepted() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("four connections accepted within 5 s");
    assert!(!run.is_finished(), "the run is still going");
    run.abort();
    assert!(
        run.await.unwrap_err().is_cancelled(),
        "the client gave up mid-run"
    );
    assert_eq!(upstream.accepted(), 4);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while upstream.open() != 0 || server.state.mux.free_run_slots() != MAX_PROXY_RUNS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "still open: {} upstream connections, {} run slots free",
        upstream.open(),
        server.state.mux.free_run_slots()
    );
    // Before the run could have ended by itself: closed because the client went away.
    assert!(
        started.elapsed() < Duration::from_millis(2 * ITEM_MS),
        "closed only after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_slow_endpoint_counts_a_runs_requests_held_at_once() {
    let server = common::TestServer::start().await;
    let client = reqwest::Client::new();
    // Held 1.5 s each: all five arrive while the first is still held, even when a loaded
    // machine spreads their arrivals out.
    let calls = (1..=5).map(|i| {
        client
            .get(server.url(&format!("/api/mux/slow?ms=1500&run=slow&rid={i}")))
            .send()
    });
    let answers: Vec<SlowAnswer> = futures_util::future::join_all(calls.map(|c| async {
        let response = c.await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }))
    .await;
    // reqwest opens a connection per request: nothing stops all five from overlapping.
    assert!(answers.iter().all(|a| a.max_in_flight == 5), "{answers:?}");
    assert!(answers.iter().all(|a| a.version == "HTTP/1.1"));
    assert!(server.state.mux.in_flight.len() == 1);
}

#[tokio::test]
async fn the_tls_listener_offers_http2_by_alpn() {
    let server = common::TestServer::start().await;
    let identity = tls::self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    assert_eq!(identity.fingerprint.split(':').count(), 32);
    let addr = common::tls::serve(&server, &identity).await;
    let tls =
        common::tls::connect_offering(addr, identity.certificate.clone(), &[b"h2", b"http/1.1"])
            .await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let (sender, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut sender = sender.ready().await.unwrap();
    let request = axum::http::Request::get(format!(
        "https://localhost:{}/api/mux/slow?ms=10&run=tls&rid=1",
        addr.port()
    ))
    .body(())
    .unwrap();
    let (response, _) = sender.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk: Bytes = chunk.unwrap();
        bytes.extend_from_slice(&chunk);
    }
    let answer: SlowAnswer = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer.version, "HTTP/2.0");
    // The exchange was traced like any other, as HTTP/2.
    let trace = server.state.trace.snapshot(&RunId("tls".into())).unwrap();
    assert!(trace.iter().all(|m| m.transport == Transport::H2));
}

#[tokio::test]
async fn the_tls_listener_caps_request_heads_over_http1_and_http2() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = common::TestServer::start().await;
    let (addr, certificate) = common::tls::start_tls(&server).await;

    // HTTP/1.1 over TLS: a 100 KiB head is refused as on the plain listener (axum::serve
    // took heads up to hyper's 400 KiB buffer).
    let mut h1 = common::tls::connect_tls(addr, certificate.clone(), b"http/1.1").await;
    let head = format!(
        "GET /api/health HTTP/1.1\r\nhost: localhost\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    // The server may close while the head is still being written.
    let _ = h1.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), h1.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "refused: {:?}",
        &answer[..answer.len().min(80)]
    );

    // HTTP/2: the server announces its header list limit, and a list over it is refused.
    let tls = common::tls::connect_tls(addr, certificate.clone(), b"h2").await;
    let (sender, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut sender = sender.ready().await.unwrap();
    let request = |value: String| {
        axum::http::Request::get(format!("https://localhost:{}/api/health", addr.port()))
            .header("x-big", value)
            .body(())
            .unwrap()
    };
    let refused = match sender.send_request(request("a".repeat(32 * 1024)), true) {
        Ok((response, _)) => match response.await {
            Ok(response) => response.status() == 431,
            Err(_) => true,
        },
        Err(_) => true,
    };
    assert!(refused, "a 32 KiB header list over HTTP/2 is refused");
    let mut sender =
        h2::client::handshake(common::tls::connect_tls(addr, certificate, b"h2").await)
            .await
            .map(|(sender, connection)| {
                tokio::spawn(connection);
                sender
            })
            .unwrap()
            .ready()
            .await
            .unwrap();
    let (response, _) = sender.send_request(request("ok".into()), true).unwrap();
    assert_eq!(
        response.await.unwrap().status(),
        200,
        "a small one is served"
    );
}
