//! Connections that are only held: WebSockets and event streams to a plain endpoint (the bare
//! axum baseline's `/ws` and `/sse`), each read by its own task until the server ends it, so
//! that the server's memory per idle connection can be compared with the backend's subscribers.

use anyhow::{Context, bail};
use futures_util::{FutureExt, StreamExt, future::BoxFuture};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::subscribers::Transport;

/// Held connections; dropping this closes them all.
pub struct Held {
    connections: JoinSet<()>,
}

impl Held {
    /// Opens `count` connections of `transport` to `url` (`http://…`; a WebSocket goes to its
    /// `ws://` twin), at most `at_once` connecting at a time, and returns once all are open.
    pub async fn open(
        transport: Transport,
        url: &str,
        count: usize,
        at_once: usize,
    ) -> anyhow::Result<Held> {
        let http = reqwest::Client::new();
        let mut connections = JoinSet::new();
        let mut opening = futures_util::stream::iter(0..count)
            .map(|k| {
                let http = http.clone();
                async move {
                    match transport {
                        Transport::Ws => open_socket(url).await,
                        Transport::Sse => open_stream(&http, url).await,
                    }
                    .with_context(|| format!("connection {k} to {url}"))
                }
            })
            .buffer_unordered(at_once.max(1));
        while let Some(reader) = opening.next().await {
            connections.spawn(reader?);
        }
        Ok(Held { connections })
    }

    /// Connections still open.
    pub fn open_count(&self) -> usize {
        self.connections.len()
    }
}

async fn open_socket(url: &str) -> anyhow::Result<BoxFuture<'static, ()>> {
    // The same small client buffers as the pub/sub subscribers.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0);
    let url = url.replacen("http://", "ws://", 1);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .context("WebSocket upgrade")?;
    Ok(async move { while let Some(Ok(_)) = socket.next().await {} }.boxed())
}

async fn open_stream(http: &reqwest::Client, url: &str) -> anyhow::Result<BoxFuture<'static, ()>> {
    let response = http.get(url).send().await.context("event stream request")?;
    if !response.status().is_success() {
        bail!("event stream refused: {}", response.status());
    }
    let mut body = response.bytes_stream();
    Ok(async move { while let Some(Ok(_)) = body.next().await {} }.boxed())
}
