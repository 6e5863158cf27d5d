//! Long polls parked on raw HTTP/1.1 connections: each one is a TCP connection that wrote its
//! `GET` (with `Connection: close`) and waits; its answer is read to the end, timed on arrival
//! and kept whole, so the benchmark can check every one. Raw sockets rather than an HTTP client,
//! because a client's request future cannot say "sent, now waiting", and parked is what is
//! measured.

use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc::{UnboundedReceiver, unbounded_channel},
    task::JoinSet,
};

/// One answered long poll.
#[derive(Debug)]
pub struct Answer {
    /// When its last byte arrived.
    pub at: Instant,
    /// The status code, when the response had a status line.
    pub status: Option<u16>,
    /// The response body (after the header block).
    pub body: String,
}

/// Parked long polls; dropping this closes the ones still waiting.
pub struct Parked {
    _readers: JoinSet<()>,
    /// Every answer, as it arrived.
    pub answers: UnboundedReceiver<anyhow::Result<Answer>>,
}

/// Sends `GET {path}` on `count` new connections to `addr` (`host:port`), at most `at_once`
/// connecting at a time; returns once every request is written.
pub async fn park(addr: &str, path: &str, count: usize, at_once: usize) -> anyhow::Result<Parked> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (tx, answers) = unbounded_channel();
    let mut readers = JoinSet::new();
    let mut opening = futures_util::stream::iter(0..count)
        .map(|k| {
            let request = request.as_bytes();
            async move {
                let mut tcp = TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("long poll {k}: connect"))?;
                tcp.write_all(request)
                    .await
                    .with_context(|| format!("long poll {k}: send"))?;
                anyhow::Ok(tcp)
            }
        })
        .buffer_unordered(at_once.max(1));
    while let Some(tcp) = opening.next().await {
        let mut tcp = tcp?;
        let tx = tx.clone();
        readers.spawn(async move {
            let mut raw = Vec::new();
            let answer = match tcp.read_to_end(&mut raw).await {
                Ok(_) => Ok(parse(&raw, Instant::now())),
                Err(e) => Err(anyhow::Error::from(e).context("long poll: read")),
            };
            let _ = tx.send(answer);
        });
    }
    Ok(Parked {
        _readers: readers,
        answers,
    })
}

/// Status and body of a raw `Connection: close` response.
fn parse(raw: &[u8], at: Instant) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok());
    Answer {
        at,
        status,
        body: body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_response_splits_into_status_and_body() {
        let raw =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let answer = parse(raw, Instant::now());
        assert_eq!((answer.status, answer.body.as_str()), (Some(200), "{}"));
        let cut = parse(b"HTTP/1.1 50", Instant::now());
        assert_eq!((cut.status, cut.body.as_str()), (Some(50), ""));
        assert_eq!(parse(b"", Instant::now()).status, None);
    }
}
