//! Synchronous vs asynchronous handlers: `GET /api/work/blocking?ms=N` blocks one thread of a
//! small dedicated pool for N ms (so concurrent requests queue for a free thread), while
//! `GET /api/work/async?ms=N` awaits a timer (so they overlap). Both report `queued` and `work`
//! phases in `Server-Timing` and the trace, and the pool is a lifeline of its own.

use protocol::ApiError;
use std::{
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Duration,
};

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use protocol::{pairing, trace::Kind};
use serde::Deserialize;
use tokio::sync::oneshot;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    extract::AppQuery,
    server::{
        client::ClientId,
        expiring::{BUSY_RETRY, CLASS_CLIENTS, Slots},
        rate_limit::Client,
    },
    trace::server_now_us,
    trace::{Hop, Phases, TraceIds, Tracer},
};

/// Threads in the blocking pool: few on purpose, so queueing shows with a handful of requests.
pub const POOL_THREADS: usize = 2;
/// Jobs one client may have waiting for or running on a pool thread: the page fires at most 12
/// calls at once. Beyond it, a 429 with `Retry-After`.
pub const QUEUE_PER_CLIENT: usize = 12;
/// Jobs that may wait for or run on a pool thread at once: every client's share for
/// [`CLASS_CLIENTS`] clients (576; each is a boxed closure). Beyond it, a 429.
pub const POOL_QUEUE: usize = QUEUE_PER_CLIENT * CLASS_CLIENTS;
/// Longest work a request may ask for.
pub const MAX_WORK_MS: u64 = 5_000;

type Task = Box<dyn FnOnce(usize) + Send>;

/// A fixed pool of OS threads for blocking work, kept apart from the async runtime's threads.
#[derive(Clone)]
pub struct BlockingPool {
    queue: mpsc::SyncSender<Task>,
    /// One slot per job queued or running, counted against its client's share and freed when
    /// the job ends: no client can fill the queue for the others.
    waiting: Slots,
}

impl BlockingPool {
    pub fn new(threads: usize) -> BlockingPool {
        let (queue, jobs) = mpsc::sync_channel::<Task>(POOL_QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 1..=threads {
            let jobs = jobs.clone();
            thread::Builder::new()
                .name(format!("blocking-pool-{n}"))
                .spawn(move || {
                    loop {
                        // Held only while taking the next job, never while running it.
                        let next = jobs.lock().expect("pool queue lock poisoned").recv();
                        match next {
                            Ok(task) => task(n),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn a pool thread");
        }
        BlockingPool {
            queue,
            waiting: Slots::new(POOL_QUEUE, QUEUE_PER_CLIENT, "jobs queued for the pool"),
        }
    }

    /// Jobs queued or running now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Runs `f` for `client` on a pool thread (its number is passed in) and waits for it
    /// without blocking the runtime. Past the client's share, or a full queue, is a 429.
    pub async fn run<T: Send + 'static>(
        &self,
        client: Option<ClientId>,
        f: impl FnOnce(usize) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let slot = self.waiting.take(client)?;
        let (done, result) = oneshot::channel();
        let task: Task = Box::new(move |n| {
            let _ = done.send(f(n));
            drop(slot);
        });
        // Never full: it holds at most as many as there are slots.
        self.queue
            .try_send(task)
            .map_err(|_| AppError::RateLimited {
                message: format!("the blocking pool has {POOL_QUEUE} requests waiting already"),
                retry_after: BUSY_RETRY,
            })?;
        result
            .await
            .map_err(|_| AppError::Internal("a pool thread died".into()))
    }
}

impl Default for BlockingPool {
    fn default() -> Self {
        BlockingPool::new(POOL_THREADS)
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(blocking))
        .routes(routes!(nonblocking))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WorkQuery {
    ms: u64,
}

fn work_ms(query: Result<AppQuery<WorkQuery>, AppError>) -> Result<u64, AppError> {
    let AppQuery(q) = query?;
    if q.ms > MAX_WORK_MS {
        return Err(AppError::Unprocessable(format!(
            "ms must be between 0 and {MAX_WORK_MS}, got {}",
            q.ms
        )));
    }
    Ok(q.ms)
}

/// What a handler says it did.
fn answer(phases: Phases, handler: &str, thread: String) -> Response {
    let body = Json(protocol::sync_async::WorkDone {
        handler: handler.to_owned(),
        thread,
    });
    phases.attach(body.into_response())
}

#[utoipa::path(get, path = "/work/blocking", tag = "sync-async", params(WorkQuery),
    responses((status = 200, description = "Done, on a pool thread", body = protocol::sync_async::WorkDone),
        (status = 422, description = "ms not a number or out of range", body = ApiError), (status = 429, description = "Over the job rate, or this client's share of the pool's queue (or the whole queue) is taken (Retry-After)", body = ApiError)))]
async fn blocking(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    query: Result<AppQuery<WorkQuery>, AppError>,
) -> Result<Response, AppError> {
    state.job_rate.check(client)?;
    let ms = work_ms(query)?;
    let queued_at = server_now_us();
    let tracer = Tracer::new(&state.trace, trace);
    let (started, thread) = state
        .pool
        .run(client, move |n| {
            let started = server_now_us();
            tracer.record(|rid| {
                Hop::new(Kind::Request, "server", "pool", pairing::hop(rid, "pool"))
                    .label(format!("run on pool thread {n}"))
            });
            // The point of the demo: this thread can do nothing else meanwhile.
            thread::sleep(Duration::from_millis(ms));
            tracer.record(|rid| {
                Hop::new(Kind::Response, "pool", "server", pairing::hop(rid, "pool"))
                    .label(format!("thread {n} free again"))
            });
            (started, format!("blocking-pool-{n}"))
        })
        .await?;
    let phases = Phases(vec![
        protocol::trace::Phase {
            name: "queued".into(),
            start_us: queued_at,
            dur_us: started - queued_at,
        },
        protocol::trace::Phase {
            name: "work".into(),
            start_us: started,
            dur_us: server_now_us() - started,
        },
    ]);
    Ok(answer(phases, "blocking", thread))
}

#[utoipa::path(get, path = "/work/async", tag = "sync-async", params(WorkQuery),
    responses((status = 200, description = "Done, awaiting", body = protocol::sync_async::WorkDone),
        (status = 422, description = "ms not a number or out of range", body = ApiError)))]
async fn nonblocking(
    State(state): State<AppState>,
    Client(client): Client,
    query: Result<AppQuery<WorkQuery>, AppError>,
) -> Result<Response, AppError> {
    state.job_rate.check(client)?;
    let ms = work_ms(query)?;
    let mut phases = Phases::default();
    phases.time("queued", || ());
    phases
        .time_async("work", tokio::time::sleep(Duration::from_millis(ms)))
        .await;
    Ok(answer(
        phases,
        "async",
        "runtime (awaiting, thread free)".into(),
    ))
}
