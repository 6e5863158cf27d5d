//! The job workload through short polling, long polling and SSE, with real clients.

mod common;

use std::time::Duration;

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use backend::{AppState, Config, app};
use futures_util::StreamExt;
use protocol::{
    ApiError,
    job::{JobCreated, JobSpec, JobUpdate, LongPollAnswer},
    trace::{Kind, RunId},
};
use tower::ServiceExt;

fn spec(steps: u32, step_ms: u32) -> JobSpec {
    JobSpec {
        steps,
        step_ms,
        payload_bytes: 16,
    }
}

async fn submit(server: &common::TestServer, spec: &JobSpec, query: &str) -> JobCreated {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/jobs{query}")))
        .json(spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

#[tokio::test]
async fn short_polling_sees_the_job_advance_to_done() {
    let server = common::TestServer::start().await;
    // Steps of 300 ms polled every 20 ms: several polls land within each step, even when a
    // loaded machine makes a poll take tens of ms (with 30 ms steps, every poll could see a
    // new version).
    let created = submit(&server, &spec(3, 300), "").await;
    assert_eq!(created.status_url, format!("/api/jobs/{}", created.job.0));
    let client = reqwest::Client::new();
    let mut versions = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let update: JobUpdate = client
            .get(server.url(&created.status_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        versions.push(update.version);
        if update.done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *versions.last().unwrap(),
        3,
        "done within 10 s: {versions:?}"
    );
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "never goes back: {versions:?}"
    );
    assert!(
        versions.windows(2).any(|w| w[0] == w[1]),
        "some polls brought nothing new: {versions:?}"
    );
}

#[tokio::test]
async fn bad_jobs_and_unknown_ids_are_named_4xx() {
    let router = app(AppState::new(Config::default()));
    let post = |body: &str| {
        Request::post("/api/jobs")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let cases = [
        (
            post(r#"{"steps": 0, "step_ms": 100}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "steps must be between 1 and 50",
        ),
        (
            post(r#"{"steps": 5, "step_ms": 1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "step_ms",
        ),
        (
            post(r#"{"steps": 5, "step_ms": 100, "payload_bytes": 99999999}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "payload_bytes",
        ),
        (post(r#"{"steps": "#), StatusCode::BAD_REQUEST, "EOF"),
        (
            Request::get("/api/jobs/nope").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "no job",
        ),
        (
            Request::get("/api/jobs/nope/wait")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "no job",
        ),
        (
            Request::get("/api/jobs/nope/events")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "no job",
        ),
        (
            Request::post("/api/jobs/nope/drop")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "no job",
        ),
    ];
    for (req, want, mentions) in cases {
        let uri = req.uri().clone();
        let response = router.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), want, "{uri}");
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let error = serde_json::from_slice::<ApiError>(&body).unwrap().error;
        assert!(error.contains(mentions), "{uri}: {error}");
    }
}

async fn json<T: serde::de::DeserializeOwned>(
    router: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, T) {
    let response = router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body))),
    )
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_is_held_until_the_job_changes_or_the_timeout() {
    let router = app(AppState::new(Config::default()));
    let submit = |steps: u32, step_ms: u32| {
        Request::post("/api/jobs")
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::to_vec(&spec(steps, step_ms)).unwrap(),
            ))
            .unwrap()
    };
    // A slow job: the poll times out after its 1 s, unchanged.
    let (_, slow): (_, JobCreated) = json(&router, submit(2, 5_000)).await;
    let started = tokio::time::Instant::now();
    let (status, answer): (_, LongPollAnswer) = json(
        &router,
        Request::get(format!(
            "/api/jobs/{}/wait?after=0&timeout_ms=1000",
            slow.job.0
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!answer.changed);
    assert_eq!(answer.update.version, 0);
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(1_000) && held < Duration::from_millis(1_100),
        "held {held:?}"
    );

    // A quicker job: the poll is answered when step 1 lands, not before, not at the timeout.
    let (_, quick): (_, JobCreated) = json(&router, submit(2, 300)).await;
    let started = tokio::time::Instant::now();
    let (_, answer): (_, LongPollAnswer) = json(
        &router,
        Request::get(format!(
            "/api/jobs/{}/wait?after=0&timeout_ms=10000",
            quick.job.0
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert!(answer.changed);
    assert_eq!(answer.update.version, 1);
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(300) && held < Duration::from_millis(400),
        "held {held:?}"
    );

    let (status, error): (_, ApiError) = json(
        &router,
        Request::get(format!("/api/jobs/{}/wait?timeout_ms=5", quick.job.0))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error.error.contains("timeout_ms"));
}

#[tokio::test]
async fn shutdown_answers_held_long_polls() {
    let mut server = common::TestServer::start().await;
    let created = submit(&server, &spec(2, 5_000), "").await;
    let url = server.url(&format!(
        "/api/jobs/{}/wait?timeout_ms=30000&run=lp-stop&rid=poll-1",
        created.job.0
    ));
    let poll = tokio::spawn(async move { reqwest::get(url).await.unwrap() });
    // Stop once the server has the poll (its arrival is traced), not after a guessed sleep: a
    // stop before it arrives would refuse the connection instead of answering a held poll.
    let arrived = || {
        server
            .state
            .trace
            .snapshot(&RunId("lp-stop".into()))
            .is_some_and(|t| {
                t.iter()
                    .any(|m| m.request_id.as_ref().is_some_and(|r| r.0 == "poll-1"))
            })
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while !arrived() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the poll reaches the server within 10 s");
    server.stop();
    let answer = tokio::time::timeout(Duration::from_secs(3), poll)
        .await
        .expect("answered within 3 s")
        .unwrap();
    // Not "nothing changed" (ask again now) but "this server is going: back off".
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()["retry-after"], "1");
    let error: ApiError = answer.json().await.unwrap();
    assert!(error.error.contains("shutting down"), "{}", error.error);
}

/// Reads SSE events (name, id) from `response` until the stream ends or `stop` says so.
async fn read_events(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    mut stop: impl FnMut(&str, u32) -> bool,
) -> Vec<(String, u32)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::to_owned)
            };
            if let (Some(event), Some(id)) = (field("event: "), field("id: ")) {
                let id: u32 = id.parse().unwrap();
                events.push((event.clone(), id));
                if stop(&event, id) {
                    return events;
                }
            }
        }
    }
    events
}

#[tokio::test]
async fn an_event_stream_resumes_after_a_drop_without_loss_or_repeat() {
    let server = common::TestServer::start().await;
    // Steps of 500 ms: the drop below lands long before event 3 is due, even on a loaded
    // machine (with 60 ms steps, event 3 could go out on the first stream before the drop).
    let created = submit(&server, &spec(6, 500), "?run=sse-1&rid=1").await;
    let events_url = server.url(&format!(
        "/api/jobs/{}/events?run=sse-1&rid=2",
        created.job.0
    ));
    let client = reqwest::Client::new();

    let first = client.get(&events_url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    // Read two events, then have the server drop the stream.
    let drop_url = server.url(&format!("/api/jobs/{}/drop", created.job.0));
    let mut first = Box::pin(first.bytes_stream());
    let mut seen = read_events(&mut first, |_, id| id == 2).await;
    let dropped: serde_json::Value = client
        .post(&drop_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dropped["dropped"], 1);

    // Reconnect the way a browser does, with the last id it saw.
    let again = client
        .get(&events_url)
        .header("Last-Event-ID", "2")
        .send()
        .await
        .unwrap();
    seen.extend(
        read_events(&mut Box::pin(again.bytes_stream()), |name, _| {
            name == "done"
        })
        .await,
    );
    assert!(
        first.next().await.is_none(),
        "the dropped stream really ended"
    );
    let ids: Vec<u32> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6], "every update exactly once");
    assert_eq!(seen.last().unwrap().0, "done");

    // `lastEventId` in the query does the same for clients that cannot set headers.
    let by_query = client
        .get(format!("{events_url}&lastEventId=4"))
        .send()
        .await
        .unwrap();
    let ids: Vec<u32> = read_events(&mut Box::pin(by_query.bytes_stream()), |name, _| {
        name == "done"
    })
    .await
    .iter()
    .map(|(_, id)| *id)
    .collect();
    assert_eq!(ids, [5, 6]);
    // Nothing more to say: 204 tells an EventSource to stop reconnecting.
    let finished = client
        .get(&events_url)
        .header("Last-Event-ID", "6")
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 204);

    // The trace shows the worker's steps and each event under its shared id; the reconnection
    // is traced under `{rid}-r{last}` as the page derives it.
    let trace = server.state.trace.snapshot(&RunId("sse-1".into())).unwrap();
    let ids_of = |kind: Kind, from: &str| -> Vec<String> {
        trace
            .iter()
            .filter(|m| m.kind == kind && m.from.0 == from)
            .map(|m| m.request_id.clone().unwrap().0)
            .collect()
    };
    assert!(
        ids_of(Kind::Request, "server").contains(&"1-job".to_owned()),
        "server hands the job to the worker"
    );
    assert_eq!(
        ids_of(Kind::Event, "worker").len(),
        5,
        "progress 1..5 from the worker"
    );
    assert!(ids_of(Kind::Request, "browser").contains(&"2-r2".to_owned()));
    let events = ids_of(Kind::Event, "server");
    assert!(
        events.starts_with(&["2-e1".to_owned(), "2-e2".to_owned(), "2-e3".to_owned()]),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_400() {
    let server = common::TestServer::start().await;
    let created = submit(&server, &spec(2, 50), "").await;
    let response = reqwest::get(server.url(&format!(
        "/api/jobs/{}/events?lastEventId=soon",
        created.job.0
    )))
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .json::<ApiError>()
            .await
            .unwrap()
            .error
            .contains("lastEventId")
    );
}

#[tokio::test]
async fn shutdown_ends_open_event_streams() {
    let mut server = common::TestServer::start().await;
    let created = submit(&server, &spec(3, 5_000), "").await;
    let response = reqwest::get(server.url(&format!("/api/jobs/{}/events", created.job.0)))
        .await
        .unwrap();
    let mut stream = Box::pin(response.bytes_stream());
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended within 5 s of shutdown");
}
