//! A learner's trace socket, as the page keeps it: opened for each run with the run in its URL
//! (`?watch=RUN`, what a proxy hashing on the run id needs; the page of the `deploy` change does
//! the same), then a `Watch`; reconnected after a drop with `after` = the highest `seq` held.
//! It notes which exchanges of the watched run the server recorded, and which halves of each.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use protocol::{
    TRACE_SOCKET_PATH,
    trace::{Kind, RunId, TraceClientMsg, TraceServerMsg},
};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::tls::Proxy;

/// The halves of one exchange the server recorded.
#[derive(Debug, Default, Clone, Copy)]
struct Halves {
    request: bool,
    response: bool,
}

/// What the socket has received of the watched run.
#[derive(Default)]
struct Seen {
    run: Option<String>,
    /// The highest `seq` held, for a reconnection's `after`.
    last_seq: Option<u64>,
    /// The server's log of the run those numbers are of (its `Watching` answer).
    log: Option<u64>,
    /// By request id (`rid`).
    exchanges: HashMap<String, Halves>,
    /// How often the socket had to be opened again.
    reconnects: u64,
}

/// Handle to a learner's trace socket; the socket lives in its own task, ended on drop.
pub struct TraceWatch {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    watch: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TraceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TraceWatch {
    /// Starts the socket's task for a learner at `local`: it opens the socket for each run
    /// watched (retrying as the page does when it cannot).
    pub fn open(proxy: Proxy, local: IpAddr) -> TraceWatch {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let (watch, commands) = mpsc::unbounded_channel();
        let task = tokio::spawn(keep_open(
            proxy,
            local,
            Arc::clone(&seen),
            Arc::clone(&changed),
            commands,
        ));
        TraceWatch {
            seen,
            changed,
            watch,
            task,
        }
    }

    /// Watches `run` from now on (forgetting the previous run).
    pub fn watch(&self, run: &str) {
        {
            let mut seen = self.seen.lock().expect("trace lock");
            seen.run = Some(run.to_owned());
            seen.last_seq = None;
            seen.log = None;
            seen.exchanges.clear();
        }
        let _ = self.watch.send(run.to_owned());
    }

    /// Waits until every exchange in `rids` has both halves in the server's trace, at most
    /// `limit`; returns those still missing a half, saying which.
    pub async fn await_complete(&self, rids: &[String], limit: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            let missing = self.missing(rids);
            if missing.is_empty() || tokio::time::Instant::now() >= deadline {
                return missing;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// The exchanges in `rids` that lack a half, each with what is missing
    /// (`2 (response)`, `3 (both)`).
    fn missing(&self, rids: &[String]) -> Vec<String> {
        let seen = self.seen.lock().expect("trace lock");
        rids.iter()
            .filter_map(|rid| {
                let halves = seen.exchanges.get(rid).copied().unwrap_or_default();
                let lacking = match (halves.request, halves.response) {
                    (true, true) => return None,
                    (true, false) => "response",
                    (false, true) => "request",
                    (false, false) => "both",
                };
                Some(format!("{rid} ({lacking})"))
            })
            .collect()
    }

    /// How many exchanges of the watched run the server's trace has shown so far.
    pub fn exchanges_seen(&self) -> usize {
        self.seen.lock().expect("trace lock").exchanges.len()
    }

    /// How often the socket was opened again after a drop.
    pub fn reconnects(&self) -> u64 {
        self.seen.lock().expect("trace lock").reconnects
    }
}

/// The socket's task: connect, (re)send the watch, note messages; on a drop, wait and reconnect.
async fn keep_open(
    proxy: Proxy,
    local: IpAddr,
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    mut commands: mpsc::UnboundedReceiver<String>,
) {
    let mut retry = Duration::from_secs(1);
    let mut first = true;
    loop {
        let current = seen.lock().expect("trace lock").run.clone();
        let Some(run) = current else {
            // No run yet: wait for the first.
            if commands.recv().await.is_none() {
                return;
            }
            continue;
        };
        let url = format!("{TRACE_SOCKET_PATH}?watch={run}");
        let mut socket = match proxy.websocket(local, &url).await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        retry = Duration::from_secs(1);
        let (after, log) = {
            let mut s = seen.lock().expect("trace lock");
            if !first {
                s.reconnects += 1;
            }
            (s.last_seq, s.log)
        };
        first = false;
        if send_watch(&mut socket, &run, after, log).await.is_err() {
            continue;
        }
        let new_run = loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(_) = command else { return };
                    // A new run: a new socket for it, as the page opens one.
                    let _ = socket.close(None).await;
                    break true;
                }
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(WsMessage::Text(text))) => text,
                        Some(Ok(_)) => continue,
                        _ => break false,
                    };
                    let message = match serde_json::from_str(&text) {
                        Ok(TraceServerMsg::Message(message)) => message,
                        Ok(TraceServerMsg::Watching { run: watched, log }) => {
                            let mut s = seen.lock().expect("trace lock");
                            if s.run.as_deref() == Some(watched.0.as_str()) {
                                s.log = Some(log);
                            }
                            continue;
                        }
                        _ => continue,
                    };
                    let mut s = seen.lock().expect("trace lock");
                    if s.run.as_deref() != Some(message.run.0.as_str()) {
                        continue;
                    }
                    s.last_seq = Some(s.last_seq.map_or(message.seq, |l| l.max(message.seq)));
                    if let Some(rid) = &message.request_id {
                        let halves = s.exchanges.entry(rid.0.clone()).or_default();
                        match message.kind {
                            Kind::Request => halves.request = true,
                            Kind::Response => halves.response = true,
                            _ => {}
                        }
                    }
                    drop(s);
                    changed.notify_waiters();
                }
            }
        };
        if new_run {
            first = true;
        } else {
            tokio::time::sleep(retry).await;
        }
    }
}

async fn send_watch<S>(
    socket: &mut S,
    run: &str,
    after: Option<u64>,
    log: Option<u64>,
) -> anyhow::Result<()>
where
    S: futures_util::Sink<WsMessage> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let watch = TraceClientMsg::Watch {
        run: RunId(run.to_owned()),
        after,
        log,
    };
    socket
        .send(WsMessage::Text(serde_json::to_string(&watch)?.into()))
        .await?;
    Ok(())
}
