//! The queue demo against a real server, on both engines: the broker pushes each job to one of
//! the competing consumers within their prefetch, each job is acknowledged once, a consumer
//! killed mid-job has its unacknowledged jobs delivered again to another (marked
//! redelivered), and the puller's empty polls are counted; the trace shows the same.
//!
//! The RabbitMQ test needs `PATTERNSCOPE_TEST_AMQP` (an amqp:// URL; `make test` starts a
//! private RabbitMQ with `scripts/with-rabbitmq.sh` and sets it). Without it, it says so loudly
//! and passes without running.

mod common;

use std::collections::BTreeMap;

use backend::{AppState, Config};
use protocol::{
    ApiError,
    queue::{JobPublished, QueueInfo, QueueReport, QueueStarted},
    trace::{Kind, Message, RunId},
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const AMQP_ENV: &str = "PATTERNSCOPE_TEST_AMQP";

fn amqp_url() -> Option<String> {
    common::engine_url(AMQP_ENV, "RabbitMQ")
}

async fn rabbit_server(url: &str) -> common::TestServer {
    let state = AppState::new(Config {
        debug_routes: true,
        ..Config::default()
    })
    .with_rabbitmq(url)
    .await
    .expect("RabbitMQ reachable");
    common::TestServer::with_state(state).await
}

fn spec(engine: &str) -> Value {
    json!({
        "engine": engine, "consumers": 2, "prefetch": 2, "work_ms": 60,
        "slow": 0, "kill": 1, "poll_ms": 100
    })
}

/// The job number in a label such as `deliver job #3 · tag 2`.
fn job_of(label: &str) -> Option<u32> {
    let rest = label.split("job #").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Runs the demo as the page does: start, publish `jobs`, wait for the report, stop. Returns
/// the final report (the stop's) and the run's server trace.
async fn run_demo(
    server: &common::TestServer,
    run: &str,
    engine: &str,
    jobs: u32,
) -> (QueueReport, Vec<Message>, QueueStarted) {
    let client = Client::new();
    let started = client
        .post(server.url(&format!("/api/queue/run?run={run}&rid=start")))
        .json(&spec(engine))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    let started: QueueStarted = started.json().await.unwrap();
    assert!(started.push_queue.contains(run) && started.pull_queue.ends_with(".pull"));
    // Longer than the puller takes to ask once: its first poll finds the queue empty.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    for n in 1..=jobs {
        let published = client
            .post(server.url(&format!("/api/queue/publish?run={run}&rid=p{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), StatusCode::ACCEPTED);
        let published: JobPublished = published.json().await.unwrap();
        assert_eq!(published.job, n);
    }
    let report: QueueReport = client
        .get(server.url(&format!(
            "/api/queue/report?run={run}&rid=report&wait_ms=10000"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stopped = client
        .delete(server.url(&format!("/api/queue/run?run={run}&rid=stop")))
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), StatusCode::OK);
    let last: QueueReport = stopped.json().await.unwrap();
    assert!(
        report.done,
        "every job acknowledged on both lanes: {report:?}"
    );
    // The stop's counts are final: the actors have ended, and every hop they made is on the
    // trace (the puller may have polled a few times since the report).
    assert!(last.pull.requests >= report.pull.requests);
    let trace = server.state.trace.snapshot(&RunId(run.into())).unwrap();
    (last, trace, started)
}

/// What both engines must show for 8 jobs, 2 consumers with prefetch 2, consumer-1 killed in
/// its second job.
fn check_semantics(report: &QueueReport, trace: &[Message], jobs: u32) {
    assert!(
        report.done,
        "every job acknowledged on both lanes: {report:?}"
    );
    assert_eq!(report.published, jobs);

    // The push lane: each job acked exactly once, the killed consumer's held jobs redelivered.
    let push_acks: Vec<u32> = trace
        .iter()
        .filter(|m| m.kind == Kind::Response && m.from.0.starts_with("consumer-"))
        .filter_map(|m| job_of(&m.label))
        .collect();
    let mut once: BTreeMap<u32, u32> = BTreeMap::new();
    for job in &push_acks {
        *once.entry(*job).or_default() += 1;
    }
    assert_eq!(
        once,
        (1..=jobs).map(|j| (j, 1)).collect(),
        "each job acked once: {push_acks:?}"
    );
    assert_eq!(report.push.acks, jobs);

    let killed = trace
        .iter()
        .find(|m| m.kind == Kind::Close && m.from.0 == "consumer-1")
        .expect("consumer-1 killed");
    let killed_job = job_of(&killed.label).expect("names its job");
    let redelivered: Vec<&Message> = trace
        .iter()
        .filter(|m| m.kind == Kind::Deliver && m.label.contains("redelivered"))
        .collect();
    assert!(
        redelivered
            .iter()
            .any(|m| m.to.0 == "consumer-2" && job_of(&m.label) == Some(killed_job)),
        "job #{killed_job} redelivered to consumer-2: {:?}",
        redelivered.iter().map(|m| &m.label).collect::<Vec<_>>()
    );
    assert_eq!(report.push.redelivered as usize, redelivered.len());
    let acks_of = |who: &str| {
        report
            .push
            .per_consumer
            .iter()
            .find(|c| c.consumer == who)
            .map_or(0, |c| c.acks)
    };
    assert_eq!(acks_of("consumer-1"), 1, "it died in its second job");
    assert_eq!(acks_of("consumer-2"), jobs - 1);
    // Never more than the prefetch unacknowledged at one consumer (2), as the trace orders it.
    let mut held: BTreeMap<&str, i32> = BTreeMap::new();
    for m in trace {
        match m.kind {
            Kind::Deliver => *held.entry(&m.to.0).or_default() += 1,
            Kind::Response if m.from.0.starts_with("consumer-") => {
                *held.entry(&m.from.0).or_default() -= 1
            }
            _ => {}
        }
        assert!(
            held.values().all(|&n| n <= 2),
            "prefetch 2 exceeded: {held:?}"
        );
    }
    let deliveries = trace.iter().filter(|m| m.kind == Kind::Deliver).count();
    assert_eq!(report.push.deliveries as usize, deliveries);
    assert_eq!(report.push.requests, 2, "one basic.consume per consumer");

    // The pull lane: every job got and acked by the puller, empty polls drawn and counted.
    let polls = trace
        .iter()
        .filter(|m| m.kind == Kind::Request && m.from.0 == "puller")
        .count();
    let empty = trace
        .iter()
        .filter(|m| m.kind == Kind::Response && m.label == "get-empty")
        .count();
    assert_eq!(report.pull.requests as usize, polls, "{report:?}");
    assert_eq!(report.pull.empty_polls as usize, empty);
    assert!(empty >= 1, "the puller asked an empty queue at least once");
    assert_eq!(report.pull.acks, jobs);
    assert_eq!(polls, empty + jobs as usize, "a poll gets one job or none");
    assert!(report.push.latency_max_ms >= 0.0 && report.pull.latency_avg_ms >= 0.0);
    let publishes = trace.iter().filter(|m| m.kind == Kind::Publish).count();
    assert_eq!(publishes, jobs as usize);
}

#[tokio::test]
async fn embedded_queue_pushes_within_prefetch_and_redelivers_a_dead_consumers_jobs() {
    let server = common::TestServer::start().await;
    let info: QueueInfo = Client::new()
        .get(server.url("/api/queue/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info.engines, [protocol::queue::Engine::Embedded]);
    let (report, trace, _) = run_demo(&server, "q-embedded", "embedded", 8).await;
    assert_eq!(report.engine, protocol::queue::Engine::Embedded);
    check_semantics(&report, &trace, 8);
    assert!(
        server.state.queues.is_empty(),
        "stopping forgets the run and its actors"
    );
}

#[tokio::test]
async fn rabbitmq_deliveries_and_acks_are_the_brokers_and_queues_are_deleted() {
    let Some(url) = amqp_url() else { return };
    let server = rabbit_server(&url).await;
    let info: QueueInfo = Client::new()
        .get(server.url("/api/queue/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info.engines,
        [
            protocol::queue::Engine::Embedded,
            protocol::queue::Engine::Rabbitmq
        ]
    );
    let run = format!("q-rabbit-{}", std::process::id());
    let (report, trace, started) = run_demo(&server, &run, "rabbitmq", 8).await;
    assert_eq!(report.engine, protocol::queue::Engine::Rabbitmq);
    check_semantics(&report, &trace, 8);
    // The broker's own delivery tags: per channel, from 1.
    assert!(
        trace
            .iter()
            .any(|m| m.kind == Kind::Deliver && m.label.ends_with("tag 1"))
    );

    // The run's queues are gone from the broker: a passive declare is refused.
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..50 {
        let channel = connection.create_channel().await.unwrap();
        let declared = channel
            .queue_declare(
                started.push_queue.clone().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        if declared.is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the run's push queue was deleted");
}

#[tokio::test]
async fn bad_queue_input_gets_a_clear_4xx() {
    let server = common::TestServer::start().await;
    let client = Client::new();
    let post = |path: &str, body: Value| client.post(server.url(path)).json(&body).send();
    let error = |r: reqwest::Response| async move {
        let status = r.status();
        (status, r.json::<ApiError>().await.unwrap().error)
    };

    let mut too_many = spec("embedded");
    too_many["consumers"] = json!(9);
    let (status, why) = error(
        post("/api/queue/run?run=bad&rid=1", too_many)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(why.contains("consumers"), "{why}");

    let (status, why) = error(
        post("/api/queue/run?run=bad&rid=2", spec("rabbitmq"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(why.contains("--amqp-url"), "{why}");

    let (status, _) = error(
        client
            .post(server.url("/api/queue/publish?run=none&rid=3"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let started = post("/api/queue/run?run=full&rid=4", spec("embedded"))
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    for n in 1..=backend::queue::MAX_JOBS {
        let r = client
            .post(server.url(&format!("/api/queue/publish?run=full&rid=p{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let (status, why) = error(
        client
            .post(server.url("/api/queue/publish?run=full&rid=over"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(why.contains("at most"), "{why}");

    let (status, why) = error(
        client
            .get(server.url("/api/queue/report?run=full&rid=5&wait_ms=99999"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(why.contains("wait_ms"), "{why}");
}
