//! A queue that pushes: the page publishes jobs; the broker pushes them to competing consumers
//! (actors inside the server) within each one's prefetch, and they acknowledge; a consumer may
//! be slow, or die in the middle of a job (the broker delivers what it held to another, marked
//! redelivered). Beside it a puller asks for jobs on an interval (`basic.get`), on the same
//! jobs, so push and pull compare. The broker is embedded ([`embedded`]), or RabbitMQ
//! ([`rabbitmq`], `--amqp-url`), chosen per run; both behind one [`engine::Engine`].
//!
//! - `GET /api/queue/info`: the engines this server offers.
//! - `POST /api/queue/run` `{engine, consumers, prefetch, work_ms, slow, kill, poll_ms}`:
//!   declares the run's queues and starts its consumers and puller (replacing an older run).
//! - `POST /api/queue/publish`: one job, onto both queues.
//! - `GET /api/queue/report?wait_ms=N`: the counts, once every job is acknowledged on both
//!   lanes or after N ms.
//! - `DELETE /api/queue/run`: stops the actors, deletes the queues, and answers the final
//!   counts (every hop they made is on the trace by then).

pub mod consumers;
pub mod embedded;
pub mod engine;
pub mod rabbitmq;

use std::{sync::Arc, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use protocol::{
    ApiError, pairing,
    queue::{JobPublished, QueueInfo, QueueReport, QueueSpec, QueueStarted},
    trace::Kind,
};
use serde::Deserialize;
use tokio::task::JoinHandle;
use utoipa_axum::{router::OpenApiRouter, routes};

use self::{
    consumers::{ConsumerSpec, QUEUE, Tally},
    engine::{Engine, EngineError, RunQueues},
};
use crate::{
    AppState,
    actors::inner_listener::PerRun,
    error::AppError,
    extract::{AppJson, AppQuery},
    server::rate_limit::Client,
    trace::{Hop, TraceIds, Tracer},
};

/// Runs (queues with their consumers) one client may have at once: the page needs one, a second
/// lets a learner start the next before the last one stops. Starting one more stops the
/// client's own least recently used idle run; the store holds this times
/// [`CLASS_CLIENTS`](crate::server::expiring::CLASS_CLIENTS) (96).
pub const RUNS_PER_CLIENT: usize = 2;
/// A run unused this long is stopped and its queues deleted.
pub const RUN_TTL: Duration = Duration::from_secs(5 * 60);
/// Jobs one run may publish (the queue's length is at most this); past it, a 409.
pub const MAX_JOBS: u32 = 40;
/// Longest a report may wait for the jobs to be done.
pub const MAX_REPORT_WAIT_MS: u64 = 15_000;

/// The broker engines and every run. Cheap to clone.
#[derive(Clone)]
pub struct Queues {
    embedded: Arc<dyn Engine>,
    /// RabbitMQ, when the server was started with `--amqp-url`.
    rabbitmq: Option<Arc<dyn Engine>>,
    runs: PerRun<QueueRun>,
}

impl Default for Queues {
    fn default() -> Self {
        Queues {
            embedded: Arc::new(embedded::EmbeddedEngine),
            rabbitmq: None,
            runs: PerRun::new(RUNS_PER_CLIENT, "queue runs", RUN_TTL),
        }
    }
}

impl Queues {
    /// The same, with RabbitMQ at `url` offered beside the embedded engine.
    pub async fn with_rabbitmq(mut self, url: &str) -> Result<Queues, String> {
        self.rabbitmq = Some(Arc::new(rabbitmq::RabbitEngine::connect(url).await?));
        Ok(self)
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Queues {
        self.runs = self.runs.with_ttl(ttl);
        self
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Stops the runs unused for longer than the TTL (the periodic sweep calls it).
    pub fn prune(&self) {
        self.runs.prune();
    }

    fn engine(&self, kind: protocol::queue::Engine) -> Result<&Arc<dyn Engine>, AppError> {
        match kind {
            protocol::queue::Engine::Embedded => Ok(&self.embedded),
            protocol::queue::Engine::Rabbitmq => self.rabbitmq.as_ref().ok_or_else(|| {
                AppError::Unprocessable(
                    "engine rabbitmq is not configured: start the server with --amqp-url".into(),
                )
            }),
        }
    }
}

/// The push queue's and the pull queue's names for a new run `run`: numbered too, so that a
/// run started again under the same id never shares (or deletes) the queues of the one before.
fn queue_names(run: &str) -> (String, String) {
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = format!("patternscope.queue.{run}-{n}");
    (format!("{base}.push"), format!("{base}.pull"))
}

/// One run: its queues, what happened, and its actors. Dropping it stops the actors and deletes
/// the queues.
pub struct QueueRun {
    queues: Arc<dyn RunQueues>,
    tally: Tally,
    /// The consumers' and the puller's tasks (std Mutex: taken once, never across an await).
    actors: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl QueueRun {
    /// Ends the actors and waits until they have, so the counts are final and every hop they
    /// made is recorded.
    async fn stop(&self) -> QueueReport {
        let actors = std::mem::take(&mut *self.actors.lock().expect("actors lock poisoned"));
        for actor in &actors {
            actor.abort();
        }
        for actor in actors {
            let _ = actor.await;
        }
        self.tally.report()
    }
}

impl Drop for QueueRun {
    fn drop(&mut self) {
        for actor in self.actors.get_mut().expect("actors lock poisoned").iter() {
            actor.abort();
        }
        let queues = self.queues.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { queues.delete().await });
        }
    }
}

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> AppError {
        AppError::Unavailable(e.to_string())
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(start, stop))
        .routes(routes!(publish))
        .routes(routes!(report))
}

#[utoipa::path(get, path = "/queue/info", tag = "queue",
    responses((status = 200, description = "The engines this server offers", body = QueueInfo)))]
async fn info(State(state): State<AppState>) -> Json<QueueInfo> {
    let queues = &state.queues;
    let engines = std::iter::once(&queues.embedded)
        .chain(queues.rabbitmq.as_ref())
        .map(|e| e.kind())
        .collect();
    Json(QueueInfo { engines })
}

fn run_of(state: &AppState, ids: &TraceIds) -> Result<Arc<QueueRun>, AppError> {
    state.queues.runs.get(&ids.run).ok_or_else(|| {
        AppError::NotFound(format!(
            "no queue for run {}: POST /api/queue/run first",
            ids.run.0
        ))
    })
}

#[utoipa::path(post, path = "/queue/run", tag = "queue", request_body = QueueSpec,
    responses((status = 201, description = "Queues declared, consumers and puller started", body = QueueStarted),
        (status = 400, description = "Malformed JSON, or no run/rid", body = ApiError), (status = 413, description = "Body too large", body = ApiError), (status = 415, description = "Content-Type is not application/json", body = ApiError),
        (status = 422, description = "Wrong field types, values out of range, or an engine not configured", body = ApiError), (status = 429, description = "This client runs as many queues as it may, each in use (Retry-After)", body = ApiError),
        (status = 503, description = "RabbitMQ cannot be reached", body = ApiError)))]
async fn start(
    State(state): State<AppState>,
    Client(client): Client,
    ids: TraceIds,
    AppJson(spec): AppJson<QueueSpec>,
) -> Result<(StatusCode, Json<QueueStarted>), AppError> {
    spec.validate().map_err(AppError::Unprocessable)?;
    let engine = state.queues.engine(spec.engine)?;
    let queues: Arc<dyn RunQueues> = Arc::from(engine.open(&ids.run.0).await?);
    let (push_queue, pull_queue) = queues.names();
    let tracer = Tracer::new(&state.trace, Some(ids.clone()));
    tracer.record(|rid| {
        Hop::new(Kind::Connect, "server", QUEUE, pairing::hop(rid, "declare")).label(format!(
            "declare {push_queue} (pushed) and {pull_queue} (pulled) on {}",
            spec.engine.as_str()
        ))
    });
    let tally = Tally::new(spec.engine);
    let work = Duration::from_millis(spec.work_ms.into());
    let mut actors = Vec::new();
    for n in 1..=spec.consumers {
        let consumer = ConsumerSpec {
            name: format!("consumer-{n}"),
            prefetch: spec.prefetch,
            work,
            slow: spec.slow == n,
            doomed: spec.kill == n,
        };
        let task = consumers::consume(queues.clone(), consumer, tracer.clone(), tally.clone());
        actors.push(tokio::spawn(task));
    }
    let every = Duration::from_millis(spec.poll_ms.into());
    let puller = consumers::pull(queues.clone(), every, work, tracer, tally.clone());
    actors.push(tokio::spawn(puller));
    let run = QueueRun {
        queues,
        tally,
        actors: std::sync::Mutex::new(actors),
    };
    state
        .queues
        .runs
        .insert(client, ids.run.clone(), Arc::new(run))?;
    Ok((
        StatusCode::CREATED,
        Json(QueueStarted {
            spec,
            push_queue,
            pull_queue,
            max_jobs: MAX_JOBS,
        }),
    ))
}

#[utoipa::path(post, path = "/queue/publish", tag = "queue",
    responses((status = 202, description = "The job is on both queues", body = JobPublished),
        (status = 400, description = "No run/rid", body = ApiError), (status = 404, description = "No queue for this run", body = ApiError),
        (status = 409, description = "The run has published as many jobs as it may", body = ApiError), (status = 429, description = "Over the publish rate (Retry-After)", body = ApiError),
        (status = 503, description = "RabbitMQ cannot be reached", body = ApiError)))]
async fn publish(
    State(state): State<AppState>,
    Client(client): Client,
    ids: TraceIds,
) -> Result<(StatusCode, Json<JobPublished>), AppError> {
    state.publish_rate.check(client)?;
    let run = run_of(&state, &ids)?;
    let job = run.tally.next_job(MAX_JOBS).ok_or_else(|| {
        AppError::Conflict(format!(
            "a run publishes at most {MAX_JOBS} jobs; start a new run"
        ))
    })?;
    Tracer::new(&state.trace, Some(ids)).record(|rid| {
        Hop::new(Kind::Publish, "server", QUEUE, pairing::hop(rid, "publish"))
            .label(format!("publish job #{job}"))
    });
    run.queues.publish(job).await?;
    Ok((StatusCode::ACCEPTED, Json(JobPublished { job })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// Hold the answer until every job is acknowledged on both lanes, at most this long (ms).
    #[serde(default)]
    wait_ms: u64,
}

#[utoipa::path(get, path = "/queue/report", tag = "queue", params(ReportQuery),
    responses((status = 200, description = "What the broker delivered, what was acknowledged, what the puller polled", body = QueueReport),
        (status = 400, description = "No run/rid", body = ApiError), (status = 404, description = "No queue for this run", body = ApiError),
        (status = 422, description = "wait_ms not a number or out of range", body = ApiError)))]
async fn report(
    State(state): State<AppState>,
    ids: TraceIds,
    query: Result<AppQuery<ReportQuery>, AppError>,
) -> Result<Json<QueueReport>, AppError> {
    let AppQuery(query) = query?;
    if query.wait_ms > MAX_REPORT_WAIT_MS {
        return Err(AppError::Unprocessable(format!(
            "wait_ms must be between 0 and {MAX_REPORT_WAIT_MS}, got {}",
            query.wait_ms
        )));
    }
    let tally = run_of(&state, &ids)?.tally.clone();
    let wait = Duration::from_millis(query.wait_ms);
    let stopped = state.stopped();
    tokio::select! {
        report = tally.report_when_done(wait) => Ok(Json(report)),
        _ = stopped => Ok(Json(tally.report())),
    }
}

#[utoipa::path(delete, path = "/queue/run", tag = "queue",
    responses((status = 200, description = "Stopped, queues deleted: the final counts", body = QueueReport),
        (status = 400, description = "No run/rid", body = ApiError), (status = 404, description = "No queue for this run", body = ApiError)))]
async fn stop(State(state): State<AppState>, ids: TraceIds) -> Result<Json<QueueReport>, AppError> {
    run_of(&state, &ids)?;
    let run = state
        .queues
        .runs
        .remove(&ids.run)
        .ok_or_else(|| AppError::NotFound("the run's queue has just been stopped".into()))?;
    let report = run.stop().await;
    let (push, pull) = run.queues.names();
    drop(run);
    Tracer::new(&state.trace, Some(ids)).record(|rid| {
        Hop::new(Kind::Close, "server", QUEUE, pairing::hop(rid, "delete"))
            .label(format!("stop the consumers, delete {push} and {pull}"))
    });
    Ok(Json(report))
}
