//! SIGTERM to the real binary: held long polls are answered, event streams end, WebSockets
//! (push, pub/sub, the trace socket) close with 1001, new connections are refused, and the
//! process exits successfully within 5 s, even with a client that never finishes its request.
#![cfg(unix)]

mod common;

use std::{
    net::SocketAddr,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use backend::DRAIN_DEADLINE;
use futures_util::{SinkExt, StreamExt};
use protocol::{
    pubsub::SubscriberFrame,
    push::ClientFrame,
    trace::{RunId, TraceClientMsg, TraceServerMsg},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message as WsMessage, protocol::frame::coding::CloseCode},
};

/// What the process must finish within, from SIGTERM to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(5);
/// Bound on every wait that is not about shutdown itself.
const STEP: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The backend binary, started on a free port, API only.
struct Backend {
    child: Child,
    addr: SocketAddr,
    /// Every line it writes after the "serving" one (its log), until it exits.
    log: JoinHandle<Vec<String>>,
}

impl Backend {
    async fn start() -> Backend {
        let mut child = Command::new(env!("CARGO_BIN_EXE_backend"))
            .args(["--addr", "127.0.0.1:0", "--dist", "no-such-dist-folder"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the backend binary");
        let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines_tx = lines_tx.clone();
            tokio::spawn(async move {
                let mut out = BufReader::new(out).lines();
                while let Ok(Some(line)) = out.next_line().await {
                    let _ = lines_tx.send(line);
                }
            });
        }
        drop(lines_tx);
        // The readiness line, not a sleep.
        let addr = tokio::time::timeout(STEP, async {
            while let Some(line) = lines.recv().await {
                if let Some(rest) = line.split("Patternscope is serving on http://").nth(1) {
                    return rest.trim().parse::<SocketAddr>().expect("an address");
                }
            }
            panic!("the backend exited before serving");
        })
        .await
        .expect("the backend serves within 10 s");
        let log = tokio::spawn(async move {
            let mut log = Vec::new();
            while let Some(line) = lines.recv().await {
                log.push(line);
            }
            log
        });
        Backend { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn socket(&self, path: &str) -> Socket {
        connect_async(format!("ws://{}{path}", self.addr))
            .await
            .expect("upgrade")
            .0
    }

    /// Sends SIGTERM; returns when it was sent, and an instant just before (nothing the
    /// signal caused can have happened earlier).
    fn terminate(&self) -> (Instant, Instant) {
        let pid = self.child.id().expect("still running");
        let before = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
        (Instant::now(), before)
    }

    /// Waits for the exit that must come within [`EXIT_WITHIN`] of `since`; its status, when
    /// it was seen, and the log.
    async fn exit(mut self, since: Instant) -> (ExitStatus, Instant, Vec<String>) {
        let left = EXIT_WITHIN.saturating_sub(since.elapsed());
        let status = tokio::time::timeout(left, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running {EXIT_WITHIN:?} after SIGTERM"))
            .expect("wait for the backend");
        let exited = Instant::now();
        eprintln!("exited {:?} after SIGTERM", exited - since);
        let log = tokio::time::timeout(STEP, self.log)
            .await
            .expect("its output ends")
            .unwrap();
        (status, exited, log)
    }
}

async fn send_json(socket: &mut Socket, value: &impl serde::Serialize) {
    let text = serde_json::to_string(value).unwrap();
    socket.send(WsMessage::Text(text.into())).await.unwrap();
}

/// The next text frame.
async fn text(socket: &mut Socket) -> String {
    loop {
        let frame = tokio::time::timeout(STEP, socket.next())
            .await
            .expect("a frame")
            .expect("open")
            .expect("no error");
        match frame {
            WsMessage::Text(text) => return text.to_string(),
            WsMessage::Close(c) => panic!("closed early: {c:?}"),
            _ => {}
        }
    }
}

/// Reads until the close frame; its code.
async fn close_code(socket: &mut Socket) -> CloseCode {
    loop {
        match tokio::time::timeout(EXIT_WITHIN, socket.next())
            .await
            .expect("a close frame within 5 s")
        {
            Some(Ok(WsMessage::Close(Some(frame)))) => return frame.code,
            Some(Ok(WsMessage::Close(None))) => panic!("a close frame without a code"),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A trace socket watching `run`, ready (the watch took effect).
async fn watch(backend: &Backend, run: &str) -> Socket {
    let mut socket = backend.socket("/api/trace/ws").await;
    text(&mut socket).await; // the clock, on connect
    send_json(
        &mut socket,
        &TraceClientMsg::Watch {
            run: RunId(run.into()),
            after: None,
            log: None,
        },
    )
    .await;
    text(&mut socket).await; // the clock again: the watch is on
    socket
}

/// Waits until the server has seen request `rid` arrive (the trace says so).
async fn arrived(trace: &mut Socket, rid: &str) {
    loop {
        if let TraceServerMsg::Message(m) = serde_json::from_str(&text(trace).await).unwrap()
            && m.request_id.as_ref().is_some_and(|r| r.0 == rid)
        {
            return;
        }
    }
}

/// An open event stream whose head has arrived; the rest of its body, read to the end.
async fn event_stream(url: String) -> JoinHandle<Result<String, String>> {
    let response = reqwest::get(url).await.expect("the stream opens");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(STEP, body.next())
        .await
        .expect("a first event")
        .expect("not ended")
        .expect("no error");
    assert!(String::from_utf8_lossy(&first).contains("retry:"));
    tokio::spawn(async move {
        let mut text = String::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("the stream broke: {e:?}"))?;
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        Ok(text)
    })
}

/// Connects until the connection is refused (the listener closed just after shutdown began).
async fn refused(addr: SocketAddr) {
    tokio::time::timeout(STEP, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                // Queued while the listener was closing (accepted by the kernel, then reset),
                // or accepted just before: try again.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(e) => panic!("connect: {e}"),
                Ok(_) => {}
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("new connections are refused")
}

#[tokio::test]
async fn sigterm_answers_polls_ends_streams_closes_sockets_then_exits() {
    let backend = Backend::start().await;
    let http = reqwest::Client::new();
    // A job that will not change while the test runs (a step every 5 s, 50 steps).
    let job = common::create_job(backend.url("/api/jobs"), 50, 5_000).await;
    let job = job.job;

    let mut trace = watch(&backend, "shutdown-1").await;
    let mut push = backend.socket("/api/push/ws").await;
    send_json(&mut push, &ClientFrame::Follow { job: job.clone() }).await;
    text(&mut push).await; // the loop runs
    let mut pubsub = backend.socket("/api/pubsub/ws?as=client-1").await;
    send_json(
        &mut pubsub,
        &SubscriberFrame::Subscribe {
            topic: "news".into(),
            replay: 0,
            prefetch: None,
        },
    )
    .await;
    text(&mut pubsub).await; // subscribed
    let job_events = event_stream(backend.url(&format!("/api/jobs/{}/events", job.0))).await;
    let topic_events = event_stream(backend.url("/api/pubsub/events?topics=news")).await;
    let poll = tokio::spawn(
        http.get(backend.url(&format!(
            "/api/jobs/{}/wait?after=50&timeout_ms=30000&run=shutdown-1&rid=poll-1",
            job.0
        )))
        .send(),
    );
    arrived(&mut trace, "poll-1").await;

    let (sigterm, _) = backend.terminate();

    for (name, socket) in [
        ("push", &mut push),
        ("pub/sub", &mut pubsub),
        ("trace", &mut trace),
    ] {
        assert_eq!(close_code(socket).await, CloseCode::Away, "{name} socket");
    }
    let poll = tokio::time::timeout(EXIT_WITHIN, poll)
        .await
        .expect("the long poll is answered")
        .unwrap()
        .expect("an answer, not a broken connection");
    assert_eq!(poll.status(), 503);
    assert_eq!(poll.headers()["retry-after"], "1");
    let body: serde_json::Value = poll.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("shutting down"),
        "{body}"
    );
    for (name, stream) in [("job", job_events), ("pub/sub", topic_events)] {
        let rest = tokio::time::timeout(EXIT_WITHIN, stream)
            .await
            .unwrap_or_else(|_| panic!("the {name} event stream ends"))
            .unwrap()
            .unwrap_or_else(|e| panic!("{name} event stream: {e}"));
        assert!(
            rest.contains("event: dropped\ndata: server shutting down\n\n"),
            "{name} event stream ended with {rest:?}"
        );
    }
    refused(backend.addr).await;

    let (status, _, log) = backend.exit(sigterm).await;
    assert!(status.success(), "exit status {status}");
    // Everything above let go by itself: the drain did not need its deadline.
    assert!(
        !log.iter().any(|l| l.contains("still open after")),
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_request_that_never_finishes_does_not_hold_the_exit() {
    let backend = Backend::start().await;
    let mut trace = watch(&backend, "shutdown-2").await;
    // An upload that stops after its first byte: the handler waits for the rest forever.
    let mut stuck = TcpStream::connect(backend.addr).await.unwrap();
    stuck
        .write_all(
            b"POST /api/echo?run=shutdown-2&rid=stuck-1 HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
    arrived(&mut trace, "stuck-1").await;

    let (sigterm, before_sigterm) = backend.terminate();
    assert_eq!(close_code(&mut trace).await, CloseCode::Away);
    // New connections are refused while the stuck request keeps the process draining.
    refused(backend.addr).await;

    let (status, exited, log) = backend.exit(sigterm).await;
    assert!(status.success(), "exit status {status}");
    // The stuck request held the drain until its deadline, which began after the signal was
    // sent (a causal bound: a process stopped early cannot pass it, a slow machine cannot
    // fail it).
    assert!(
        exited - before_sigterm >= DRAIN_DEADLINE,
        "exited {:?} after SIGTERM, before the {DRAIN_DEADLINE:?} drain deadline",
        exited - before_sigterm
    );
    assert!(
        log.iter().any(|l| l.contains("still open after")),
        "{log:#?}"
    );
    // The stuck connection was cut, not left open.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(STEP, stuck.read_to_end(&mut rest))
        .await
        .expect("the stuck connection is closed");
}
