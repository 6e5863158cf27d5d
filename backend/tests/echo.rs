//! The request/response demo's endpoint, through the router (`oneshot`) and over a real socket.

mod common;

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use backend::{AppState, Config, app};
use protocol::{
    ApiError,
    echo::{self, Format, Order},
    trace::{Kind, Message},
};
use tower::ServiceExt;

async fn call(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app(AppState::new(Config::default()))
        .oneshot(req)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn post(uri: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post(uri);
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body.into()).unwrap()
}

fn error_of(body: &[u8]) -> String {
    serde_json::from_slice::<ApiError>(body)
        .expect("a JSON error body")
        .error
}

#[tokio::test]
async fn each_format_is_parsed_and_answered_in_kind_with_server_timing() {
    let order = Order::sample(30);
    for format in Format::ALL {
        let body = echo::encode_order(format, &order).unwrap();
        let (status, headers, reply) = call(post(
            "/api/echo?process_ms=5",
            Some(format.content_type()),
            body,
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{format:?}");
        assert_eq!(headers[header::CONTENT_TYPE], format.content_type());
        let timing = headers["server-timing"].to_str().unwrap();
        let names: Vec<&str> = timing
            .split(", ")
            .map(|p| p.split(';').next().unwrap())
            .collect();
        assert_eq!(names, ["parse", "process", "serialize"], "{timing}");
        let process_ms: f64 = timing
            .split("process;dur=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            process_ms >= 5.0,
            "the simulated work really happened: {timing}"
        );
        let reply = echo::decode_reply(format, &reply).unwrap();
        assert_eq!(reply.items, 30);
        assert_eq!(
            reply.total_cents,
            order.items.iter().map(|i| i.price_cents).sum::<u64>()
        );
        assert_eq!(reply.order, order);
    }
}

#[tokio::test]
async fn bad_input_gets_a_named_4xx_in_json() {
    let json = Some("application/json");
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post("/api/echo", json, r#"{"customer": "#),
            StatusCode::BAD_REQUEST,
            "malformed json body",
        ),
        (
            post("/api/echo", Some("application/xml"), "<order><customer>"),
            StatusCode::BAD_REQUEST,
            "malformed xml body",
        ),
        (
            post("/api/echo", Some("application/msgpack"), vec![0xc1u8]),
            StatusCode::BAD_REQUEST,
            "malformed msgpack body",
        ),
        (
            post("/api/echo", Some("text/plain"), "hi"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Type",
        ),
        (
            post("/api/echo", None, "hi"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "missing Content-Type",
        ),
        (
            post("/api/echo", json, vec![b' '; echo::MAX_BODY_BYTES + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
        (
            post("/api/echo?process_ms=99999", json, "{}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "process_ms",
        ),
        (
            post("/api/echo?process_ms=soon", json, "{}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "process_ms",
        ),
        (
            post("/api/echo?run=bad%20id&rid=1", json, "{}"),
            StatusCode::BAD_REQUEST,
            "invalid run id",
        ),
        (
            post("/api/echo?run=ok", json, "{}"),
            StatusCode::BAD_REQUEST,
            "rid",
        ),
        (
            Request::get("/api/nope").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "no such API endpoint",
        ),
        (
            Request::get("/api/trace/never-seen")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "no trace",
        ),
    ];
    for (req, want, mentions) in cases {
        let uri = req.uri().clone();
        let (status, headers, body) = call(req).await;
        assert_eq!(status, want, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{uri}");
        let error = error_of(&body);
        assert!(
            error.contains(mentions),
            "{uri}: {error:?} should mention {mentions:?}"
        );
    }
}

#[tokio::test]
async fn a_traced_exchange_is_recorded_in_order_with_its_phases() {
    let state = AppState::new(Config::default());
    let router = app(state.clone());
    let body = echo::encode_order(Format::Json, &Order::sample(3)).unwrap();
    let len = body.len() as u64;
    let response = router
        .clone()
        .oneshot(post(
            "/api/echo?process_ms=20&run=run-1&rid=7",
            Some("application/json"),
            body,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let response = router
        .oneshot(
            Request::get("/api/trace/run-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let trace: Vec<Message> =
        serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(trace.len(), 2);
    let (req, resp) = (&trace[0], &trace[1]);
    assert_eq!((req.kind, resp.kind), (Kind::Request, Kind::Response));
    assert_eq!(req.label, "POST /api/echo?process_ms=20&run=run-1&rid=7");
    assert_eq!(req.request_id.as_ref().unwrap().0, "7");
    assert_eq!(req.detail.as_ref().unwrap().body_bytes, len);
    assert!(
        resp.sent_us.unwrap() - req.recv_us.unwrap() >= 20_000,
        "held for the processing time"
    );
    assert_eq!(resp.status, Some(200));
    let phases: Vec<&str> = resp
        .detail
        .as_ref()
        .unwrap()
        .phases
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(phases, ["parse", "process", "serialize"]);
    assert!(
        resp.detail
            .as_ref()
            .unwrap()
            .headers
            .iter()
            .any(|h| h.name == "server-timing")
    );
}

#[tokio::test]
async fn refused_requests_are_traced_too() {
    let state = AppState::new(Config::default());
    let response = app(state.clone())
        .oneshot(post(
            "/api/echo?run=r2&rid=1",
            Some("application/json"),
            "{oops",
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let trace = state
        .trace
        .snapshot(&protocol::trace::RunId("r2".into()))
        .unwrap();
    assert_eq!(
        trace.iter().map(|m| m.status).collect::<Vec<_>>(),
        [None, Some(400)]
    );
}

#[tokio::test]
async fn deep_links_get_the_app_and_assets_are_served() {
    let dist = std::env::temp_dir().join(format!("patternscope-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    std::fs::write(dist.join("app.js"), "console.log(1)").unwrap();
    let router = app(AppState::new(Config {
        dist: Some(dist.clone()),
        ..Config::default()
    }));
    for (path, want) in [
        ("/", "<title>app"),
        ("/demo/request-response", "<title>app"),
        ("/app.js", "console.log"),
    ] {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains(want), "{path}");
    }
    let response = router
        .oneshot(Request::get("/api/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "API paths never fall back to the app"
    );
    std::fs::remove_dir_all(dist).unwrap();
}

#[tokio::test]
async fn a_real_server_keeps_serving_after_bad_input() {
    let server = common::TestServer::start().await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let bad = client
            .post(server.url("/api/echo"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        assert!(
            bad.json::<ApiError>()
                .await
                .unwrap()
                .error
                .contains("malformed json")
        );
    }
    let good = client
        .post(server.url("/api/echo?process_ms=1"))
        .header("content-type", "application/json")
        .body(echo::encode_order(Format::Json, &Order::sample(2)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    assert!(good.headers().contains_key("server-timing"));
}

#[tokio::test]
async fn a_request_with_huge_headers_is_stored_cut_and_counted_in_trace_bytes() {
    let server = common::TestServer::start().await;
    let client = reqwest::Client::new();
    let stats = || async {
        reqwest::get(server.url("/api/debug/stats"))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    assert_eq!(stats().await["trace_bytes"], 0);
    // 14 headers of 4,000 bytes: a 56 KiB head, which the server takes (64 KiB at most).
    let mut request = client
        .post(server.url("/api/echo?run=huge&rid=1"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(echo::encode_order(Format::Json, &Order::sample(3)).unwrap());
    for i in 0..14 {
        request = request.header(format!("x-fill-{i}"), "f".repeat(4_000));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);

    let trace: Vec<Message> = reqwest::get(server.url("/api/trace/huge"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let detail = trace[0].detail.as_ref().unwrap();
    assert!(detail.headers_truncated);
    assert!(
        detail.headers_bytes > 14 * 4_000,
        "the size as sent: {}",
        detail.headers_bytes
    );
    assert!(detail.headers_kept_bytes() <= protocol::trace::Detail::HEADERS_LIMIT as u64);
    let filler = detail
        .headers
        .iter()
        .find(|h| h.name == "x-fill-0")
        .expect("the first filler kept, cut");
    assert_eq!(
        filler.value.len(),
        protocol::trace::Detail::HEADER_VALUE_LIMIT
    );
    assert!(
        trace[0].bytes.unwrap() > detail.headers_bytes,
        "bytes on the wire count every header"
    );
    let response_detail = trace[1].detail.as_ref().unwrap();
    assert!(
        !response_detail.headers_truncated,
        "the response's head is small"
    );

    // What the run holds is counted: its two halves, with far less than the 56 KiB sent.
    let held = stats().await["trace_bytes"].as_u64().unwrap();
    assert!((8 * 1024..40 * 1024).contains(&held), "{held} bytes");
}
