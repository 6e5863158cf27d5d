//! The serving machinery, knowing no pattern: the listeners (the HTTP/1.1 serve loop, the
//! optional TLS listener), who each request's client is (behind trusted proxies too), each
//! client's connections and rates, the bounds the command line sets, security headers, the
//! `Origin` check and the refusal of cross-site API requests, WebSocket bounds and close codes,
//! hyper's parse errors as JSON, the built frontend, the `X-Instance` header, the benchmarks' bare route, graceful shutdown, and the expiring map every
//! store is made of, and the middleware shape that wraps only the requests it must.
//!
//! May import: `crate::error`, `crate::AppState` (for handlers' state). Nothing from the trace,
//! the transports, the actors or the patterns.

pub(crate) mod around;
pub(crate) mod baseline;
pub(crate) mod client;
pub(crate) mod connections;
pub(crate) mod cross_site;
pub(crate) mod expiring;
pub(crate) mod http1;
pub(crate) mod instance;
pub mod limits;
pub(crate) mod origin;
pub(crate) mod parse_errors;
pub mod rate_limit;
pub(crate) mod security;
pub mod shutdown;
pub(crate) mod static_files;
pub mod tls;
pub(crate) mod when_woken;
pub(crate) mod write_deadline;
pub(crate) mod ws_limits;
