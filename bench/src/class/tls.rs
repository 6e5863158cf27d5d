//! Connections as a learner's browser makes them: TCP from the learner's own loopback address,
//! then TLS to the proxy, trusting its self-signed certificate as a root (nothing is skipped).

use std::{net::SocketAddr, path::Path, sync::Arc};

use anyhow::Context;
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::{TlsConnector, client::TlsStream, rustls};
use tokio_tungstenite::{
    WebSocketStream, client_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue},
};

/// Where the proxy listens and how to trust it.
#[derive(Clone)]
pub struct Proxy {
    /// `127.0.0.1:<port>` of the TLS listener.
    pub addr: SocketAddr,
    /// `https://127.0.0.1:<port>`: what a page's origin is.
    pub origin: String,
    /// The proxy's certificate (PEM), for reqwest's root store.
    pub cert_pem: Vec<u8>,
    tls: TlsConnector,
}

impl Proxy {
    /// The proxy at `addr`, whose certificate is the PEM file `cert`.
    pub fn new(addr: SocketAddr, cert: &Path) -> anyhow::Result<Proxy> {
        let cert_pem = std::fs::read(cert).with_context(|| format!("{}", cert.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(&cert_pem) {
            roots.add(der.context("a certificate in the PEM file")?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Proxy {
            addr,
            origin: format!("https://{addr}"),
            cert_pem,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// A TCP connection from `local` (port chosen by the kernel) to the proxy.
    pub async fn tcp(&self, local: std::net::IpAddr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local, 0))?;
        socket.connect(self.addr).await
    }

    /// A TLS connection from `local` to the proxy, handshake done.
    pub async fn tls(&self, local: std::net::IpAddr) -> anyhow::Result<TlsStream<TcpStream>> {
        let tcp = self.tcp(local).await.context("connect")?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        self.tls.connect(name, tcp).await.context("TLS handshake")
    }

    /// A WebSocket (`wss://`) from `local` to `path_and_query`, with the page's `Origin`.
    pub async fn websocket(
        &self,
        local: std::net::IpAddr,
        path_and_query: &str,
    ) -> anyhow::Result<WebSocketStream<TlsStream<TcpStream>>> {
        let stream = self.tls(local).await?;
        let url = format!("wss://{}{path_and_query}", self.addr);
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(&self.origin)?);
        let (socket, _) = client_async(request, stream)
            .await
            .with_context(|| format!("upgrade {path_and_query}"))?;
        Ok(socket)
    }

    /// An HTTP client like a page's: from `local`, trusting the proxy, HTTP/1.1 kept alive,
    /// sending the same-origin headers a browser adds to its own fetches.
    pub fn http_client(&self, local: std::net::IpAddr) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("origin", self.origin.parse()?);
        headers.insert("sec-fetch-site", "same-origin".parse()?);
        Ok(reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert_pem)?)
            .local_address(local)
            .default_headers(headers)
            .http1_only()
            .pool_max_idle_per_host(6)
            .timeout(std::time::Duration::from_secs(30))
            .build()?)
    }
}
