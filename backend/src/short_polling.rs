//! Short polling: `GET /api/jobs/{id}` answers at once with the job's state, changed or not.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::get,
};
use protocol::job::JobUpdate;

use crate::{AppState, error::AppError};

pub fn router() -> Router<AppState> {
    Router::new().route("/jobs/{id}", get(status))
}

async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobUpdate>, AppError> {
    Ok(Json(state.jobs.get(&id)?.latest()))
}
