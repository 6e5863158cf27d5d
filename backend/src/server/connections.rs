//! Connection caps, per client and for the whole server. Every connection (plain HTTP, SSE,
//! WebSocket, TLS) is counted against its client ([`ClientId`]: an IPv4 address, an IPv6 /64)
//! and in the total when it is accepted, and released when it closes, whatever it carried; one
//! over either cap is answered `429` with a JSON body and closed. A connection from a trusted proxy (`--trusted-proxy`) carries many clients'
//! requests and no header is known at accept: it is counted in the total only, and behind the
//! proxy the per-client limits apply per request ([`super::client`]).

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::serve::Listener;
use protocol::ApiError;

use super::client::{ClientId, TrustedProxies};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
};

/// Refusals being answered at once; beyond it a refused connection is just closed.
const MAX_REFUSALS: usize = 256;
/// How long a refused client may take to send its request head before it is closed.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a refused client's request head that is read (and ignored).
const REFUSAL_READ: usize = 8 * 1024;

/// Connections open now, per client. Cheap to clone.
#[derive(Clone)]
pub struct ClientConnections {
    inner: Arc<Inner>,
}

struct Inner {
    /// Connections one client may hold; 0 is no limit.
    max_per_client: usize,
    /// Connections open at once, all clients together (trusted proxies too); 0 is no limit.
    /// Each costs memory and a file descriptor: without it, many clients each within their
    /// own cap could still exhaust both.
    max_total: usize,
    /// Peers not capped: each holds connections for many clients.
    proxies: TrustedProxies,
    // std Mutex: one short map update per connection opened or closed.
    per_client: Mutex<HashMap<ClientId, usize>>,
    total: AtomicUsize,
    /// Refusals being answered now (bounded by `MAX_REFUSALS`).
    refusing: AtomicUsize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its client holds `max_per_client` connections already.
    Client,
    /// The server holds `max_total` connections already.
    Server,
}

/// One admitted connection; dropping it (the connection closed) counts it out.
pub struct ConnectionGuard {
    inner: Arc<Inner>,
    /// The client it counts against; `None` for a trusted proxy's connection (total only).
    client: Option<ClientId>,
}

impl ConnectionGuard {
    /// The client it counts against; `None` for a trusted proxy's connection.
    pub fn client(&self) -> Option<ClientId> {
        self.client
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.inner.total.fetch_sub(1, Ordering::Relaxed);
        let Some(client) = self.client else { return };
        let mut per_client = self
            .inner
            .per_client
            .lock()
            .expect("connections lock poisoned");
        if let Some(n) = per_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&client);
            }
        }
    }
}

impl ClientConnections {
    /// At most `max_per_client` connections per client and `max_total` in all (0: no limit);
    /// `proxies` are not capped per client.
    pub fn new(
        max_per_client: usize,
        max_total: usize,
        proxies: TrustedProxies,
    ) -> ClientConnections {
        ClientConnections {
            inner: Arc::new(Inner {
                max_per_client,
                max_total,
                proxies,
                per_client: Mutex::default(),
                total: AtomicUsize::new(0),
                refusing: AtomicUsize::new(0),
            }),
        }
    }

    /// Counts a connection from `peer` in, or says which cap it is over: the server's total or
    /// its client's. A trusted proxy is counted in the total only.
    pub fn admit(&self, peer: IpAddr) -> Result<ConnectionGuard, Refusal> {
        // Taken first and given back if the client is over its cap: admissions race on the
        // counter, never on a check made before it.
        let before = self.inner.total.fetch_add(1, Ordering::Relaxed);
        if self.inner.max_total != 0 && before >= self.inner.max_total {
            self.inner.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Server);
        }
        if self.inner.proxies.trusts(peer) {
            return Ok(ConnectionGuard {
                inner: self.inner.clone(),
                client: None,
            });
        }
        let client = ClientId::of(peer);
        let mut per_client = self
            .inner
            .per_client
            .lock()
            .expect("connections lock poisoned");
        let n = per_client.entry(client).or_insert(0);
        if self.inner.max_per_client != 0 && *n >= self.inner.max_per_client {
            if *n == 0 {
                per_client.remove(&client);
            }
            self.inner.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Client);
        }
        *n += 1;
        Ok(ConnectionGuard {
            inner: self.inner.clone(),
            client: Some(client),
        })
    }

    /// Connections open now, all clients together.
    pub fn total(&self) -> usize {
        self.inner.total.load(Ordering::Relaxed)
    }

    /// Clients with at least one connection open (trusted proxies not included).
    pub fn clients(&self) -> usize {
        self.inner
            .per_client
            .lock()
            .expect("connections lock poisoned")
            .len()
    }

    pub fn max_per_client(&self) -> usize {
        self.inner.max_per_client
    }

    /// Answers a connection over a cap with a 429 and closes it, in the background (at most
    /// `MAX_REFUSALS` at once; beyond that it is closed unanswered).
    fn refuse(&self, mut tcp: TcpStream, peer: SocketAddr, refusal: Refusal) {
        let error = match refusal {
            Refusal::Client => {
                let max = self.inner.max_per_client;
                tracing::info!(%peer, max, "too many connections from one client");
                format!(
                    "too many connections from your address: at most {max} at once; \
                     close some and retry"
                )
            }
            Refusal::Server => {
                let max = self.inner.max_total;
                tracing::warn!(%peer, max, "too many connections in all");
                format!("the server holds as many connections as it may ({max}); retry shortly")
            }
        };
        let inner = self.inner.clone();
        if inner.refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSALS {
            inner.refusing.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer_429(&mut tcp, error)).await;
            inner.refusing.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads the request head (so closing does not reset the connection under the answer), writes
/// the 429 with `error` and waits for the client to close.
async fn answer_429(tcp: &mut TcpStream, error: String) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REFUSAL_READ {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::to_string(&ApiError { error }).expect("an error serializes");
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(response.as_bytes()).await?;
    tcp.shutdown().await?;
    // Wait for the client's close rather than resetting what it still sends.
    while tcp.read(&mut buf).await? > 0 {}
    Ok(())
}

/// A connection counted against its client for as long as it is open.
pub struct Counted<S> {
    io: S,
    _guard: ConnectionGuard,
}

impl<S> Counted<S> {
    pub fn new(io: S, guard: ConnectionGuard) -> Counted<S> {
        Counted { io, _guard: guard }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts TCP connections (without Nagle: pushed frames are small writes that must leave at
/// once), admitting each against its client's cap.
pub struct CappedListener {
    tcp: TcpListener,
    connections: ClientConnections,
}

impl CappedListener {
    pub fn new(tcp: TcpListener, connections: ClientConnections) -> CappedListener {
        CappedListener { tcp, connections }
    }

    /// The next TCP connection within its client's cap, with its guard.
    pub async fn accept_counted(&mut self) -> (TcpStream, ConnectionGuard, SocketAddr) {
        loop {
            match self.tcp.accept().await {
                Ok((tcp, peer)) => {
                    if let Err(err) = tcp.set_nodelay(true) {
                        tracing::warn!(cause = %err, "cannot set TCP_NODELAY");
                    }
                    match self.connections.admit(peer.ip()) {
                        Ok(guard) => return (tcp, guard, peer),
                        Err(refusal) => self.connections.refuse(tcp, peer, refusal),
                    }
                }
                Err(err) => {
                    // Out of file descriptors, most likely: wait a little rather than spin.
                    tracing::warn!(cause = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Listener for CappedListener {
    type Io = Counted<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, guard, peer) = self.accept_counted().await;
        (Counted::new(tcp, guard), peer)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_capped_and_its_count_released_on_drop() {
        let connections = ClientConnections::new(2, 0, TrustedProxies::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = connections.admit(a).unwrap();
        let _second = connections.admit(a).unwrap();
        assert!(
            connections.admit(a).is_err(),
            "a third from the same client"
        );
        let _other = connections
            .admit(b)
            .expect("another client has its own cap");
        assert_eq!((connections.total(), connections.clients()), (3, 2));
        drop(first);
        assert!(connections.admit(a).is_ok(), "room again once one closed");
        drop(_other);
        assert_eq!(
            connections.clients(),
            1,
            "a client with none open is forgotten"
        );
        let open = ClientConnections::new(0, 0, TrustedProxies::default());
        let many: Vec<_> = (0..1000).map(|_| open.admit(a).unwrap()).collect();
        assert_eq!(open.total(), many.len());
    }

    #[test]
    fn a_trusted_proxy_is_counted_but_not_capped_and_v6_counts_per_64() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = TrustedProxies::new(&["10.0.0.0/24".parse().unwrap()]);
        let connections = ClientConnections::new(2, 0, trusted);
        let held: Vec<_> = (0..10).map(|_| connections.admit(proxy).unwrap()).collect();
        assert_eq!((connections.total(), connections.clients()), (10, 0));
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _one = connections.admit(v6("2001:db8::1")).unwrap();
        let _two = connections.admit(v6("2001:db8::2")).unwrap();
        assert!(
            connections.admit(v6("2001:db8::3")).is_err(),
            "a third from the same /64"
        );
        assert!(connections.admit(v6("2001:db8:0:1::1")).is_ok());
        drop(held);
        assert_eq!(connections.total(), 2, "proxy connections counted out");
    }

    #[test]
    fn the_total_is_capped_across_clients_and_proxies() {
        let trusted = TrustedProxies::new(&["10.0.0.0/24".parse().unwrap()]);
        let connections = ClientConnections::new(2, 3, trusted);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = connections.admit(ip("192.0.2.1")).unwrap();
        let _b = connections.admit(ip("192.0.2.2")).unwrap();
        let _proxy = connections.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            connections.admit(ip("192.0.2.3")).err(),
            Some(Refusal::Server),
            "a fourth, from a client holding none"
        );
        assert_eq!(
            connections.admit(ip("10.0.0.1")).err(),
            Some(Refusal::Server),
            "a proxy is within the total too"
        );
        assert_eq!((connections.total(), connections.clients()), (3, 2));
        drop(a);
        let _c = connections
            .admit(ip("192.0.2.3"))
            .expect("room once one closed");
        let one_each = ClientConnections::new(1, 0, TrustedProxies::default());
        let _one = one_each.admit(ip("192.0.2.9")).unwrap();
        assert_eq!(one_each.admit(ip("192.0.2.9")).err(), Some(Refusal::Client));
        assert_eq!(one_each.total(), 1, "a refused connection is not counted");
    }
}
