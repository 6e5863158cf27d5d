//! The `Origin` checks: every WebSocket upgrade makes one, so a cross-site page cannot open one,
//! and [`super::cross_site`] uses the same comparison for the API's other requests.

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, Uri, header, request::Parts},
    routing::MethodFilter,
};

use crate::error::AppError;

/// The methods a WebSocket upgrade arrives with: GET over HTTP/1.1, CONNECT over HTTP/2 (RFC
/// 8441; what a browser uses on a page served by the TLS listener).
pub fn websocket_methods() -> MethodFilter {
    MethodFilter::GET.or(MethodFilter::CONNECT)
}

/// The host (and port) the client addressed, which a same-origin page's `Origin` names: the
/// first `X-Forwarded-Host` when the request came through a trusted proxy (which may pass its
/// own upstream name as `Host`), else `Host`, else the URI's authority (a WebSocket over
/// HTTP/2, RFC 8441's extended CONNECT, has only the `:authority`). [`super::client::identify`]
/// works it out once per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedHost(Option<String>);

impl RequestedHost {
    /// The host of a request with these `headers` and `uri`; `forwarded` when it came from a
    /// trusted proxy.
    pub fn of(headers: &HeaderMap, uri: &Uri, forwarded: bool) -> RequestedHost {
        let header = |name| {
            headers
                .get(name)
                .and_then(|h| h.to_str().ok())
                .map(str::trim)
                .filter(|h| !h.is_empty())
        };
        let forwarded_host = forwarded
            .then(|| header("x-forwarded-host"))
            .flatten()
            .and_then(|hosts| hosts.split(',').next())
            .map(str::trim);
        let host = forwarded_host
            .or_else(|| header(header::HOST.as_str()))
            .or_else(|| uri.authority().map(|a| a.as_str()));
        RequestedHost(host.map(str::to_owned))
    }

    /// Whether `origin` (an `Origin` header's value) is this host's own: same host and port,
    /// either scheme (behind a proxy that terminates TLS the server cannot tell the page's
    /// scheme), or one of `allowed`.
    pub fn allows(&self, origin: &str, allowed: &[String]) -> bool {
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same =
            matches!((origin_host, &self.0), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
        same || allowed.iter().any(|a| a == origin)
    }
}

/// The host [`super::client::identify`] kept; without it (a router without that layer), the
/// request's own `Host`, never a forwarded one.
impl<S: Send + Sync> FromRequestParts<S> for RequestedHost {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<RequestedHost>() {
            Some(host) => host.clone(),
            None => RequestedHost::of(&parts.headers, &parts.uri, false),
        })
    }
}

/// Accepts an upgrade whose `Origin` is this server's own ([`RequestedHost::allows`]), one of
/// `allowed`, or absent (non-browser clients send none; browsers always do).
pub fn check_upgrade(
    headers: &HeaderMap,
    host: &RequestedHost,
    allowed: &[String],
) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| AppError::Forbidden("unreadable Origin header".into()))?;
    if host.allows(origin, allowed) {
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
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn check(origin: Option<&str>, host: &str, allowed: &[String]) -> Result<(), AppError> {
        let mut pairs = vec![("host", host)];
        pairs.extend(origin.map(|o| ("origin", o)));
        let headers = headers(&pairs);
        let host = RequestedHost::of(&headers, &Uri::from_static("/"), false);
        check_upgrade(&headers, &host, allowed)
    }

    #[test]
    fn same_origin_and_allow_list_pass_others_fail() {
        assert!(check(Some("http://127.0.0.1:8080"), "127.0.0.1:8080", &[]).is_ok());
        assert!(check(Some("https://Example.org"), "example.org", &[]).is_ok());
        assert!(check(None, "127.0.0.1:8080", &[]).is_ok());
        assert!(check(Some("https://evil.example"), "127.0.0.1:8080", &[]).is_err());
        assert!(check(Some("http://127.0.0.1:9999"), "127.0.0.1:8080", &[]).is_err());
        assert!(check(Some("null"), "127.0.0.1:8080", &[]).is_err());
        let allowed = vec!["http://127.0.0.1:8081".to_owned()];
        assert!(check(Some("http://127.0.0.1:8081"), "127.0.0.1:8080", &allowed).is_ok());
    }

    #[test]
    fn the_forwarded_host_counts_only_from_a_trusted_proxy() {
        let behind = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "class.example, inner.example"),
        ]);
        let uri = Uri::from_static("/");
        let trusted = RequestedHost::of(&behind, &uri, true);
        assert!(trusted.allows("https://class.example", &[]));
        assert!(!trusted.allows("http://127.0.0.1:8080", &[]));
        let untrusted = RequestedHost::of(&behind, &uri, false);
        assert!(!untrusted.allows("https://class.example", &[]));
        assert!(untrusted.allows("http://127.0.0.1:8080", &[]));
        // A trusted proxy that sends no X-Forwarded-Host: its Host stands.
        let plain = headers(&[("host", "class.example")]);
        assert!(RequestedHost::of(&plain, &uri, true).allows("https://class.example", &[]));
        // HTTP/2: only the authority.
        let h2 = Uri::from_static("https://127.0.0.1:8443/api/trace/ws");
        let host = RequestedHost::of(&HeaderMap::new(), &h2, false);
        assert!(host.allows("https://127.0.0.1:8443", &[]));
        assert!(!RequestedHost::default().allows("https://127.0.0.1:8443", &[]));
    }
}
