//! A pub/sub WebSocket over each way the server accepts one: the server's own handshake takes a
//! plain HTTP/1.1 connection back from hyper (its socket shared with publishers), and leaves a
//! TLS connection, over HTTP/1.1 or HTTP/2 (RFC 8441's extended CONNECT), as hyper's stream.
//! Each subscribes, hears its answer, and gets a publish.

mod common;

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use protocol::pubsub::{BrokerFrame, PublishRequest, SubscriberFrame};
use tokio_tungstenite::{client_async, tungstenite::Message as WsMessage};

fn subscribe() -> String {
    serde_json::to_string(&SubscriberFrame::Subscribe {
        topic: "news".into(),
        replay: 0,
        prefetch: None,
    })
    .unwrap()
}

async fn publish(server: &common::TestServer, room: &str, text: &str) {
    let response = reqwest::Client::new()
        .post(server.url("/api/pubsub/publish"))
        .json(&PublishRequest {
            room: Some(room.into()),
            topic: "news".into(),
            text: text.into(),
            publisher: None,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// Subscribes on `socket`, then reads the answer and the delivery of a publish.
async fn subscribe_and_hear<S>(server: &common::TestServer, room: &str, socket: &mut S)
where
    S: StreamExt<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>>
        + SinkExt<WsMessage>
        + Unpin,
    <S as futures_util::Sink<WsMessage>>::Error: std::fmt::Debug,
{
    socket
        .send(WsMessage::Text(subscribe().into()))
        .await
        .unwrap();
    let mut next = async || loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("open")
            .expect("readable");
        if let WsMessage::Text(text) = message {
            return serde_json::from_str::<BrokerFrame>(&text).unwrap();
        }
    };
    assert!(matches!(next().await, BrokerFrame::Subscribed { .. }));
    publish(server, room, "over the wire").await;
    match next().await {
        BrokerFrame::Message { delivery } => assert_eq!(delivery.text, "over the wire"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_over_plain_http1_is_shared_and_hears_a_publish() {
    let server = common::TestServer::start().await;
    let url = server.ws_url("/api/pubsub/ws?as=client-1&room=plain");
    let (mut socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    subscribe_and_hear(&server, "plain", &mut socket).await;
    let direct = server.state.pubsub.broker.topics().written_directly();
    assert_eq!(
        direct, 1,
        "the delivery was written by the publisher itself"
    );
}

#[tokio::test]
async fn a_websocket_over_tls_http1_hears_a_publish() {
    let server = common::TestServer::start().await;
    let (addr, certificate) = common::tls::start_tls(&server).await;
    let tls = common::tls::connect_tls(addr, certificate, b"http/1.1").await;
    let url = format!(
        "wss://localhost:{}/api/pubsub/ws?as=client-1&room=tls",
        addr.port()
    );
    let (mut socket, response) = client_async(url, tls).await.unwrap();
    assert_eq!(response.status(), 101);
    subscribe_and_hear(&server, "tls", &mut socket).await;
    let direct = server.state.pubsub.broker.topics().written_directly();
    assert_eq!(direct, 0, "a TLS socket is hyper's: its task writes");
}

/// A client's text frame: masked, as RFC 6455 requires of clients (payload under 126 bytes).
fn masked_text(text: &str) -> Bytes {
    let mask = [0x12, 0x34, 0x56, 0x78];
    assert!(text.len() < 126);
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame.into()
}

/// The next text frame's payload in `buffer`, if it holds a whole one (server frames are not
/// masked); control frames are skipped.
fn server_text(buffer: &mut BytesMut) -> Option<String> {
    loop {
        if buffer.len() < 2 {
            return None;
        }
        let (opcode, len) = (buffer[0] & 0x0f, (buffer[1] & 0x7f) as usize);
        let (start, len) = match len {
            126 if buffer.len() >= 4 => (4, u16::from_be_bytes([buffer[2], buffer[3]]) as usize),
            126 | 127 => return None,
            len => (2, len),
        };
        if buffer.len() < start + len {
            return None;
        }
        buffer.advance(start);
        let payload = buffer.split_to(len);
        if opcode == 1 {
            return Some(String::from_utf8(payload.to_vec()).unwrap());
        }
    }
}

#[tokio::test]
async fn a_websocket_over_http2_extended_connect_hears_a_publish() {
    let server = common::TestServer::start().await;
    let (addr, certificate) = common::tls::start_tls(&server).await;
    let tls = common::tls::connect_tls(addr, certificate, b"h2").await;
    let (sender, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut sender = sender.ready().await.unwrap();
    let mut request = axum::http::Request::builder()
        .method("CONNECT")
        .uri(format!(
            "https://localhost:{}/api/pubsub/ws?as=client-1&room=h2",
            addr.port()
        ))
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let (response, mut out) = sender.send_request(request, false).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200, "RFC 8441: a 200 opens the socket");
    let mut incoming = response.into_body();
    let mut buffer = BytesMut::new();
    let mut next = async || loop {
        if let Some(text) = server_text(&mut buffer) {
            return serde_json::from_str::<BrokerFrame>(&text).unwrap();
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), incoming.data())
            .await
            .expect("a frame within 5 s")
            .expect("open")
            .unwrap();
        let _ = incoming.flow_control().release_capacity(chunk.len());
        buffer.extend_from_slice(&chunk);
    };
    out.send_data(masked_text(&subscribe()), false).unwrap();
    assert!(matches!(next().await, BrokerFrame::Subscribed { .. }));
    publish(&server, "h2", "over one stream").await;
    match next().await {
        BrokerFrame::Message { delivery } => assert_eq!(delivery.text, "over one stream"),
        other => panic!("unexpected {other:?}"),
    }
}
