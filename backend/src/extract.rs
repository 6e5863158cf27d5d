//! The extractors handlers take for a body or a query: axum's own, rejecting with the one error
//! type, so a malformed body or query gets the same JSON answer everywhere without a
//! hand-written mapping in each handler (axum's `examples/error-handling`).

use axum::{
    extract::{
        FromRequest, FromRequestParts,
        rejection::{JsonRejection, QueryRejection},
    },
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::error::AppError;

/// A JSON body; a malformed one is refused with axum's status (400, 413, 415 or 422) and reason.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters; ones that do not parse are refused with a 422 and axum's reason.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> AppError {
        AppError::from_rejection(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> AppError {
        AppError::Unprocessable(rejection.body_text())
    }
}
