//! The one error type: each variant maps to a status code and a JSON `{ "error": "..." }` body.

use axum::{
    Json,
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use protocol::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed (bad JSON/XML/MessagePack, a bad id).
    #[error("{0}")]
    BadRequest(String),
    /// A parameter is well-formed but out of range; the message names the parameter.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what the server holds (a chunk at the wrong offset).
    #[error("{0}")]
    Conflict(String),
    /// No valid session or credentials came with the request.
    #[error("{0}")]
    Unauthorized(String),
    /// A client went over a rate limit or its share of a store, or a store is full: 429 with
    /// `Retry-After` (whole seconds, at least 1).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    /// A cross-site page tried to open a WebSocket.
    #[error("{0}")]
    Forbidden(String),
    /// Something the server depends on (Redis) cannot be reached now; it keeps trying.
    #[error("{0}")]
    Unavailable(String),
    /// An actor behind this one (a balancer's instance, a sidecar's app) did not answer.
    #[error("{0}")]
    BadGateway(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Maps an axum extractor rejection onto the same JSON shape, keeping its status.
    pub fn from_rejection(status: StatusCode, text: String) -> AppError {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(text),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(text),
            StatusCode::UNPROCESSABLE_ENTITY => AppError::Unprocessable(text),
            s if s.is_server_error() => AppError::Internal(text),
            _ => AppError::BadRequest(text),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(cause = %self, "request failed");
        } else {
            tracing::debug!(%status, cause = %self, "request refused");
        }
        let retry_after = match &self {
            AppError::RateLimited { retry_after, .. } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0).to_string())
            }
            _ => None,
        };
        let mut response = (
            status,
            Json(ApiError {
                error: self.to_string(),
            }),
        )
            .into_response();
        if let Some(seconds) = retry_after.and_then(|s| HeaderValue::from_str(&s).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        response
    }
}

/// Longest plain-text rejection kept when it is rewritten as JSON (axum's are one line).
const REJECTION_TEXT_LIMIT: usize = 4 * 1024;

/// Gives every 4xx/5xx that is not JSON yet the JSON `{ "error": … }` shape, keeping its status
/// and headers: axum's own 405, a `Path`, `Query` or `WebSocketUpgrade`
/// rejection a handler did not map itself, or a plain answer from a demo's inner actor. A
/// `map_response` layer on the API router, so no rejection path can slip past it.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let error = match (text.is_empty(), status) {
        (false, _) => text,
        // axum's method router adds `Allow` after this layer has run, so only name it here.
        (true, StatusCode::METHOD_NOT_ALLOWED) => {
            "method not allowed here: the Allow header lists the ones that are".to_owned()
        }
        (true, _) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
    };
    let body = serde_json::to_vec(&ApiError { error }).expect("an error serializes");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
