//! Wire types shared by the Patternscope backend and frontend.
//!
//! Only serde types (and the echo demo's serde codec) live here: no axum, no leptos, no web-sys,
//! so the crate compiles for the server and for `wasm32-unknown-unknown` alike.
//!
//! # Layout
//! - [`trace`]: the trace model that drives every sequence diagram, and the trace WebSocket's
//!   two message enums (one per direction).
//! - [`echo`]: the request/response demo's payload, reply, query parameters and codec.
//! - [`job`]: the job workload the waiting-for-results demos share (polling, SSE, push).
//! - [`push`]: the push demo's WebSocket frames, one enum per direction, and the [`push::Frame`]
//!   trait every pushing socket's frames share.
//! - [`pubsub`]: the publish/subscribe demo's publish, subscriber frames, ticker and bounds.
//! - [`upload`]: whole and chunked uploads, resumable, checked by SHA-256.
//! - [`stateful_stateless`]: the balancer demo's cluster, login and session answers.
//! - [`sidecar`]: the sidecar demo's setup and the app's answer.
//! - [`sync_async`]: what the blocking and the awaiting handler answer.
//! - [`queue`]: the queue demo's run, published jobs and the broker's report.
//! - [`link`]: the network link a run is shaped to (`?link=`), its presets and what they add.
//! - [`pairing`]: the request ids both observers give a frame, an event or a hop, so they pair.
//! - [`multiplexing`]: the multiplexing demo's proxy report and slow-request answer.
//! - [`protocols`]: the request/response-beyond-HTTP demo's lookup (DNS over UDP, SQL over
//!   PostgreSQL's wire protocol) and what the server saw of it.
//! - [`ApiError`]: the JSON body of every 4xx the server returns; [`Health`], [`Stopped`]: two
//!   answers several endpoints share.
#![forbid(unsafe_code)]

pub mod echo;
pub mod job;
pub mod link;
pub mod multiplexing;
pub mod pairing;
pub mod protocols;
pub mod pubsub;
pub mod push;
pub mod queue;
pub mod rest_graphql;
pub mod sidecar;
pub mod stateful_stateless;
pub mod sync_async;
pub mod trace;
pub mod upload;

pub use link::LINK_PARAM;
use serde::{Deserialize, Serialize};

/// The body of every error response: `{ "error": "..." }`, naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub error: String,
}

/// Query parameter every demo request carries: the run it belongs to.
///
/// A query parameter (not a header) because EventSource and WebSocket cannot set headers, and
/// one rule for every browser API keeps the pairing code single. It also makes each request
/// easy to find with the Network tab's filter box.
pub const RUN_PARAM: &str = "run";
/// Query parameter every demo request carries: its request id, unique within the run.
pub const REQUEST_PARAM: &str = "rid";
/// Path of the trace WebSocket (one per page).
pub const TRACE_SOCKET_PATH: &str = "/api/trace/ws";
/// Query parameter of the trace WebSocket: the run it is opened to watch. The server ignores it
/// (the `Watch` message says what to watch); it is there for a reverse proxy in front of several
/// instances that hashes on the run id (`deploy/nginx.conf`), so the socket meets the run's
/// requests on the instance that records them. Not `run`: that would make the socket a traced
/// request of the run.
pub const WATCH_PARAM: &str = "watch";

/// `GET /api/health`: the server is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub ok: bool,
    /// The instance that answered (`--instance`), as its `X-Instance` header says too.
    pub instance: String,
}

/// Stopping something (a ticker, a run's cluster or sidecar): whether there was something to stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stopped {
    pub stopped: bool,
}
