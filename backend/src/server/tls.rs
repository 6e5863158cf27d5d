//! The optional TLS listener (`--tls ADDR`): the same app over HTTPS, offering HTTP/2 and
//! HTTP/1.1 by ALPN, so a browser speaks HTTP/2 to it (browsers use HTTP/2 only over TLS). The
//! certificate is self-signed and generated at start-up; its SHA-256 fingerprint is printed so
//! a person can check the one their browser warns about.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::serve::Listener;
use sha2::{Digest, Sha256};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::ring,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
    server::TlsStream,
};

use crate::{
    AppState, app,
    server::{
        connections::{CappedListener, Counted},
        expiring::{CLASS_CLIENTS, Slots},
        http1,
    },
};

/// TLS handshakes one client may have in progress at once: a browser opens at most six
/// connections to an origin together. One more is closed at once (before the handshake there
/// is no way to answer 429: a TLS client sees any plain-text answer as a failed handshake); a
/// trusted proxy's connections count against no share.
pub const HANDSHAKES_PER_CLIENT: usize = 6;
/// TLS handshakes in progress at once: every client's share for [`CLASS_CLIENTS`] clients
/// (288); further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = HANDSHAKES_PER_CLIENT * CLASS_CLIENTS;
/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A generated certificate and the server configuration that presents it.
pub struct TlsIdentity {
    pub config: Arc<ServerConfig>,
    /// The certificate's DER, for clients (tests) that want to trust exactly it.
    pub certificate: CertificateDer<'static>,
    /// SHA-256 of the certificate, as `AB:CD:…`.
    pub fingerprint: String,
}

/// A self-signed certificate for `names` (host names or IP addresses), offering h2 and
/// http/1.1 by ALPN.
pub fn self_signed(names: Vec<String>) -> io::Result<TlsIdentity> {
    let generated = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let certificate = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsIdentity {
        config: Arc::new(config),
        fingerprint: fingerprint(&certificate),
        certificate,
    })
}

/// SHA-256 of `der`, as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Serves `app(state)` over TLS on `listener` until `shutdown` completes, then drains like the
/// plain listener (at most [`crate::server::shutdown::DRAIN_DEADLINE`]). The same serve loop
/// and bounds as the plain listener ([`crate::server::http1`]): HTTP/1.1 with its head and
/// buffer capped and its timeouts, or HTTP/2 where ALPN chose it, with its header list,
/// frames, windows, streams and send buffers capped (`axum::serve` left hyper's defaults: a
/// 400 KiB HTTP/1.1 buffer and head, 200 streams, no header read timeout).
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = TlsListener {
        // Capped per client like the plain listener (a refusal there is a plain-text 429,
        // which a TLS client sees as a failed handshake).
        tcp: CappedListener::new(listener, state.connections.clone()),
        acceptor: TlsAcceptor::from(config),
        handshakes: JoinSet::new(),
        shaking: Slots::new(MAX_HANDSHAKES, HANDSHAKES_PER_CLIENT, "TLS handshakes"),
    };
    let speaks_h2 =
        |tls: &TlsStream<Counted<TcpStream>>| tls.get_ref().1.alpn_protocol() == Some(&b"h2"[..]);
    let server = http1::serve_negotiated(
        listener,
        app(state.clone()),
        &state.config.limits,
        shutdown,
        speaks_h2,
    );
    state.shutdown.drain(server).await
}

/// Accepts TCP connections and hands out those whose TLS handshake succeeded. Handshakes run
/// concurrently (at most [`MAX_HANDSHAKES`], each with a timeout), so one slow client cannot
/// hold up the others.
struct TlsListener {
    tcp: CappedListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<Counted<TcpStream>>, SocketAddr)>>,
    /// One slot per handshake in progress, counted against the peer's share.
    shaking: Slots,
}

impl Listener for TlsListener {
    type Io = TlsStream<Counted<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                (tcp, guard, peer) = self.tcp.accept_counted(), if self.handshakes.len() < MAX_HANDSHAKES => {
                    let slot = match self.shaking.take(guard.client()) {
                        Ok(slot) => slot,
                        Err(_) => {
                            tracing::debug!(%peer, "closed: {HANDSHAKES_PER_CLIENT} TLS handshakes of this client in progress already");
                            continue;
                        }
                    };
                    let acceptor = self.acceptor.clone();
                    let tcp = Counted::new(tcp, guard);
                    self.handshakes.spawn(async move {
                        let _slot = slot;
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => Some((tls, peer)),
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, cause = %err, "TLS handshake failed");
                                None
                            }
                            Err(_) => None,
                        }
                    });
                }
                Some(done) = self.handshakes.join_next() => {
                    if let Ok(Some(ready)) = done {
                        return ready;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
