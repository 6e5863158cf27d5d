//! Who the client is, on a real server: behind a trusted proxy (`trusted_proxies`), clients
//! named by `X-Forwarded-For` get their own limits and pages named by `X-Forwarded-Host` may
//! open WebSockets; from any other peer those headers are ignored. And where a request comes
//! from: cross-site requests to state-changing and expensive routes are refused.

mod common;

use std::time::Duration;

use backend::{Config, limits::Limits, rate_limit::Rate};
use protocol::{ApiError, job::JobSpec};
use reqwest::StatusCode;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Error as WsError, client::IntoClientRequest},
};

/// A server whose job budget is two, refilled at one a second (a test finishes well within).
async fn start(trusted_proxies: &[&str]) -> common::TestServer {
    common::TestServer::with_config(Config {
        trusted_proxies: trusted_proxies.iter().map(|n| n.parse().unwrap()).collect(),
        limits: Limits {
            job_rate: Rate {
                per_second: 1,
                burst: 2,
            },
            max_connections_per_client: 2,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await
}

/// `POST /api/jobs` with this `X-Forwarded-For`; the status.
async fn submit_as(server: &common::TestServer, forwarded_for: &str) -> StatusCode {
    reqwest::Client::new()
        .post(server.url("/api/jobs"))
        .header("x-forwarded-for", forwarded_for)
        .json(&JobSpec {
            steps: 1,
            step_ms: 10,
            payload_bytes: 0,
        })
        .send()
        .await
        .unwrap()
        .status()
}

/// Spends `client`'s whole budget and checks the next one is refused.
async fn exhaust(server: &common::TestServer, client: &str) {
    for _ in 0..2 {
        assert_eq!(submit_as(server, client).await, StatusCode::ACCEPTED);
    }
    assert_eq!(
        submit_as(server, client).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_have_their_own_budgets() {
    let server = start(&["127.0.0.1/32"]).await;
    exhaust(&server, "203.0.113.1").await;
    assert_eq!(
        submit_as(&server, "203.0.113.2").await,
        StatusCode::ACCEPTED,
        "another client behind the same proxy"
    );
    // What a client writes itself stays on the left: the proxy's hop decides.
    assert_eq!(
        submit_as(&server, "203.0.113.2, 203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "spoofing another address does not buy a new budget"
    );
    // One IPv6 /64 is one client.
    exhaust(&server, "2001:db8:1:2::1").await;
    assert_eq!(
        submit_as(&server, "2001:db8:1:2::ffff").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        submit_as(&server, "2001:db8:1:3::1").await,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn without_a_trusted_proxy_forwarded_for_is_ignored() {
    // A peer that is not the trusted proxy: its X-Forwarded-For is spoofed.
    for trusted in [&[][..], &["10.0.0.0/8"][..]] {
        let server = start(trusted).await;
        exhaust(&server, "203.0.113.1").await;
        assert_eq!(
            submit_as(&server, "203.0.113.2").await,
            StatusCode::TOO_MANY_REQUESTS,
            "one peer, one budget (trusted: {trusted:?})"
        );
    }
}

#[tokio::test]
async fn a_trusted_proxys_connections_are_not_capped_per_client() {
    let server = start(&["127.0.0.1/32"]).await;
    // Twice the per-client cap, held open by "the proxy".
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    let health = reqwest::get(server.url("/api/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(server.state.connections.total(), 5);
    drop(held);

    let capped = start(&[]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(tokio::net::TcpStream::connect(capped.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = reqwest::get(capped.url("/api/health")).await.unwrap();
    assert_eq!(refused.status(), 429, "the same peer, untrusted, is capped");
}

/// Opens the trace socket with this `Origin` and `X-Forwarded-Host`; the handshake's status.
async fn upgrade(server: &common::TestServer, origin: &str, forwarded_host: &str) -> u16 {
    let mut request = server
        .ws_url("/api/trace/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    request
        .headers_mut()
        .insert("x-forwarded-host", forwarded_host.parse().unwrap());
    match connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn websockets_from_the_forwarded_host_are_accepted_only_from_a_trusted_proxy() {
    let behind = start(&["127.0.0.1/32"]).await;
    assert_eq!(
        upgrade(&behind, "https://class.example", "class.example").await,
        101
    );
    assert_eq!(
        upgrade(&behind, "https://evil.example", "class.example").await,
        403
    );
    let direct = start(&[]).await;
    assert_eq!(
        upgrade(&direct, "https://evil.example", "evil.example").await,
        403,
        "an untrusted peer cannot name its own host"
    );
}

/// `method path` with these `Origin` and `Sec-Fetch-Site` headers (and a job as the body); the
/// status and, for a refusal, the JSON error.
async fn from_site(
    server: &common::TestServer,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .json(&JobSpec {
            steps: 1,
            step_ms: 10,
            payload_bytes: 0,
        });
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if status == StatusCode::FORBIDDEN {
        let error: ApiError = response.json().await.expect("a JSON error");
        (status, Some(error.error))
    } else {
        (status, None)
    }
}

#[tokio::test]
async fn cross_site_requests_are_refused_same_origin_and_curl_are_not() {
    let server = common::TestServer::start().await;
    let own = format!("http://{}", server.addr);
    let evil = [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    let (status, error) = from_site(&server, reqwest::Method::POST, "/api/jobs", &evil).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error = error.unwrap();
    assert!(error.starts_with("cross-site request refused: "), "{error}");
    assert!(error.contains("https://evil.example"), "{error}");
    assert_eq!(
        server.state.jobs.len(),
        0,
        "no job was created for the refused request"
    );
    // The expensive GETs too; a plain GET from anywhere is fine.
    let (status, _) = from_site(&server, reqwest::Method::GET, "/api/work/async?ms=1", &evil).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = from_site(&server, reqwest::Method::GET, "/api/health", &evil).await;
    assert_eq!(status, StatusCode::OK);
    // A sibling site (another port) is refused unless allowed.
    let sibling = [
        ("origin", "http://127.0.0.1:1"),
        ("sec-fetch-site", "same-site"),
    ];
    let (status, _) = from_site(&server, reqwest::Method::POST, "/api/jobs", &sibling).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let same_origin = [("origin", own.as_str()), ("sec-fetch-site", "same-origin")];
    for headers in [&same_origin[..], &same_origin[..1], &[]] {
        let (status, error) = from_site(&server, reqwest::Method::POST, "/api/jobs", headers).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{headers:?}: {error:?}");
    }
}

#[tokio::test]
async fn allowed_origins_and_the_forwarded_host_may_call_the_api() {
    let server = common::TestServer::with_config(Config {
        allowed_origins: vec!["http://127.0.0.1:1".to_owned()],
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Config::default()
    })
    .await;
    let post = |headers: &'static [(&'static str, &'static str)]| {
        from_site(&server, reqwest::Method::POST, "/api/jobs", headers)
    };
    let dev = &[
        ("origin", "http://127.0.0.1:1"),
        ("sec-fetch-site", "same-site"),
    ];
    assert_eq!(post(dev).await.0, StatusCode::ACCEPTED);
    let behind = &[
        ("origin", "https://class.example"),
        ("sec-fetch-site", "cross-site"),
        ("x-forwarded-host", "class.example"),
    ];
    assert_eq!(post(behind).await.0, StatusCode::ACCEPTED);
    let other = &[
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("x-forwarded-host", "class.example"),
    ];
    assert_eq!(post(other).await.0, StatusCode::FORBIDDEN);
}
