//! The sidecar: a proxy on its own port in front of the app that does what the app does not —
//! limits the rate (token bucket, 429), gives each request an id and W3C trace context
//! (`x-request-id`, `traceparent`), logs it, and retries the app's failures with exponential
//! backoff (idempotent requests only, at most `MAX_ATTEMPTS` attempts).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, Uri},
    response::{IntoResponse, Response},
};
use protocol::{
    pairing,
    sidecar::{
        ATTEMPTS_HEADER, BACKOFF_BASE_MS, MAX_ATTEMPTS, REQUEST_ID_HEADER, TRACEPARENT_HEADER,
    },
};

use crate::server::rate_limit::TokenBucket;
use crate::{
    actors::relay::{Hop, Relay, forwardable},
    error::AppError,
    trace::{self, TraceHub, Tracer},
};

/// What the sidecar knows: where its app listens, and its limit.
pub struct Sidecar {
    pub hub: TraceHub,
    pub relay: Relay,
    pub app: SocketAddr,
    pub rate_per_s: u32,
    pub bucket: TokenBucket,
}

pub fn router(sidecar: Arc<Sidecar>) -> Router {
    Router::new().fallback(handle).with_state(sidecar)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The trace id of an incoming `traceparent` (`00-{trace}-{span}-{flags}`), if well-formed.
fn incoming_trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(TRACEPARENT_HEADER)?.to_str().ok()?;
    let trace = value.split('-').nth(1)?;
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then(|| trace.to_owned())
}

/// The wait before attempt `next` (2, 3, …): 100 ms, 200 ms, 400 ms, …
pub fn backoff(next: u32) -> Duration {
    Duration::from_millis(BACKOFF_BASE_MS << (next.saturating_sub(2)).min(10))
}

async fn handle(
    State(sc): State<Arc<Sidecar>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tracer = Tracer::from_uri(&sc.hub, &uri);
    if let Err(wait) = sc.bucket.take() {
        let limit = sc.rate_per_s;
        tracer.record(|rid| {
            trace::Hop::note("sidecar", pairing::hop(rid, "limit"))
                .label(format!("429: over {limit}/s, the app is not called"))
        });
        tracing::info!(limit, "sidecar: rate limited");
        let retry_after = wait.as_secs_f64().ceil().max(1.0);
        return Err(AppError::RateLimited {
            message: format!(
                "rate limit: {limit} requests per second; retry after {retry_after} s"
            ),
            retry_after: wait,
        });
    }
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_owned)
        .unwrap_or_else(|| random_hex(8));
    let trace_id = incoming_trace_id(&headers).unwrap_or_else(|| random_hex(16));
    let path = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    tracing::info!(%request_id, %trace_id, %method, path = uri.path(), "sidecar: forwarding to the app");
    let attempts = if method.is_idempotent() {
        MAX_ATTEMPTS
    } else {
        1
    };
    let mut attempt = 1;
    let result = loop {
        let mut forwarded = forwardable(&headers);
        let traceparent = format!("00-{trace_id}-{}-01", random_hex(8));
        for (name, value) in [
            (REQUEST_ID_HEADER, &request_id),
            (TRACEPARENT_HEADER, &traceparent),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                forwarded.insert(name, value);
            }
        }
        let hop = Hop {
            from: "sidecar",
            to: "app",
            suffix: &format!("a{attempt}"),
            why: if attempt > 1 {
                format!("retry {}", attempt - 1)
            } else {
                String::new()
            },
            method: method.clone(),
            url: format!("http://{}{path}", sc.app),
            headers: forwarded,
            body: body.clone(),
        };
        let result = sc.relay.send(&tracer, hop).await;
        let failure = match &result {
            Ok(answer) if answer.status.is_server_error() => Some(answer.status.to_string()),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        match failure {
            Some(failure) if attempt < attempts => {
                attempt += 1;
                let wait = backoff(attempt);
                tracer.record(|rid| {
                    trace::Hop::note("sidecar", pairing::hop(rid, &format!("b{attempt}"))).label(
                        format!("app failed ({failure}): retry in {} ms", wait.as_millis()),
                    )
                });
                tracing::warn!(%request_id, attempt, failure, "sidecar: retrying after backoff");
                tokio::time::sleep(wait).await;
            }
            Some(failure) => {
                if attempts > 1 {
                    tracer.record(|rid| {
                        trace::Hop::note("sidecar", pairing::hop(rid, "gave-up"))
                            .label(format!("gave up after {attempt} attempts ({failure})"))
                    });
                }
                tracing::warn!(%request_id, attempt, failure, "sidecar: giving up");
                break result;
            }
            None => break result,
        }
    };
    let mut response = result?.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(attempt));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(400));
    }

    #[test]
    fn an_incoming_trace_is_continued() {
        let mut headers = HeaderMap::new();
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        headers.insert(
            TRACEPARENT_HEADER,
            format!("00-{id}-00f067aa0ba902b7-01").parse().unwrap(),
        );
        assert_eq!(incoming_trace_id(&headers).as_deref(), Some(id));
        headers.insert(TRACEPARENT_HEADER, "junk".parse().unwrap());
        assert_eq!(incoming_trace_id(&headers), None);
    }
}
