//! One half of a traced HTTP exchange as the recording middleware saw it, kept compact until
//! the trace is read; and the header helpers every traced HTTP hop shares.

use std::{mem::size_of, sync::Arc};

use axum::http::{HeaderMap, Method, StatusCode, Version};
use protocol::trace::{Actor, Detail, Header, Kind, Message, Observer, Phase, RunId, Transport};

use super::ids::TraceIds;

/// What both halves of one traced exchange share. The request carries it too (in its
/// extensions), for the handler's [`TraceIds`]: the ids are made once, not copied into the trace.
#[derive(Debug)]
pub(super) struct Exchange {
    /// The run, and the id the exchange is traced under ([`TraceIds::connection`]).
    pub(super) ids: TraceIds,
    pub(super) method: Method,
    /// Path and query as the browser sent them.
    pub(super) target: String,
    pub(super) version: Version,
    /// The client's port as the server saw it, where known.
    pub(super) connection: Option<u64>,
}

/// One half of a traced HTTP exchange as the trace middleware saw it. The trace hub keeps it
/// so and makes the trace [`Message`] (start line, label, header strings, size) only when the
/// trace is read: every traced request records two halves, and traces are read far less often.
#[derive(Debug, Clone)]
pub struct HttpHalf {
    pub(super) exchange: Arc<Exchange>,
    /// When the request arrived or the response left, on the server's clock.
    pub(super) at_us: i64,
    /// `None` for the request.
    pub(super) status: Option<StatusCode>,
    pub(super) headers: HeaderBlock,
    pub(super) body_bytes: u64,
    /// The handler's timing phases (responses only).
    pub(super) phases: Vec<Phase>,
}

impl HttpHalf {
    /// The run it belongs to.
    pub fn run(&self) -> &RunId {
        &self.exchange.ids.run
    }

    /// The heap bytes it holds: its header block, its phases, and the exchange it shares
    /// with the other half (its strings and its `Arc` allocation).
    pub fn heap_bytes(&self) -> usize {
        let ex = &*self.exchange;
        let exchange = 2 * size_of::<usize>()
            + size_of::<Exchange>()
            + ex.ids.run.0.capacity()
            + ex.ids.request.0.capacity()
            + ex.ids.connection.0.capacity()
            + ex.target.capacity();
        let phases = self.phases.capacity() * size_of::<Phase>()
            + self.phases.iter().map(|p| p.name.capacity()).sum::<usize>();
        self.headers.heap_bytes() + phases + exchange
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
        let wire_headers = match self.headers.cut_from {
            0 => headers.iter().map(Header::wire_size).sum::<usize>() as u64,
            given => given,
        };
        let bytes = (start_line.len() + 2) as u64 + wire_headers + 2 + self.body_bytes;
        Message {
            run: ex.ids.run.clone(),
            seq,
            observer: Observer::Server,
            request_id: Some(ex.ids.connection.clone()),
            from,
            to,
            kind,
            transport: transport_of(ex.version),
            sent_us,
            recv_us,
            connection: ex.connection,
            stream: None,
            label,
            bytes: Some(bytes),
            status: self.status.map(|s| s.as_u16()),
            detail: Some(Detail {
                start_line,
                headers: redact(headers),
                body_bytes: self.body_bytes,
                phases: self.phases.clone(),
                headers_truncated: self.headers.cut_from > 0,
                headers_bytes: self.headers.cut_from,
                ..Detail::default()
            }),
        }
    }
}

/// A header map copied into one buffer: per header line, the name's and the value's lengths
/// (`u32`, little-endian), then their bytes. One allocation where owned strings took two per
/// line, and no reference into the connection's read buffer, which the parsed request's
/// values point into (a cloned `HeaderMap` would keep that buffer alive as long as the trace).
/// Cut as [`Detail::with_headers`] cuts lines: each value to [`Detail::HEADER_VALUE_LIMIT`]
/// bytes, lines left out beyond [`Detail::HEADERS_LIMIT`] in all.
#[derive(Debug, Clone, Default)]
pub(super) struct HeaderBlock {
    block: Box<[u8]>,
    /// The lines' size on the wire before they were cut; 0 when nothing was.
    cut_from: u64,
}

impl HeaderBlock {
    pub(super) fn of(headers: &HeaderMap) -> HeaderBlock {
        let wire = |name: &[u8], value: &[u8]| name.len() + 2 + value.len() + 2;
        // Sized first, exactly unless lines are left out: grown line by line, the block took five
        // or six allocations and a shrink to box it, for each half of every traced request.
        let size: usize = headers
            .iter()
            .map(|(name, value)| {
                8 + name.as_str().len() + value.len().min(Detail::HEADER_VALUE_LIMIT)
            })
            .sum();
        let mut block = Vec::with_capacity(size.min(Detail::HEADERS_LIMIT + 4 * headers.len()));
        let (mut given, mut kept, mut cut, mut full) = (0, 0, false, false);
        for (name, value) in headers {
            let (name, value) = (name.as_str().as_bytes(), value.as_bytes());
            given += wire(name, value);
            if full {
                // Counted, not kept.
                continue;
            }
            let value = if value.len() > Detail::HEADER_VALUE_LIMIT {
                cut = true;
                &value[..Detail::HEADER_VALUE_LIMIT]
            } else {
                value
            };
            if kept + wire(name, value) > Detail::HEADERS_LIMIT {
                (cut, full) = (true, true);
                continue;
            }
            kept += wire(name, value);
            // A name is at most the head's size (hyper refuses heads over `MAX_HEAD_BYTES`), so
            // far under 4 GiB, and a value is cut above.
            block.extend_from_slice(&(name.len() as u32).to_le_bytes());
            block.extend_from_slice(&(value.len() as u32).to_le_bytes());
            block.extend_from_slice(name);
            block.extend_from_slice(value);
        }
        HeaderBlock {
            block: block.into_boxed_slice(),
            cut_from: if cut { given as u64 } else { 0 },
        }
    }

    /// Heap bytes it holds.
    pub(super) fn heap_bytes(&self) -> usize {
        self.block.len()
    }

    /// The header lines as the trace shows them (values not in UTF-8 made lossy).
    fn lines(&self) -> Vec<Header> {
        let mut lines = Vec::new();
        let mut rest = &self.block[..];
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

/// A `u32` length from the front of `bytes`, and what follows it.
fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*len) as usize, rest))
}

fn transport_of(version: Version) -> Transport {
    if version == Version::HTTP_2 {
        Transport::H2
    } else {
        Transport::Http1
    }
}

/// Header lines as a recorded trace shows them: credentials redacted ([`protocol::trace::redact_header`]; the
/// demo's session cookie kept). Sizes are counted before, from the lines as they were on the wire.
pub fn redact(headers: Vec<Header>) -> Vec<Header> {
    headers
        .into_iter()
        .map(|Header { name, value }| Header::recorded(name, value))
        .collect()
}

/// Header lines as they were on the wire (recorded through [`redact`]).
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
    use axum::http::{HeaderName, HeaderValue};
    use protocol::trace::RequestId;

    fn ids() -> TraceIds {
        TraceIds {
            run: RunId("run-1".into()),
            request: RequestId("7".into()),
            connection: RequestId("7".into()),
        }
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
    fn a_huge_head_is_recorded_cut_but_counted_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-huge",
            HeaderValue::from_str(&"h".repeat(100_000)).unwrap(),
        );
        for i in 0..200 {
            headers.insert(
                HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("some value"),
            );
        }
        let given: u64 = headers_of(&headers)
            .iter()
            .map(|h| h.wire_size() as u64)
            .sum();
        let block = HeaderBlock::of(&headers);
        assert!(block.heap_bytes() <= Detail::HEADERS_LIMIT + 8 * 200);
        let exchange = Arc::new(Exchange {
            ids: ids(),
            method: Method::GET,
            target: "/".into(),
            version: Version::HTTP_11,
            connection: None,
        });
        let m = HttpHalf {
            exchange,
            at_us: 0,
            status: None,
            headers: block,
            body_bytes: 0,
            phases: Vec::new(),
        }
        .message(0);
        assert_eq!(m.bytes, Some("GET / HTTP/1.1".len() as u64 + 2 + given + 2));
        let detail = m.detail.unwrap();
        assert!(detail.headers_truncated);
        assert_eq!(detail.headers_bytes, given);
        assert_eq!(detail.headers[0].value.len(), Detail::HEADER_VALUE_LIMIT);
        assert!(detail.headers_kept_bytes() <= Detail::HEADERS_LIMIT as u64);
        assert!(
            detail.headers.len() > 100,
            "the small lines after it are kept"
        );
    }

    #[test]
    fn both_halves_read_as_the_messages_the_page_expects() {
        let exchange = Arc::new(Exchange {
            ids: ids(),
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
    fn credentials_are_redacted_but_counted_as_sent() {
        let exchange = Arc::new(Exchange {
            ids: ids(),
            method: Method::GET,
            target: "/api/lb/profile".into(),
            version: Version::HTTP_11,
            connection: None,
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            HeaderValue::from_static("lb_sticky=instance-a; session=s-9"),
        );
        headers.insert("authorization", HeaderValue::from_static("Bearer t0ken"));
        let request = HttpHalf {
            exchange,
            at_us: 10,
            status: None,
            headers: HeaderBlock::of(&headers),
            body_bytes: 0,
            phases: Vec::new(),
        }
        .message(0);
        let start_line = "GET /api/lb/profile HTTP/1.1";
        assert_eq!(
            request.bytes,
            Some(head_size(start_line, &headers_of(&headers))),
            "the size on the wire, not of the redacted lines"
        );
        let shown = request.detail.unwrap().headers;
        assert_eq!(
            shown,
            [
                Header {
                    name: "cookie".into(),
                    value: "lb_sticky=[redacted: 10 bytes]; \
                            session=s-9 (the demo's session cookie)"
                        .into()
                },
                Header {
                    name: "authorization".into(),
                    value: "[redacted: 12 bytes]".into()
                },
            ]
        );
    }
}
