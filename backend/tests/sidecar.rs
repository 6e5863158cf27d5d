//! The sidecar demo with real clients: it adds a request id and trace context, really retries
//! the app's failures with backoff, and really limits the rate.

mod common;

use std::time::{Duration, Instant};

use protocol::{
    ApiError,
    sidecar::{ATTEMPTS_HEADER, OrderView, SidecarInfo},
    trace::{Kind, RunId},
};
use reqwest::{Client, StatusCode};
use serde_json::json;

async fn setup(server: &common::TestServer, run: &str, fail: u8, rate: u32) -> SidecarInfo {
    let response = Client::new()
        .post(server.url(&format!("/api/sidecar/setup?run={run}&rid=0")))
        .json(&json!({ "fail_percent": fail, "rate_per_s": rate }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn order(server: &common::TestServer, run: &str, rid: u32) -> reqwest::Response {
    Client::new()
        .get(server.url(&format!("/api/sidecar/orders/{rid}?run={run}&rid={rid}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_sidecar_retries_failures_with_backoff_and_adds_headers() {
    let server = common::TestServer::start().await;
    let info = setup(&server, "retry", 50, 0).await;
    assert_ne!(info.sidecar_port, info.app_port);

    // The app fails every other request: the first attempt fails, the retry succeeds.
    let started = Instant::now();
    let response = order(&server, "retry", 1).await;
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ATTEMPTS_HEADER], "2");
    assert!(response.headers().contains_key("x-request-id"));
    assert!(
        took >= Duration::from_millis(100),
        "waited for the backoff: {took:?}"
    );
    let view: OrderView = response.json().await.unwrap();
    assert_eq!(
        (view.order, view.served),
        (1, 2),
        "the app saw two requests"
    );

    let trace = server.state.trace.snapshot(&RunId("retry".into())).unwrap();
    let to_app: Vec<_> = trace
        .iter()
        .filter(|m| m.kind == Kind::Request && m.from.0 == "sidecar" && m.to.0 == "app")
        .collect();
    assert_eq!(to_app.len(), 2);
    assert_eq!(to_app[1].label, "GET /orders/1 (retry 1)");
    // The inspector shows the headers the sidecar added, and each attempt is its own span.
    let header = |i: usize, name: &str| {
        to_app[i]
            .detail
            .as_ref()
            .unwrap()
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.clone())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(header(0, "x-request-id"), header(1, "x-request-id"));
    let (tp0, tp1) = (header(0, "traceparent"), header(1, "traceparent"));
    assert_eq!(tp0.len(), 55, "{tp0}");
    assert_eq!(tp0[3..35], tp1[3..35], "one trace");
    assert_ne!(tp0[36..52], tp1[36..52], "two spans");
    let statuses: Vec<_> = trace
        .iter()
        .filter(|m| m.kind == Kind::Response && m.from.0 == "app")
        .map(|m| m.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
    assert!(
        trace
            .iter()
            .any(|m| m.kind == Kind::Note && m.label.contains("retry in 100 ms"))
    );
}

#[tokio::test]
async fn an_app_that_always_fails_is_given_up_on_after_three_attempts() {
    let server = common::TestServer::start().await;
    setup(&server, "down", 100, 0).await;
    let response = order(&server, "down", 1).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()[ATTEMPTS_HEADER], "3");
    let error = response.json::<ApiError>().await.unwrap().error;
    assert!(error.contains("the app failed request 3"), "{error}");
}

#[tokio::test]
async fn over_the_rate_limit_the_sidecar_answers_429_without_calling_the_app() {
    let server = common::TestServer::start().await;
    setup(&server, "limit", 0, 2).await;
    // Five at once against a bucket of two: two pass, three are refused. Fired together, they
    // need only arrive within the 500 ms a token takes to come back (one after another, all
    // five had to finish within it, too little on a loaded machine).
    let responses =
        futures_util::future::join_all((1..=5).map(|rid| order(&server, "limit", rid))).await;
    let mut statuses = Vec::new();
    for response in responses {
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            let error = response.json::<ApiError>().await.unwrap().error;
            assert!(error.contains("rate limit"), "{error}");
        }
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    let trace = server.state.trace.snapshot(&RunId("limit".into())).unwrap();
    let to_app = trace
        .iter()
        .filter(|m| m.kind == Kind::Request && m.to.0 == "app")
        .count();
    assert_eq!(to_app, 2, "refused requests never reached the app");
}

#[tokio::test]
async fn bad_setup_is_a_named_422_and_teardown_stops_the_listeners() {
    let server = common::TestServer::start().await;
    let client = Client::new();
    let response = client
        .post(server.url("/api/sidecar/setup?run=bad&rid=1"))
        .json(&json!({ "fail_percent": 150, "rate_per_s": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert!(
        response
            .json::<ApiError>()
            .await
            .unwrap()
            .error
            .contains("fail_percent")
    );
    assert_eq!(
        order(&server, "bad", 2).await.status(),
        StatusCode::NOT_FOUND
    );

    let info = setup(&server, "bad", 0, 0).await;
    assert_eq!(order(&server, "bad", 3).await.status(), StatusCode::OK);
    let response = client
        .delete(server.url("/api/sidecar/setup?run=bad&rid=4"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(server.state.sidecars.is_empty());
    // The sidecar's port really closed.
    let direct = format!("http://127.0.0.1:{}/orders/1", info.sidecar_port);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while Client::new().get(&direct).send().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the sidecar's port closed within 5 s");
}
