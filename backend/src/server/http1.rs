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

use std::{future::Future, io, net::SocketAddr, pin::pin};

use axum::{Router, body::Body, extract::ConnectInfo, serve::Listener};
use hyper::{Request, body::Incoming, server::conn::http1};
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `router` on `listener` until `signal` completes; then stops accepting, asks every
/// connection to finish and returns once all have.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    // Dropped when shutdown begins: every connection's receiver sees it.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; `closed()` completes once every one is gone.
    let (done_tx, done_rx) = watch::channel(());
    let builder = http1::Builder::new();
    let mut signal = pin!(signal);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
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
