//! The listeners' serve loop: each accepted connection is served by hyper's HTTP/1.1
//! connection (with upgrades, for WebSockets) directly, instead of `axum::serve`'s
//! version-detecting one; on the TLS listener, a connection whose ALPN chose `h2` by hyper's
//! HTTP/2 connection, with its buffers and windows capped (`H2_*`).
//!
//! Why: an idle held connection (an event stream, a parked long poll) costs the server what its
//! connection task holds. `axum::serve` builds a `hyper_util` auto builder inside every
//! connection's task; that connection first reads into a buffer of its own to tell HTTP/2's
//! preface from HTTP/1.1, keeps what it read in a rewinding wrapper, and its future is sized for
//! the HTTP/2 state too. Browsers never speak cleartext HTTP/2, so the plain listener speaks
//! HTTP/1.1 only; the TLS listener ([`crate::server::tls`]) knows from ALPN which to speak. `make bench` (`held`, bench/RESULTS.md) measures both.
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
//! - the head's size: at most [`MAX_HEAD_BYTES`], or it is answered `431` (a JSON error, as
//!   every parse error hyper answers by itself: [`crate::server::parse_errors`]) and the
//!   connection closed; hyper's read buffer is capped at [`MAX_BUF_SIZE`] (its default is about 400 KiB);
//! - the request body: each request's body fails once no byte has come for
//!   `request_body_timeout` (tower-http's `TimeoutBody`); the handler reading it answers with its
//!   error and hyper closes the connection, whose body was not read to the end;
//! - the response: a write the client takes no byte of for `response_write_timeout` fails and
//!   ends the connection ([`WriteDeadline`]). hyper writes with backpressure, so without it a
//!   client that never reads a large response (or an event stream whose producer already gave
//!   up on it, with bytes still unflushed) held its connection task forever. WebSockets keep
//!   their own per-frame write timeout; this one lies under it.

use std::{fmt::Display, future::Future, io, net::SocketAddr, pin::Pin, pin::pin};

use axum::{Router, body::Body, extract::ConnectInfo, serve::Listener};
use hyper::{
    Request,
    body::Incoming,
    server::conn::{http1, http2},
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::server::{limits::Limits, parse_errors::JsonParseErrors, write_deadline::WriteDeadline};

/// The largest request head (request line and headers) served; a bigger one is answered
/// `431 Request Header Fields Too Large` and the connection closed. Browsers send 1–2 KiB of
/// headers, cookies at most ~8 KiB, and every header the API reads is small: 64 KiB is ample.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most hyper buffers of one connection's input (its default is about 400 KiB). On its
/// own it is a soft cap: hyper checks it only while a head is incomplete, and one read into a
/// grown buffer can overshoot it (a 100 KiB head got through with it alone), hence
/// [`MAX_HEAD_BYTES`], which hyper checks on the parsed head too.
pub const MAX_BUF_SIZE: usize = 64 * 1024;

/// HTTP/2 (the TLS listener, where ALPN chose it): the largest header list a request may
/// carry, decoded (hyper's default, said here: a bigger one is refused with 431).
pub const H2_MAX_HEADER_LIST: u32 = 16 * 1024;
/// HTTP/2: the largest frame a client may send (the protocol's smallest maximum, hyper's
/// default).
pub const H2_MAX_FRAME: u32 = 16 * 1024;
/// HTTP/2: bytes a client may send on one stream before the handler reads them (hyper's
/// default is 1 MiB). 256 KiB keeps an upload chunk's throughput on a LAN.
pub const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// HTTP/2: bytes a client may send on all of a connection's streams before handlers read
/// them (hyper's default, said here): what one connection's input can hold at most.
pub const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// HTTP/2: streams one connection may have open at once (hyper's default is 200). The
/// multiplexing demo opens at most 100; a browser's page fewer.
pub const H2_MAX_STREAMS: u32 = 128;
/// HTTP/2: bytes of response hyper queues per stream before it waits for the client's window
/// (its default is 400 KiB).
pub const H2_MAX_SEND_BUF: usize = 64 * 1024;

/// Serves `router` on `listener` within `limits`' timeouts until `signal` completes; then stops
/// accepting, asks every connection to finish and returns once all have. HTTP/1.1 only.
pub async fn serve<L>(
    listener: L,
    router: Router,
    limits: &Limits,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    serve_negotiated(listener, router, limits, signal, |_| false).await
}

/// As [`serve`], but a connection for which `speaks_h2` says so (ALPN chose `h2`: the TLS
/// listener) is served as HTTP/2, within the `H2_*` bounds above and the same timeouts.
pub async fn serve_negotiated<L>(
    mut listener: L,
    router: Router,
    limits: &Limits,
    signal: impl Future<Output = ()> + Send + 'static,
    speaks_h2: fn(&L::Io) -> bool,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    // Dropped when shutdown begins: every connection's receiver sees it.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; `closed()` completes once every one is gone.
    let (done_tx, done_rx) = watch::channel(());
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_BUF_SIZE);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_frame_size(H2_MAX_FRAME)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_send_buf_size(H2_MAX_SEND_BUF)
        // WebSockets over HTTP/2 (RFC 8441), as `axum::serve` offers them.
        .enable_connect_protocol();
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
        let service = TowerToHyperService::new(service);
        let h2_chosen = speaks_h2(&io);
        let io = WriteDeadline::new(io, write_timeout);
        let (stop, done) = (stop_rx.clone(), done_rx.clone());
        if h2_chosen {
            let connection = Box::pin(h2.serve_connection(TokioIo::new(io), service));
            tokio::spawn(run(connection, |c| c.graceful_shutdown(), stop, done, peer));
        } else {
            let io = TokioIo::new(JsonParseErrors::new(io));
            let connection = Box::pin(h1.serve_connection(io, service).with_upgrades());
            tokio::spawn(run(connection, |c| c.graceful_shutdown(), stop, done, peer));
        }
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// Runs one connection to its end, asking it to finish (`shut`) once `stop` changes; drops
/// `done` when it has ended.
///
/// The connection comes boxed: an `async fn` keeps room for its argument beside the pinned
/// local it moves into, so an inline hyper connection (752 bytes over HTTP/1.1) took room
/// twice in every connection's task: 2 KiB per task at 2,000 held event streams (heaptrack).
async fn run<C, E>(
    mut connection: Pin<Box<C>>,
    shut: fn(Pin<&mut C>),
    mut stop: watch::Receiver<()>,
    done: watch::Receiver<()>,
    peer: SocketAddr,
) where
    C: Future<Output = Result<(), E>>,
    E: Display,
{
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        _ = stop.changed() => {
            shut(connection.as_mut());
            connection.await
        }
    };
    if let Err(err) = ended {
        tracing::trace!(%peer, cause = %err, "connection ended with an error");
    }
    drop(done);
}
