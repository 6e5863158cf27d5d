//! Refuses cross-site requests to the API's state-changing and expensive routes, so a page on
//! another site cannot make its visitors' browsers create jobs, publish, upload or tie up the
//! proxy demo (and spend their budgets) on this server.
//!
//! A browser says where a request comes from in `Sec-Fetch-Site` (all current browsers) and
//! `Origin` (on every POST, and on cross-origin GETs). A request passes when `Sec-Fetch-Site` is
//! `same-origin` or `none` (typed in the address bar), when it carries neither header (curl,
//! scripts, tests: not a browser, so not a forged request), or when its `Origin` is this
//! server's own host (behind a trusted proxy: the forwarded one, [`RequestedHost`]) or one of
//! `--allow-origin`. Anything else (`same-site` or `cross-site` from elsewhere, an `Origin` of
//! another host, `Origin: null`) gets a 403 with a JSON reason.

use axum::{
    extract::{OriginalUri, Request, State},
    http::{HeaderMap, Method, header},
    response::{IntoResponse, Response},
};

use super::origin::RequestedHost;
use crate::{AppState, error::AppError};

/// Whether a request to `path` (under `/api`) with `method` is checked: every method that
/// changes state, and the GETs that cost the server real work (the proxy demo opens upstream
/// connections; the sync/async demo holds a thread or a timer and draws on the job budget).
pub fn guarded(method: &Method, path: &str) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    ) || path == "/api/mux/proxy"
        || path.starts_with("/api/work/")
}

/// Request mapper on the API router: answers a guarded cross-site request with a 403, and passes
/// every other on (a mapper, so a held request keeps none of its state).
pub async fn refuse(
    State(state): State<AppState>,
    host: RequestedHost,
    request: Request,
) -> Result<Request, Response> {
    let path = match request.extensions().get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri.path(),
        None => request.uri().path(),
    };
    if guarded(request.method(), path) {
        let allowed = &state.config.allowed_origins;
        if let Some(reason) = refusal(request.headers(), &host, allowed) {
            tracing::info!(%reason, %path, "cross-site request refused");
            return Err(
                AppError::Forbidden(format!("cross-site request refused: {reason}"))
                    .into_response(),
            );
        }
    }
    Ok(request)
}

/// Why a request with these headers is refused, or `None` when it may pass (the decision table
/// in the module's description).
fn refusal(headers: &HeaderMap, host: &RequestedHost, allowed: &[String]) -> Option<String> {
    // An unreadable value is present but matches nothing.
    let value = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(unreadable)"))
    };
    let site = value("sec-fetch-site");
    let origin = value(header::ORIGIN.as_str());
    match (site, origin) {
        (Some("same-origin" | "none"), _) | (None, None) => None,
        (_, Some(origin)) if host.allows(origin, allowed) => None,
        (Some(site), Some(origin)) => Some(format!(
            "Sec-Fetch-Site is {site} and Origin {origin} is not this server's; \
             only its own pages may call this endpoint"
        )),
        (None, Some(origin)) => Some(format!(
            "Origin {origin} is not this server's; only its own pages may call this endpoint"
        )),
        (Some(site), None) => Some(format!(
            "Sec-Fetch-Site is {site} and the request has no Origin"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Uri};

    const HOST: &str = "127.0.0.1:8080";
    const DEV: &str = "http://127.0.0.1:8081";

    /// `Sec-Fetch-Site`, `Origin`, `X-Forwarded-Host` from a trusted proxy, and whether it passes.
    type Row = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );

    /// Whether a request with these headers passes (`forwarded_host`: from a trusted proxy).
    fn passes(site: Option<&str>, origin: Option<&str>, forwarded_host: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(HOST));
        let pairs = [
            ("sec-fetch-site", site),
            ("origin", origin),
            ("x-forwarded-host", forwarded_host),
        ];
        for (name, value) in pairs {
            if let Some(value) = value {
                headers.insert(name, HeaderValue::from_str(value).unwrap());
            }
        }
        let host = RequestedHost::of(&headers, &Uri::from_static("/"), forwarded_host.is_some());
        refusal(&headers, &host, &[DEV.to_owned()]).is_none()
    }

    #[test]
    fn the_decision_table() {
        let own = Some("http://127.0.0.1:8080");
        let evil = Some("https://evil.example");
        let rows: [Row; 16] = [
            (Some("same-origin"), own, None, true),
            (Some("same-origin"), None, None, true),
            (Some("none"), None, None, true),
            (None, None, None, true),
            (None, own, None, true),
            (None, evil, None, false),
            (Some("cross-site"), evil, None, false),
            (Some("cross-site"), None, None, false),
            (
                Some("same-site"),
                Some("http://127.0.0.1:9999"),
                None,
                false,
            ),
            (Some("same-site"), None, None, false),
            (Some("same-site"), Some(DEV), None, true),
            (Some("cross-site"), Some("null"), None, false),
            (Some("cross-site"), own, None, true),
            (Some("whatever"), evil, None, false),
            (
                Some("cross-site"),
                Some("https://class.example"),
                Some("class.example"),
                true,
            ),
            (Some("cross-site"), own, Some("class.example"), false),
        ];
        for (site, origin, forwarded, expected) in rows {
            assert_eq!(
                passes(site, origin, forwarded),
                expected,
                "Sec-Fetch-Site {site:?}, Origin {origin:?}, X-Forwarded-Host {forwarded:?}"
            );
        }
    }

    #[test]
    fn only_state_changing_and_expensive_routes_are_guarded() {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(guarded(&method, "/api/echo"), "{method}");
        }
        assert!(guarded(&Method::GET, "/api/mux/proxy"));
        assert!(guarded(&Method::GET, "/api/work/blocking"));
        assert!(guarded(&Method::HEAD, "/api/work/async"));
        for path in [
            "/api/health",
            "/api/jobs/x",
            "/api/trace/ws",
            "/api/mux/slow",
        ] {
            assert!(!guarded(&Method::GET, path), "{path}");
        }
    }
}
