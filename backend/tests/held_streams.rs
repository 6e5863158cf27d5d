//! A streaming response's connection as the patched hyper keeps it (vendor/hyper/PATCHES.md):
//! while the body waits for its next bytes, the connection holds no read or write buffer, and
//! still notices the client leaving, and still answers a request sent meanwhile, after the
//! stream. Over raw TCP, so that nothing between the test and the server buffers or retries.

mod common;

use std::time::Duration;

use backend::Config;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Sends `request` on a new connection and reads until the response head and `until` came.
async fn open(server: &common::TestServer, request: &str, until: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let got = read_until(&mut tcp, String::new(), until).await;
    (tcp, got)
}

/// Reads on `tcp` after `got` until it contains `until`; panics after 5 s or at its end.
async fn read_until(tcp: &mut TcpStream, mut got: String, until: &str) -> String {
    let mut buf = [0u8; 4096];
    while !got.contains(until) {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{until:?} within 5 s; got {got:?}"))
            .unwrap();
        assert!(n > 0, "the connection ended before {until:?}; got {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

fn subscribe(room: &str) -> String {
    format!(
        "GET /api/pubsub/events?as=client-1&room={room}&topics=news HTTP/1.1\r\n\
         host: test\r\naccept: text/event-stream\r\n\r\n"
    )
}

#[tokio::test]
async fn a_client_leaving_an_idle_event_stream_frees_its_place_at_once() {
    // One subscriber per topic: a second is refused (429) until the first is gone.
    let server = common::TestServer::with_config(Config {
        max_subscribers_per_topic: Some(1),
        ..Config::default()
    })
    .await;
    let room = format!("leaving-{}", std::process::id());
    let (first, head) = open(&server, &subscribe(&room), "retry:").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, refused) = open(&server, &subscribe(&room), "\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");

    // The first client goes; its stream has nothing to send (the keep-alive comment is 15 s
    // away), so only the connection's read side can tell.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let (_, head) = open(&server, &subscribe(&room), "\r\n\r\n").await;
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(head.starts_with("HTTP/1.1 429"), "{head}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first subscriber still held its place 2 s after its client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_request_sent_while_a_response_streams_is_answered_after_it() {
    let server = common::TestServer::start().await;
    // A job of 4 steps 150 ms apart: its event stream ends after the last one.
    let job = common::create_job(server.url("/api/jobs"), 4, 150).await;
    let (mut tcp, got) = open(
        &server,
        &format!(
            "GET /api/jobs/{}/events HTTP/1.1\r\nhost: test\r\n\r\n",
            job.job.0
        ),
        "retry:",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // The next request arrives while the stream waits for the job's next step: longer than
    // the few bytes the idle connection reads into, so its head is read in parts.
    let padding = "x".repeat(3000);
    tcp.write_all(
        format!("GET /api/health HTTP/1.1\r\nhost: test\r\nx-padding: {padding}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let got = read_until(&mut tcp, got, "\r\n0\r\n\r\nHTTP/1.1 ").await;
    let (stream, next) = got.split_once("\r\n0\r\n\r\n").unwrap();
    assert!(
        stream.contains("event: done"),
        "the whole stream came first: {stream}"
    );
    let next = read_until(&mut tcp, next.to_owned(), "}").await;
    assert!(next.starts_with("HTTP/1.1 200"), "{next}");
}
