//! What the server holds: the periodic sweep that expires every store (they also expire lazily
//! when touched, but an idle server should let go too), and `GET /api/debug/stats`, which
//! reports open connections, live tokio tasks and the size of each store for tests and the soak.

use std::time::Duration;

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

/// How often the sweep runs, unless the stores' TTL is shorter than four times this.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The size of everything the server keeps.
#[derive(Debug, Serialize, ToSchema)]
pub struct Held {
    /// Connections open now (all clients), and the clients holding them.
    pub connections: usize,
    pub clients: usize,
    /// Tasks alive in the runtime (`RuntimeMetrics::num_alive_tasks`).
    pub alive_tasks: usize,
    pub stores: Stores,
}

/// Entries in each store now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stores {
    pub trace_runs: usize,
    pub jobs: usize,
    pub push_rooms: usize,
    pub pubsub_rooms: usize,
    pub pubsub_topics: usize,
    pub pubsub_subscribers: usize,
    pub pubsub_tickers: usize,
    pub uploads: usize,
    pub clusters: usize,
    /// `None` when sessions live in Redis (which expires them itself).
    pub sessions: Option<usize>,
    pub sidecars: usize,
    pub mux_runs: usize,
    pub job_rate_clients: usize,
    pub publish_rate_clients: usize,
}

impl AppState {
    /// Drops whatever has expired in every store.
    pub fn sweep(&self) {
        self.trace.prune();
        self.jobs.prune();
        self.rooms.prune();
        self.pubsub.prune();
        self.uploads.prune();
        self.clusters.prune();
        self.sidecars.prune();
        self.mux.in_flight.prune();
        self.job_rate.prune();
        self.publish_rate.prune();
    }

    /// What the server holds now.
    pub fn held(&self) -> Held {
        let topics = self.pubsub.broker.topics();
        let (pubsub_rooms, pubsub_topics) = topics.rooms_and_topics();
        Held {
            connections: self.connections.total(),
            clients: self.connections.clients(),
            alive_tasks: tokio::runtime::Handle::try_current()
                .map_or(0, |rt| rt.metrics().num_alive_tasks()),
            stores: Stores {
                trace_runs: self.trace.run_count(),
                jobs: self.jobs.len(),
                push_rooms: self.rooms.len(),
                pubsub_rooms,
                pubsub_topics,
                pubsub_subscribers: topics.subscriber_count(),
                pubsub_tickers: self.pubsub.ticker_count(),
                uploads: self.uploads.len(),
                clusters: self.clusters.len(),
                sessions: self.clusters.sessions(),
                sidecars: self.sidecars.len(),
                mux_runs: self.mux.in_flight.len(),
                job_rate_clients: self.job_rate.len(),
                publish_rate_clients: self.publish_rate.len(),
            },
        }
    }
}

/// Sweeps every store until shutdown: every [`SWEEP_EVERY`], or a quarter of a shorter TTL.
pub async fn sweep_until_stopped(state: AppState) {
    let every = state.config.limits.store_ttl.map_or(SWEEP_EVERY, |ttl| {
        (ttl / 4).clamp(Duration::from_millis(100), SWEEP_EVERY)
    });
    let stopped = state.stopped();
    tokio::pin!(stopped);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => state.sweep(),
        }
    }
}

/// `GET /api/debug/stats`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// `GET /api/debug/stats`: connections, live tasks and each store's size, now.
#[utoipa::path(get, path = "/debug/stats", tag = "server",
    responses((status = 200, description = "What the server holds now", body = Held)))]
pub async fn stats(State(state): State<AppState>) -> Json<Held> {
    Json(state.held())
}
