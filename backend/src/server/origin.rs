//! The `Origin` check every WebSocket upgrade makes, so a cross-site page cannot open one.

use axum::{
    http::{HeaderMap, Uri, header},
    routing::MethodFilter,
};

use crate::error::AppError;

/// The methods a WebSocket upgrade arrives with: GET over HTTP/1.1, CONNECT over HTTP/2 (RFC
/// 8441; what a browser uses on a page served by the TLS listener).
pub fn websocket_methods() -> MethodFilter {
    MethodFilter::GET.or(MethodFilter::CONNECT)
}

/// [`check_for`] with the host taken from the `Host` header or, over HTTP/2, the URI.
pub fn check_upgrade(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> Result<(), AppError> {
    check_for(headers, uri.authority().map(|a| a.as_str()), allowed)
}

/// Accepts a request whose `Origin` is this server's own (same host and port as the `Host`
/// header, or `host` where the request carries it in the URI), one of `allowed`, or absent
/// (non-browser clients send none; browsers always do). `host` is for a request that carries
/// its host in the URI rather than a `Host` header: a
/// WebSocket over HTTP/2 (RFC 8441's extended CONNECT) has only the `:authority`.
pub fn check_for(
    headers: &HeaderMap,
    authority: Option<&str>,
    allowed: &[String],
) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| AppError::Forbidden("unreadable Origin header".into()))?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority)
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    if (!host.is_empty() && origin_host == host) || allowed.iter().any(|a| a == origin) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "WebSocket from origin {origin} refused: only this server's own pages may connect"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(headers: &HeaderMap, allowed: &[String]) -> Result<(), AppError> {
        check_for(headers, None, allowed)
    }
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_allow_list_pass_others_fail() {
        assert!(
            check(
                &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
                &[]
            )
            .is_ok()
        );
        assert!(check(&headers(None, "127.0.0.1:8080"), &[]).is_ok());
        assert!(
            check(
                &headers(Some("https://evil.example"), "127.0.0.1:8080"),
                &[]
            )
            .is_err()
        );
        assert!(
            check(
                &headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080"),
                &[]
            )
            .is_err()
        );
        let allowed = vec!["http://127.0.0.1:8081".to_owned()];
        assert!(
            check(
                &headers(Some("http://127.0.0.1:8081"), "127.0.0.1:8080"),
                &allowed
            )
            .is_ok()
        );
    }
}
