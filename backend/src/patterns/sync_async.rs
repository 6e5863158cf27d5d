//! Synchronous vs asynchronous handlers: `GET /api/work/blocking?ms=N` blocks one thread of a
//! small pool for N ms (so concurrent requests queue for a free thread), while
//! `GET /api/work/async?ms=N` awaits a timer (so they overlap). Both report `queued` and `work`
//! phases in `Server-Timing` and the trace, and the pool is a lifeline of its own.
//!
//! Each run has a pool of its own ([`POOL_THREADS`] threads): what a learner sees queue is
//! their own calls, not a classmate's. A call holds one of its run's threads (numbered 1 and
//! 2, as the diagram names them) and blocks a real OS thread, the runtime's blocking pool's,
//! for its whole work; the runtime's async threads are never blocked.

use protocol::ApiError;
use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, Weak},
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    extract::AppQuery,
    server::{
        client::ClientId,
        expiring::{CLASS_CLIENTS, Slots},
        rate_limit::Client,
    },
    trace::server_now_us,
    trace::{Hop, Phases, TraceIds, Tracer},
};

/// Threads in a run's blocking pool: few on purpose, so queueing shows with a handful of
/// requests.
pub const POOL_THREADS: usize = 2;
/// Jobs one client may have waiting for or running on a pool thread: the page fires at most 12
/// calls at once. Beyond it, a 429 with `Retry-After`.
pub const QUEUE_PER_CLIENT: usize = 12;
/// Jobs that may wait for or run on a pool thread at once: every client's share for
/// [`CLASS_CLIENTS`] clients (576; each is a boxed closure). Beyond it, a 429.
pub const POOL_QUEUE: usize = QUEUE_PER_CLIENT * CLASS_CLIENTS;
/// Longest work a request may ask for.
pub const MAX_WORK_MS: u64 = 5_000;

/// Blocking pools by run: each run's own threads, for as long as a call of the run holds or
/// waits for one (the map keeps only a weak reference).
#[derive(Clone)]
pub struct BlockingPool {
    threads: usize,
    runs: Arc<Mutex<HashMap<String, Weak<RunThreads>>>>,
    /// One slot per job queued or running, counted against its client's share and freed when
    /// the job ends: no client can fill the queue for the others.
    waiting: Slots,
}

/// One run's pool: its threads' numbers not in use, and a permit per thread.
struct RunThreads {
    permits: Arc<Semaphore>,
    free: Mutex<BTreeSet<usize>>,
}

impl RunThreads {
    fn new(threads: usize) -> RunThreads {
        RunThreads {
            permits: Arc::new(Semaphore::new(threads)),
            free: Mutex::new((1..=threads).collect()),
        }
    }

    /// The lowest free thread number (there is one for every permit).
    fn take(&self, _permit: &OwnedSemaphorePermit) -> usize {
        self.free
            .lock()
            .expect("pool numbers lock poisoned")
            .pop_first()
            .expect("a free thread for every permit")
    }

    fn give_back(&self, n: usize) {
        self.free
            .lock()
            .expect("pool numbers lock poisoned")
            .insert(n);
    }
}

impl BlockingPool {
    pub fn new(threads: usize) -> BlockingPool {
        BlockingPool {
            threads,
            runs: Arc::default(),
            waiting: Slots::new(POOL_QUEUE, QUEUE_PER_CLIENT, "jobs queued for the pool"),
        }
    }

    /// Jobs queued or running now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The pool of `key`'s run, made if no call of it holds one now.
    fn threads_of(&self, key: String) -> Arc<RunThreads> {
        let mut runs = self.runs.lock().expect("pools lock poisoned");
        if let Some(threads) = runs.get(&key).and_then(Weak::upgrade) {
            return threads;
        }
        // Bounded by the calls in flight (each holds a slot): forget the pools none holds.
        runs.retain(|_, pool| pool.strong_count() > 0);
        let threads = Arc::new(RunThreads::new(self.threads));
        runs.insert(key, Arc::downgrade(&threads));
        threads
    }

    /// Runs `f` for `client` on one of its run's pool threads (the thread's number is passed
    /// in), waiting for one to be free, without blocking the runtime. Calls without a run
    /// share their client's pool. Past the client's share of the queue, or a full queue, is a
    /// 429.
    pub async fn run<T: Send + 'static>(
        &self,
        client: Option<ClientId>,
        run: Option<&str>,
        f: impl FnOnce(usize) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let slot = self.waiting.take(client)?;
        let key = match (run, client) {
            (Some(run), _) => format!("run {run}"),
            (None, Some(client)) => format!("client {client}"),
            (None, None) => "untraced".to_owned(),
        };
        let threads = self.threads_of(key);
        let permit = Arc::clone(&threads.permits)
            .acquire_owned()
            .await
            .expect("a pool's permits are never closed");
        let n = threads.take(&permit);
        let (done, result) = oneshot::channel();
        // Runs to the end even if the request is gone: the thread is given back after it.
        tokio::task::spawn_blocking(move || {
            let _ = done.send(f(n));
            threads.give_back(n);
            drop(permit);
            drop(slot);
        });
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
    let run = trace.as_ref().map(|ids| ids.run.0.clone());
    let tracer = Tracer::new(&state.trace, trace);
    let (started, thread) = state
        .pool
        .run(client, run.as_deref(), move |n| {
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
