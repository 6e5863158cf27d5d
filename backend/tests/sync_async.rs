//! Blocking vs async handlers under concurrent load, with real clients.

mod common;

use std::time::{Duration, Instant};

fn phase(timing: &str, name: &str) -> f64 {
    timing
        .split(", ")
        .find_map(|p| p.strip_prefix(&format!("{name};dur=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {timing}"))
}

/// Fires `n` requests at once; returns the wall time and each answer's `queued` phase (ms).
async fn burst(server: &common::TestServer, path: &str, n: usize) -> (Duration, Vec<f64>) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let calls = (0..n).map(|_| {
        let request = client.get(server.url(path)).send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), 200);
            let timing = response.headers()["server-timing"]
                .to_str()
                .unwrap()
                .to_owned();
            phase(&timing, "queued")
        }
    });
    let mut queued = futures_util::future::join_all(calls).await;
    queued.sort_by(f64::total_cmp);
    (started.elapsed(), queued)
}

#[tokio::test]
async fn blocking_handlers_queue_for_the_pool_while_async_ones_overlap() {
    let server = common::TestServer::start().await;
    // Work long enough that the four requests' arrivals, however spread out on a loaded
    // machine, are small beside it; every bound below is relative to it.
    const MS: u64 = 1_000;
    let ms = MS as f64;
    // Two pool threads, four requests: two run, two wait their turn.
    let (took, queued) = burst(&server, &format!("/api/work/blocking?ms={MS}"), 4).await;
    assert!(
        took >= Duration::from_millis(2 * MS),
        "served in two waves: {took:?}"
    );
    assert!(
        queued[0] < ms / 4.0 && queued[1] < ms / 4.0,
        "two ran at once: {queued:?}"
    );
    assert!(
        queued[2] > ms / 2.0 && queued[3] > ms / 2.0,
        "two waited for a thread: {queued:?}"
    );

    // The same load on the async handler: all four overlap, so the burst takes less than the
    // two waves above must (any request waiting for another to finish makes it 2 × MS), and
    // none waits for a thread.
    let (took, queued) = burst(&server, &format!("/api/work/async?ms={MS}"), 4).await;
    assert!(took < Duration::from_millis(2 * MS), "overlapped: {took:?}");
    assert!(queued.iter().all(|q| *q < ms / 4.0), "{queued:?}");
}

#[tokio::test]
async fn each_run_queues_for_its_own_pool_not_another_runs() {
    let server = common::TestServer::start().await;
    const MS: u64 = 1_000;
    let ms = MS as f64;
    // Two learners' runs at once, four calls each: each run's two threads serve its own calls
    // in two waves, side by side (one pool for both would take four waves).
    let path = |run: &str| format!("/api/work/blocking?ms={MS}&run={run}&rid=1");
    let (a, b) = (path("learner-a"), path("learner-b"));
    let ((took_a, queued_a), (took_b, queued_b)) =
        tokio::join!(burst(&server, &a, 4), burst(&server, &b, 4));
    for (took, queued) in [(took_a, queued_a), (took_b, queued_b)] {
        assert!(took < Duration::from_millis(3 * MS), "two waves: {took:?}");
        assert!(
            queued[0] < ms / 4.0 && queued[1] < ms / 4.0,
            "two of the run's calls ran at once: {queued:?}"
        );
        assert!(
            queued[2] > ms / 2.0 && queued[3] > ms / 2.0,
            "two waited for one of the run's threads: {queued:?}"
        );
    }
}

#[tokio::test]
async fn work_out_of_range_is_a_named_422() {
    let server = common::TestServer::start().await;
    for path in [
        "/api/work/blocking?ms=999999",
        "/api/work/async?ms=soon",
        "/api/work/async",
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 422, "{path}");
        let body: protocol::ApiError = response.json().await.unwrap();
        assert!(body.error.contains("ms"), "{path}: {}", body.error);
    }
}
