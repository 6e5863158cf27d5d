//! What the server holds: the periodic sweep that expires every store (they also expire lazily
//! when touched, but an idle server should let go too), and `GET /api/debug/stats`, which
//! reports open connections, live tokio tasks, the bytes traces hold and the size of each store
//! for tests and the soak.

use std::time::Duration;

use axum::{Json, extract::State};
use serde::{Serialize, ser::SerializeMap};
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
    /// Bytes the recorded traces hold, all runs together (at most
    /// `trace::hub::GLOBAL_BUDGET`, 64 MiB).
    pub trace_bytes: usize,
    pub stores: Stores,
}

/// One number under `stores` in `GET /api/debug/stats`, and how the sweep keeps it down.
struct Store {
    /// Its key in the stats.
    name: &'static str,
    /// Entries kept now; `None` where they are not kept here.
    size: fn(&AppState) -> Option<usize>,
    /// Forgets what has expired (a no-op where another row's prune covers it).
    prune: fn(&AppState),
}

/// Everything the server keeps, in the order the stats list it: the one list the sweep and
/// `GET /api/debug/stats` read (and through the stats, the soak and the bounds test).
const STORES: [Store; 18] = [
    Store {
        name: "trace_runs",
        size: |s| Some(s.trace.run_count()),
        prune: |s| s.trace.prune(),
    },
    Store {
        name: "jobs",
        size: |s| Some(s.jobs.len()),
        prune: |s| s.jobs.prune(),
    },
    Store {
        name: "push_rooms",
        size: |s| Some(s.rooms.len()),
        prune: |s| s.rooms.prune(),
    },
    // The broker's rooms, topics and subscribers, and the tickers: one prune for the four.
    Store {
        name: "pubsub_rooms",
        size: |s| Some(s.pubsub.broker.topics().rooms_and_topics().0),
        prune: |s| s.pubsub.prune(),
    },
    Store {
        name: "pubsub_topics",
        size: |s| Some(s.pubsub.broker.topics().rooms_and_topics().1),
        prune: |_| {},
    },
    Store {
        name: "pubsub_subscribers",
        size: |s| Some(s.pubsub.broker.topics().subscriber_count()),
        prune: |_| {},
    },
    Store {
        name: "pubsub_tickers",
        size: |s| Some(s.pubsub.ticker_count()),
        prune: |_| {},
    },
    Store {
        name: "uploads",
        size: |s| Some(s.uploads.len()),
        prune: |s| s.uploads.prune(),
    },
    // The clusters' prune forgets expired sessions too.
    Store {
        name: "clusters",
        size: |s| Some(s.clusters.len()),
        prune: |s| s.clusters.prune(),
    },
    // `None` when sessions live in Redis (which expires them itself).
    Store {
        name: "sessions",
        size: |s| s.clusters.sessions(),
        prune: |_| {},
    },
    Store {
        name: "sidecars",
        size: |s| Some(s.sidecars.len()),
        prune: |s| s.sidecars.prune(),
    },
    Store {
        name: "mux_runs",
        size: |s| Some(s.mux.in_flight.len()),
        prune: |s| s.mux.in_flight.prune(),
    },
    // A run's queues, consumers and puller.
    Store {
        name: "queue_runs",
        size: |s| Some(s.queues.len()),
        prune: |s| s.queues.prune(),
    },
    // Each shaped run's link and its two queues.
    Store {
        name: "shaped_runs",
        size: |s| Some(s.links.len()),
        prune: |s| s.links.prune(),
    },
    // Lookups of the protocols demo in flight (slots, freed when each ends).
    Store {
        name: "protocol_lookups",
        size: |s| Some(s.protocols.in_flight()),
        prune: |_| {},
    },
    Store {
        name: "lookup_rate_clients",
        size: |s| Some(s.protocols.rate_clients()),
        prune: |s| s.protocols.prune(),
    },
    Store {
        name: "job_rate_clients",
        size: |s| Some(s.job_rate.len()),
        prune: |s| s.job_rate.prune(),
    },
    Store {
        name: "publish_rate_clients",
        size: |s| Some(s.publish_rate.len()),
        prune: |s| s.publish_rate.prune(),
    },
];

/// Entries in each store now, by its name in [`STORES`] (a JSON object in that order; `null`
/// for sessions kept in Redis).
#[derive(Debug)]
pub struct Stores(Vec<(&'static str, Option<usize>)>);

impl Serialize for Stores {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, size) in &self.0 {
            map.serialize_entry(name, size)?;
        }
        map.end()
    }
}

impl utoipa::PartialSchema for Stores {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let object = utoipa::openapi::schema::Object::builder().description(Some(
            "Entries in each store now; `sessions` is null when sessions live in Redis.",
        ));
        STORES
            .iter()
            .fold(object, |object, store| match store.name {
                "sessions" => object.property(store.name, Option::<usize>::schema()),
                name => object.property(name, usize::schema()).required(name),
            })
            .into()
    }
}

impl ToSchema for Stores {}

impl AppState {
    /// Drops whatever has expired in every store.
    pub fn sweep(&self) {
        for store in &STORES {
            (store.prune)(self);
        }
    }

    /// What the server holds now.
    pub fn held(&self) -> Held {
        Held {
            connections: self.connections.total(),
            clients: self.connections.clients(),
            alive_tasks: tokio::runtime::Handle::try_current()
                .map_or(0, |rt| rt.metrics().num_alive_tasks()),
            trace_bytes: self.trace.bytes(),
            stores: Stores(
                STORES
                    .iter()
                    .map(|store| (store.name, (store.size)(self)))
                    .collect(),
            ),
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

/// `GET /api/debug/stats`: connections, live tasks, trace bytes and each store's size, now.
#[utoipa::path(get, path = "/debug/stats", tag = "server",
    responses((status = 200, description = "What the server holds now", body = Held)))]
pub async fn stats(State(state): State<AppState>) -> Json<Held> {
    Json(state.held())
}
