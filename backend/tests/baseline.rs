//! The benchmarks' bare route `POST /api/bench/bare`: it answers the JSON object it was sent, is
//! never traced (even with `run`/`rid`), and refuses anything else with the API's JSON error.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use backend::{AppState, Config, app};
use protocol::{ApiError, echo::Order};
use tower::ServiceExt;

fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn answers_the_json_it_was_sent_untraced() {
    let router = app(AppState::new(Config {
        debug_routes: true,
        ..Config::default()
    }));
    let order = serde_json::to_value(Order::sample(3)).unwrap();
    let response = router
        .clone()
        .oneshot(post_json(
            "/api/bench/bare?run=bare-run&rid=1",
            order.to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let back: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(back, order);

    // The same run and rid on the echo would have made a trace; here there is none.
    let trace = router
        .oneshot(
            Request::get("/api/trace/bare-run")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        trace.status(),
        StatusCode::NOT_FOUND,
        "the bare route was traced"
    );
}

#[tokio::test]
async fn a_malformed_body_or_not_an_object_is_a_json_4xx() {
    let router = app(AppState::new(Config {
        debug_routes: true,
        ..Config::default()
    }));
    for (body, want) in [
        ("{\"items\": [", StatusCode::BAD_REQUEST),
        // What the spec promises back is an object: anything else is refused.
        ("[null, null]", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let response = router
            .clone()
            .oneshot(post_json("/api/bench/bare", body))
            .await
            .unwrap();
        assert_eq!(response.status(), want, "{body}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let error: ApiError = serde_json::from_slice(&body).expect("a JSON error body");
        assert!(!error.error.is_empty());
    }
}
