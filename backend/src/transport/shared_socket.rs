//! A WebSocket's TCP connection shared by its task and by a publisher that writes to it
//! directly ([`Direct`]), so that a fan-out to thousands costs one `send` per subscriber instead
//! of a queue push, a task wake-up and the task's pass through its loop.
//!
//! Both write through one lock, and neither ever leaves half a frame on the socket for the other
//! to write after: a write the socket takes only part of is accepted whole, its tail kept
//! ([`WriteState::unwritten`]) and written before anything else. A publisher writes directly only
//! when the task has nothing of its own on the way (it is not [`busy`](Direct::busy) and nothing
//! waits in its queue); otherwise it queues, as before, so frames keep their order.
//!
//! Only a plain HTTP/1.1 connection can be shared this way ([`SocketIo::Shared`]); a WebSocket
//! over TLS or HTTP/2 stays hyper's upgraded stream ([`SocketIo::Upgraded`]) and every frame goes
//! through its task.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker, ready},
};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use crate::server::{
    connections::Counted, parse_errors::JsonParseErrors, write_deadline::WriteDeadline,
};

/// What hyper serves a plain (not TLS) HTTP/1.1 connection on ([`crate::server::http1`]): what an
/// upgraded connection is taken back as.
pub type PlainConnection = JsonParseErrors<WriteDeadline<Counted<TcpStream>>>;

/// The socket under a WebSocket: shared when it is a plain TCP connection, hyper's otherwise.
pub enum SocketIo {
    Shared(Arc<SharedSocket>),
    Upgraded(TokioIo<Upgraded>),
}

impl SocketIo {
    /// The socket behind an upgrade: taken out of hyper when it is a plain connection (with
    /// whatever hyper had read past the handshake), hyper's stream otherwise.
    pub fn of(upgraded: Upgraded) -> (SocketIo, Vec<u8>) {
        match upgraded.downcast::<TokioIo<PlainConnection>>() {
            Ok(parts) => (
                SocketIo::shared(parts.io.into_inner()),
                parts.read_buf.to_vec(),
            ),
            Err(upgraded) => (SocketIo::Upgraded(TokioIo::new(upgraded)), Vec::new()),
        }
    }

    fn shared(connection: PlainConnection) -> SocketIo {
        SocketIo::Shared(Arc::new(SharedSocket {
            connection,
            state: Mutex::default(),
        }))
    }

    /// A handle for writing to this socket directly, if it can be shared.
    pub fn direct(&self) -> Option<Direct> {
        match self {
            SocketIo::Shared(socket) => Some(Direct(socket.clone())),
            SocketIo::Upgraded(_) => None,
        }
    }
}

/// A plain connection and who may write to it.
pub struct SharedSocket {
    /// Held whole (its per-client count is released when it goes); only its TCP stream is used.
    connection: PlainConnection,
    state: Mutex<WriteState>,
}

#[derive(Default)]
struct WriteState {
    /// The tail of frames the socket did not take yet: written before anything else. Empty,
    /// with no allocation, unless a client is slow to read.
    unwritten: Vec<u8>,
    /// The task took frames to write and has not finished writing them.
    busy: bool,
    /// Deliveries a publisher queued for the task instead of writing them: they go first.
    queued: usize,
    /// No direct writes any more (the subscriber counts what it is sent: a prefetch window).
    task_only: bool,
    /// A direct write left a tail that the task has not been told of yet.
    tail_left: bool,
    /// The task, waiting to be told of a tail.
    task: Option<Waker>,
}

impl SharedSocket {
    fn tcp(&self) -> &TcpStream {
        self.connection.get_ref().get_ref().get_ref()
    }

    fn lock(&self) -> MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the kept tail, if any; ready once it is all written.
    fn poll_unwritten(&self, state: &mut WriteState, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !state.unwritten.is_empty() {
            match self.tcp().try_write(&state.unwritten) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    state.unwritten.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.tcp().poll_write_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // A slow client's tail can be large: its room is given back.
        state.unwritten = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// Writes `bytes` (whole frames) after the kept tail: what the socket does not take now is
    /// kept, so nobody else's frame can land inside them.
    fn poll_write(&self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        ready!(self.poll_unwritten(&mut state, cx))?;
        loop {
            match self.tcp().try_write(bytes) {
                Ok(n) => {
                    if n > 0 {
                        state.unwritten.extend_from_slice(&bytes[n..]);
                        return Poll::Ready(Ok(bytes.len()));
                    }
                    return Poll::Ready(Ok(0));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.tcp().poll_write_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.tcp().poll_read_ready(cx))?;
            match self.tcp().try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for SocketIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SocketIo::Shared(socket) => socket.poll_read(cx, buf),
            SocketIo::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SocketIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SocketIo::Shared(socket) => socket.poll_write(cx, buf),
            SocketIo::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SocketIo::Shared(socket) => {
                let mut state = socket.lock();
                socket.poll_unwritten(&mut state, cx)
            }
            SocketIo::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    /// The shared socket is closed when its last holder lets go of it (the task and, while it
    /// is subscribed, the publisher's handle); here its tail is only written out.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let SocketIo::Upgraded(io) = self.as_mut().get_mut() {
            return Pin::new(io).poll_shutdown(cx);
        }
        self.poll_flush(cx)
    }
}

/// A handle for writing whole frames to a shared socket from outside its task.
#[derive(Clone)]
pub struct Direct(Arc<SharedSocket>);

impl Direct {
    /// Writes `frame` (a whole frame as it goes on the wire) at once when the socket's task has
    /// nothing on its way and the socket takes it; otherwise runs `queue` (which hands it to the
    /// task), under the same lock, so that the task's frames and the queued ones keep their
    /// order. A tail the socket did not take is the task's to finish (it is told). `true` when
    /// written (or its tail left), `false` when queued.
    pub fn write_or_queue<E>(
        &self,
        frame: &[u8],
        queue: impl FnOnce() -> Result<(), E>,
    ) -> Result<bool, E> {
        let socket = &self.0;
        let mut state = socket.lock();
        if !state.task_only && !state.busy && state.queued == 0 && state.unwritten.is_empty() {
            match socket.tcp().try_write(frame) {
                Ok(n) if n == frame.len() => return Ok(true),
                Ok(n) if n > 0 => {
                    state.unwritten.extend_from_slice(&frame[n..]);
                    state.tail_left = true;
                    let task = state.task.take();
                    drop(state);
                    if let Some(task) = task {
                        task.wake();
                    }
                    return Ok(true);
                }
                // Full (or broken, which the task finds out when it reads): queued.
                _ => {}
            }
        }
        queue()?;
        state.queued += 1;
        Ok(false)
    }

    /// For the task: `take` (a poll of its queue) under the lock; a delivery taken makes the
    /// task busy until it has written it ([`Direct::done`]).
    pub fn poll_take<T>(
        &self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut Context<'_>) -> Poll<Option<T>>,
    ) -> Poll<Option<T>> {
        let mut state = self.0.lock();
        let taken = take(cx);
        if let Poll::Ready(Some(_)) = taken {
            state.queued = state.queued.saturating_sub(1);
            state.busy = true;
        }
        taken
    }

    /// For the task: it is about to write frames of its own (answers to the client): publishers
    /// queue behind them until it is [`done`](Direct::done).
    pub fn busy(&self) {
        self.0.lock().busy = true;
    }

    /// For the task: everything it took is written.
    pub fn done(&self) {
        self.0.lock().busy = false;
    }

    /// From now on every frame goes through the task.
    pub fn task_only(&self) {
        self.0.lock().task_only = true;
    }

    /// Ready when a direct write left a tail for the task to finish (then it flushes).
    pub fn poll_tail_left(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock();
        if std::mem::take(&mut state.tail_left) {
            return Poll::Ready(());
        }
        match &mut state.task {
            Some(task) => task.clone_from(cx.waker()),
            None => state.task = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, future::poll_fn, time::Duration};

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;
    use crate::server::{client::TrustedProxies, connections::ClientConnections};

    /// A shared server end and its client's end of a real TCP connection.
    async fn pair() -> (SocketIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        let guard = ClientConnections::new(0, 0, TrustedProxies::default())
            .admit(peer.ip())
            .unwrap();
        let connection = JsonParseErrors::new(WriteDeadline::new(
            Counted::new(tcp, guard),
            Duration::from_secs(5),
        ));
        (SocketIo::shared(connection), client)
    }

    fn queue_ok() -> Result<(), Infallible> {
        Ok(())
    }

    async fn read_exactly(client: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut bytes = vec![0; n];
        client.read_exact(&mut bytes).await.unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_direct_write_goes_out_unless_the_task_has_frames_on_the_way() {
        let (mut socket, mut client) = pair().await;
        let direct = socket.direct().expect("a plain connection is shared");
        assert_eq!(direct.write_or_queue(b"one", queue_ok), Ok(true));
        assert_eq!(read_exactly(&mut client, 3).await, b"one");

        // The task has answers on the way: a delivery queues behind them…
        direct.busy();
        assert_eq!(direct.write_or_queue(b"two", queue_ok), Ok(false));
        socket.write_all(b"answer").await.unwrap();
        direct.done();
        // …and so does the next, while one is queued: order is kept.
        assert_eq!(direct.write_or_queue(b"three", queue_ok), Ok(false));
        let mut queue = vec!["two", "three"].into_iter();
        let taken = poll_fn(|cx| direct.poll_take(cx, |_| Poll::Ready(queue.next()))).await;
        assert_eq!(taken, Some("two"));
        socket.write_all(taken.unwrap().as_bytes()).await.unwrap();
        let taken = poll_fn(|cx| direct.poll_take(cx, |_| Poll::Ready(queue.next()))).await;
        socket.write_all(taken.unwrap().as_bytes()).await.unwrap();
        direct.done();
        assert_eq!(direct.write_or_queue(b"four", queue_ok), Ok(true));
        assert_eq!(read_exactly(&mut client, 18).await, b"answertwothreefour");

        // A socket told to go through its task queues everything.
        direct.task_only();
        assert_eq!(direct.write_or_queue(b"five", queue_ok), Ok(false));
    }

    #[tokio::test]
    async fn a_tail_the_socket_did_not_take_is_written_before_anything_else() {
        let (mut socket, mut client) = pair().await;
        let direct = socket.direct().unwrap();
        // The client reads nothing: direct writes fill the socket, the last one only in part.
        let frame = vec![7u8; 64 * 1024];
        let mut written = 0;
        while direct.write_or_queue(&frame, queue_ok) == Ok(true) {
            written += 1;
            assert!(written < 10_000, "the socket never filled");
        }
        // The tail waits (the task is told), so what follows queues behind it.
        tokio::time::timeout(
            Duration::from_secs(1),
            poll_fn(|cx| direct.poll_tail_left(cx)),
        )
        .await
        .expect("the task is told a tail is left");
        assert_eq!(direct.write_or_queue(b"next", queue_ok), Ok(false));
        // The task's own write goes after the tail, once the client reads.
        let reading = tokio::spawn(async move {
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.unwrap();
            all
        });
        socket.write_all(b"after").await.unwrap();
        socket.flush().await.unwrap();
        drop(direct);
        drop(socket);
        let all = reading.await.unwrap();
        assert_eq!(all.len(), written * frame.len() + 5);
        assert!(all[..written * frame.len()].iter().all(|&b| b == 7));
        assert_eq!(&all[written * frame.len()..], b"after");
    }
}
