//! The Patternscope server: real endpoints for every demo, and the trace hub that tells the page
//! what happened inside the server while they ran.
//!
//! Every demo request carries `run` and `rid` query parameters. The [`exchange`] middleware
//! records each such request when it arrives and each response when it leaves, on the server's
//! clock, into the [`trace::TraceHub`]; the page watches its run over one trace WebSocket and
//! draws both its own observations and the server's on one sequence diagram.
//!
//! # Layout
//! - [`trace`]: the trace hub (bounded per-run logs with fan-out), `GET /api/trace/{run}` and the
//!   trace WebSocket.
//! - [`exchange`]: middleware recording every traced HTTP exchange; `Server-Timing` phases.
//! - [`request_response`]: the echo endpoint of the request/response demo (JSON, XML, MessagePack).
//! - [`jobs`]: the job workload the waiting-for-results demos share, and its worker.
//! - [`short_polling`], [`long_polling`], [`sse`]: three ways to learn of a job's progress.
//! - [`socket`]: the pushing WebSocket loop (bounded outbox, pings, slow readers, shutdown)
//!   every socket demo shares; [`event_stream`] is its counterpart for Server-Sent Events.
//! - [`push`]: a WebSocket the server pushes on: job progress, notices, chat rooms.
//! - [`pubsub`]: publish/subscribe through a broker (in memory, or Redis shared by instances).
//! - [`upload`]: whole vs chunked upload, resumable, checked by SHA-256.
//! - [`sync_async`]: a handler that blocks a small thread pool vs one that awaits.
//! - [`stateful_stateless`]: a load balancer, two instances and a session store, per run.
//! - [`sidecar`]: a plain app and a sidecar proxy in front of it, per run.
//! - [`inner_listener`], [`relay`]: real listeners inside the process for those actors, and the
//!   traced HTTP hops between them.
//! - [`multiplexing`]: a proxy forwarding over one HTTP/2 connection or an HTTP/1.1 pool to an
//!   upstream inside the process; the browser's six-connection queue; the optional TLS listener.
//! - [`origin`]: the `Origin` check every WebSocket upgrade makes.
//! - [`shutdown`]: graceful shutdown: the signal push loops watch, the sockets the server waits
//!   for, the drain deadline, and what each kind of client sees.
//! - [`security`]: security headers on every response (Content-Security-Policy and friends).
//! - [`limits`]: the bounds the command line can change; [`connections`] caps each client's
//!   connections at the listener, [`rate_limit`] its job creations and publishes.
//! - [`held`]: the periodic sweep expiring every store, and `GET /api/debug/stats` reporting
//!   connections, live tasks and each store's size.
//! - [`http1_serve`]: the plain listener's serve loop (HTTP/1.1 only: smaller idle
//!   connections), with `axum::serve`'s graceful shutdown.
//! - [`ws_close`]: the close code for what a client did wrong on a WebSocket (1003, 1007, 1009).
//! - [`when_woken`]: a future polled only when woken (shutdown, in busy loops).
//! - [`error`]: the one error type; every failure is a 4xx/5xx with a JSON `{ "error": … }`.
//! - [`openapi`]: the OpenAPI description of every endpoint, `GET /api/openapi.json`.
//! - [`static_files`]: the built frontend, with `index.html` for deep links.
//! - [`baseline`]: `POST /api/bench/bare`, the untraced bare axum route the benchmarks compare
//!   the echo with.
#![forbid(unsafe_code)]

pub mod baseline;
pub mod connections;
pub mod error;
pub mod event_stream;
pub mod exchange;
pub mod held;
pub mod http1_serve;
pub mod inner_listener;
pub mod jobs;
pub mod limits;
pub mod long_polling;
pub mod multiplexing;
pub mod openapi;
pub mod origin;
pub mod pubsub;
pub mod push;
pub mod rate_limit;
pub mod relay;
pub mod request_response;
pub mod security;
pub mod short_polling;
pub mod shutdown;
pub mod sidecar;
pub mod socket;
pub mod sse;
pub mod stateful_stateless;
pub mod static_files;
pub mod sync_async;
pub mod trace;
pub mod upload;
pub mod when_woken;
pub mod ws_close;

use std::{future::Future, path::PathBuf, sync::Arc};

use axum::{Json, Router, middleware, routing::get};
use tokio::net::TcpListener;

use crate::{
    connections::{CappedListener, ClientConnections},
    error::AppError,
    jobs::JobStore,
    limits::Limits,
    rate_limit::PerClient,
    trace::TraceHub,
};

/// Settings the server starts with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Folder holding the built frontend (`index.html` and its assets). `None` serves the API only.
    pub dist: Option<PathBuf>,
    /// Origins besides the server's own that may open WebSockets (for `trunk serve`).
    pub allowed_origins: Vec<String>,
    /// This instance's name, shown on deliveries it makes (`a`, `b` when several share Redis).
    pub instance: String,
    /// Subscribers one pub/sub topic may have; `None` keeps `MAX_SUBSCRIBERS_PER_TOPIC`.
    /// Raised only for load tests (the fan-out benchmark holds 10,000 on one topic).
    pub max_subscribers_per_topic: Option<usize>,
    /// Per-client caps, rate limits, WebSocket sizes and store TTLs.
    pub limits: Limits,
}

/// Cheap handles shared by every handler, behind one `Arc`: axum's `State` extractor clones the
/// state for every request, and cloning a dozen handles (each with its own reference counts)
/// showed at about 3.6 % of the server's CPU in a profile of the echo under load.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares; read through it (`state.trace`, `state.jobs`, …).
#[derive(Clone)]
pub struct Shared {
    /// Per-run logs of what the server saw, streamed to watching pages.
    pub trace: TraceHub,
    /// Jobs of the waiting-for-results demos.
    pub jobs: JobStore,
    /// Chat rooms of the push demo.
    pub rooms: push::Rooms,
    /// The publish/subscribe broker and its tickers.
    pub pubsub: pubsub::PubSub,
    /// Chunked uploads in progress.
    pub uploads: upload::UploadStore,
    /// The small thread pool the blocking handler of the sync/async demo ties up.
    pub pool: sync_async::BlockingPool,
    /// Each run's balancer, instances and session store (stateful vs stateless demo).
    pub clusters: stateful_stateless::Clusters,
    /// Each run's app and sidecar (sidecar demo).
    pub sidecars: sidecar::Sidecars,
    /// The multiplexing demo's upstream server, proxy limits and in-flight counts.
    pub mux: multiplexing::Multiplexing,
    /// Connections open now, per client, within `limits.max_connections_per_client`.
    pub connections: ClientConnections,
    /// Each client's job creations (jobs, the sync/async demo's work).
    pub job_rate: PerClient,
    /// Each client's publishes.
    pub publish_rate: PerClient,
    /// Flips when shutdown begins, so push loops close their connections cleanly (axum's
    /// graceful shutdown does not end open WebSockets on its own), and counts the sockets the
    /// server must wait for.
    pub shutdown: shutdown::Shutdown,
    pub config: Arc<Config>,
}

impl AppState {
    /// State with the embedded (in-memory) broker.
    pub fn new(config: Config) -> Self {
        let trace = match config.limits.store_ttl {
            Some(ttl) => TraceHub::default().with_ttl(ttl),
            None => TraceHub::default(),
        };
        let instance = if config.instance.is_empty() {
            "main".to_owned()
        } else {
            config.instance.clone()
        };
        let mut topics = pubsub::Topics::new(trace.clone(), &instance);
        if let Some(limit) = config.max_subscribers_per_topic {
            topics = topics.with_subscriber_limit(limit);
        }
        let mut jobs = JobStore::default();
        let mut uploads = upload::UploadStore::default();
        let mut clusters = stateful_stateless::Clusters::default();
        let mut sidecars = sidecar::Sidecars::default();
        let mut mux = multiplexing::Multiplexing::default();
        if let Some(ttl) = config.limits.store_ttl {
            topics = topics.with_ttl(ttl);
            jobs = jobs.with_ttl(ttl);
            uploads = uploads.with_ttl(ttl);
            clusters = clusters.with_ttl(ttl);
            sidecars = sidecars.with_ttl(ttl);
            mux.in_flight = mux.in_flight.with_ttl(ttl);
        }
        let limits = &config.limits;
        AppState(Arc::new(Shared {
            pubsub: pubsub::PubSub::memory(topics),
            trace,
            jobs,
            rooms: push::Rooms::default(),
            uploads,
            pool: sync_async::BlockingPool::default(),
            clusters,
            sidecars,
            mux,
            connections: ClientConnections::new(limits.max_connections_per_client),
            job_rate: PerClient::new("job creations", limits.job_rate),
            publish_rate: PerClient::new("publishes", limits.publish_rate),
            shutdown: shutdown::Shutdown::default(),
            config: Arc::new(config),
        }))
    }

    /// Replaces the embedded pub/sub broker and the shared session store with Redis at `url`;
    /// fails within a few seconds when Redis cannot be reached.
    pub async fn with_redis(self, url: &str) -> Result<Self, String> {
        let mut shared = Shared::clone(&self);
        let current = self.pubsub.broker.topics();
        let topics = pubsub::Topics::new(self.trace.clone(), current.instance())
            .with_subscriber_limit(current.subscriber_limit())
            .with_ttl(current.ttl());
        let broker = pubsub::redis::RedisBroker::connect(url, topics, self.stopped()).await?;
        shared.pubsub = pubsub::PubSub::new(Arc::new(broker));
        let sessions = stateful_stateless::session_store::RedisSessions::connect(url).await?;
        shared.clusters = shared.clusters.with_store(Arc::new(sessions));
        Ok(AppState(Arc::new(shared)))
    }

    /// Completes once shutdown has begun; every push loop selects on it (and so polls it at
    /// every pass: it only looks at the shared watch when that woke it).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shutdown.stopped()
    }

    /// Tells every open connection to finish.
    pub fn begin_shutdown(&self) {
        self.shutdown.begin();
    }
}

/// The whole application: the API under `/api`, the built frontend everywhere else.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi::serve))
        .merge(trace::router())
        .merge(request_response::router())
        .merge(jobs::router())
        .merge(short_polling::router())
        .merge(long_polling::router())
        .merge(sse::router())
        .merge(push::router())
        .merge(pubsub::router())
        .merge(sync_async::router())
        .merge(upload::router())
        .merge(stateful_stateless::router())
        .merge(sidecar::router())
        .merge(multiplexing::router())
        .merge(held::router())
        .fallback(|| async { AppError::NotFound("no such API endpoint".into()) })
        // axum's own rejections (405, a bad path or query) answer in the same JSON shape.
        .layer(middleware::map_response(error::json_errors))
        // Every request carrying `run` and `rid` is traced, whichever demo it belongs to.
        .layer(middleware::from_fn_with_state(
            state.trace.clone(),
            exchange::record,
        ))
        // Merged after the trace layer, so never traced: the benchmarks' baseline.
        .merge(baseline::router());
    let router = Router::new().nest("/api", api).with_state(state.clone());
    let router = match &state.config.dist {
        Some(dist) => router.fallback_service(static_files::service(dist)),
        None => router,
    };
    // On every response: pages, static files, API answers and errors.
    let security = security::SecurityHeaders::for_dist(state.config.dist.as_deref());
    router.layer(middleware::map_response_with_state(security, security::add))
}

/// `GET /api/health`: the server is up and answering.
#[utoipa::path(get, path = "/api/health", tag = "server",
    responses((status = 200, description = "The server is up", body = openapi::Health)))]
async fn health() -> Json<openapi::Health> {
    Json(openapi::Health { ok: true })
}

/// Serves `app(state)` on `listener` (HTTP/1.1, [`http1_serve`]) until `shutdown` completes,
/// then stops accepting, tells every open connection to finish and waits for them, at most
/// [`shutdown::DRAIN_DEADLINE`]. Each client's connections are capped; the stores are swept
/// while it serves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(state.clone());
    // No Nagle (set by the listener): pushed events and frames are small writes that must
    // leave at once, not wait for the previous one's ACK (which cost up to 40 ms per event).
    let listener = CappedListener::new(listener, state.connections.clone());
    tokio::spawn(held::sweep_until_stopped(state.clone()));
    let signal = state.shutdown.clone();
    let server = http1_serve::serve(listener, router, async move {
        shutdown.await;
        tracing::info!("shutting down: closing open connections");
        signal.begin();
    });
    state.shutdown.drain(server).await
}
