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

use tokio::sync::OnceCell;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    server::{
        client::ClientId,
        expiring::{Slot, Slots},
    },
};

/// Proxy runs one client may have forwarding at once: a page runs one at a time. One more gets
/// a 429 with `Retry-After`.
pub const PROXY_RUNS_PER_CLIENT: usize = 1;
/// Proxy runs forwarding at once, server-wide; one more gets a 429. Not a multiple of the
/// share: a run opens up to `MAX_POOL` (16) upstream connections, and 16 runs fill the
/// upstream's 256. A run lasts seconds, so a class of 30 running the demo at a human pace
/// holds one or two at a time, and two abusers at most two.
pub const MAX_PROXY_RUNS: usize = 16;

/// The demo's shared parts. Cheap to clone.
#[derive(Clone)]
pub struct Multiplexing {
    /// Started on first use and kept for the life of the server.
    upstream: Arc<OnceCell<Arc<upstream::Upstream>>>,
    /// The proxy runs forwarding now (each removed when it ends), counted against the share of
    /// the client that started it: bounds the connections all runs together open upstream.
    runs: Slots,
    /// How many requests of each run the server is holding (browser side).
    pub in_flight: in_flight::InFlight,
}

impl Default for Multiplexing {
    fn default() -> Self {
        Multiplexing {
            upstream: Arc::default(),
            runs: Slots::new(MAX_PROXY_RUNS, PROXY_RUNS_PER_CLIENT, "proxy runs"),
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
        MAX_PROXY_RUNS - self.runs.len()
    }

    /// Takes a proxy run's slot for `client` until the returned slot is dropped; a 429 past
    /// the client's share or [`MAX_PROXY_RUNS`].
    pub fn start_run(&self, client: Option<ClientId>) -> Result<Slot, AppError> {
        Ok(self.runs.take(client)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_runs_its_share_of_proxy_runs_while_another_is_served() {
        let client = |n| Some(ClientId::of(std::net::IpAddr::from([10, 0, 0, n])));
        let mux = Multiplexing::default();
        let first = mux.start_run(client(1)).unwrap();
        let AppError::RateLimited {
            message,
            retry_after,
        } = mux.start_run(client(1)).err().unwrap()
        else {
            panic!("a 429 with Retry-After")
        };
        assert!(
            message.starts_with("one client may hold 1 proxy runs at once"),
            "{message}"
        );
        assert!(retry_after >= std::time::Duration::from_secs(1));
        let theirs = mux.start_run(client(2)).unwrap();
        assert_eq!(mux.free_run_slots(), MAX_PROXY_RUNS - 2);
        drop(first);
        let again = mux.start_run(client(1)).unwrap();
        drop((theirs, again));
        assert_eq!(mux.free_run_slots(), MAX_PROXY_RUNS);
    }
}
