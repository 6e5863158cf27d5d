//! The Patternscope server: real endpoints for every demo, and the trace hub that tells the page
//! what happened inside the server while they ran.
//!
//! Every demo request carries `run` and `rid` query parameters. The recording middleware
//! (`trace::record`, a [`server::around`] layer on the trace hub) records each such request when it arrives and each response when it
//! leaves, on the server's clock, into the [`trace::TraceHub`]; handlers record the hops only
//! they see through one tracer. The page watches its run over one trace WebSocket and draws
//! both its own observations and the server's on one sequence diagram.
//!
//! # Layout
//! Layers as folders; imports go one way, down this list (`../shared/tools/module-cycles
//! backend/src` finds no cycle).
//! - [`patterns`]: one module per demo (request/response, jobs and the ways to wait for them,
//!   push, pub/sub, upload, sync/async, stateful/stateless, sidecar, multiplexing, queue, REST vs
//!   GraphQL, DNS and SQL as request/response) and the
//!   router that mounts them.
//! - [`actors`]: listeners inside the process (balancer, instances, sidecar, app) and the
//!   traced relay between them.
//! - [`transport`]: the pushing WebSocket loop and the bounded event stream.
//! - [`link`]: network conditions per run (`?link=3g`): the run's bytes held to a preset's
//!   round trip, rate and loss in both directions.
//! - [`trace`]: the trace hub, the trace socket, the recording middleware, the tracer.
//! - [`server`]: listening (HTTP/1.1, TLS), client identity behind trusted proxies,
//!   per-client connections and rates, limits,
//!   security headers, `Origin` checks, refusing cross-site API requests, WebSocket bounds,
//!   static files, shutdown.
//!
//! Beside them: [`error`] (the one error type), [`extract`] (JSON and query extractors that
//! reject with it), [`stores`] (the sweep and `GET
//! /api/debug/stats` over every store, served with `--debug-routes`), [`openapi`] (`GET /api/openapi.json`), and here the
//! configuration, the shared state, [`app`] and [`serve`].
#![forbid(unsafe_code)]

mod actors;
mod error;
mod extract;
mod link;
mod openapi;
mod patterns;
mod server;
mod stores;
mod trace;
mod transport;

// What the binary and the integration tests use.
pub use error::AppError;
pub use patterns::{
    jobs::JOBS_PER_CLIENT, multiplexing::MAX_PROXY_RUNS, pubsub, pubsub::TICKERS_PER_CLIENT, queue,
    stateful_stateless::session_store, sync_async::QUEUE_PER_CLIENT, upload::UPLOADS_PER_CLIENT,
};
pub use server::{
    client::{Cidr, ClientId},
    limits, rate_limit,
    shutdown::DRAIN_DEADLINE,
    tls,
};
pub use trace::TraceHub;

use std::{future::Future, path::PathBuf, sync::Arc};

use axum::{Json, Router, extract::State, middleware};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    patterns::jobs::JobStore,
    server::client::TrustedProxies,
    server::connections::{CappedListener, ClientConnections},
    server::limits::Limits,
    server::rate_limit::PerClient,
};

/// Settings the server starts with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Folder holding the built frontend (`index.html` and its assets). `None` serves the API only.
    pub dist: Option<PathBuf>,
    /// Origins besides the server's own that may open WebSockets and send API requests (for
    /// `trunk serve`).
    pub allowed_origins: Vec<String>,
    /// Reverse proxies (nginx, Caddy) whose `X-Forwarded-For` and `X-Forwarded-Host` are
    /// believed: behind one, every connection comes from the proxy, and without this every
    /// client would share the proxy's per-client limits.
    pub trusted_proxies: Vec<Cidr>,
    /// This instance's name, shown on deliveries it makes (`a`, `b` when several share Redis)
    /// and in every response's `X-Instance`; empty: `main`.
    pub instance: String,
    /// Subscribers one pub/sub topic may have; `None` keeps `MAX_SUBSCRIBERS_PER_TOPIC`.
    /// Raised only for load tests (the fan-out benchmark holds 10,000 on one topic).
    pub max_subscribers_per_topic: Option<usize>,
    /// Per-client caps, rate limits, WebSocket sizes and store TTLs.
    pub limits: Limits,
    /// Serve the routes for tests and benchmarks, `GET /api/debug/stats` (what the server
    /// holds) and `POST /api/bench/bare` (the untraced baseline). Off: they are unknown API
    /// paths (404) and left out of `/api/openapi.json`, so a public server shows neither.
    pub debug_routes: bool,
}

impl Config {
    /// The instance's name: [`Config::instance`], or `main` when that is empty.
    pub fn instance_name(&self) -> &str {
        if self.instance.is_empty() {
            "main"
        } else {
            &self.instance
        }
    }
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
    pub rooms: patterns::push::Rooms,
    /// The publish/subscribe broker and its tickers.
    pub pubsub: patterns::pubsub::PubSub,
    /// Chunked uploads in progress.
    pub uploads: patterns::upload::UploadStore,
    /// The small thread pool the blocking handler of the sync/async demo ties up.
    pub pool: patterns::sync_async::BlockingPool,
    /// Each run's balancer, instances and session store (stateful vs stateless demo).
    pub clusters: patterns::stateful_stateless::Clusters,
    /// Each run's app and sidecar (sidecar demo).
    pub sidecars: patterns::sidecar::Sidecars,
    /// The multiplexing demo's upstream server, proxy limits and in-flight counts.
    pub mux: patterns::multiplexing::Multiplexing,
    /// The queue demo's engines (embedded, RabbitMQ with `--amqp-url`) and each run's queues.
    pub queues: patterns::queue::Queues,
    /// The request/response-beyond-HTTP demo's DNS server, PostgreSQL and lookup bounds.
    pub protocols: patterns::protocols::Protocols,
    /// Each shaped run's link (`?link=`), shared by its requests and sockets.
    pub links: link::Links,
    /// `config.trusted_proxies`, as the client identity and the connection cap check them.
    pub trusted_proxies: TrustedProxies,
    /// Connections open now, per client, within `limits.max_connections_per_client`.
    pub connections: ClientConnections,
    /// Each client's job creations (jobs, the sync/async demo's work).
    pub job_rate: PerClient,
    /// Each client's publishes.
    pub publish_rate: PerClient,
    /// Flips when shutdown begins, so push loops close their connections cleanly (axum's
    /// graceful shutdown does not end open WebSockets on its own), and counts the sockets the
    /// server must wait for.
    pub shutdown: server::shutdown::Shutdown,
    pub config: Arc<Config>,
}

impl AppState {
    /// State with the embedded (in-memory) broker.
    pub fn new(config: Config) -> Self {
        let trace = match config.limits.store_ttl {
            Some(ttl) => TraceHub::default().with_ttl(ttl),
            None => TraceHub::default(),
        };
        let mut topics = patterns::pubsub::Topics::new(trace.clone(), config.instance_name());
        if let Some(limit) = config.max_subscribers_per_topic {
            topics = topics.with_subscriber_limit(limit);
        }
        let mut jobs = JobStore::default();
        let mut uploads = patterns::upload::UploadStore::default();
        let mut clusters = patterns::stateful_stateless::Clusters::default();
        let mut sidecars = patterns::sidecar::Sidecars::default();
        let mut mux = patterns::multiplexing::Multiplexing::default();
        let mut queues = patterns::queue::Queues::default();
        let mut links = link::Links::default();
        if let Some(ttl) = config.limits.store_ttl {
            topics = topics.with_ttl(ttl);
            jobs = jobs.with_ttl(ttl);
            uploads = uploads.with_ttl(ttl);
            clusters = clusters.with_ttl(ttl);
            sidecars = sidecars.with_ttl(ttl);
            mux.in_flight = mux.in_flight.with_ttl(ttl);
            queues = queues.with_ttl(ttl);
            links = links.with_ttl(ttl);
        }
        let limits = &config.limits;
        let trusted_proxies = TrustedProxies::new(&config.trusted_proxies);
        AppState(Arc::new(Shared {
            pubsub: patterns::pubsub::PubSub::memory(topics),
            trace,
            jobs,
            rooms: patterns::push::Rooms::default(),
            uploads,
            pool: patterns::sync_async::BlockingPool::default(),
            clusters,
            sidecars,
            mux,
            queues,
            protocols: patterns::protocols::Protocols::default(),
            links,
            connections: ClientConnections::new(
                limits.max_connections_per_client,
                limits.max_connections,
                trusted_proxies.clone(),
            ),
            trusted_proxies,
            job_rate: PerClient::new("job creations", limits.job_rate),
            publish_rate: PerClient::new("publishes", limits.publish_rate),
            shutdown: server::shutdown::Shutdown::default(),
            config: Arc::new(config),
        }))
    }

    /// Replaces the embedded pub/sub broker and the shared session store with Redis at `url`;
    /// fails within a few seconds when Redis cannot be reached.
    pub async fn with_redis(self, url: &str) -> Result<Self, String> {
        let mut shared = Shared::clone(&self);
        let current = self.pubsub.broker.topics();
        let topics = patterns::pubsub::Topics::new(self.trace.clone(), current.instance())
            .with_subscriber_limit(current.subscriber_limit())
            .with_ttl(current.ttl());
        let broker =
            patterns::pubsub::redis::RedisBroker::connect(url, topics, self.stopped()).await?;
        shared.pubsub = patterns::pubsub::PubSub::new(Arc::new(broker));
        let sessions =
            patterns::stateful_stateless::session_store::RedisSessions::connect(url).await?;
        shared.clusters = shared.clusters.with_store(Arc::new(sessions));
        Ok(AppState(Arc::new(shared)))
    }

    /// Offers RabbitMQ at `url` to the queue demo beside its embedded engine; fails within a
    /// few seconds when RabbitMQ cannot be reached.
    pub async fn with_rabbitmq(self, url: &str) -> Result<Self, String> {
        let mut shared = Shared::clone(&self);
        shared.queues = shared.queues.with_rabbitmq(url).await?;
        Ok(AppState(Arc::new(shared)))
    }

    /// Asks the PostgreSQL at `url` in the protocols demo's SQL lane; fails within a few
    /// seconds when it cannot be reached or the demo's table cannot be made.
    pub async fn with_postgres(self, url: &str) -> Result<Self, String> {
        let postgres = patterns::protocols::Postgres::connect(url).await?;
        let mut shared = Shared::clone(&self);
        shared.protocols = shared.protocols.with_postgres(postgres);
        Ok(AppState(Arc::new(shared)))
    }

    /// Completes once shutdown has begun; every push loop selects on it (and so polls it at
    /// every pass: it only looks at the shared watch when that woke it).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shutdown.stopped()
    }
}

/// The traced API, each route registered with its description (`routes!`), so the router and
/// `/api/openapi.json` cannot drift apart: the health check and the description itself, the
/// trace, every demo, and with `debug_routes` the stats.
fn traced_api(debug_routes: bool) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(openapi::serve))
        .merge(trace::socket::router())
        .merge(patterns::router());
    if debug_routes {
        api.merge(stores::router())
    } else {
        api
    }
}

/// The benchmarks' untraced baseline with `debug_routes`, else nothing.
fn baseline_api(debug_routes: bool) -> OpenApiRouter<AppState> {
    if debug_routes {
        server::baseline::router()
    } else {
        OpenApiRouter::new()
    }
}

/// The OpenAPI description of everything [`app`] serves under `/api` (with
/// [`Config::debug_routes`] as given), as `GET /api/openapi.json` serves it.
pub fn openapi_spec(debug_routes: bool) -> utoipa::openapi::OpenApi {
    let doc = OpenApiRouter::<AppState>::with_openapi(openapi::ApiDoc::openapi())
        .nest(
            "/api",
            traced_api(debug_routes).merge(baseline_api(debug_routes)),
        )
        .into_openapi();
    openapi::finish(doc)
}

/// The whole application: the API under `/api`, the built frontend everywhere else.
pub fn app(state: AppState) -> Router {
    let debug_routes = state.config.debug_routes;
    let (traced, _) = traced_api(debug_routes).split_for_parts();
    let (baseline, _) = baseline_api(debug_routes).split_for_parts();
    // Each `Router::layer` call boxes every route once more, and a boxed route clones the whole
    // stack below it on every request: the layers are grouped, one `layer` call per group.
    let api = traced
        .fallback(|| async { AppError::NotFound("no such API endpoint".into()) })
        .layer(
            ServiceBuilder::new()
                // Outside the recording: a run's link holds its requests before they are
                // recorded and its responses after.
                .layer(server::around::AroundLayer(state.links.clone()))
                // Every request carrying `run` and `rid` is traced, whichever demo it belongs to.
                .layer(server::around::AroundLayer(state.trace.clone()))
                // axum's own rejections (405, a bad path or query) answer in the same JSON shape.
                .layer(middleware::map_response(error::json_errors)),
        )
        // Merged after the trace layer, so never traced: the benchmarks' baseline.
        .merge(baseline)
        .layer(
            ServiceBuilder::new()
                // Outermost: who the client is and which host it addressed, once per request.
                .layer(middleware::map_request_with_state(
                    state.trusted_proxies.clone(),
                    server::client::identify,
                ))
                // State-changing and expensive routes only from this server's own pages (or
                // no page).
                .layer(middleware::map_request_with_state(
                    state.clone(),
                    server::cross_site::refuse,
                )),
        );
    let router = Router::new().nest("/api", api).with_state(state.clone());
    let router = match &state.config.dist {
        Some(dist) => router.fallback_service(server::static_files::service(dist)),
        None => router,
    };
    // On every response: pages, static files, API answers and errors.
    let security = server::security::SecurityHeaders::for_dist(state.config.dist.as_deref());
    let instance = server::instance::InstanceHeader::new(state.config.instance_name());
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::map_response_with_state(
                instance,
                server::instance::add,
            ))
            .layer(middleware::map_response_with_state(
                security,
                server::security::add,
            )),
    )
}

/// `GET /api/health`: the server is up and answering, and which instance it is.
#[utoipa::path(get, path = "/health", tag = "server",
    responses((status = 200, description = "The server is up; `instance` names it (`--instance`)", body = protocol::Health)))]
async fn health(State(state): State<AppState>) -> Json<protocol::Health> {
    Json(protocol::Health {
        ok: true,
        instance: state.config.instance_name().to_owned(),
    })
}

/// Serves `app(state)` on `listener` (HTTP/1.1, [`server::http1`]) until `shutdown` completes,
/// then stops accepting, tells every open connection to finish and waits for them, at most
/// [`server::shutdown::DRAIN_DEADLINE`]. Each client's connections are capped; the stores are swept
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
    tokio::spawn(stores::sweep_until_stopped(state.clone()));
    let signal = state.shutdown.clone();
    let server = server::http1::serve(listener, router, &state.config.limits, async move {
        shutdown.await;
        tracing::info!("shutting down: closing open connections");
        signal.begin();
    });
    state.shutdown.drain(server).await
}
