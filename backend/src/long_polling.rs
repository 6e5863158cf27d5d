//! Long polling: `GET /api/jobs/{id}/wait?after=N&timeout_ms=T` is held until the job's version
//! passes N (or it is done), the timeout passes, or the server shuts down; then it answers.

use protocol::ApiError;
use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    routing::get,
};
use protocol::job::{LongPollAnswer, MAX_WAIT_MS, MIN_WAIT_MS, WaitQuery};

use crate::{AppState, error::AppError};

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs/{id}/wait", get(wait))
}

#[utoipa::path(get, path = "/api/jobs/{id}/wait", tag = "jobs",
    description = "Long poll: held until the job's version passes `after`, `timeout_ms` passes (at most 30 s), or the server shuts down.",
    params(("id" = String, Path, description = "Job id"), WaitQuery),
    responses((status = 200, description = "The state, and whether it changed", body = LongPollAnswer),
        (status = 404, description = "Unknown or expired job", body = ApiError), (status = 422, description = "after/timeout_ms not a number or out of range", body = ApiError)))]
async fn wait(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<LongPollAnswer>, AppError> {
    let Query(q) = query.map_err(|e| AppError::Unprocessable(e.body_text()))?;
    if !(MIN_WAIT_MS..=MAX_WAIT_MS).contains(&q.timeout_ms) {
        return Err(AppError::Unprocessable(format!(
            "timeout_ms must be between {MIN_WAIT_MS} and {MAX_WAIT_MS}, got {}",
            q.timeout_ms
        )));
    }
    let job = state.jobs.get(&id)?;
    let mut updates = job.subscribe();
    // The waiter holds only a watch receiver: nothing is buffered, and it goes away with the
    // request if the client hangs up (axum drops this future).
    let changed = tokio::select! {
        r = updates.wait_for(|u| u.version > q.after || u.done) => r.is_ok(),
        _ = tokio::time::sleep(Duration::from_millis(q.timeout_ms.into())) => false,
        _ = state.stopped() => false,
    };
    let update = job.latest();
    Ok(Json(LongPollAnswer {
        changed: changed && update.version > q.after,
        update,
    }))
}
