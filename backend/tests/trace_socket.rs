//! The trace WebSocket against a real server: clock, backlog, live messages, resuming after a
//! reconnect, pings, refusals, shutdown.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::{
    echo::{self, Format, Order},
    trace::{Kind, RunId, TraceClientMsg, TraceServerMsg},
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        Message as WsMessage, client::IntoClientRequest, protocol::frame::coding::CloseCode,
    },
};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(socket: &mut Socket) -> TraceServerMsg {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
            .expect("socket open")
            .expect("no error");
        if let WsMessage::Text(text) = frame {
            return serde_json::from_str(&text).expect("a TraceServerMsg");
        }
    }
}

async fn watch(socket: &mut Socket, run: &str) {
    watch_after(socket, run, None, None).await
}

async fn watch_after(socket: &mut Socket, run: &str, after: Option<u64>, log: Option<u64>) {
    let cmd = serde_json::to_string(&TraceClientMsg::Watch {
        run: RunId(run.into()),
        after,
        log,
    })
    .unwrap();
    socket.send(WsMessage::Text(cmd.into())).await.unwrap();
}

/// The answer to a watch of `run`: the clock, then which log the run's messages are numbered in.
async fn watching(socket: &mut Socket, run: &str) -> u64 {
    assert!(matches!(next(socket).await, TraceServerMsg::Clock { .. }));
    match next(socket).await {
        TraceServerMsg::Watching { run: watched, log } => {
            assert_eq!(watched.0, run);
            log
        }
        other => panic!("expected `watching`, got {other:?}"),
    }
}

async fn traced_echo(server: &common::TestServer, run: &str, rid: u32) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url(&format!("/api/echo?process_ms=10&run={run}&rid={rid}")))
        .header("content-type", "application/json")
        .body(echo::encode_order(Format::Json, &Order::sample(1)).unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_watcher_gets_the_clock_the_backlog_then_live_messages_in_order() {
    let server = common::TestServer::start().await;
    // Something happens before the page watches: it must still be delivered.
    assert_eq!(traced_echo(&server, "live-1", 1).await.status(), 200);

    let (mut socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
    assert!(matches!(
        next(&mut socket).await,
        TraceServerMsg::Clock { .. }
    ));
    watch(&mut socket, "live-1").await;
    watching(&mut socket, "live-1").await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        match next(&mut socket).await {
            TraceServerMsg::Message(m) => seen.push((m.request_id.unwrap().0, m.kind)),
            other => panic!("expected a message, got {other:?}"),
        }
    }
    // And something after.
    assert_eq!(traced_echo(&server, "live-1", 2).await.status(), 200);
    // Another run's traffic must not reach this watcher.
    assert_eq!(traced_echo(&server, "someone-else", 1).await.status(), 200);
    for _ in 0..2 {
        match next(&mut socket).await {
            TraceServerMsg::Message(m) => {
                assert_eq!(m.run.0, "live-1");
                seen.push((m.request_id.unwrap().0, m.kind));
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
    let want: Vec<(String, Kind)> = vec![
        ("1".into(), Kind::Request),
        ("1".into(), Kind::Response),
        ("2".into(), Kind::Request),
        ("2".into(), Kind::Response),
    ];
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_bad_watch_is_answered_with_an_error_and_the_socket_stays_open() {
    let server = common::TestServer::start().await;
    let (mut socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
    next(&mut socket).await;
    watch(&mut socket, "no spaces allowed").await;
    assert!(
        matches!(next(&mut socket).await, TraceServerMsg::Error { error } if error.contains("invalid run id"))
    );
    socket
        .send(WsMessage::Text("not json".into()))
        .await
        .unwrap();
    assert!(
        matches!(next(&mut socket).await, TraceServerMsg::Error { error } if error.contains("bad command"))
    );
    watch(&mut socket, "fine").await;
    watching(&mut socket, "fine").await;
}

#[tokio::test]
async fn a_cross_site_page_cannot_open_the_socket() {
    let server = common::TestServer::start().await;
    let mut request = server
        .ws_url("/api/trace/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = connect_async(request).await.expect_err("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    let mut request = server
        .ws_url("/api/trace/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", format!("http://{}", server.addr).parse().unwrap());
    assert!(
        connect_async(request).await.is_ok(),
        "the server's own origin is welcome"
    );
}

#[tokio::test]
async fn shutdown_closes_open_trace_sockets_with_going_away() {
    let mut server = common::TestServer::start().await;
    let (mut socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
    next(&mut socket).await;
    server.stop();
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("closed within 5 s");
    match frame {
        Some(Ok(WsMessage::Close(Some(close)))) => assert_eq!(close.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let handle = server.handle.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("server ended")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_watch_after_a_seq_resumes_with_only_the_newer_messages() {
    let server = common::TestServer::start().await;
    // Two exchanges: seq 0 and 1 (the first), 2 and 3 (the second).
    for rid in [1, 2] {
        assert_eq!(traced_echo(&server, "resume-1", rid).await.status(), 200);
    }
    // A page that held seq 0 and 1 of this log when its socket dropped comes back.
    let (mut socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
    next(&mut socket).await;
    watch(&mut socket, "resume-1").await;
    let log = watching(&mut socket, "resume-1").await;
    for _ in 0..4 {
        next(&mut socket).await;
    }
    let (mut socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
    next(&mut socket).await;
    watch_after(&mut socket, "resume-1", Some(1), Some(log)).await;
    assert_eq!(watching(&mut socket, "resume-1").await, log, "the same log");
    let mut seqs = Vec::new();
    for _ in 0..2 {
        match next(&mut socket).await {
            TraceServerMsg::Message(m) => {
                assert_eq!(m.request_id.unwrap().0, "2");
                seqs.push(m.seq);
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
    assert_eq!(seqs, [2, 3]);
    // Nothing else from the backlog; the next thing is live.
    assert_eq!(traced_echo(&server, "resume-1", 3).await.status(), 200);
    match next(&mut socket).await {
        TraceServerMsg::Message(m) => {
            assert_eq!(m.seq, 4);
            assert_eq!(m.request_id.unwrap().0, "3");
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_page_resuming_on_a_restarted_server_gets_its_new_messages_numbered_on() {
    // The page held seq 0..=9 of the run on a server that has since restarted (or on another
    // instance): this server's log of the run is a new one, with one exchange so far.
    let server = common::TestServer::start().await;
    assert_eq!(traced_echo(&server, "moved-1", 6).await.status(), 200);
    let (mut socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
    next(&mut socket).await;
    let before_the_restart = 12_345;
    watch_after(&mut socket, "moved-1", Some(9), Some(before_the_restart)).await;
    let log = watching(&mut socket, "moved-1").await;
    assert_ne!(log, before_the_restart);
    let mut seqs = Vec::new();
    for _ in 0..2 {
        match next(&mut socket).await {
            TraceServerMsg::Message(m) => {
                assert_eq!(m.request_id.unwrap().0, "6");
                seqs.push(m.seq);
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
    assert_eq!(
        seqs,
        [10, 11],
        "after what the page holds, so it keeps them"
    );
    assert_eq!(traced_echo(&server, "moved-1", 7).await.status(), 200);
    match next(&mut socket).await {
        TraceServerMsg::Message(m) => assert_eq!(m.seq, 12),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Virtual time (`start_paused`): the runtime skips ahead to the next timer whenever every task
/// waits, so the test takes milliseconds while the server's 20 s interval is really kept.
#[tokio::test(start_paused = true)]
async fn an_idle_trace_socket_is_pinged_before_a_proxy_would_close_it() {
    // nginx closes a proxied connection idle for its `proxy_read_timeout`: 60 s by default.
    const PROXY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    let server = common::TestServer::start().await;
    let (mut socket, _) = connect_async(server.ws_url("/api/trace/ws")).await.unwrap();
    next(&mut socket).await;
    watch(&mut socket, "idle-1").await;
    watching(&mut socket, "idle-1").await;
    let since = tokio::time::Instant::now();
    for _ in 0..3 {
        let pinged = loop {
            match tokio::time::timeout(PROXY_IDLE_TIMEOUT, socket.next()).await {
                Ok(Some(Ok(WsMessage::Ping(_)))) => break tokio::time::Instant::now(),
                Ok(Some(Ok(WsMessage::Text(t)))) => panic!("unexpected {t}"),
                Ok(Some(Ok(_))) => {}
                other => panic!("no ping within {PROXY_IDLE_TIMEOUT:?}: {other:?}"),
            }
        };
        assert!(
            pinged.duration_since(since) <= Duration::from_secs(25) * 3,
            "pinged every 20 s or so"
        );
    }
    // Reading the pings answered them (tungstenite queues the pong): the socket is still open.
    watch(&mut socket, "idle-1").await;
    watching(&mut socket, "idle-1").await;
}
