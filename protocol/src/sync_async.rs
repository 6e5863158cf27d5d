//! The sync/async demo's answer: which handler ran the work, and on which thread.

use serde::{Deserialize, Serialize};

/// `GET /api/work/blocking` and `GET /api/work/async`: which handler ran, on what thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkDone {
    /// `blocking` or `async`.
    pub handler: String,
    /// The thread that ran it (a pool thread for the blocking handler).
    pub thread: String,
}
