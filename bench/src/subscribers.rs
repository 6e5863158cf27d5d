//! Pub/sub subscribers on real connections: WebSockets (`/api/pubsub/ws`, subscribed once the
//! broker's `subscribed` frame came back) or event streams (`/api/pubsub/events`, subscribed
//! once the response began: the server subscribes before it answers). Each one notes the
//! instant every delivery reached it, before anything else is done with the bytes.

use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::{FutureExt, SinkExt, StreamExt, future::BoxFuture};
use protocol::pubsub::{BrokerFrame, SubscriberFrame};
use tokio::{
    sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel},
    task::JoinSet,
};
use tokio_tungstenite::tungstenite::{Message as WsMessage, protocol::WebSocketConfig};

/// How a subscriber is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// A WebSocket, subscribing by frame.
    Ws,
    /// A Server-Sent Events stream, subscribing by query.
    Sse,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ws => "WebSocket",
            Transport::Sse => "SSE",
        }
    }
}

/// One delivery reaching one subscriber.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The delivery's number in its topic.
    pub seq: u64,
    /// When its bytes reached the subscriber.
    pub at: Instant,
}

/// Where the subscribers go: the server, and the room and topic they subscribe to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port`.
    pub base: String,
    /// A named room, so that every connection shares the topic.
    pub room: String,
    pub topic: String,
}

/// Every subscriber's connection, each read by its own task; dropping this closes them all.
pub struct Subscribers {
    connections: JoinSet<()>,
    /// Every delivery to every subscriber, as it arrived.
    pub arrivals: UnboundedReceiver<Arrival>,
}

impl Subscribers {
    /// Opens `count` subscribers, at most `at_once` connecting at a time (so the server's accept
    /// queue never overflows), and returns once every one of them is subscribed.
    pub async fn open(
        transport: Transport,
        target: &Target,
        count: usize,
        at_once: usize,
    ) -> anyhow::Result<Subscribers> {
        let (tx, arrivals) = unbounded_channel();
        let http = reqwest::Client::new();
        let mut connections = JoinSet::new();
        let mut opening = futures_util::stream::iter(0..count)
            .map(|k| {
                let (tx, http) = (tx.clone(), http.clone());
                async move {
                    match transport {
                        Transport::Ws => open_socket(target, k, tx).await,
                        Transport::Sse => open_stream(&http, target, k, tx).await,
                    }
                    .with_context(|| format!("subscriber {k}"))
                }
            })
            .buffer_unordered(at_once.max(1));
        while let Some(reader) = opening.next().await {
            connections.spawn(reader?);
        }
        Ok(Subscribers {
            connections,
            arrivals,
        })
    }

    /// Subscribers whose connection is still open.
    pub fn open_count(&self) -> usize {
        self.connections.len()
    }
}

/// The `seq` of a delivery in a frame or event: found by scanning rather than parsing, to
/// keep the client's share of the two cores small. `None` for anything that is not a delivery.
pub fn delivery_seq(text: &str) -> Option<u64> {
    if !text.contains("\"delivery\":") && !text.contains("event: message") {
        return None;
    }
    let start = text.find("\"seq\":")? + "\"seq\":".len();
    let digits: &str = &text[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects and subscribes one WebSocket subscriber; returns the task that reads it.
async fn open_socket(
    target: &Target,
    k: usize,
    arrivals: UnboundedSender<Arrival>,
) -> anyhow::Result<BoxFuture<'static, ()>> {
    let url = format!(
        "{}/api/pubsub/ws?as=client-{k}&room={}",
        target.base.replacen("http://", "ws://", 1),
        target.room
    );
    // Small buffers: 10,000 of these share the machine with the server being measured (and
    // tungstenite zero-fills the read buffer on every poll).
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .context("WebSocket upgrade")?;
    let subscribe = SubscriberFrame::Subscribe {
        topic: target.topic.clone(),
        replay: 0,
        prefetch: None,
    };
    socket
        .send(WsMessage::Text(serde_json::to_string(&subscribe)?.into()))
        .await?;
    loop {
        match socket.next().await {
            Some(Ok(WsMessage::Text(text))) => match serde_json::from_str::<BrokerFrame>(&text)? {
                BrokerFrame::Subscribed { .. } => break,
                BrokerFrame::Error { error } => bail!("subscribe refused: {error}"),
                _ => {}
            },
            Some(Ok(WsMessage::Close(frame))) => bail!("closed while subscribing: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("socket error while subscribing: {e}"),
            None => bail!("socket ended while subscribing"),
        }
    }
    Ok(read_socket(socket, arrivals).boxed())
}

/// Reads deliveries until the socket ends (pings are answered by tungstenite as it reads).
async fn read_socket(mut socket: Socket, arrivals: UnboundedSender<Arrival>) {
    while let Some(Ok(message)) = socket.next().await {
        let at = Instant::now();
        if let WsMessage::Text(text) = message
            && let Some(seq) = delivery_seq(&text)
        {
            let _ = arrivals.send(Arrival { seq, at });
        }
    }
}

/// Opens one event-stream subscriber; returns the task that reads it.
async fn open_stream(
    http: &reqwest::Client,
    target: &Target,
    k: usize,
    arrivals: UnboundedSender<Arrival>,
) -> anyhow::Result<BoxFuture<'static, ()>> {
    let url = format!(
        "{}/api/pubsub/events?as=client-{k}&room={}&topics={}",
        target.base, target.room, target.topic
    );
    let response = http.get(url).send().await.context("event stream request")?;
    if !response.status().is_success() {
        let status = response.status();
        bail!("event stream refused: {status} {}", response.text().await?);
    }
    Ok(read_stream(response, arrivals).boxed())
}

/// Reads events until the stream ends, splitting them at blank lines (a chunk may carry part
/// of an event, or several).
async fn read_stream(response: reqwest::Response, arrivals: UnboundedSender<Arrival>) {
    let mut body = response.bytes_stream();
    let mut pending = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        let at = Instant::now();
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            if let Some(seq) = delivery_seq(&pending[..end]) {
                let _ = arrivals.send(Arrival { seq, at });
            }
            pending.drain(..end + 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_seq_of_deliveries_only() {
        let frame = r#"{"type":"message","delivery":{"topic":"fanout","seq":42,"text":"x"}}"#;
        assert_eq!(delivery_seq(frame), Some(42));
        let event = "event: message\nid: 3\ndata: {\"topic\":\"fanout\",\"seq\":7,\"text\":\"x\"}";
        assert_eq!(delivery_seq(event), Some(7));
        assert_eq!(
            delivery_seq(r#"{"type":"subscribed","topic":"fanout","replayed":0}"#),
            None
        );
        assert_eq!(delivery_seq(": keep-alive"), None);
    }
}
