//! Network conditions per run (`?link=`): the server holds a shaped run's bytes both ways, so a
//! request/response takes at least the link's round trip, bytes take the link's rate, and
//! WebSocket frames wait for the link too. Over real sockets: the hold is in the server.

mod common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use protocol::{
    ApiError,
    echo::{self, Format, Order},
    link::Link,
};
use tokio_tungstenite::{connect_async, tungstenite::Message as WsMessage};

/// Posts an order to the echo endpoint as `link`, returning the status and how long it took.
async fn echo_over(
    server: &common::TestServer,
    link: &str,
    rid: u32,
    items: u32,
) -> (u16, Duration, usize) {
    let body = echo::encode_order(Format::Json, &Order::sample(items)).unwrap();
    let sent = body.len();
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/echo?run=shaped&rid={rid}&link={link}")))
        .header("content-type", Format::Json.content_type())
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    (status, started.elapsed(), sent)
}

#[tokio::test]
async fn a_request_over_a_link_takes_at_least_its_round_trip() {
    let server = common::TestServer::start().await;
    let (status, local, _) = echo_over(&server, "local", 1, 1).await;
    assert_eq!(status, 200);
    let (status, three_g, _) = echo_over(&server, "3g", 2, 1).await;
    assert_eq!(status, 200);
    assert!(three_g >= Duration::from_millis(300), "3G: {three_g:?}");
    assert!(local < Duration::from_millis(250), "local: {local:?}");
    let (_, satellite, _) = echo_over(&server, "satellite", 3, 1).await;
    assert!(
        satellite >= Duration::from_millis(600),
        "satellite: {satellite:?}"
    );
}

#[tokio::test]
async fn a_body_takes_the_links_rate() {
    let server = common::TestServer::start().await;
    let (status, took, sent) = echo_over(&server, "3g", 1, 400).await;
    assert_eq!(status, 200);
    // Up at 750 kbit/s, back (the echo answers the order) at 1.6 Mbit/s, plus the round trip.
    let spec = Link::ThreeG.spec();
    let up = sent as f64 * 8.0 / spec.up_bps.unwrap() as f64;
    let down = sent as f64 * 8.0 / spec.down_bps.unwrap() as f64;
    let floor = Duration::from_secs_f64(up + down + 0.3);
    assert!(sent > 20_000, "a body worth timing: {sent} bytes");
    assert!(
        took >= floor,
        "{sent} bytes over 3G took {took:?}, at least {floor:?}"
    );
    // A body follows its head on the wire: half a round trip each way, not once for the head
    // and again for the body.
    let ceiling = floor + Duration::from_millis(250);
    assert!(
        took < ceiling,
        "{sent} bytes over 3G took {took:?}, less than {ceiling:?}"
    );
}

#[tokio::test]
async fn an_unknown_link_is_a_400_naming_the_presets() {
    let server = common::TestServer::start().await;
    let response = reqwest::get(server.url("/api/health?run=r&rid=1&link=5g"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: ApiError = response.json().await.unwrap();
    assert!(
        error.error.contains("local, 4g, 3g, satellite, lossy"),
        "{}",
        error.error
    );
}

#[tokio::test]
async fn websocket_frames_wait_for_the_link_both_ways() {
    let server = common::TestServer::start().await;
    for (link, floor_ms, ceiling_ms) in [("local", 0, 250), ("satellite", 600, u64::MAX)] {
        let started = Instant::now();
        let (mut socket, _) = connect_async(server.ws_url(&format!(
            "/api/push/ws?as=a&run=ws-{link}&rid=1&link={link}"
        )))
        .await
        .unwrap();
        let handshake = started.elapsed();
        let sent = Instant::now();
        socket.send(WsMessage::text("not a frame")).await.unwrap();
        let answer = loop {
            match socket.next().await.unwrap().unwrap() {
                WsMessage::Text(text) => break text,
                _ => continue,
            }
        };
        let round_trip = sent.elapsed();
        assert!(answer.contains("error"), "{answer}");
        for (what, took) in [("handshake", handshake), ("frame and answer", round_trip)] {
            assert!(
                took >= Duration::from_millis(floor_ms) && took < Duration::from_millis(ceiling_ms),
                "{link}: {what} took {took:?}"
            );
        }
    }
}
