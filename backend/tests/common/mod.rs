//! A real server on an ephemeral port for integration tests; it shuts down when dropped.
#![allow(dead_code)]

pub mod tls;

use std::net::SocketAddr;

use backend::{AppState, Config, serve};
use protocol::job::{JobCreated, JobSpec};
use tokio::{sync::oneshot, task::JoinHandle};

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with_config(Config::default()).await
    }

    /// Starts a server with `config`, and the debug routes on (the tests read
    /// `/api/debug/stats`).
    pub async fn with_config(config: Config) -> TestServer {
        let config = Config {
            debug_routes: true,
            ..config
        };
        Self::with_state(AppState::new(config)).await
    }

    /// Starts a server on `state` (made with the debug routes on, for `/api/debug/stats`).
    pub async fn with_state(state: AppState) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            state,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Begins a graceful shutdown, as SIGTERM would.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates a job at `jobs_url` (`…/api/jobs`) with no payload and returns what the server said.
pub async fn create_job(jobs_url: String, steps: u32, step_ms: u32) -> JobCreated {
    reqwest::Client::new()
        .post(jobs_url)
        .json(&JobSpec {
            steps,
            step_ms,
            payload_bytes: 0,
        })
        .send()
        .await
        .expect("job created")
        .json()
        .await
        .expect("a JobCreated body")
}

/// A WebSocket client connection as `tokio_tungstenite::connect_async` opens it.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame on `socket`, parsed as JSON (other frames skipped); panics if none comes
/// `within`, the socket closes or the text is not a `T`.
pub async fn next_json<T: serde::de::DeserializeOwned>(
    socket: &mut Socket,
    within: std::time::Duration,
) -> T {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let next = tokio::time::timeout(within, socket.next())
            .await
            .unwrap_or_else(|_| panic!("a frame within {within:?}"));
        match next.expect("open").expect("no error") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// The URL of the private `what` server (Redis, RabbitMQ, PostgreSQL) that `make test` started
/// and named in `env`; `None`, said loudly, when it did not (the test then skips).
pub fn engine_url(env: &str, what: &str) -> Option<String> {
    let url = std::env::var(env).ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!(
            "\n!!! SKIPPED: {env} is not set, so this {what} test did not run. \
             `make test` starts a private {what} and sets it. !!!\n"
        );
    }
    url
}
