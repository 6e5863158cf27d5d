//! Sidecar: each run gets a plain app ([`app`]) and a sidecar proxy ([`proxy`]) on its own port
//! in front of it, both real listeners inside the process. The page reaches the sidecar through
//! this server's `/api/sidecar/…` front door (a browser may only talk to its own origin), which
//! forwards each request unchanged, so the diagram shows browser → server → sidecar → app.
//!
//! - `POST /api/sidecar/setup` `{fail_percent, rate_per_s}` starts the run's app and sidecar
//!   (replacing older ones).
//! - `DELETE /api/sidecar/setup` stops them.
//! - any other `/api/sidecar/{path}` is forwarded to the sidecar: `GET /api/sidecar/orders/7`.

pub mod app;
pub mod proxy;

use protocol::{ApiError, sidecar::OrderView};
use std::{sync::Arc, time::Duration};

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
    sidecar::{SidecarInfo, SidecarSpec},
    trace::Kind,
};

use self::{app::App, proxy::Sidecar};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::server::rate_limit::{Client, TokenBucket};
use crate::{
    AppState,
    actors::inner_listener::{InnerListener, PassOn, PerRun, stopped},
    actors::relay::Relay,
    error::AppError,
    extract::AppJson,
    openapi,
    trace::{Hop, TraceIds, Tracer},
};

/// Apps with their sidecar one client may run at once (two listeners each): the demo needs
/// one, a second lets a learner start the next run before the last one stops. A client
/// starting one more stops its own least recently used idle pair, never another client's; the
/// store holds this times [`CLASS_CLIENTS`](crate::server::expiring::CLASS_CLIENTS) (96 pairs).
pub const PAIRS_PER_CLIENT: usize = 2;
/// A pair unused this long is stopped.
pub const PAIR_TTL: Duration = Duration::from_secs(5 * 60);

/// One run's app and sidecar. Dropping it stops both.
pub struct Pair {
    sidecar: InnerListener,
    _app: InnerListener,
}

/// Every run's app and sidecar. Cheap to clone.
#[derive(Clone)]
pub struct Sidecars {
    runs: PerRun<Pair>,
    relay: Relay,
}

impl Default for Sidecars {
    fn default() -> Self {
        Sidecars {
            runs: PerRun::new(PAIRS_PER_CLIENT, "sidecars", PAIR_TTL),
            relay: Relay::default(),
        }
    }
}

impl Sidecars {
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// The same pairs, each stopped `ttl` after it was last used.
    pub fn with_ttl(mut self, ttl: Duration) -> Sidecars {
        self.runs = self.runs.with_ttl(ttl);
        self
    }

    /// Stops the pairs unused for longer than the TTL.
    pub fn prune(&self) {
        self.runs.prune();
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(setup, teardown))
        .merge(openapi::served_as(
            routes!(forward),
            "/sidecar/{*path}",
            any(forward),
        ))
}

fn pair_of(state: &AppState, ids: &TraceIds) -> Result<Arc<Pair>, AppError> {
    state.sidecars.runs.get(&ids.run).ok_or_else(|| {
        AppError::NotFound(format!(
            "no sidecar for run {}: POST /api/sidecar/setup first",
            ids.run.0
        ))
    })
}

#[utoipa::path(post, path = "/sidecar/setup", tag = "sidecar", request_body = SidecarSpec,
    responses((status = 201, description = "App and sidecar started", body = SidecarInfo),
        (status = 400, description = "Malformed JSON, or no run/rid", body = ApiError), (status = 413, description = "Body too large", body = ApiError), (status = 415, description = "Content-Type is not application/json", body = ApiError),
        (status = 422, description = "Wrong field types or values out of range", body = ApiError), (status = 429, description = "This client runs as many sidecars as it may, each in use (Retry-After)", body = ApiError)))]
async fn setup(
    State(state): State<AppState>,
    Client(client): Client,
    ids: TraceIds,
    AppJson(spec): AppJson<SidecarSpec>,
) -> Result<(StatusCode, Json<SidecarInfo>), AppError> {
    spec.validate().map_err(AppError::Unprocessable)?;
    let cannot =
        |what: &str, e: std::io::Error| AppError::Internal(format!("cannot start the {what}: {e}"));
    let app = InnerListener::start(
        "app",
        app::router(Arc::new(App::new(spec.fail_percent))),
        state.stopped(),
    )
    .await
    .map_err(|e| cannot("app", e))?;
    let proxy = Arc::new(Sidecar {
        hub: state.trace.clone(),
        relay: state.sidecars.relay.clone(),
        app: app.addr(),
        rate_per_s: spec.rate_per_s,
        bucket: TokenBucket::new(spec.rate_per_s),
    });
    let sidecar = InnerListener::start("sidecar", proxy::router(proxy), state.stopped())
        .await
        .map_err(|e| cannot("sidecar", e))?;
    let info = SidecarInfo {
        spec,
        sidecar_port: sidecar.addr().port(),
        app_port: app.addr().port(),
    };
    state.sidecars.runs.insert(
        client,
        ids.run.clone(),
        Arc::new(Pair { sidecar, _app: app }),
    )?;
    let tracer = Tracer::new(&state.trace, Some(ids.clone()));
    let limit = match spec.rate_per_s {
        0 => "no rate limit".to_owned(),
        r => format!("limit {r}/s"),
    };
    tracer.record(|rid| {
        Hop::new(
            Kind::Connect,
            "server",
            "sidecar",
            pairing::hop(rid, "start-sidecar"),
        )
        .label(format!(
            "start sidecar on :{} → app ({limit})",
            info.sidecar_port
        ))
    });
    tracer.record(|rid| {
        Hop::new(
            Kind::Connect,
            "server",
            "app",
            pairing::hop(rid, "start-app"),
        )
        .label(format!(
            "start app on :{} (fails {}% of requests)",
            info.app_port, spec.fail_percent
        ))
    });
    Ok((StatusCode::CREATED, Json(info)))
}

#[utoipa::path(delete, path = "/sidecar/setup", tag = "sidecar",
    responses((status = 200, description = "Stopped", body = protocol::Stopped),
        (status = 400, description = "No run/rid", body = ApiError), (status = 404, description = "No sidecar for this run", body = ApiError)))]
async fn teardown(
    State(state): State<AppState>,
    ids: TraceIds,
) -> Result<Json<protocol::Stopped>, AppError> {
    pair_of(&state, &ids)?;
    state.sidecars.runs.remove(&ids.run);
    Ok(stopped(&state.trace, ids, &["sidecar", "app"]))
}

#[utoipa::path(method(get, post), path = "/sidecar/{path}", tag = "sidecar",
    description = "Passed on, any method, to the run's sidecar, which forwards to the app (GET /orders/{id}) with retries and a rate limit.",
    params(("path" = String, Path, description = "Path at the sidecar")),
    responses((status = 200, description = "The app's answer", body = OrderView),
        (status = 400, description = "No run/rid, or a bad order id", body = ApiError), (status = 404, description = "No sidecar for this run, or no such path", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError), (status = 429, description = "Over the sidecar's rate limit", body = ApiError),
        (status = 500, description = "The app failed (the demo's injected failure, after the sidecar's retries)", body = ApiError),
        (status = 502, description = "The sidecar or app did not answer", body = ApiError)))]
async fn forward(
    State(state): State<AppState>,
    ids: TraceIds,
    Path(path): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let pair = pair_of(&state, &ids)?;
    let pass = PassOn {
        trace: &state.trace,
        relay: &state.sidecars.relay,
        ids,
        actor: "sidecar",
        entry: &pair.sidecar,
    };
    pass.send(&path, &uri, method, &headers, body).await
}
