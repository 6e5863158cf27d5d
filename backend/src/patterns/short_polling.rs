//! Short polling: `GET /api/jobs/{id}` answers at once with the job's state, changed or not.

use axum::{
    Json,
    extract::{Path, State},
};
use protocol::ApiError;
use protocol::job::JobUpdate;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, error::AppError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job's latest state", body = JobUpdate),
        (status = 404, description = "Unknown or expired job", body = ApiError)))]
async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobUpdate>, AppError> {
    Ok(Json(state.jobs.get(&id)?.latest()))
}
