//! The plain listener's serve loop: each accepted connection is served by hyper's HTTP/1.1
//! connection (with upgrades, for WebSockets) directly, instead of `axum::serve`'s
//! version-detecting one.
//!
//! Why: an idle held connection (an event stream, a parked long poll) costs the server what its
//! connection task holds. `axum::serve` builds a `hyper_util` auto builder inside every
//! connection's task; that connection first reads into a buffer of its own to tell HTTP/2's
//! preface from HTTP/1.1, keeps what it read in a rewinding wrapper, and its future is sized for
//! the HTTP/2 state too. Browsers never speak cleartext HTTP/2, and the TLS listener
//! (`multiplexing::tls`) still serves HTTP/2 through `axum::serve`, so this listener speaks
//! HTTP/1.1 only. `make bench` (`held`, bench/RESULTS.md) measures both.
//!
//! Everything else is as `axum::serve` does it: any [`Listener`] (the per-client cap's
//! [`crate::server::connections::CappedListener`]), `ConnectInfo<SocketAddr>` for handlers, and graceful
//! shutdown: stop accepting, let each connection finish the response it is writing, close idle
//! ones, wait for all of them. Upgraded WebSockets leave hyper: [`crate::server::shutdown`] waits for
//! those.
//!
//! Where a client can stall, a bound ([`Limits`]):
//! - the request head: hyper's `header_read_timeout`, which needs a timer to run at all (without
//!   one a half-sent head held its connection forever). hyper starts it whenever it waits for a
//!   head, so it is also the keep-alive idle timeout: a kept-alive connection that sends no next
//!   request is closed after it;
//! - the head's size: at most [`MAX_HEAD_BYTES`], or it is answered `431` and the connection
//!   closed; hyper's read buffer is capped at [`MAX_BUF_SIZE`] (its default is about 400 KiB);
//! - the request body: each request's body fails once no byte has come for
//!   `request_body_timeout` (tower-http's `TimeoutBody`); the handler reading it answers with its
//!   error and hyper closes the connection, whose body was not read to the end;
//! - the response: a write the client takes no byte of for `response_write_timeout` fails and
//!   ends the connection ([`WriteDeadline`]). hyper writes with backpressure, so without it a
//!   client that never reads a large response (or an event stream whose producer already gave
//!   up on it, with bytes still unflushed) held its connection task forever. WebSockets keep
//!   their own per-frame write timeout; this one lies under it.

use std::{future::Future, io, net::SocketAddr, pin::pin};

use axum::{Router, body::Body, extract::ConnectInfo, serve::Listener};
use hyper::{Request, body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::server::{limits::Limits, write_deadline::WriteDeadline};

/// The largest request head (request line and headers) served; a bigger one is answered
/// `431 Request Header Fields Too Large` and the connection closed. Browsers send 1–2 KiB of
/// headers, cookies at most ~8 KiB, and every header the API reads is small: 64 KiB is ample.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most hyper buffers of one connection's input (its default is about 400 KiB). On its
/// own it is a soft cap: hyper checks it only while a head is incomplete, and one read into a
/// grown buffer can overshoot it (a 100 KiB head got through with it alone), hence
/// [`MAX_HEAD_BYTES`], which hyper checks on the parsed head too.
pub const MAX_BUF_SIZE: usize = 64 * 1024;

/// Serves `router` on `listener` within `limits`' timeouts until `signal` completes; then stops
/// accepting, asks every connection to finish and returns once all have.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: &Limits,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    // Dropped when shutdown begins: every connection's receiver sees it.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; `closed()` completes once every one is gone.
    let (done_tx, done_rx) = watch::channel(());
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_BUF_SIZE);
    let body_timeout = limits.request_body_timeout;
    let write_timeout = limits.response_write_timeout;
    let mut signal = pin!(signal);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request =
                    request.map(|body| Body::new(TimeoutBody::new(body_timeout, body)));
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection(
                TokioIo::new(WriteDeadline::new(io, write_timeout)),
                TowerToHyperService::new(service),
            )
            .with_upgrades();
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::trace!(%peer, cause = %err, "connection ended with an error");
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}
