//! Token buckets: one for the sidecar demo's own limit, and one per client ([`ClientId`]) for
//! the server's rate limits (job creation, publishing). A bucket holds `burst` tokens and refills at `rate`
//! per second; a request that finds it empty is refused (429 with `Retry-After`).

use std::{sync::Mutex, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts};
use tokio::time::Instant;

use super::{
    client::ClientId,
    expiring::{Expiring, WhenFull},
};
use crate::error::AppError;

/// The client a request comes from, as [`super::client::identify`] worked it out (the peer, or
/// the forwarded client behind a trusted proxy); `None` for a request without a peer address,
/// as `oneshot` tests send.
pub struct Client(pub Option<ClientId>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(parts.extensions.get::<ClientId>().copied()))
    }
}

/// A token bucket; `rate_per_s == 0` lets everything through.
pub struct TokenBucket {
    rate_per_s: u32,
    burst: u32,
    // std Mutex: one short update per request, never held across an await.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A bucket holding one second's worth of requests.
    pub fn new(rate_per_s: u32) -> TokenBucket {
        TokenBucket::with_burst(rate_per_s, rate_per_s)
    }

    /// A bucket holding `burst` tokens (at least one), refilled at `rate_per_s`.
    pub fn with_burst(rate_per_s: u32, burst: u32) -> TokenBucket {
        let burst = burst.max(1);
        TokenBucket {
            rate_per_s,
            burst,
            state: Mutex::new((f64::from(burst), Instant::now())),
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
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(self.burst.into());
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }

    /// Whether the bucket has refilled completely: it then behaves like a new one and can be
    /// forgotten.
    fn is_full(&self) -> bool {
        let (tokens, last) = *self.state.lock().expect("bucket lock poisoned");
        let refill = last.elapsed().as_secs_f64() * f64::from(self.rate_per_s);
        self.rate_per_s == 0 || tokens + refill >= f64::from(self.burst)
    }
}

/// A rate: `per_second` tokens a second, at most `burst` at once. `per_second == 0` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// Clients whose buckets are kept at once; beyond it, full (idle) buckets are forgotten first,
/// and if none is, the new client is refused until one refills.
pub const MAX_CLIENTS: usize = 4_096;

/// One bucket per client for one kind of request. Cheap to clone.
#[derive(Clone)]
pub struct PerClient {
    /// What is limited, for the error message ("job creations", "publishes").
    what: &'static str,
    rate: Rate,
    /// Each client's bucket, kept while it refills and forgotten once full (a TTL of zero: a
    /// full bucket behaves like a new one); beyond [`MAX_CLIENTS`], new clients are refused.
    buckets: Expiring<ClientId, TokenBucket>,
}

impl PerClient {
    pub fn new(what: &'static str, rate: Rate) -> PerClient {
        PerClient {
            what,
            rate,
            buckets: Expiring::new(Duration::ZERO)
                .bounded(MAX_CLIENTS, WhenFull::Refuse)
                .kept_while(|bucket| !bucket.is_full()),
        }
    }

    /// Takes one token from `client`'s bucket; a 429 with `Retry-After` when it is empty.
    /// `None` (no peer address: a router called in a test without a socket) is not limited.
    pub fn check(&self, client: Option<ClientId>) -> Result<(), AppError> {
        let Some(client) = client else { return Ok(()) };
        if self.rate.per_second == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock();
        let bucket = buckets
            .get_or_insert_with(&client, || {
                TokenBucket::with_burst(self.rate.per_second, self.rate.burst)
            })
            .map_err(|_| self.refusal(Duration::from_secs(1)))?;
        bucket.take().map_err(|wait| {
            // The client as the limits count it: behind a --trusted-proxy, the forwarded one.
            tracing::info!(%client, limit = self.what, "rate limited");
            self.refusal(wait)
        })
    }

    fn refusal(&self, wait: Duration) -> AppError {
        let Rate { per_second, burst } = self.rate;
        AppError::RateLimited {
            message: format!(
                "rate limit: at most {per_second} {} per second per client (bursts of {burst})",
                self.what
            ),
            retry_after: wait,
        }
    }

    /// Forgets the buckets that have refilled (they behave like new ones).
    pub fn prune(&self) {
        self.buckets.prune();
    }

    /// Clients with a bucket kept now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn client(ip: &str) -> ClientId {
        ClientId::of(ip.parse().unwrap())
    }

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

    #[tokio::test(start_paused = true)]
    async fn each_client_has_its_own_bucket_and_refilled_ones_are_forgotten() {
        let limit = PerClient::new(
            "jobs",
            Rate {
                per_second: 10,
                burst: 3,
            },
        );
        let a = client("10.0.0.1");
        let b = client("10.0.0.2");
        for _ in 0..3 {
            limit.check(Some(a)).unwrap();
        }
        let refused = limit.check(Some(a)).unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(
            limit.check(Some(b)).is_ok(),
            "another client is not limited"
        );
        assert!(
            (0..50).all(|_| limit.check(None).is_ok()),
            "no address, no limit"
        );
        assert_eq!(limit.len(), 2);
        limit.prune();
        assert_eq!(limit.len(), 2, "both buckets are still refilling");
        tokio::time::advance(Duration::from_millis(400)).await;
        limit.prune();
        assert!(limit.is_empty(), "refilled buckets are forgotten");
        limit.check(Some(a)).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_client_map_is_bounded() {
        let limit = PerClient::new(
            "publishes",
            Rate {
                per_second: 1,
                burst: 1,
            },
        );
        for n in 0..MAX_CLIENTS as u32 {
            limit
                .check(Some(ClientId::of(IpAddr::from(n.to_be_bytes()))))
                .unwrap();
        }
        let stranger = client("255.255.255.254");
        assert!(limit.check(Some(stranger)).is_err(), "full of busy buckets");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(limit.check(Some(stranger)).is_ok(), "idle ones made room");
        assert_eq!(limit.len(), 1);
    }
}
