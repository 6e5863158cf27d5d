//! One real HTTP hop between actors inside the process (the server's front door → a balancer →
//! an instance; a sidecar → its app), made with a bounded client pool and reported to the trace
//! as a request and its response between two lifelines, headers and body included, so the
//! inspector shows what really travelled.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderName, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use protocol::{
    pairing,
    trace::{Detail, Kind, Transport},
};

use crate::{
    error::AppError,
    trace::{self, HopTime, Tracer, head_size, headers_of, server_now_us},
};

/// Largest body a hop carries; a bigger answer is refused with a 502.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a hop may take, connection included.
pub const HOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per inner listener.
pub const IDLE_PER_HOST: usize = 4;
/// Response headers in which an inner listener says when a request arrived and when it was
/// answered (server clock, µs; [`stamp`]). The relay takes them off the answer to draw each half
/// of a hop at its real times, so they are neither shown nor passed on.
const ARRIVED_US: HeaderName = HeaderName::from_static("x-hop-arrived-us");
const ANSWERED_US: HeaderName = HeaderName::from_static("x-hop-answered-us");

/// Marks `response` with when its request `arrived` and when it is answered (now), for the relay.
pub fn stamp(response: &mut Response, arrived: i64) {
    let headers = response.headers_mut();
    headers.insert(ARRIVED_US, arrived.into());
    headers.insert(ANSWERED_US, server_now_us().into());
}

/// Takes the stamp named `name` off `headers`.
fn take_stamp(headers: &mut HeaderMap, name: &HeaderName) -> Option<i64> {
    headers.remove(name)?.to_str().ok()?.parse().ok()
}

/// A request one actor sends another.
pub struct Hop<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// Names the hop within the browser's exchange (`lb`, `a1`, …).
    pub suffix: &'a str,
    /// Why this hop goes where it goes (`round robin`, `attempt 2`), shown after its label.
    pub why: String,
    pub method: Method,
    /// `http://127.0.0.1:port/path?query`.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What came back, body read whole (it is small and bounded).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived and when it was answered, if the listener said ([`stamp`]).
    pub arrived_us: Option<i64>,
    pub answered_us: Option<i64>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        // The body's type is the inner actor's, not the `application/octet-stream` that a bare
        // body gets: appended beside it, a JSON refusal was read as octets and wrapped again.
        response.headers_mut().remove(header::CONTENT_TYPE);
        for (name, value) in &self.headers {
            if !is_hop_by_hop(name) {
                response.headers_mut().append(name, value.clone());
            }
        }
        response
    }
}

/// Headers that belong to one connection, never forwarded across a hop (RFC 9110 §7.6.1), plus
/// the length, which the next hop computes again.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        header::HOST,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

/// The headers of an incoming request that may travel on to the next hop.
pub fn forwardable(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| !is_hop_by_hop(name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// Path without the query (the run and request ids), to keep internal labels short.
fn short_target(url: &str) -> &str {
    let path = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url);
    path.split('?').next().unwrap_or(path)
}

fn full_target(url: &str) -> &str {
    url.strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url)
}

/// A bounded HTTP client for hops between inner actors. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    client: reqwest::Client,
}

impl Default for Relay {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(1))
            .timeout(HOP_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client builds");
        Relay { client }
    }
}

impl Relay {
    /// Sends `hop` and records both halves once the answer is back: the request from when it left
    /// to when it arrived, the response from when it was answered to now (the listener's
    /// [`stamp`]; both ends share the server's clock). An actor that does not answer (stopped,
    /// restarting) is a 502 with a JSON error: the request is drawn as it left, with a note on
    /// the sender's lifeline.
    pub async fn send(&self, tracer: &Tracer, hop: Hop<'_>) -> Result<Answer, AppError> {
        let Hop {
            from,
            to,
            suffix,
            why,
            method,
            url,
            headers,
            body,
        } = hop;
        let target = full_target(&url).to_owned();
        let label = short_target(&url).to_owned();
        let start_line = format!("{method} {target} HTTP/1.1");
        let sent_headers = headers_of(&headers);
        let body_bytes = body.len() as u64;
        let request_label = if why.is_empty() {
            format!("{method} {label}")
        } else {
            format!("{method} {label} ({why})")
        };
        let request_detail = Detail {
            start_line,
            headers: sent_headers,
            body: String::from_utf8_lossy(&body[..body.len().min(Detail::BODY_LIMIT)]).into_owned(),
            body_bytes,
            ..Detail::default()
        };
        let request_bytes =
            head_size(&request_detail.start_line, &request_detail.headers) + body_bytes;
        let left = server_now_us();
        let record_request = |arrived: i64| {
            tracer.record(|rid| {
                trace::Hop::new(Kind::Request, from, to, pairing::hop(rid, suffix))
                    .transport(Transport::Http1)
                    .at(HopTime::Span(left, arrived))
                    .label(request_label)
                    .bytes(request_bytes)
                    .detail(request_detail)
            })
        };
        let answer = match self.exchange(method, &url, headers, body).await {
            Ok(answer) => answer,
            Err(cause) => {
                record_request(left);
                let error = format!("{to} did not answer: {cause}");
                tracer.record(|rid| {
                    trace::Hop::note(from, pairing::hop(rid, &format!("{suffix}-down")))
                        .label(error.clone())
                });
                return Err(AppError::BadGateway(error));
            }
        };
        let back = server_now_us();
        // Causality on one clock: it arrived after it left, was answered after it arrived, and
        // the answer is back after that.
        let arrived = answer.arrived_us.unwrap_or(left).clamp(left, back);
        let answered = answer.answered_us.unwrap_or(back).clamp(arrived, back);
        record_request(arrived);
        let status = answer.status;
        let reason = status.canonical_reason().unwrap_or("");
        let start_line = format!("HTTP/1.1 {} {reason}", status.as_u16());
        let got_headers = headers_of(&answer.headers);
        let preview = &answer.body[..answer.body.len().min(Detail::BODY_LIMIT)];
        tracer.record(|rid| {
            trace::Hop::new(Kind::Response, to, from, pairing::hop(rid, suffix))
                .transport(Transport::Http1)
                .at(HopTime::Span(answered, back))
                .status(status.as_u16())
                .label(format!("{} {reason} {label}", status.as_u16()))
                .bytes(head_size(&start_line, &got_headers) + answer.body.len() as u64)
                .detail(Detail {
                    start_line,
                    headers: got_headers,
                    body: String::from_utf8_lossy(preview).into_owned(),
                    body_bytes: answer.body.len() as u64,
                    body_truncated: answer.body.len() > Detail::BODY_LIMIT,
                    ..Detail::default()
                })
        });
        Ok(answer)
    }

    /// The front door's hop: forwards a request the browser sent to this server, unchanged but
    /// for its connection headers, to the inner actor `to` at `url` (`/path?query` appended).
    pub async fn pass_on(
        &self,
        tracer: &Tracer,
        to: &str,
        url: String,
        method: Method,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, AppError> {
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                AppError::PayloadTooLarge(format!("bodies are limited to {MAX_BODY_BYTES} bytes"))
            })?;
        let hop = Hop {
            from: "server",
            to,
            suffix: to,
            why: String::new(),
            method,
            url,
            headers: forwardable(headers),
            body,
        };
        Ok(self.send(tracer, hop).await?.into_response())
    }

    async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, String> {
        let mut response = self
            .client
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| without_url(&e))?;
        let status = response.status();
        let mut headers = response.headers().clone();
        let arrived_us = take_stamp(&mut headers, &ARRIVED_US);
        let answered_us = take_stamp(&mut headers, &ANSWERED_US);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| without_url(&e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(format!("answer over {MAX_BODY_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: body.into(),
            arrived_us,
            answered_us,
        })
    }
}

/// reqwest's error without the URL (the run's ids are already on the diagram).
fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_connect() {
        "connection refused"
    } else if err.is_timeout() {
        "timed out"
    } else {
        "the exchange failed"
    };
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut deepest = None;
    while let Some(c) = cause {
        deepest = Some(c.to_string());
        cause = c.source();
    }
    match deepest {
        Some(d) => format!("{kind} ({d})"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_drop_the_origin_and_the_ids() {
        let url = "http://127.0.0.1:4000/profile?run=r&rid=3";
        assert_eq!(short_target(url), "/profile");
        assert_eq!(full_target(url), "/profile?run=r&rid=3");
    }

    #[test]
    fn connection_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive".parse().unwrap());
        headers.insert(header::HOST, "example".parse().unwrap());
        headers.insert(header::COOKIE, "session=s1".parse().unwrap());
        let kept = forwardable(&headers);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[header::COOKIE], "session=s1");
    }
}
