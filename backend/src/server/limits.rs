//! The bounds a client meets that the command line can change (`backend --help`), with the
//! defaults a classroom needs: a browser session or the browser test suite never reaches them,
//! a runaway script does. Load tests raise them.

use std::time::Duration;

use crate::server::rate_limit::Rate;

/// Connections one client may hold at once (HTTP, SSE and WebSocket together; a trusted
/// proxy is not capped).
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 256;
/// Jobs one client may create per second (`POST /api/jobs`, the sync/async demo's work).
pub const JOB_RATE: Rate = Rate {
    per_second: 20,
    burst: 100,
};
/// Messages one client may publish per second (`POST /api/pubsub/publish`, tickers started).
pub const PUBLISH_RATE: Rate = Rate {
    per_second: 50,
    burst: 100,
};
/// Chat lines one push socket may say per second (in a burst: `patterns::push::CHAT_BURST`);
/// a line over it gets an error frame, and the socket stays open.
pub const CHAT_RATE: u32 = 10;
/// The largest WebSocket message (and frame) a client may send.
pub const WS_MAX_MESSAGE: usize = 16 * 1024;
/// Connections open at once, all clients together. Measured, an idle held connection costs
/// 8–16 KiB (bench/RESULTS.md, `held`): 20,000 of them are 160–320 MiB, and the count stays
/// under a raised file limit (`ulimit -n` 65,536) with room for the stores' files and Redis.
pub const MAX_CONNECTIONS: usize = 20_000;
/// How long a client may take to send a whole request head, from the moment the server waits
/// for one: on a new connection, and between requests on a kept-alive one (hyper starts the
/// same timer for every head, so this is also the keep-alive idle timeout). 10 s is far more
/// than a phone on a slow link needs for a few hundred bytes, and short enough that a
/// slowloris trickling a head holds a connection slot briefly. An idle keep-alive connection
/// is closed after it too: shorter than the 60–75 s a browser or proxy keeps one, so the
/// server, not the client, closes first; a client whose kept-alive connection was closed
/// retries a fresh one (browsers and reqwest do, for idempotent requests and before sending).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request body may go without a byte arriving. Per chunk of progress, not for
/// the whole body: an upload chunk (up to `MAX_CHUNK_BYTES`) on a slow phone link keeps
/// arriving and is never cut; a body announced and never sent is failed after 30 s.
pub const REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a response write may go without the client taking a byte. As for bodies, per
/// progress: a slow link reading a large file keeps it alive; a client that stopped reading
/// (or a held stream whose reader vanished without a FIN) is closed after 30 s.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections one client may hold at once (not a trusted proxy); 0 is no limit.
    pub max_connections_per_client: usize,
    /// Connections open at once, all clients (and proxies) together; 0 is no limit.
    pub max_connections: usize,
    /// How long a request head may take to arrive, and a kept-alive connection may idle.
    pub header_read_timeout: Duration,
    /// How long a request body may go without a byte arriving.
    pub request_body_timeout: Duration,
    /// How long a response write may go without the client taking a byte.
    pub response_write_timeout: Duration,
    /// Job creations per client; `per_second == 0` is no limit.
    pub job_rate: Rate,
    /// Publishes per client; `per_second == 0` is no limit.
    pub publish_rate: Rate,
    /// Chat lines per push socket per second; 0 is no limit.
    pub chat_rate: u32,
    /// The largest WebSocket message and frame a client may send (bigger: closed with 1009).
    pub ws_max_message: usize,
    /// Replaces every store's own TTL (runs, jobs, sessions, uploads, topics, per-run actors)
    /// when set: the soak test shortens them to see everything expire.
    pub store_ttl: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_client: MAX_CONNECTIONS_PER_CLIENT,
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_body_timeout: REQUEST_BODY_TIMEOUT,
            response_write_timeout: RESPONSE_WRITE_TIMEOUT,
            job_rate: JOB_RATE,
            publish_rate: PUBLISH_RATE,
            chat_rate: CHAT_RATE,
            ws_max_message: WS_MAX_MESSAGE,
            store_ttl: None,
        }
    }
}
