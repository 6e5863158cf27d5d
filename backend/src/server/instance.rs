//! `X-Instance` on every response: which instance answered (`--instance`), so a teacher, or a
//! test, behind a proxy that balances several instances can tell where each request went.

use axum::{
    extract::State,
    http::{HeaderName, HeaderValue},
    response::Response,
};

/// The response header naming the instance.
pub const X_INSTANCE: HeaderName = HeaderName::from_static("x-instance");

/// This instance's name as a header value; `None` when the name cannot be one (a library user's
/// name with control characters: the header is then left out).
#[derive(Debug, Clone)]
pub struct InstanceHeader(Option<HeaderValue>);

impl InstanceHeader {
    pub fn new(name: &str) -> InstanceHeader {
        InstanceHeader(HeaderValue::from_str(name).ok())
    }
}

/// Middleware: adds `X-Instance` to every response (pages, assets, API answers, errors).
pub async fn add(State(instance): State<InstanceHeader>, mut response: Response) -> Response {
    if let Some(name) = instance.0 {
        response.headers_mut().insert(X_INSTANCE, name);
    }
    response
}
