//! Records every traced HTTP exchange: a request that carries `run` and `rid` is logged when it
//! arrives (with the headers the server really received) and its response when it leaves (with
//! the handler's timing phases). One middleware serves every demo.

use std::net::SocketAddr;

use axum::{
    body::HttpBody,
    extract::{ConnectInfo, OriginalUri, Request, State},
    http::{HeaderMap, HeaderValue, Version},
    middleware::Next,
    response::{IntoResponse, Response},
};
use protocol::{
    REQUEST_PARAM, RUN_PARAM, job,
    trace::{Actor, Detail, Header, Kind, Message, Observer, Phase, RequestId, RunId, Transport},
};

use crate::{
    error::AppError,
    trace::{Hop, HopTime, TraceHub, parse_run_id, server_now_us},
};

/// Timing phases a handler measured, on the server's clock. A handler puts them in the
/// response's extensions and in a `Server-Timing` header; the middleware copies them into the
/// trace, where they split the server's activation bar.
#[derive(Debug, Clone, Default)]
pub struct Phases(pub Vec<Phase>);

impl Phases {
    /// Runs `f` as the phase `name`.
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = server_now_us();
        let out = f();
        self.push(name, start);
        out
    }

    /// Awaits `f` as the phase `name`.
    pub async fn time_async<T>(&mut self, name: &str, f: impl Future<Output = T>) -> T {
        let start = server_now_us();
        let out = f.await;
        self.push(name, start);
        out
    }

    fn push(&mut self, name: &str, start_us: i64) {
        self.0.push(Phase {
            name: name.to_owned(),
            start_us,
            dur_us: server_now_us() - start_us,
        });
    }

    /// The standard `Server-Timing` header value: `parse;dur=0.412, process;dur=200.100, …`.
    pub fn server_timing(&self) -> HeaderValue {
        let mut value = String::new();
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                value.push_str(", ");
            }
            value.push_str(&p.name);
            value.push_str(";dur=");
            push_millis(&mut value, p.dur_us);
        }
        HeaderValue::from_str(&value).expect("phase names are tokens")
    }

    /// Adds the header and the extension to `response`.
    pub fn attach(self, mut response: Response) -> Response {
        response
            .headers_mut()
            .insert("server-timing", self.server_timing());
        response.extensions_mut().insert(self);
        response
    }
}

/// Appends `us` microseconds as milliseconds with three decimals (`412` → `0.412`). By hand:
/// `write!` with `{:.3}` of an `f64` cost about 5,000 instructions a request and `fmt` with
/// integers about 1,000 a number (callgrind, the echo under load), most of what the
/// `Server-Timing` header cost.
fn push_millis(out: &mut String, us: i64) {
    let mut n = us.max(0).unsigned_abs();
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    // At least four digits, so that there is a whole part before the three decimals.
    while n > 0 || digits.len() - start < 4 {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let (whole, decimals) = digits[start..].split_at(digits.len() - start - 3);
    out.push_str(std::str::from_utf8(whole).expect("ASCII digits"));
    out.push('.');
    out.push_str(std::str::from_utf8(decimals).expect("ASCII digits"));
}

/// The run and request a traced request belongs to, from its query string. The middleware puts
/// it in the request's extensions, so handlers can trace their own hops (`Option<Extension<_>>`).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceIds {
    pub run: RunId,
    /// The id the page gave the exchange (`rid`): the same for every reconnection of one
    /// EventSource, so pushed events are named after it.
    pub request: RequestId,
    /// The id this HTTP request is traced under: `request`, or for an EventSource
    /// reconnecting with `Last-Event-ID: N`, `{rid}-rN` (both observers derive the same).
    pub connection: RequestId,
}

impl TraceIds {
    /// `Ok(None)` when the request carries no `run` (an untraced call, e.g. from curl).
    pub fn from_query(query: Option<&str>) -> Result<Option<TraceIds>, AppError> {
        let mut run = None;
        let mut rid = None;
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some((k, v)) if k == RUN_PARAM => run = Some(v),
                Some((k, v)) if k == REQUEST_PARAM => rid = Some(v),
                _ => {}
            }
        }
        let Some(run) = run else { return Ok(None) };
        let run = parse_run_id(run)?;
        let rid = rid.ok_or_else(|| {
            AppError::BadRequest(format!(
                "a traced request needs `{REQUEST_PARAM}` beside `{RUN_PARAM}`"
            ))
        })?;
        if !RunId::is_valid(rid) {
            return Err(AppError::BadRequest(format!("invalid request id {rid:?}")));
        }
        Ok(Some(TraceIds {
            run,
            request: RequestId(rid.to_owned()),
            connection: RequestId(rid.to_owned()),
        }))
    }
}

/// Records hops inside the server (to a worker, a pool thread) on behalf of one traced
/// exchange; does nothing for an untraced one.
#[derive(Clone)]
pub struct InternalHops {
    hub: TraceHub,
    ids: Option<TraceIds>,
}

impl InternalHops {
    pub fn new(hub: &TraceHub, ids: Option<TraceIds>) -> InternalHops {
        InternalHops {
            hub: hub.clone(),
            ids,
        }
    }

    /// Records a hop named `{rid}-{suffix}`: a request and the response that shares its suffix
    /// pair up, and the receiver's activation spans them.
    pub fn record(&self, kind: Kind, from: &str, to: &str, suffix: &str, label: String) {
        if let Some(ids) = &self.ids {
            self.hub.hop(Hop {
                run: &ids.run,
                request_id: format!("{}-{suffix}", ids.request.0),
                from,
                to,
                kind,
                transport: Transport::Internal,
                at: HopTime::Whole,
                label,
                bytes: None,
                body: None,
            });
        }
    }
}

/// Middleware: records the arrival and the departure of each traced exchange. Its state is the
/// trace hub, all it uses.
pub async fn record(State(trace): State<TraceHub>, mut request: Request, next: Next) -> Response {
    let mut ids = match TraceIds::from_query(request.uri().query()) {
        Ok(Some(ids)) => ids,
        Ok(None) => return next.run(request).await,
        Err(e) => return e.into_response(),
    };
    if let Some(last) = last_event_id(request.headers()) {
        ids.connection = RequestId(job::reconnect_request_id(&ids.request.0, last));
    }
    request.extensions_mut().insert(ids.clone());
    let arrived = server_now_us();
    let version = request.version();
    let transport = transport_of(version);
    let connection = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| u64::from(peer.port()));
    // The full path as the browser sent it (nesting strips the `/api` prefix from `uri()`).
    let uri = request
        .extensions()
        .get::<OriginalUri>()
        .map(|OriginalUri(uri)| uri.clone())
        .unwrap_or_else(|| request.uri().clone());
    let target = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    let start_line = format!("{} {} {:?}", request.method(), target, request.version());
    let body_bytes = content_length(request.headers())
        .or_else(|| request.body().size_hint().exact())
        .unwrap_or(0);
    let headers = headers_of(request.headers());
    let head_bytes = head_size(&start_line, &headers);
    let base = Message {
        run: ids.run.clone(),
        seq: 0,
        observer: Observer::Server,
        request_id: Some(ids.connection.clone()),
        from: Actor::browser(),
        to: Actor::server(),
        kind: Kind::Request,
        transport,
        sent_us: None,
        recv_us: Some(arrived),
        connection,
        stream: None,
        label: format!("{} {}", request.method(), target),
        bytes: Some(head_bytes + body_bytes),
        status: None,
        detail: Some(Detail {
            start_line,
            headers,
            body_bytes,
            ..Detail::default()
        }),
    };
    trace.record(base.clone());

    let response = next.run(request).await;

    let status = response.status();
    let start_line = format!(
        "{:?} {} {}",
        version,
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let headers = headers_of(response.headers());
    let body_bytes = response.body().size_hint().exact().unwrap_or(0);
    let phases = response
        .extensions()
        .get::<Phases>()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    trace.record(Message {
        from: Actor::server(),
        to: Actor::browser(),
        kind: Kind::Response,
        sent_us: Some(server_now_us()),
        recv_us: None,
        label: format!(
            "{} {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            target
        ),
        bytes: Some(head_size(&start_line, &headers) + body_bytes),
        status: Some(status.as_u16()),
        detail: Some(Detail {
            start_line,
            headers,
            body_bytes,
            phases,
            ..Detail::default()
        }),
        ..base
    });
    response
}

/// The `Last-Event-ID` a reconnecting EventSource sends, if it is a number.
pub fn last_event_id(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn transport_of(version: Version) -> Transport {
    if version == Version::HTTP_2 {
        Transport::H2
    } else {
        Transport::Http1
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Header lines as they were on the wire.
pub fn headers_of(headers: &HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_owned(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect()
}

/// Bytes of the start line and header block as HTTP/1.1 puts them on the wire.
pub fn head_size(start_line: &str, headers: &[Header]) -> u64 {
    let lines: usize = headers
        .iter()
        .map(|h| h.name.len() + 2 + h.value.len() + 2)
        .sum();
    (start_line.len() + 2 + lines + 2) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_the_query() {
        assert_eq!(TraceIds::from_query(None).unwrap(), None);
        assert_eq!(TraceIds::from_query(Some("a=1")).unwrap(), None);
        let ids = TraceIds::from_query(Some("x=1&run=abc&rid=7"))
            .unwrap()
            .unwrap();
        assert_eq!(ids.run, RunId("abc".into()));
        assert_eq!(ids.request, RequestId("7".into()));
        assert!(TraceIds::from_query(Some("run=abc")).is_err());
        assert!(TraceIds::from_query(Some("run=a%20b&rid=1")).is_err());
        assert!(TraceIds::from_query(Some("run=ok&rid=<script>")).is_err());
    }

    #[test]
    fn milliseconds_have_three_decimals() {
        for (us, ms) in [
            (0, "0.000"),
            (7, "0.007"),
            (412, "0.412"),
            (1_000, "1.000"),
            (200_100, "200.100"),
            (-5, "0.000"),
            (i64::MAX, "9223372036854775.807"),
        ] {
            let mut out = String::new();
            push_millis(&mut out, us);
            assert_eq!(out, ms, "{us} µs");
        }
    }

    #[test]
    fn server_timing_lists_each_phase() {
        let phases = Phases(vec![
            Phase {
                name: "parse".into(),
                start_us: 0,
                dur_us: 412,
            },
            Phase {
                name: "process".into(),
                start_us: 412,
                dur_us: 200_100,
            },
        ]);
        assert_eq!(
            phases.server_timing(),
            "parse;dur=0.412, process;dur=200.100"
        );
    }
}
