//! Where a client can stall the plain listener, on a real server with short timeouts: half a
//! request head, an idle kept-alive connection, a body that never comes and responses nobody
//! reads are each closed (or answered) in bounded time; an over-size head is refused; and the
//! server-wide connection cap refuses one more connection with a JSON 429 while no client is
//! over its own cap.

mod common;

use std::time::{Duration, Instant};

use backend::{Config, limits::Limits};
use protocol::ApiError;
use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The short timeout every test here runs with.
const SHORT: Duration = Duration::from_millis(500);
/// How long a test waits for what should come after `SHORT`: far longer, never forever.
const PATIENCE: Duration = Duration::from_secs(5);

async fn start(limits: Limits) -> common::TestServer {
    common::TestServer::with_config(Config {
        limits,
        ..Config::default()
    })
    .await
}

fn short_timeouts() -> Limits {
    Limits {
        header_read_timeout: SHORT,
        request_body_timeout: SHORT,
        ..Limits::default()
    }
}

/// Everything the server sends until it closes (a reset counts as a close); panics if it does
/// not close within [`PATIENCE`].
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {PATIENCE:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

/// Reads one whole response with a `content-length` (its head and body) off `tcp`.
async fn one_response(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn half_a_request_head_is_closed_after_the_header_timeout() {
    let server = start(short_timeouts()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let began = Instant::now();
    tcp.write_all(b"GET /api/health HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut tcp).await;
    assert!(
        began.elapsed() >= SHORT - Duration::from_millis(50),
        "closed before the timeout, after {:?}",
        began.elapsed()
    );
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "no answer but a 408: {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let server = start(short_timeouts()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /api/health HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let first = one_response(&mut tcp).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Kept alive: a second request within the timeout is served on the same connection.
    tokio::time::sleep(SHORT / 4).await;
    tcp.write_all(b"GET /api/health HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let second = one_response(&mut tcp).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let idle_since = Instant::now();
    let got = until_closed(&mut tcp).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(
        idle_since.elapsed() >= SHORT - Duration::from_millis(50),
        "closed before the timeout, after {:?}",
        idle_since.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_never_comes_is_answered_and_closed() {
    let server = start(short_timeouts()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    // 100 bytes announced, 13 sent, then nothing.
    tcp.write_all(
        b"POST /api/echo HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"customer\":",
    )
    .await
    .unwrap();
    let began = Instant::now();
    let got = String::from_utf8_lossy(&until_closed(&mut tcp).await).into_owned();
    assert!(
        began.elapsed() >= SHORT - Duration::from_millis(50),
        "answered before the timeout, after {:?}: {got}",
        began.elapsed()
    );
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 4"),
        "a client error or nothing: {got}"
    );
    // A body that does come, in the same server, is served.
    let echoed = reqwest::Client::new()
        .post(server.url("/api/echo"))
        .header("content-type", "application/json")
        .body(r#"{"customer":"ada","items":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_over_size_request_head_is_refused() {
    let server = start(Limits::default()).await;
    // A head under the cap is served.
    let fine = reqwest::Client::new()
        .get(server.url("/api/health"))
        .header("x-padding", "p".repeat(16 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
    // One of 100 KiB (hyper's own default would take 400 KiB) is not.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /api/health HTTP/1.1\r\nhost: test\r\nx-padding: {}\r\n\r\n",
        "p".repeat(100 * 1024)
    );
    let (mut read, mut write) = tcp.split();
    let (_, got) = tokio::join!(
        async {
            // The server may close before taking it all: a failed write is expected.
            let _ = write.write_all(head.as_bytes()).await;
        },
        async {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match tokio::time::timeout(PATIENCE, read.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break got,
                    Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    Err(_) => panic!(
                        "still open after {PATIENCE:?}; got {:?}",
                        String::from_utf8_lossy(&got)
                    ),
                }
            }
        }
    );
    let got = String::from_utf8_lossy(&got);
    // The client was still sending when the server closed: its kernel may have reset the
    // connection before the answer was read.
    if !got.is_empty() {
        assert_json_refusal(&got, "HTTP/1.1 431", "64 KiB");
    }
    // 101 short header lines (hyper takes 100) are read whole before the answer, which
    // always arrives.
    let lines: String = (0..101).map(|n| format!("x-h{n}: 1\r\n")).collect();
    let head = format!("GET /api/health HTTP/1.1\r\nhost: test\r\n{lines}\r\n");
    let got = answer_to(&server, head.as_bytes()).await;
    assert_json_refusal(&got, "HTTP/1.1 431", "100 header lines");
}

#[tokio::test]
async fn a_malformed_request_line_gets_a_json_400() {
    let server = start(Limits::default()).await;
    let got = answer_to(&server, b"G@T /api/health HTTP/1.1\r\nhost: test\r\n\r\n").await;
    assert_json_refusal(&got, "HTTP/1.1 400", "malformed");
}

/// What the server answers to `bytes` sent on a connection of their own, read until it closes.
async fn answer_to(server: &common::TestServer, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut got = String::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_string(&mut got))
        .await
        .expect("answered and closed")
        .unwrap();
    got
}

/// `got` is a whole answer with `status_line`, a JSON error whose text has `reason`.
fn assert_json_refusal(got: &str, status_line: &str, reason: &str) {
    let (head, body) = got.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with(status_line), "{got}");
    assert!(head.contains("content-type: application/json"), "{got}");
    let error: ApiError = serde_json::from_str(body).expect("a JSON error");
    assert!(error.error.contains(reason), "{}", error.error);
}

#[tokio::test]
async fn the_server_wide_cap_refuses_one_more_connection_with_a_json_429() {
    let server = start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let _one = TcpStream::connect(server.addr).await.unwrap();
    let _two = TcpStream::connect(server.addr).await.unwrap();
    // Both accepted (the listener takes connections in order) before the third comes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = reqwest::get(server.url("/api/health")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: ApiError = refused.json().await.expect("a JSON error");
    assert!(body.error.contains("connections"), "{}", body.error);
    // One of the two closes: room again.
    drop(_one);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let served = reqwest::get(server.url("/api/health")).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_response_the_client_never_reads_is_given_up() {
    let server = start(Limits {
        response_write_timeout: SHORT,
        ..Limits::default()
    })
    .await;
    // Ten echoes pipelined on one connection, each reply most of a MiB: more than the socket
    // buffers hold when the client reads nothing.
    const REQUESTS: usize = 10;
    let order = serde_json::to_vec(&protocol::echo::Order::sample(8000)).unwrap();
    let mut requests = Vec::new();
    for _ in 0..REQUESTS {
        requests.extend_from_slice(
            format!(
                "POST /api/echo HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n\r\n",
                order.len()
            )
            .as_bytes(),
        );
        requests.extend_from_slice(&order);
    }
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        // Blocks once the server stops reading; fails once it gave up.
        let _ = write.write_all(&requests).await;
        write
    });
    // Read nothing for a while: the server's writes stall, and it gives up after `SHORT`.
    tokio::time::sleep(SHORT * 6).await;
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(PATIENCE, read.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("still open after {PATIENCE:?}, {got} bytes read"),
        }
    }
    assert!(
        got < REQUESTS * order.len(),
        "every reply came ({got} bytes): the writes were not given up"
    );
    drop(writer.await);
}
