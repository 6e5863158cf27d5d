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

#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections one client may hold at once (not a trusted proxy); 0 is no limit.
    pub max_connections_per_client: usize,
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
            job_rate: JOB_RATE,
            publish_rate: PUBLISH_RATE,
            chat_rate: CHAT_RATE,
            ws_max_message: WS_MAX_MESSAGE,
            store_ttl: None,
        }
    }
}
