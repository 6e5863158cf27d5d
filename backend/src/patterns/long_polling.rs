//! Long polling: `GET /api/jobs/{id}/wait?after=N&timeout_ms=T` is held until the job's version
//! passes N (or it is done) or the timeout passes; then it answers with the job's latest state.
//! When the server shuts down, a held poll is answered at once with `503` and `Retry-After`
//! (see [`crate::server::shutdown`]): not the "nothing changed" answer, which a client takes as "ask
//! again now", but "this server is going: back off, ask again (perhaps elsewhere)".

use protocol::ApiError;
use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::header::RETRY_AFTER,
    response::{IntoResponse, Response},
};
use protocol::job::{LongPollAnswer, MAX_WAIT_MS, MIN_WAIT_MS, WaitQuery};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, error::AppError, extract::AppQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(wait))
}

#[utoipa::path(get, path = "/jobs/{id}/wait", tag = "jobs",
    description = "Long poll: held until the job's version passes `after`, `timeout_ms` passes (at most 30 s), or the server shuts down.",
    params(("id" = String, Path, description = "Job id"), WaitQuery),
    responses((status = 200, description = "The state, and whether it changed", body = LongPollAnswer),
        (status = 404, description = "Unknown or expired job", body = ApiError), (status = 422, description = "after/timeout_ms not a number or out of range", body = ApiError)))]
async fn wait(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<AppQuery<WaitQuery>, AppError>,
) -> Result<Response, AppError> {
    let AppQuery(q) = query?;
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
        _ = state.stopped() => {
            let gone = AppError::Unavailable(
                "server shutting down: ask again in a moment (another instance may answer)".into(),
            );
            return Ok(([(RETRY_AFTER, "1")], gone).into_response());
        }
    };
    let update = job.latest();
    Ok(Json(LongPollAnswer {
        changed: changed && update.version > q.after,
        update,
    })
    .into_response())
}
