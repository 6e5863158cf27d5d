//! Request/response beyond HTTP: `GET /api/protocols/lookup?name=api&type=A` asks two other
//! servers about one service, each over its own real protocol, at the same time:
//!
//! - [`dns`]: the process's own authoritative DNS server, over UDP, through a relay that
//!   records each datagram and can drop the first (`drop_first=true`) so the resolver's timeout
//!   and retry show: request/response with no connection at all;
//! - [`postgres`]: a real PostgreSQL (`--postgres-url`), one parameterised query over its wire
//!   protocol, each message recorded by [`pg_wire`]'s relay. Without a PostgreSQL the lane says
//!   how to enable it and sends nothing.
//!
//! Each lookup takes one of its client's in-flight slots and a token of its rate.

mod dns;
mod pg_wire;
mod postgres;

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, extract::State};
use protocol::{
    ApiError, pairing,
    protocols::{LookupReport, RecordType, SqlLane, check_label},
};
use serde::Deserialize;
use tokio::sync::OnceCell;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    extract::AppQuery,
    server::{
        expiring::{CLASS_CLIENTS, Slots},
        rate_limit::{Client, PerClient, Rate},
    },
    trace::{Hop, TraceIds, Tracer},
};

pub use postgres::Postgres;

/// Lookups one client may have in flight at once (a page runs one at a time; a second lets a
/// learner press Run again before the last one ends).
pub const LOOKUPS_PER_CLIENT: usize = 2;
/// Lookups one client may start per second, and in a burst.
pub const LOOKUP_RATE: Rate = Rate {
    per_second: 5,
    burst: 10,
};

/// The demo's servers and bounds. Cheap to clone.
#[derive(Clone)]
pub struct Protocols {
    /// The DNS server's address, started on the first lookup.
    dns: Arc<OnceCell<Result<SocketAddr, String>>>,
    /// `None` without `--postgres-url`.
    postgres: Option<Postgres>,
    /// Lookups in flight, per client.
    in_flight: Slots,
    /// Each client's lookups per second.
    rate: PerClient,
}

impl Default for Protocols {
    fn default() -> Self {
        Protocols {
            dns: Arc::default(),
            postgres: None,
            in_flight: Slots::new(
                LOOKUPS_PER_CLIENT * CLASS_CLIENTS,
                LOOKUPS_PER_CLIENT,
                "lookups",
            ),
            rate: PerClient::new("lookups", LOOKUP_RATE),
        }
    }
}

impl Protocols {
    /// The same, asking this PostgreSQL in the SQL lane.
    pub fn with_postgres(mut self, postgres: Postgres) -> Protocols {
        self.postgres = Some(postgres);
        self
    }

    /// Lookups in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Clients whose rate bucket is kept now.
    pub fn rate_clients(&self) -> usize {
        self.rate.len()
    }

    /// Forgets the rate buckets that have refilled.
    pub fn prune(&self) {
        self.rate.prune();
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(lookup))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LookupQuery {
    /// The service: one DNS label (`api`); looked up as `{name}.patternscope.test.` and as the
    /// SQL parameter `$1`.
    #[param(required = true, value_type = String)]
    name: Option<String>,
    /// The DNS record type: `A`, `AAAA` or `TXT`.
    #[serde(rename = "type")]
    #[param(rename = "type", required = true, value_type = RecordType)]
    record_type: Option<String>,
    /// Drop the first DNS query on its way (`true`), so the resolver times out and asks again.
    #[param(value_type = Option<bool>)]
    drop_first: Option<String>,
}

/// A lookup's parameters, checked: each bad one named in the 422.
struct Lookup {
    name: String,
    record_type: RecordType,
    drop_first: bool,
}

impl LookupQuery {
    fn check(self) -> Result<Lookup, AppError> {
        let bad = |s: String| AppError::Unprocessable(s);
        let name = self
            .name
            .ok_or_else(|| bad("name is required: the service to look up, such as api".into()))?;
        check_label(&name).map_err(bad)?;
        let record_type = match self.record_type.as_deref() {
            Some("A") => RecordType::A,
            Some("AAAA") => RecordType::Aaaa,
            Some("TXT") => RecordType::Txt,
            other => {
                return Err(bad(format!(
                    "type must be A, AAAA or TXT, got {:?}",
                    other
                        .unwrap_or("nothing")
                        .chars()
                        .take(20)
                        .collect::<String>()
                )));
            }
        };
        let drop_first = match self.drop_first.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(format!(
                    "drop_first must be true or false, got {:?}",
                    other.chars().take(20).collect::<String>()
                )));
            }
        };
        Ok(Lookup {
            name,
            record_type,
            drop_first,
        })
    }
}

#[utoipa::path(get, path = "/protocols/lookup", tag = "protocols", params(LookupQuery),
    responses((status = 200, description = "Both lanes' answers and every datagram and wire message the relays saw", body = LookupReport),
        (status = 422, description = "name is not one DNS label, type not A, AAAA or TXT, or drop_first not a boolean", body = ApiError),
        (status = 429, description = "Over the lookup rate, or this client has as many lookups in flight as it may (Retry-After)", body = ApiError),
        (status = 503, description = "The DNS server could not be started", body = ApiError)))]
async fn lookup(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    query: Result<AppQuery<LookupQuery>, AppError>,
) -> Result<Json<LookupReport>, AppError> {
    let AppQuery(q) = query?;
    let q = q.check()?;
    let demo = &state.protocols;
    demo.rate.check(client)?;
    let _slot = demo.in_flight.take(client)?;
    let stopped = state.stopped();
    let dns = demo
        .dns
        .get_or_init(|| dns::start_server(stopped))
        .await
        .clone()
        .map_err(AppError::Unavailable)?;
    let tracer = Tracer::new(&state.trace, trace);
    let dns_lane = dns::lookup(dns, &q.name, q.record_type, q.drop_first, tracer.clone());
    let sql_lane = async {
        match &demo.postgres {
            Some(pg) => pg.lookup(&q.name, tracer.clone()).await,
            None => {
                tracer.record(|rid| {
                    Hop::note("server", pairing::hop(rid, "pg-off"))
                        .label(format!("SQL lane off. {}", postgres::HOW_TO_ENABLE))
                });
                SqlLane {
                    enabled: false,
                    sql: String::new(),
                    rows: Vec::new(),
                    messages: Vec::new(),
                    error: Some(postgres::HOW_TO_ENABLE.to_owned()),
                    elapsed_ms: 0.0,
                }
            }
        }
    };
    let (dns, sql) = tokio::join!(dns_lane, sql_lane);
    let dns = dns.map_err(AppError::Unavailable)?;
    if let Some(e) = sql.error.as_ref().filter(|_| sql.enabled) {
        tracer.record(|rid| {
            Hop::note("server", pairing::hop(rid, "pg-failed")).label(format!("SQL lane: {e}"))
        });
    }
    Ok(Json(LookupReport { dns, sql }))
}
