//! A benchmark baseline, not a demo: `POST /api/bench/bare` is the plain axum JSON route a
//! learner would write (a JSON object in, the same object out), served by the same server as the
//! demos but merged outside the trace middleware, so it is never traced. `make bench`
//! (`bench/src/bin/reqresp.rs`) compares the echo endpoint with tracing on against it, both
//! through the same listener, serve loop and security headers (issue 7).

use axum::{Json, middleware};
use serde_json::{Map, Value};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error;

/// The route; merged after the trace middleware's layer (see `app()`).
pub fn router<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::new()
        .routes(routes!(bare))
        // A malformed body's rejection in the API's JSON error shape, as everywhere else.
        .layer(middleware::map_response(error::json_errors))
}

/// `POST /api/bench/bare`: the JSON object it was sent, back.
///
/// A benchmark baseline, not a demo: a bare axum handler, never traced (`run` and `rid` are not
/// read). `make bench` compares the echo endpoint with tracing on against it.
#[utoipa::path(post, path = "/bench/bare", tag = "benchmark baseline",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "The JSON object it was sent", content_type = "application/json", body = Object),
        (status = 400, description = "Malformed JSON", body = protocol::ApiError),
        (status = 413, description = "Body over 2 MB (axum's default limit)", body = protocol::ApiError),
        (status = 415, description = "Missing or other Content-Type", body = protocol::ApiError),
        (status = 422, description = "JSON that is not an object", body = protocol::ApiError)))]
pub async fn bare(Json(object): Json<Map<String, Value>>) -> Json<Map<String, Value>> {
    Json(object)
}
