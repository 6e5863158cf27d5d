//! A body whose frames reach the other side when the run's link would deliver them: each frame
//! is scheduled on the link the moment it is produced and handed on when it has arrived. The
//! frames produced meanwhile are scheduled too (up to [`HELD_FRAMES`]), so a stream of events
//! is pipelined on the link as on a real one, not sent one round trip at a time.
//!
//! A frame ready when the body is first read was produced with the head, at the latest: it is
//! scheduled as handed over then (`ready_since`), right behind the head, not half a round trip
//! after it. Once the wrapped body has made the reader wait, frames are handed over as they come.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::{Shaper, pipe::Way};

/// Frames one body holds back at most; past them it stops reading what it wraps.
pub const HELD_FRAMES: usize = 64;

/// `inner`, shaped by `shaper` in direction `way`.
pub struct ShapedBody {
    inner: Body,
    shaper: Shaper,
    way: Way,
    /// When the frames `inner` has ready were handed to the link; `None` once it has made the
    /// reader wait (frames are handed over as they come, then).
    ready_since: Option<Instant>,
    /// Frames read from `inner`, each with when it arrives.
    held: VecDeque<(Frame<Bytes>, Instant)>,
    held_bytes: u64,
    /// The timer of the first held frame.
    timer: Option<Pin<Box<Sleep>>>,
    /// `inner` has ended, with this error if it failed (handed on after the held frames).
    ended: bool,
    error: Option<axum::Error>,
}

impl ShapedBody {
    /// `inner` shaped, what it has ready now handed to the link at `ready_since` (with its head).
    pub fn new(inner: Body, shaper: Shaper, way: Way, ready_since: Instant) -> ShapedBody {
        ShapedBody {
            inner,
            shaper,
            way,
            ready_since: Some(ready_since),
            held: VecDeque::new(),
            held_bytes: 0,
            timer: None,
            ended: false,
            error: None,
        }
    }
}

fn data_len(frame: &Frame<Bytes>) -> usize {
    frame.data_ref().map_or(0, Bytes::len)
}

impl HttpBody for ShapedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        // Take in, and put on the link, what the wrapped body has ready.
        while !this.ended && this.held.len() < HELD_FRAMES {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let bytes = data_len(&frame);
                    let handed = this.ready_since.unwrap_or_else(Instant::now);
                    let at = this.shaper.arrival_of(this.way, handed, bytes);
                    this.held_bytes += bytes as u64;
                    this.held.push_back((frame, at));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.error = Some(e);
                    this.ended = true;
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => {
                    this.ready_since = None;
                    break;
                }
            }
        }
        let Some(&(_, at)) = this.held.front() else {
            return match this.error.take() {
                Some(e) => Poll::Ready(Some(Err(e))),
                None if this.ended => Poll::Ready(None),
                None => Poll::Pending,
            };
        };
        if at > Instant::now() {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            ready!(timer.as_mut().poll(cx));
        }
        let (frame, _) = this.held.pop_front().expect("looked at above");
        this.held_bytes -= data_len(&frame) as u64;
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.error.is_none() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + self.held_bytes);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + self.held_bytes);
        }
        hint
    }
}
