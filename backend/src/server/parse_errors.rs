//! hyper answers a request it cannot parse itself, before any handler runs: `400` (a malformed
//! request line or header), `414` (a request target too long) or `431` (a head over
//! [`MAX_HEAD_BYTES`](super::http1::MAX_HEAD_BYTES), or over 100 header lines), each with an
//! empty body, then closes. Every other refusal of the API is a JSON `{"error": …}`; so are these:
//! [`JsonParseErrors`] sits between hyper and the socket and writes that answer, with the
//! reason, in place of hyper's empty one.
//!
//! hyper's answer is told apart by its exact shape: a `4xx` status line, then only
//! `connection: close`, `content-length: 0` and `date`, written at once with nothing after it.
//! Every response of the router carries more headers (the security layer's at least), so no
//! handler's answer is ever taken for it.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::http1::MAX_HEAD_BYTES;

/// `io`, with hyper's own empty parse-error answers rewritten as JSON errors.
pub struct JsonParseErrors<S> {
    io: S,
    /// The answer being written in place of hyper's, and how much of it is written; boxed, so
    /// a connection that never meets a parse error pays one pointer.
    rewriting: Option<Box<Rewrite>>,
}

struct Rewrite {
    bytes: Vec<u8>,
    written: usize,
    /// The length of hyper's answer, reported to hyper as written once ours is.
    replaces: usize,
}

impl<S> JsonParseErrors<S> {
    pub fn new(io: S) -> JsonParseErrors<S> {
        JsonParseErrors {
            io,
            rewriting: None,
        }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

/// Why hyper refused, for each status it answers by itself.
fn reason(status: u16) -> Option<String> {
    Some(match status {
        400 => {
            "malformed HTTP request: the request line or a header line could not be parsed".into()
        }
        414 => "the request target (path and query) is too long".into(),
        431 => format!(
            "the request head is too large: at most {} KiB of request line and headers, and at most 100 header lines",
            MAX_HEAD_BYTES / 1024
        ),
        _ => return None,
    })
}

/// Our answer for `head` if it is one of hyper's parse-error answers, or `None`.
pub fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let text = text.strip_suffix("\r\n\r\n")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    let error = reason(status)?;
    let mut date = None;
    let mut rest = 0;
    for line in lines {
        match line.split_once(": ") {
            Some(("connection", "close")) | Some(("content-length", "0")) => rest += 1,
            Some(("date", value)) if date.is_none() => date = Some(value),
            _ => return None,
        }
    }
    if rest != 2 {
        return None;
    }
    let body = serde_json::to_string(&protocol::ApiError { error }).expect("errors serialize");
    let mut answer = format!(
        "{status_line}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         x-content-type-options: nosniff\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

impl<S: AsyncWrite + Unpin> JsonParseErrors<S> {
    /// Writes what is left of our answer; ready with hyper's length once all of it is written.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let rewrite = self.rewriting.as_mut().expect("rewriting");
        while rewrite.written < rewrite.bytes.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.io).poll_write(cx, &rewrite.bytes[rewrite.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rewrite.written += n;
        }
        let replaces = rewrite.replaces;
        self.rewriting = None;
        Poll::Ready(Ok(replaces))
    }

    /// Starts rewriting if `buf`, the whole of what hyper writes, is one of its answers.
    fn starts_rewrite(&mut self, buf: &[u8]) -> bool {
        if self.rewriting.is_some() {
            return true;
        }
        // Cheap test first: every response of a handler is sent this way too.
        if !buf.starts_with(b"HTTP/1.1 4") || buf.len() > 256 {
            return false;
        }
        match rewrite(buf) {
            Some(bytes) => {
                self.rewriting = Some(Box::new(Rewrite {
                    bytes,
                    written: 0,
                    replaces: buf.len(),
                }));
                true
            }
            None => false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.starts_rewrite(buf) {
            return self.poll_rewrite(cx);
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's answer is one slice: a head with no body.
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && self.starts_rewrite(only)
        {
            return self.poll_rewrite(cx);
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPERS: &str = "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 09:33:01 GMT\r\n\r\n";

    #[test]
    fn hypers_empty_answer_becomes_a_json_error_with_the_reason() {
        let ours = String::from_utf8(rewrite(HYPERS.as_bytes()).unwrap()).unwrap();
        let (head, body) = ours.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Sun, 06 Dec 2026 09:33:01 GMT"));
        let error: protocol::ApiError = serde_json::from_str(body).unwrap();
        assert!(error.error.contains("64 KiB"), "{}", error.error);
    }

    #[test]
    fn a_handlers_answer_is_left_alone() {
        for head in [
            // More headers than hyper's answer has.
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            // A body follows.
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n{}",
            // A status hyper never sends by itself.
            "HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
        ] {
            assert_eq!(rewrite(head.as_bytes()), None, "{head}");
        }
    }

    #[tokio::test]
    async fn the_answer_is_written_whole_through_a_narrow_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(16);
        let mut server = JsonParseErrors::new(server);
        let writer = tokio::spawn(async move {
            server.write_all(HYPERS.as_bytes()).await.unwrap();
            server.shutdown().await.unwrap();
        });
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.as_bytes(), rewrite(HYPERS.as_bytes()).unwrap());
    }
}
