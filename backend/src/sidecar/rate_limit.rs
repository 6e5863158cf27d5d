//! The sidecar's rate limit: a token bucket holding one second's worth of requests, refilled
//! continuously. A request that finds it empty is refused (429) without reaching the app.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

/// A token bucket; `rate_per_s == 0` lets everything through.
pub struct TokenBucket {
    rate_per_s: u32,
    // std Mutex: one short update per request, never held across an await.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate_per_s: u32) -> TokenBucket {
        TokenBucket {
            rate_per_s,
            state: Mutex::new((f64::from(rate_per_s), Instant::now())),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&self) -> Result<(), Duration> {
        if self.rate_per_s == 0 {
            return Ok(());
        }
        let rate = f64::from(self.rate_per_s);
        let mut state = self.state.lock().expect("bucket lock poisoned");
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_up_to_the_rate_then_refills_over_time() {
        let bucket = TokenBucket::new(2);
        assert!(bucket.take().is_ok());
        assert!(bucket.take().is_ok());
        let wait = bucket.take().unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(bucket.take().is_ok(), "one token back after half a second");
        assert!(bucket.take().is_err());
        let open = TokenBucket::new(0);
        assert!((0..100).all(|_| open.take().is_ok()));
    }
}
