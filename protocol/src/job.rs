//! The one job workload every "waiting for results" demo runs: a video being processed in
//! steps, each step producing a progress update the client wants to learn about.

use serde::{Deserialize, Serialize};

/// Identifies a job. Chosen by the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct JobId(pub String);

/// What the client asks for (`POST /api/jobs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSpec {
    /// Number of progress updates, `1..=MAX_STEPS`.
    pub steps: u32,
    /// Time per step in ms, `MIN_STEP_MS..=MAX_STEP_MS`.
    pub step_ms: u32,
    /// Bytes of payload in each update, `0..=MAX_PAYLOAD_BYTES`.
    #[serde(default)]
    pub payload_bytes: u32,
}

pub const MAX_STEPS: u32 = 50;
pub const MIN_STEP_MS: u32 = 10;
pub const MAX_STEP_MS: u32 = 5_000;
pub const MAX_PAYLOAD_BYTES: u32 = 16 * 1024;

impl JobSpec {
    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between {lo} and {hi}, got {v}"))
            }
        };
        check("steps", self.steps, 1, MAX_STEPS)?;
        check("step_ms", self.step_ms, MIN_STEP_MS, MAX_STEP_MS)?;
        check("payload_bytes", self.payload_bytes, 0, MAX_PAYLOAD_BYTES)
    }
}

/// A job's state after some number of steps. `version` counts steps done; it is also the SSE
/// event id, so a reconnecting client says "I have seen up to version N".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobUpdate {
    pub job: JobId,
    pub version: u32,
    pub steps: u32,
    pub done: bool,
    /// When the worker produced this update, on the server's trace clock (µs).
    pub emitted_us: i64,
    /// `payload_bytes` of filler, standing for a thumbnail or a partial result.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payload: String,
}

/// The answer to `POST /api/jobs` (202 Accepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobCreated {
    pub job: JobId,
    /// Where to ask for its state.
    pub status_url: String,
}

/// The answer to a long poll: the state, and whether it changed or the wait timed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LongPollAnswer {
    pub changed: bool,
    pub update: JobUpdate,
}

/// Query of `GET /api/jobs/{id}/wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct WaitQuery {
    /// Answer as soon as the version is above this.
    #[serde(default)]
    pub after: u32,
    /// Answer anyway after this long, `MIN_WAIT_MS..=MAX_WAIT_MS`.
    #[serde(default = "default_wait_ms")]
    pub timeout_ms: u32,
}

pub const MIN_WAIT_MS: u32 = 100;
pub const MAX_WAIT_MS: u32 = 30_000;

fn default_wait_ms() -> u32 {
    10_000
}

/// `POST /api/jobs/{id}/drop`: how many open event streams of the job were closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dropped {
    pub dropped: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_parameter() {
        let ok = JobSpec {
            steps: 5,
            step_ms: 100,
            payload_bytes: 10,
        };
        assert!(ok.validate().is_ok());
        let e = JobSpec {
            steps: 0,
            ..ok.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.starts_with("steps must be between 1 and 50"), "{e}");
        let e = JobSpec {
            step_ms: 1,
            ..ok.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.starts_with("step_ms"), "{e}");
        let e = JobSpec {
            payload_bytes: 1 << 20,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(e.starts_with("payload_bytes"), "{e}");
    }
}
