//! Multiplexing vs a connection pool, on both sides of the server.
//!
//! - Proxy side (`GET /api/mux/proxy?n=&via=h2|h1&pool=&item_ms=`): the server forwards N item
//!   requests to a real upstream listener inside this process, either as streams of one HTTP/2
//!   connection or over a pool of K HTTP/1.1 connections, and traces every hop with its
//!   connection lane, connection id and stream id.
//! - Browser side (`GET /api/mux/slow?ms=`): the page fires N slow requests at once; the server
//!   counts how many of the run's requests it holds at once (six, over the browser's HTTP/1.1).
//!
//! # Layout
//! - [`upstream`]: the upstream listener (h2c prior knowledge and HTTP/1.1), counting its connections.
//! - [`proxy`]: the forwarding: one HTTP/2 connection, or a bounded pool of HTTP/1.1 ones.
//! - [`in_flight`]: per-run counts of requests held at once, for the browser side.
//! - [`tls`]: the optional TLS listener (ALPN h2 and http/1.1) with a certificate made at start-up.

pub mod in_flight;
pub mod proxy;
pub mod upstream;

use std::sync::Arc;

use tokio::sync::{OnceCell, Semaphore};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, error::AppError};

/// Proxy runs forwarding at once, server-wide; one more gets a 429.
pub const MAX_PROXY_RUNS: usize = 8;

/// The demo's shared parts. Cheap to clone.
#[derive(Clone)]
pub struct Multiplexing {
    /// Started on first use and kept for the life of the server.
    upstream: Arc<OnceCell<Arc<upstream::Upstream>>>,
    /// Bounds the connections proxy runs open to the upstream: at most this many runs at once.
    runs: Arc<Semaphore>,
    /// How many requests of each run the server is holding (browser side).
    pub in_flight: in_flight::InFlight,
}

impl Default for Multiplexing {
    fn default() -> Self {
        Multiplexing {
            upstream: Arc::default(),
            runs: Arc::new(Semaphore::new(MAX_PROXY_RUNS)),
            in_flight: in_flight::InFlight::default(),
        }
    }
}

impl Multiplexing {
    /// The upstream server, started on first call (it stops when the app shuts down).
    pub async fn upstream(&self, state: &AppState) -> Result<Arc<upstream::Upstream>, AppError> {
        self.upstream
            .get_or_try_init(|| upstream::Upstream::start(state.trace.clone(), state.stopped()))
            .await
            .cloned()
            .map_err(|e| AppError::Internal(format!("cannot start the upstream server: {e}")))
    }
}

impl Multiplexing {
    /// Proxy runs that could start now.
    pub fn free_run_slots(&self) -> usize {
        self.runs.available_permits()
    }
}

/// `GET /api/mux/proxy` and `GET /api/mux/slow`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(proxy::forward))
        .routes(routes!(in_flight::slow))
}

/// Checks `value` is in `lo..=hi`, naming the parameter in the 422 otherwise.
fn in_range(name: &str, value: u32, lo: u32, hi: u32) -> Result<u32, AppError> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::Unprocessable(format!(
            "{name} must be between {lo} and {hi}, got {value}"
        )))
    }
}
