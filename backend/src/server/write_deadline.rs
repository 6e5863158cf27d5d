//! A connection whose writes fail once they make no progress for a while: a client that stops
//! reading a response cannot hold its connection (and its task, buffers and connection slot)
//! forever.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Sleep, sleep},
};

/// `io`, with every write, flush or shutdown that stays pending for `timeout` failed with
/// `TimedOut`. The clock starts when an operation first returns pending and stops at any
/// progress, so a slow reader that keeps taking bytes is never cut; one that takes none is.
/// Reads are not bounded here (hyper's header timeout bounds the waits for a request head;
/// held streams wait on purpose).
pub struct WriteDeadline<S> {
    io: S,
    timeout: Duration,
    /// Running while a write is stalled; boxed, so an unstalled connection pays one pointer.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(io: S, timeout: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            io,
            timeout,
            stalled: None,
        }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// What a write that returned `poll` amounts to: progress stops the clock; pending starts
    /// it (or checks it) and fails once it has run out.
    fn within<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took no bytes for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.within(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.within(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.within(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.within(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_takes_fails_after_the_timeout_and_progress_resets_it() {
        let (client, server) = tokio::io::duplex(16);
        let mut server = WriteDeadline::new(server, Duration::from_secs(5));
        // 16 bytes fit; the next 16 wait for the client, which reads 8 after 4 s (progress).
        server.write_all(&[0; 16]).await.unwrap();
        let mut client = client;
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            let mut buf = [0u8; 8];
            tokio::io::AsyncReadExt::read_exact(&mut client, &mut buf)
                .await
                .unwrap();
            client
        });
        let started = tokio::time::Instant::now();
        let err = server.write_all(&[0; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // 4 s until the client read, then 5 s with no more progress.
        assert_eq!(started.elapsed(), Duration::from_secs(9));
        drop(reader.await.unwrap());
    }
}
