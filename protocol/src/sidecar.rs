//! The sidecar demo's wire types: the run's app and sidecar proxy, and what the app answers.

use serde::{Deserialize, Serialize};

/// `POST /api/sidecar/setup`: the run's app and the sidecar in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SidecarSpec {
    /// Share of requests the app fails with a 500, 0 to 100, spread evenly (not at random, so a
    /// run can be repeated).
    pub fail_percent: u8,
    /// Requests per second the sidecar lets through (a token bucket holding one second's
    /// worth); 0 turns the limit off.
    pub rate_per_s: u32,
}

impl SidecarSpec {
    pub const MAX_RATE: u32 = 1_000;

    pub fn validate(&self) -> Result<(), String> {
        if self.fail_percent > 100 {
            return Err(format!(
                "fail_percent must be between 0 and 100, got {}",
                self.fail_percent
            ));
        }
        if self.rate_per_s > Self::MAX_RATE {
            return Err(format!(
                "rate_per_s must be between 0 and {}, got {}",
                Self::MAX_RATE,
                self.rate_per_s
            ));
        }
        Ok(())
    }
}

/// The answer to `POST /api/sidecar/setup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SidecarInfo {
    pub spec: SidecarSpec,
    pub sidecar_port: u16,
    pub app_port: u16,
}

/// What the app answers to `GET /orders/{id}`: it knows nothing of the sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    pub order: u32,
    pub status: String,
    /// How many requests the app has served (failed ones included).
    pub served: u64,
}

/// Attempts the sidecar makes per request (the first and its retries).
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry waits this long; each next one twice as long.
pub const BACKOFF_BASE_MS: u64 = 100;
/// Headers the sidecar adds to every request it forwards to the app.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header on the sidecar's answer: how many attempts it took.
pub const ATTEMPTS_HEADER: &str = "x-sidecar-attempts";
