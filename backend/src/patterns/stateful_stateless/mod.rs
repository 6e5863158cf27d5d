//! Stateful vs stateless: each run gets a cluster of real listeners inside the process, a load
//! balancer ([`balancer`]) in front of two instances ([`instance`]) and a session store
//! ([`session_store`]); sessions live in one instance's memory, in a signed token ([`token`]) or
//! in the store. The page reaches the balancer through this server's `/api/lb/…` front door
//! (a browser may only talk to its own origin), which forwards each request unchanged.
//!
//! - `POST /api/lb/cluster` `{mode, sticky}` starts the run's cluster (replacing an older one).
//! - `POST /api/lb/cluster/restart?instance=a` stops instance A (its memory goes with it) and
//!   starts it again on a new port.
//! - `DELETE /api/lb/cluster` stops the run's cluster.
//! - any other `/api/lb/{path}` is forwarded to the balancer: `POST /api/lb/login`,
//!   `GET /api/lb/profile`.

pub mod balancer;
pub mod instance;
pub mod session_store;
pub mod token;

use protocol::{ApiError, stateful_stateless::SessionView};
use std::{
    sync::{Arc, Mutex, atomic::AtomicUsize},
    time::Duration,
};

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::Response,
    routing::any,
};
use protocol::{
    pairing,
    stateful_stateless::{ClusterInfo, ClusterSpec, InstanceInfo},
    trace::Kind,
};
use serde::Deserialize;

use self::{
    balancer::{Balancer, INSTANCES},
    instance::Instance,
    session_store::{MemorySessions, SessionStore},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    actors::inner_listener::{InnerListener, PassOn, PerRun, stopped},
    actors::relay::Relay,
    error::AppError,
    extract::{AppJson, AppQuery},
    openapi,
    server::{client::ClientId, rate_limit::Client},
    trace::{Hop, TraceIds, Tracer},
};

/// Clusters one client may run at once (three listeners each): the demo needs one, and a
/// second lets a learner start the next run before the last one stops. A client starting one
/// more stops its own least recently used idle cluster, never another client's; the store
/// holds this times [`CLASS_CLIENTS`](crate::server::expiring::CLASS_CLIENTS) (96 clusters,
/// 288 listeners) so a class of 30 and two abusers never fill it.
pub const CLUSTERS_PER_CLIENT: usize = 2;
/// A cluster unused this long is stopped.
pub const CLUSTER_TTL: Duration = Duration::from_secs(5 * 60);

/// One instance as it runs now.
struct Running {
    listener: InnerListener,
    instance: Arc<Instance>,
}

/// One run's balancer, instances and store. Dropping it stops every listener.
pub struct Cluster {
    spec: ClusterSpec,
    /// The client that started it, whose shares its sessions count against.
    client: Option<ClientId>,
    balancer: InnerListener,
    /// Shared with the balancer: where each instance listens now.
    targets: Arc<Mutex<[std::net::SocketAddr; 2]>>,
    // std Mutex: swapped under the lock, never held across an await.
    instances: Mutex<[Running; 2]>,
}

impl Cluster {
    fn info(&self) -> ClusterInfo {
        let instances = self.instances.lock().expect("instances lock poisoned");
        ClusterInfo {
            spec: self.spec,
            balancer_port: self.balancer.addr().port(),
            instances: instances
                .iter()
                .map(|r| InstanceInfo {
                    name: r.instance.name.to_owned(),
                    port: r.listener.addr().port(),
                    generation: r.instance.generation,
                })
                .collect(),
        }
    }
}

/// Every run's cluster. Cheap to clone.
#[derive(Clone)]
pub struct Clusters {
    runs: PerRun<Cluster>,
    relay: Relay,
    /// The store every instance of a cluster shares (in memory, or Redis under `--redis-url`).
    store: Arc<dyn SessionStore>,
}

impl Default for Clusters {
    fn default() -> Self {
        Clusters {
            runs: PerRun::new(CLUSTERS_PER_CLIENT, "clusters", CLUSTER_TTL),
            relay: Relay::default(),
            store: Arc::new(MemorySessions::default()),
        }
    }
}

impl Clusters {
    /// The same, with `store` as the store every instance shares (Redis under `--redis-url`).
    pub fn with_store(mut self, store: Arc<dyn SessionStore>) -> Clusters {
        self.store = store;
        self
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// The same clusters (and in-memory sessions), each forgotten `ttl` after last use.
    pub fn with_ttl(mut self, ttl: Duration) -> Clusters {
        self.runs = self.runs.with_ttl(ttl);
        self.store = Arc::new(MemorySessions::with_ttl(ttl));
        self
    }

    /// Stops the clusters unused for longer than the TTL and forgets expired sessions.
    pub fn prune(&self) {
        self.runs.prune();
        self.store.prune();
    }

    /// Sessions the shared store holds here (`None` when they live in Redis).
    pub fn sessions(&self) -> Option<usize> {
        self.store.held()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start, stop))
        .routes(routes!(restart))
        .merge(openapi::served_as(
            routes!(forward),
            "/lb/{*path}",
            any(forward),
        ))
}

async fn start_instance(
    state: &AppState,
    client: Option<ClientId>,
    name: &'static str,
    spec: ClusterSpec,
    generation: u32,
) -> Result<Running, AppError> {
    let instance = Arc::new(Instance {
        name,
        mode: spec.mode,
        generation,
        memory: Arc::new(MemorySessions::private()),
        store: state.clusters.store.clone(),
        client,
        hub: state.trace.clone(),
    });
    let listener = InnerListener::start(name, instance::router(instance.clone()), state.stopped())
        .await
        .map_err(|e| AppError::Internal(format!("cannot start {name}: {e}")))?;
    Ok(Running { listener, instance })
}

#[utoipa::path(post, path = "/lb/cluster", tag = "stateful-stateless", request_body = ClusterSpec,
    responses((status = 201, description = "Balancer and instances started", body = ClusterInfo),
        (status = 400, description = "Malformed JSON, or no run/rid", body = ApiError), (status = 413, description = "Body too large", body = ApiError), (status = 415, description = "Content-Type is not application/json", body = ApiError),
        (status = 422, description = "Wrong field types", body = ApiError), (status = 429, description = "This client runs as many clusters as it may, each in use (Retry-After)", body = ApiError)))]
async fn start(
    State(state): State<AppState>,
    Client(client): Client,
    ids: TraceIds,
    AppJson(spec): AppJson<ClusterSpec>,
) -> Result<(StatusCode, Json<ClusterInfo>), AppError> {
    let a = start_instance(&state, client, INSTANCES[0], spec, 1).await?;
    let b = start_instance(&state, client, INSTANCES[1], spec, 1).await?;
    let targets = Arc::new(Mutex::new([a.listener.addr(), b.listener.addr()]));
    let lb = Arc::new(Balancer {
        hub: state.trace.clone(),
        relay: state.clusters.relay.clone(),
        sticky: spec.sticky,
        targets: targets.clone(),
        next: AtomicUsize::new(0),
    });
    let balancer = InnerListener::start("lb", balancer::router(lb), state.stopped())
        .await
        .map_err(|e| AppError::Internal(format!("cannot start the balancer: {e}")))?;
    let tracer = Tracer::new(&state.trace, Some(ids.clone()));
    let sticky = if spec.sticky { ", sticky" } else { "" };
    tracer.record(|rid| {
        Hop::new(Kind::Connect, "server", "lb", pairing::hop(rid, "start-lb")).label(format!(
            "start balancer on :{}{sticky}",
            balancer.addr().port()
        ))
    });
    for r in [&a, &b] {
        tracer.record(|rid| {
            Hop::new(
                Kind::Connect,
                "server",
                r.instance.name,
                pairing::hop(rid, &format!("start-{}", r.instance.name)),
            )
            .label(format!(
                "start {} on :{} (sessions: {})",
                r.instance.name,
                r.listener.addr().port(),
                spec.mode.as_str()
            ))
        });
    }
    let cluster = Arc::new(Cluster {
        spec,
        client,
        balancer,
        targets,
        instances: Mutex::new([a, b]),
    });
    let info = cluster.info();
    state.clusters.runs.insert(client, ids.run, cluster)?;
    Ok((StatusCode::CREATED, Json(info)))
}

fn cluster_of(state: &AppState, ids: &TraceIds) -> Result<Arc<Cluster>, AppError> {
    state.clusters.runs.get(&ids.run).ok_or_else(|| {
        AppError::NotFound(format!(
            "no cluster for run {}: POST /api/lb/cluster first (clusters stop after {} idle minutes)",
            ids.run.0,
            CLUSTER_TTL.as_secs() / 60
        ))
    })
}

#[utoipa::path(delete, path = "/lb/cluster", tag = "stateful-stateless",
    responses((status = 200, description = "Stopped", body = protocol::Stopped),
        (status = 400, description = "No run/rid", body = ApiError), (status = 404, description = "No cluster for this run", body = ApiError)))]
async fn stop(
    State(state): State<AppState>,
    ids: TraceIds,
) -> Result<Json<protocol::Stopped>, AppError> {
    cluster_of(&state, &ids)?;
    state.clusters.runs.remove(&ids.run);
    Ok(stopped(
        &state.trace,
        ids,
        &["lb", INSTANCES[0], INSTANCES[1]],
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RestartQuery {
    instance: String,
}

#[utoipa::path(post, path = "/lb/cluster/restart", tag = "stateful-stateless",
    params(RestartQuery),
    responses((status = 200, description = "The instance restarted, its memory empty", body = ClusterInfo),
        (status = 400, description = "No run/rid", body = ApiError), (status = 404, description = "No cluster for this run", body = ApiError), (status = 422, description = "instance is not a or b", body = ApiError)))]
async fn restart(
    State(state): State<AppState>,
    ids: TraceIds,
    query: Result<AppQuery<RestartQuery>, AppError>,
) -> Result<Json<ClusterInfo>, AppError> {
    let AppQuery(query) = query?;
    let i = match query.instance.as_str() {
        "a" => 0,
        "b" => 1,
        other => {
            return Err(AppError::Unprocessable(format!(
                "instance must be a or b, got {other:?}"
            )));
        }
    };
    let cluster = cluster_of(&state, &ids)?;
    let name = INSTANCES[i];
    let generation = cluster.instances.lock().expect("instances lock poisoned")[i]
        .instance
        .generation
        + 1;
    let fresh = start_instance(&state, cluster.client, name, cluster.spec, generation).await?;
    let port = fresh.listener.addr().port();
    let old = {
        let mut instances = cluster.instances.lock().expect("instances lock poisoned");
        cluster.targets.lock().expect("targets lock poisoned")[i] = fresh.listener.addr();
        std::mem::replace(&mut instances[i], fresh)
    };
    let forgotten = old.instance.memory.len();
    // Dropping the old listener stops it; its memory goes with it.
    drop(old);
    let tracer = Tracer::new(&state.trace, Some(ids));
    tracer.record(|rid| {
        Hop::new(Kind::Close, "server", name, pairing::hop(rid, "stop")).label(format!(
            "restart {name}: process stops, {forgotten} session(s) in its memory lost"
        ))
    });
    tracer.record(|rid| {
        Hop::new(Kind::Connect, "server", name, pairing::hop(rid, "start"))
            .label(format!("{name} starts again on :{port}, memory empty"))
    });
    tracing::info!(instance = name, port, forgotten, "instance restarted");
    Ok(Json(cluster.info()))
}

#[utoipa::path(method(get, post), path = "/lb/{path}", tag = "stateful-stateless",
    description = "Passed on, any method, to the run's load balancer (instances serve POST /login and GET /profile).",
    params(("path" = String, Path, description = "Path at the balancer")),
    responses((status = 200, description = "The instance's answer", body = SessionView),
        (status = 400, description = "No run/rid", body = ApiError), (status = 401, description = "No valid session", body = ApiError), (status = 404, description = "No cluster for this run, or no such path", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError), (status = 422, description = "Bad login", body = ApiError), (status = 502, description = "The balancer or instance did not answer", body = ApiError),
        (status = 503, description = "The session store (Redis) cannot be reached", body = ApiError)))]
async fn forward(
    State(state): State<AppState>,
    ids: TraceIds,
    Path(path): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let cluster = cluster_of(&state, &ids)?;
    let pass = PassOn {
        trace: &state.trace,
        relay: &state.clusters.relay,
        ids,
        actor: "lb",
        entry: &cluster.balancer,
    };
    pass.send(&path, &uri, method, &headers, body).await
}
