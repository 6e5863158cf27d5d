//! Records every traced HTTP exchange: a request that carries `run` and `rid` is logged when it
//! arrives (with the headers the server really received) and its response when it leaves (with
//! the handler's timing phases). One middleware serves every demo.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::HttpBody,
    extract::{ConnectInfo, OriginalUri, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header},
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
/// response's extensions and in a `Server-Timing` header; the middleware moves them into the
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
        // Sized for durations under 10⁹ ms, so that the string grows once at most (growing it
        // phase by phase cost more than the rest of the header).
        let mut value = Vec::with_capacity(
            self.0
                .iter()
                .map(|p| p.name.len() + ", ;dur=999999999.999".len())
                .sum(),
        );
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(p.name.as_bytes());
            value.extend_from_slice(b";dur=");
            push_millis(&mut value, p.dur_us);
        }
        HeaderValue::from_bytes(&value).expect("phase names are tokens")
    }

    /// Adds the header and the extension to `response`.
    pub fn attach(self, mut response: Response) -> Response {
        response
            .headers_mut()
            .insert(SERVER_TIMING, self.server_timing());
        response.extensions_mut().insert(self);
        response
    }
}

/// The header's name, made once (a `&str` key is parsed on every insert).
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Appends `us` microseconds as milliseconds with three decimals (`412` → `0.412`). By hand:
/// `write!` with `{:.3}` of an `f64` cost about 5,000 instructions a request and `fmt` with
/// integers about 1,000 a number (callgrind, the echo under load), most of what the
/// `Server-Timing` header cost.
fn push_millis(out: &mut Vec<u8>, us: i64) {
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
    out.extend_from_slice(whole);
    out.push(b'.');
    out.extend_from_slice(decimals);
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
    let arrived = server_now_us();
    let exchange = Arc::new(Exchange {
        run: ids.run.clone(),
        request_id: ids.connection.clone(),
        method: request.method().clone(),
        target: target_of(&request),
        version: request.version(),
        connection: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| u64::from(peer.port())),
    });
    trace.record_http(HttpHalf {
        exchange: Arc::clone(&exchange),
        at_us: arrived,
        status: None,
        headers: HeaderBlock::of(request.headers()),
        body_bytes: content_length(request.headers())
            .or_else(|| request.body().size_hint().exact())
            .unwrap_or(0),
        phases: Vec::new(),
    });
    request.extensions_mut().insert(ids);

    let mut response = next.run(request).await;

    // Moved, not copied: nothing after this middleware reads them.
    let phases = response
        .extensions_mut()
        .remove::<Phases>()
        .map(|p| p.0)
        .unwrap_or_default();
    trace.record_http(HttpHalf {
        exchange,
        at_us: server_now_us(),
        status: Some(response.status()),
        headers: HeaderBlock::of(response.headers()),
        body_bytes: response.body().size_hint().exact().unwrap_or(0),
        phases,
    });
    response
}

/// The full path and query as the browser sent them (nesting strips the `/api` prefix from
/// `uri()`).
fn target_of(request: &Request) -> String {
    let uri = request
        .extensions()
        .get::<OriginalUri>()
        .map_or(request.uri(), |OriginalUri(uri)| uri);
    uri.path_and_query()
        .map_or_else(|| uri.path(), |pq| pq.as_str())
        .to_owned()
}

/// What both halves of one traced exchange share.
#[derive(Debug)]
struct Exchange {
    run: RunId,
    /// The id the exchange is traced under ([`TraceIds::connection`]).
    request_id: RequestId,
    method: Method,
    /// Path and query as the browser sent them.
    target: String,
    version: Version,
    /// The client's port as the server saw it, where known.
    connection: Option<u64>,
}

/// One half of a traced HTTP exchange as the trace middleware saw it. The trace hub keeps it
/// so and makes the trace [`Message`] (start line, label, header strings, size) only when the
/// trace is read: every traced request records two halves, and traces are read far less often.
#[derive(Debug, Clone)]
pub struct HttpHalf {
    exchange: Arc<Exchange>,
    /// When the request arrived or the response left, on the server's clock.
    at_us: i64,
    /// `None` for the request.
    status: Option<StatusCode>,
    headers: HeaderBlock,
    body_bytes: u64,
    /// The handler's timing phases (responses only).
    phases: Vec<Phase>,
}

impl HttpHalf {
    /// The run it belongs to.
    pub fn run(&self) -> &RunId {
        &self.exchange.run
    }

    /// The trace message of this half, as the page and `GET /api/trace/{run}` see it.
    pub fn message(&self, seq: u64) -> Message {
        let ex = &*self.exchange;
        let (from, to, kind, sent_us, recv_us, start_line, label) = match self.status {
            None => (
                Actor::browser(),
                Actor::server(),
                Kind::Request,
                None,
                Some(self.at_us),
                format!("{} {} {:?}", ex.method, ex.target, ex.version),
                format!("{} {}", ex.method, ex.target),
            ),
            Some(status) => {
                let reason = status.canonical_reason().unwrap_or("");
                (
                    Actor::server(),
                    Actor::browser(),
                    Kind::Response,
                    Some(self.at_us),
                    None,
                    format!("{:?} {} {reason}", ex.version, status.as_u16()),
                    format!("{} {reason} {}", status.as_u16(), ex.target),
                )
            }
        };
        let headers = self.headers.lines();
        Message {
            run: ex.run.clone(),
            seq,
            observer: Observer::Server,
            request_id: Some(ex.request_id.clone()),
            from,
            to,
            kind,
            transport: transport_of(ex.version),
            sent_us,
            recv_us,
            connection: ex.connection,
            stream: None,
            label,
            bytes: Some(head_size(&start_line, &headers) + self.body_bytes),
            status: self.status.map(|s| s.as_u16()),
            detail: Some(Detail {
                start_line,
                headers,
                body_bytes: self.body_bytes,
                phases: self.phases.clone(),
                ..Detail::default()
            }),
        }
    }
}

/// A header map copied into one buffer: per header line, the name's and the value's lengths
/// (`u32`, little-endian), then their bytes. One allocation where owned strings took two per
/// line, and no reference into the connection's read buffer, which the parsed request's
/// values point into (a cloned `HeaderMap` would keep that buffer alive as long as the trace).
#[derive(Debug, Clone, Default)]
struct HeaderBlock(Box<[u8]>);

impl HeaderBlock {
    fn of(headers: &HeaderMap) -> HeaderBlock {
        let len = headers
            .iter()
            .map(|(name, value)| 8 + name.as_str().len() + value.len())
            .sum();
        let mut block = Vec::with_capacity(len);
        for (name, value) in headers {
            let (name, value) = (name.as_str().as_bytes(), value.as_bytes());
            // Lengths over 4 GiB cannot happen (hyper refuses heads over 400 KiB); were one to,
            // it would be cut rather than misread.
            let (name, value) = (&name[..clamp(name.len())], &value[..clamp(value.len())]);
            block.extend_from_slice(&(name.len() as u32).to_le_bytes());
            block.extend_from_slice(&(value.len() as u32).to_le_bytes());
            block.extend_from_slice(name);
            block.extend_from_slice(value);
        }
        HeaderBlock(block.into_boxed_slice())
    }

    /// The header lines as the trace shows them (values not in UTF-8 made lossy).
    fn lines(&self) -> Vec<Header> {
        let mut lines = Vec::new();
        let mut rest = &self.0[..];
        while let Some((name_len, after)) = take_len(rest)
            && let Some((value_len, after)) = take_len(after)
            && let Some((name, after)) = after.split_at_checked(name_len)
            && let Some((value, after)) = after.split_at_checked(value_len)
        {
            lines.push(Header {
                name: String::from_utf8_lossy(name).into_owned(),
                value: String::from_utf8_lossy(value).into_owned(),
            });
            rest = after;
        }
        lines
    }
}

/// `len`, at most `u32::MAX`.
fn clamp(len: usize) -> usize {
    len.min(u32::MAX as usize)
}

/// A `u32` length from the front of `bytes`, and what follows it.
fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*len) as usize, rest))
}

/// The `Last-Event-ID` a reconnecting EventSource sends, if it is a number.
pub fn last_event_id(headers: &HeaderMap) -> Option<u32> {
    const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
    headers
        .get(LAST_EVENT_ID)?
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
        .get(header::CONTENT_LENGTH)
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
    fn a_header_block_gives_back_every_line_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-many", HeaderValue::from_static("one"));
        headers.append("x-many", HeaderValue::from_static(""));
        headers.append("x-many", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let lines = HeaderBlock::of(&headers).lines();
        assert_eq!(lines, headers_of(&headers));
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[3].value, "caf\u{fffd}", "not UTF-8: shown lossy");
        assert!(HeaderBlock::of(&HeaderMap::new()).lines().is_empty());
    }

    #[test]
    fn both_halves_read_as_the_messages_the_page_expects() {
        let exchange = Arc::new(Exchange {
            run: RunId("run-1".into()),
            request_id: RequestId("7".into()),
            method: Method::POST,
            target: "/api/echo?run=run-1&rid=7".into(),
            version: Version::HTTP_11,
            connection: Some(50_000),
        });
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let phase = Phase {
            name: "parse".into(),
            start_us: 5,
            dur_us: 1,
        };
        let request = HttpHalf {
            exchange: Arc::clone(&exchange),
            at_us: 10,
            status: None,
            headers: HeaderBlock::of(&headers),
            body_bytes: 3,
            phases: Vec::new(),
        }
        .message(0);
        let response = HttpHalf {
            exchange,
            at_us: 20,
            status: Some(StatusCode::CREATED),
            headers: HeaderBlock::of(&headers),
            body_bytes: 4,
            phases: vec![phase.clone()],
        }
        .message(1);

        let start_line = "POST /api/echo?run=run-1&rid=7 HTTP/1.1";
        let lines = headers_of(&headers);
        assert_eq!(
            request,
            Message {
                run: RunId("run-1".into()),
                seq: 0,
                observer: Observer::Server,
                request_id: Some(RequestId("7".into())),
                from: Actor::browser(),
                to: Actor::server(),
                kind: Kind::Request,
                transport: Transport::Http1,
                sent_us: None,
                recv_us: Some(10),
                connection: Some(50_000),
                stream: None,
                label: "POST /api/echo?run=run-1&rid=7".into(),
                bytes: Some(head_size(start_line, &lines) + 3),
                status: None,
                detail: Some(Detail {
                    start_line: start_line.into(),
                    headers: lines.clone(),
                    body_bytes: 3,
                    ..Detail::default()
                }),
            }
        );
        assert_eq!((response.seq, response.kind), (1, Kind::Response));
        assert_eq!(
            (response.from, response.to),
            (Actor::server(), Actor::browser())
        );
        assert_eq!((response.sent_us, response.recv_us), (Some(20), None));
        assert_eq!(response.label, "201 Created /api/echo?run=run-1&rid=7");
        assert_eq!(response.status, Some(201));
        let detail = response.detail.unwrap();
        assert_eq!(detail.start_line, "HTTP/1.1 201 Created");
        assert_eq!(detail.headers, lines);
        assert_eq!(detail.phases, [phase]);
        assert_eq!(
            response.bytes,
            Some(head_size("HTTP/1.1 201 Created", &lines) + 4)
        );
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
            let mut out = Vec::new();
            push_millis(&mut out, us);
            assert_eq!(out, ms.as_bytes(), "{us} µs");
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
