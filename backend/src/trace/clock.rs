//! The server's clock for traces: every record the server makes is stamped with it, and the
//! page maps it onto its own from request/response pairs.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The server's clock for traces: microseconds since the process first read it.
pub fn server_now_us() -> i64 {
    i64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(i64::MAX)
}

/// The instant a time on the server's clock names (to the microsecond): what the trace hub
/// keeps its runs' ages by, from the time a record already carries. Each reading of the clock is
/// a `clock_gettime`, and a traced request made a dozen of them.
pub fn instant_at_us(us: i64) -> Instant {
    *EPOCH + Duration::from_micros(us.max(0).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_time_names_the_instant_it_was_read_at() {
        let before = Instant::now();
        let us = server_now_us();
        let after = Instant::now();
        let at = instant_at_us(us);
        // Truncated to the microsecond.
        assert!(at + Duration::from_micros(1) > before && at <= after);
        assert_eq!(instant_at_us(0), *EPOCH);
    }
}
