//! The server's TLS listener for tests, and TLS clients of it offering one ALPN protocol.

use std::sync::Arc;

use backend::tls;
use tokio_rustls::{
    TlsConnector,
    rustls::{ClientConfig, RootCertStore, crypto::ring, pki_types::ServerName},
};

use super::TestServer;

/// Starts the TLS listener for `server`'s state; its address and the certificate to trust.
pub async fn start_tls(
    server: &TestServer,
) -> (
    std::net::SocketAddr,
    tokio_rustls::rustls::pki_types::CertificateDer<'static>,
) {
    let identity = tls::self_signed(vec!["localhost".into()]).unwrap();
    (serve(server, &identity).await, identity.certificate)
}

/// Serves `server`'s state on a TLS listener with `identity`; its address.
pub async fn serve(server: &TestServer, identity: &tls::TlsIdentity) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = server.state.clone();
    let config = identity.config.clone();
    tokio::spawn(async move {
        let stopped = state.stopped();
        tls::serve_tls(listener, config, state, stopped).await
    });
    addr
}

/// A TLS connection to `addr` offering only `alpn`.
pub async fn connect_tls(
    addr: std::net::SocketAddr,
    certificate: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tls = connect_offering(addr, certificate, &[alpn]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    tls
}

/// A TLS connection to `addr` offering `alpn`, in order of preference.
pub async fn connect_offering(
    addr: std::net::SocketAddr,
    certificate: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(certificate).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}
