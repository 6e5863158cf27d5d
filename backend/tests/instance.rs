//! `--instance` names the instance on every answer (`X-Instance`) and in `/api/health`, so a
//! page, a teacher or a test behind a proxy balancing several instances sees which one answered.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use backend::{AppState, Config, app};
use tower::ServiceExt;

async fn get(config: Config, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let response = app(AppState::new(config))
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let instance = response
        .headers()
        .get("x-instance")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, instance, body.to_vec())
}

fn named(name: &str) -> Config {
    Config {
        instance: name.into(),
        ..Config::default()
    }
}

#[tokio::test]
async fn health_and_every_answer_name_the_instance() {
    let (status, header, body) = get(named("b"), "/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header.as_deref(), Some("b"));
    let health: protocol::Health = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        health,
        protocol::Health {
            ok: true,
            instance: "b".into()
        }
    );
    // Errors too: a refused or unknown request still says where it went.
    let (status, header, _) = get(named("b"), "/api/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(header.as_deref(), Some("b"));
    let (status, header, _) = get(named("b"), "/api/trace/bad%20id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(header.as_deref(), Some("b"));
}

#[tokio::test]
async fn an_unnamed_instance_is_main() {
    let (_, header, body) = get(Config::default(), "/api/health").await;
    assert_eq!(header.as_deref(), Some("main"));
    let health: protocol::Health = serde_json::from_slice(&body).unwrap();
    assert_eq!(health.instance, "main");
}
