//! The server's clock for traces: every record the server makes is stamped with it, and the
//! page maps it onto its own from request/response pairs.

use std::{sync::LazyLock, time::Instant};

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The server's clock for traces: microseconds since the process first read it.
pub fn server_now_us() -> i64 {
    i64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(i64::MAX)
}
