//! Graceful shutdown: the one signal every push loop watches, the upgraded sockets the server
//! must wait for, and the deadline that bounds the whole drain.
//!
//! What a client sees when the server stops (SIGTERM or Ctrl-C):
//! - the listening sockets close at once: new connections are refused;
//! - a held long poll is answered `503 Service Unavailable` with `Retry-After: 1` and
//!   `{ "error": "server shutting down: …" }` (a client backs off and asks again, perhaps of
//!   another instance);
//! - a Server-Sent Events stream gets a last `event: dropped` / `data: server shutting down`
//!   and ends (an `EventSource` reconnects after its `retry:` delay, with `Last-Event-ID`);
//! - every WebSocket (push, pub/sub, the trace socket) gets a close frame `1001` ("going away");
//! - requests in progress finish; idle keep-alive connections are closed;
//! - whatever is still open [`DRAIN_DEADLINE`] after the signal is cut, so the process exits
//!   within about that time, never hangs on a client that does not let go.
//!
//! axum's graceful shutdown waits for HTTP connections, but not for WebSocket tasks (an upgraded
//! connection leaves hyper), and not forever-streaming responses unless something ends them
//! (tokio-rs/axum issues 2673 and 3003): [`Shutdown::track`] covers the first, the shutdown
//! branch of every push loop and of [`crate::transport::event_stream`] the second.

use std::{future::Future, io, sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::server::when_woken::when_woken;

/// Longest the server waits, once shutdown has begun, for connections and sockets to finish.
/// Below the 5 s a process manager usually grants after SIGTERM, with room for the exit itself.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(3);

/// Cheap to clone: every clone sees the same signal and counts the same sockets.
#[derive(Clone)]
pub struct Shutdown {
    /// Flips to `true` when shutdown begins.
    stopping: Arc<watch::Sender<bool>>,
    /// One receiver per tracked task (a WebSocket's loop); `closed()` completes when all are
    /// gone. The value itself carries nothing.
    sockets: Arc<watch::Sender<()>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            stopping: Arc::new(watch::channel(false).0),
            sockets: Arc::new(watch::channel(()).0),
        }
    }
}

impl Shutdown {
    /// Tells every open connection to finish.
    pub fn begin(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once shutdown has begun; every push loop selects on it (and so polls it at
    /// every pass: it only looks at the shared watch when that woke it).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        when_woken(async move {
            // An error means the sender is gone, which also means the server is stopping.
            let _ = stopping.wait_for(|stopping| *stopping).await;
        })
    }

    /// `task`, counted until it ends: the drain waits for it (up to the deadline). For work
    /// axum does not wait for itself, i.e. the loop of an upgraded WebSocket.
    pub fn track<F: Future>(&self, task: F) -> impl Future<Output = F::Output> + use<F> {
        let held = self.sockets.subscribe();
        async move {
            let out = task.await;
            drop(held);
            out
        }
    }

    /// Tracked tasks still running.
    pub fn tracked(&self) -> usize {
        self.sockets.receiver_count()
    }

    /// Runs `server` (a serve loop with graceful shutdown on [`Shutdown::stopped`]) and then
    /// waits for the tracked sockets; once shutdown has begun, all of it gets at most
    /// [`DRAIN_DEADLINE`], after which whatever is left is abandoned with a warning.
    pub async fn drain(&self, server: impl Future<Output = io::Result<()>>) -> io::Result<()> {
        let finished = async {
            server.await?;
            self.sockets.closed().await;
            Ok(())
        };
        let deadline = {
            let stopped = self.stopped();
            async move {
                stopped.await;
                tokio::time::sleep(DRAIN_DEADLINE).await;
            }
        };
        tokio::select! {
            finished = finished => finished,
            _ = deadline => {
                tracing::warn!(
                    sockets = self.tracked(),
                    "shutdown: connections still open after {DRAIN_DEADLINE:?}; closing them"
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tracked_tasks() {
        let shutdown = Shutdown::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(shutdown.track(async move {
            let _ = released.await;
        }));
        assert_eq!(shutdown.tracked(), 1);
        let drain = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.drain(async { Ok(()) }).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!drain.is_finished(), "drain returned with a socket open");
        release.send(()).unwrap();
        task.await.unwrap();
        drain.await.unwrap().unwrap();
        assert_eq!(shutdown.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_at_the_deadline() {
        let shutdown = Shutdown::default();
        let _stuck = tokio::spawn(shutdown.track(std::future::pending::<()>()));
        let started = tokio::time::Instant::now();
        let drain = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.drain(std::future::pending()).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!drain.is_finished(), "drain gave up before shutdown began");
        let begun = tokio::time::Instant::now();
        shutdown.begin();
        drain.await.unwrap().unwrap();
        assert!(begun.elapsed() >= DRAIN_DEADLINE);
        assert!(begun.elapsed() < DRAIN_DEADLINE + Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_secs(60));
    }
}
