//! The bounded Server-Sent Events stream every event-stream demo shares (job progress, pub/sub
//! subscribers): a small queue between the producing task and the response, a `retry:` hint
//! first, keep-alive comments, and a producer that gives up on a client that is not reading,
//! using the queue's last slot to say why ([`open`]); or no queue and no producer, the events
//! pulled from a source that bounds itself as the client takes them ([`open_pulling`], pub/sub's
//! subscribers). Nothing is buffered without bound. When the server shuts down the stream
//! itself ends, with a last `dropped` event, whatever its producer does.

use std::{collections::VecDeque, convert::Infallible, future::Future, time::Duration};

use axum::response::{
    IntoResponse, Response,
    sse::{Event, KeepAlive, Sse},
};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

/// Events a client may fall behind before its stream is closed.
pub const STREAM_BUFFER: usize = 16;
/// How long the browser waits before reconnecting (sent as `retry:`).
pub const RETRY: Duration = Duration::from_millis(1_000);
/// Interval of keep-alive comments on an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// The producing end of one event stream.
pub struct EventSink {
    // Boxed: the channel allocates its first block of 32 slots up front, whatever the bound;
    // 32 pointers instead of 32 events is 1.2 KiB less per held stream (connections-held
    // benchmark), for one small allocation per event sent.
    tx: mpsc::Sender<Box<Event>>,
}

/// Why an event could not be queued: the stream is over, say so and stop producing.
#[derive(Debug, PartialEq, Eq)]
pub enum Gone {
    /// The client is not reading; the last slot told it so (a `dropped` event).
    TooSlow,
    /// The client went away.
    Closed,
}

/// The last event of a stream the server ends because it is shutting down.
pub const SHUTTING_DOWN: &str = "server shutting down";

/// A stream response and its sink: the handler returns the response, a task feeds the sink.
/// `stopped` is the server's shutdown ([`crate::AppState::stopped`]): then the stream says so
/// in a last `dropped` event and ends, and the producer sees [`EventSink::closed`].
pub fn open(stopped: impl Future<Output = ()> + Send + 'static) -> (EventSink, Response) {
    open_after(stopped, Vec::new())
}

/// [`open`], the stream starting with `first` (a replay the producer made at once): they go
/// out ahead of the queue, outside its bound, so a replay as long as the caller allows never
/// counts against the client (it is written as fast as the client reads; the queue fills
/// behind it only if the client stops reading).
pub fn open_after(
    stopped: impl Future<Output = ()> + Send + 'static,
    first: Vec<Event>,
) -> (EventSink, Response) {
    let (tx, rx) = mpsc::channel::<Box<Event>>(STREAM_BUFFER);
    let queued = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (*event, rx))
    });
    (EventSink { tx }, open_pulling(stopped, first, queued))
}

/// A stream response whose events are pulled from `source` as the client takes them, after
/// `first` (a replay, outside any bound): no queue and no producing task in between, so a held
/// stream keeps only `source`'s own state. `source` bounds itself (pub/sub: the subscriber's
/// queue, whose overflow gets it dropped) and ends the stream by ending. On shutdown the stream
/// says so in a last `dropped` event and ends, as [`open`]'s does.
pub fn open_pulling(
    stopped: impl Future<Output = ()> + Send + 'static,
    first: Vec<Event>,
    source: impl Stream<Item = Event> + Send + 'static,
) -> Response {
    // `retry:` first, so even a stream dropped at once tells the browser when to come back.
    let first: VecDeque<Event> = std::iter::once(Event::default().retry(RETRY))
        .chain(first)
        .collect();
    let (stopped, source) = (Box::pin(stopped), Box::pin(source));
    let stream = futures_util::stream::unfold(Some((first, source, stopped)), |open| async move {
        let (mut first, mut source, mut stopped) = open?;
        tokio::select! {
            biased;
            _ = &mut stopped => Some((Ok(Event::default().event("dropped").data(SHUTTING_DOWN)), None)),
            event = async { match first.pop_front() {
                Some(event) => Some(event),
                None => source.next().await,
            } } => event.map(|e| (Ok::<_, Infallible>(e), Some((first, source, stopped)))),
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response()
}

impl EventSink {
    /// Queues `event`. When only one slot is left, that slot carries a `dropped` event with
    /// `why` instead and the stream is over: the client fell `STREAM_BUFFER` events behind.
    pub fn offer(&self, event: Event, why: &str) -> Result<(), Gone> {
        if self.tx.capacity() == 1 {
            let _ = self
                .tx
                .try_send(Box::new(Event::default().event("dropped").data(why)));
            return Err(Gone::TooSlow);
        }
        self.tx.try_send(Box::new(event)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Gone::TooSlow,
            mpsc::error::TrySendError::Closed(_) => Gone::Closed,
        })
    }

    /// Completes when the client has gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// The wire size of an event block as the client receives it.
pub fn wire_bytes(name: &str, id: impl std::fmt::Display, data: &str) -> u64 {
    format!("event: {name}\nid: {id}\ndata: {data}\n\n").len() as u64
}
