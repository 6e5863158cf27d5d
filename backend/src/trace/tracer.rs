//! The tracer: the one way a handler, a transport or an actor records a hop of a traced
//! exchange (a hop inside the server, a WebSocket frame, an SSE event, a relay hop, a
//! multiplexing lane), and the one place a server hop becomes a [`Message`].
//!
//! The HTTP halves of the exchange itself are not recorded here: the middleware
//! ([`super::record`]) keeps them compact and makes them into messages only when the trace is
//! read, the fast path every traced request takes.
//!
//! ```ignore
//! let tracer = Tracer::new(&state.trace, ids);
//! tracer.record(|rid| {
//!     Hop::new(Kind::Request, "server", "worker", pairing::hop(rid, "job"))
//!         .label(format!("start job {id}"))
//! });
//! ```
//!
//! The hop is described in a closure that runs only when the exchange is traced, so an
//! untraced one builds no label, id or body.

use std::sync::Arc;

use axum::http::Uri;
use protocol::trace::{Actor, Detail, Kind, Message, Observer, RequestId, Transport};

use super::{clock::server_now_us, http_half::redact, hub::TraceHub, ids::TraceIds};

/// Records the hops of one traced exchange; does nothing for an untraced one. Cheap to clone.
#[derive(Clone)]
pub struct Tracer {
    /// `None` for an untraced exchange: then nothing is recorded and no hop is described.
    traced: Option<Arc<Traced>>,
}

struct Traced {
    hub: TraceHub,
    ids: TraceIds,
}

impl Tracer {
    /// The tracer of the exchange with these ids (`None`: untraced).
    pub fn new(hub: &TraceHub, ids: Option<TraceIds>) -> Tracer {
        Tracer {
            traced: ids.map(|ids| {
                Arc::new(Traced {
                    hub: hub.clone(),
                    ids,
                })
            }),
        }
    }

    /// For an inner listener: the ids ride along in the forwarded query (already checked by the
    /// front door, so a bad one just goes untraced).
    pub fn from_uri(hub: &TraceHub, uri: &Uri) -> Tracer {
        Tracer::new(hub, TraceIds::from_query(uri.query()).ok().flatten())
    }

    /// The ids of the traced exchange, `None` for an untraced one.
    pub fn ids(&self) -> Option<&TraceIds> {
        self.traced.as_ref().map(|t| &t.ids)
    }

    /// Records the hop `describe` makes from the exchange's request id (`rid`, which the
    /// [`protocol::pairing`] functions turn into the hop's id); `describe` is not called when
    /// the exchange is untraced.
    pub fn record<'a>(&self, describe: impl FnOnce(&str) -> Hop<'a>) {
        let Some(traced) = &self.traced else { return };
        let hop = describe(&traced.ids.request.0);
        traced.hub.record(hop.message(&traced.ids));
    }
}

/// One hop as the server saw it, for [`Tracer::record`]: who sent what to whom under which id,
/// and what else is known of it. Unset, it travelled inside the server
/// ([`Transport::Internal`]), seen whole now, with no size, status, connection or detail.
#[must_use = "a hop is recorded only when returned to `Tracer::record`"]
pub struct Hop<'a> {
    kind: Kind,
    from: &'a str,
    to: &'a str,
    /// Pairs the server's record with the page's (from [`protocol::pairing`]).
    id: String,
    label: String,
    transport: Transport,
    at: HopTime,
    bytes: Option<u64>,
    status: Option<u16>,
    connection: Option<u64>,
    stream: Option<u64>,
    detail: Option<Detail>,
}

/// Which ends of a hop the server saw, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopTime {
    /// Both, now: a hop inside the server.
    Whole,
    /// It left now; the other end will say when it arrived (a pushed event or frame).
    Sent,
    /// It arrived now (a frame from a client).
    Received,
    /// Both, at these server times (a ping and its pong, a relayed request).
    Span(i64, i64),
}

impl<'a> Hop<'a> {
    /// A `kind` of hop `from` → `to`, named `id`.
    pub fn new(kind: Kind, from: &'a str, to: &'a str, id: String) -> Hop<'a> {
        Hop {
            kind,
            from,
            to,
            id,
            label: String::new(),
            transport: Transport::Internal,
            at: HopTime::Whole,
            bytes: None,
            status: None,
            connection: None,
            stream: None,
            detail: None,
        }
    }

    /// A remark on one lifeline (why something was refused, retried, dropped), named `id`.
    pub fn note(actor: &'a str, id: String) -> Hop<'a> {
        Hop::new(Kind::Note, actor, actor, id)
    }

    /// What the diagram writes on the arrow.
    pub fn label(mut self, label: String) -> Self {
        self.label = label;
        self
    }

    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    pub fn at(mut self, at: HopTime) -> Self {
        self.at = at;
        self
    }

    /// Bytes on the wire.
    pub fn bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self
    }

    /// The HTTP status of a response.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The connection it travelled on (and, for HTTP/2, the stream), where known.
    pub fn on(mut self, connection: Option<u64>, stream: Option<u64>) -> Self {
        self.connection = connection;
        self.stream = stream;
        self
    }

    /// Its full detail: start line, headers (credentials redacted, see [`redact`]), body.
    /// Set [`Hop::bytes`] from the headers as sent. What the trace keeps is cut here, the one
    /// place every hop passes: header lines as [`Detail::with_headers`] cuts them (the size as
    /// sent kept), the body to [`Detail::BODY_LIMIT`].
    pub fn detail(mut self, mut detail: Detail) -> Self {
        let headers = std::mem::take(&mut detail.headers);
        let given: u64 = headers.iter().map(|h| h.wire_size() as u64).sum();
        let mut detail = detail.with_headers(redact(headers)).with_body_cut();
        if detail.headers_truncated {
            // Redaction changes the values' lengths; the size is the lines' as sent.
            detail.headers_bytes = given;
        }
        self.detail = Some(detail);
        self
    }

    /// Its detail when it is only a body (an event's data, a frame's payload).
    pub fn body(self, body: String) -> Self {
        self.detail(Detail::of_body(body))
    }

    /// The message of this hop of the exchange `ids`; the one place a server hop becomes one.
    fn message(self, ids: &TraceIds) -> Message {
        let now = server_now_us();
        let (sent_us, recv_us) = match self.at {
            HopTime::Whole => (Some(now), Some(now)),
            HopTime::Sent => (Some(now), None),
            HopTime::Received => (None, Some(now)),
            HopTime::Span(sent, recv) => (Some(sent), Some(recv)),
        };
        Message {
            run: ids.run.clone(),
            seq: 0,
            observer: Observer::Server,
            request_id: Some(RequestId(self.id)),
            from: Actor::new(self.from),
            to: Actor::new(self.to),
            kind: self.kind,
            transport: self.transport,
            sent_us,
            recv_us,
            connection: self.connection,
            stream: self.stream,
            label: self.label,
            bytes: self.bytes,
            status: self.status,
            detail: self.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::{
        pairing,
        trace::{Header, RunId},
    };

    use super::*;

    fn ids() -> TraceIds {
        TraceIds {
            run: RunId("r".into()),
            request: RequestId("7".into()),
            connection: RequestId("7".into()),
        }
    }

    #[test]
    fn an_untraced_exchange_describes_and_records_nothing() {
        let hub = TraceHub::default();
        Tracer::new(&hub, None).record(|_| unreachable!("not described when untraced"));
        assert_eq!(hub.run_count(), 0);
    }

    #[test]
    fn a_hop_becomes_one_server_message() {
        let hub = TraceHub::default();
        let tracer = Tracer::new(&hub, Some(ids()));
        tracer.record(|rid| {
            Hop::new(Kind::Response, "lane", "server", pairing::hop(rid, "i1"))
                .label("200 item 1".into())
                .transport(Transport::H2)
                .at(HopTime::Span(10, 20))
                .on(Some(5), Some(3))
                .status(200)
                .bytes(42)
                .body("ok".into())
        });
        tracer.record(|rid| Hop::note("server", pairing::hop(rid, "why")));
        let messages = hub.snapshot(&RunId("r".into())).unwrap();
        let m = &messages[0];
        assert_eq!(m.request_id, Some(RequestId(pairing::hop("7", "i1"))));
        assert_eq!(
            (m.from.clone(), m.to.clone()),
            (Actor::new("lane"), Actor::server())
        );
        assert_eq!((m.sent_us, m.recv_us), (Some(10), Some(20)));
        assert_eq!(
            (m.connection, m.stream, m.status, m.bytes),
            (Some(5), Some(3), Some(200), Some(42))
        );
        assert_eq!(m.detail, Some(Detail::of_body("ok".into())));
        assert_eq!(m.observer, Observer::Server);
        let note = &messages[1];
        assert_eq!(
            (note.kind, note.transport),
            (Kind::Note, Transport::Internal)
        );
        assert_eq!(note.from, note.to);
        assert!(
            note.sent_us.is_some() && note.sent_us == note.recv_us,
            "seen whole, now"
        );
    }

    #[test]
    fn a_hops_body_and_headers_are_cut_when_recorded() {
        let hub = TraceHub::default();
        let tracer = Tracer::new(&hub, Some(ids()));
        let frame = "f".repeat(100_000);
        tracer.record(|rid| {
            Hop::new(Kind::Push, "server", "browser", pairing::hop(rid, "f"))
                .transport(Transport::WebSocket)
                .body(frame.clone())
        });
        let headers = vec![
            Header {
                name: "authorization".into(),
                value: "t".repeat(5_000),
            };
            3
        ];
        tracer.record(|rid| {
            Hop::new(Kind::Request, "server", "up", pairing::hop(rid, "h")).detail(Detail {
                headers,
                ..Detail::default()
            })
        });
        let messages = hub.snapshot(&RunId("r".into())).unwrap();
        let body = messages[0].detail.as_ref().unwrap();
        assert_eq!(body.body.len(), Detail::BODY_LIMIT);
        assert!(body.body_truncated);
        assert_eq!(body.body_bytes, 100_000);
        let head = messages[1].detail.as_ref().unwrap();
        assert!(!head.headers_truncated, "redacted values are short");
        assert_eq!(head.headers[0].value, "[redacted: 5000 bytes]");
    }

    #[test]
    fn a_hops_credentials_are_redacted_but_its_size_is_as_sent() {
        let hub = TraceHub::default();
        let headers = vec![
            Header {
                name: "set-cookie".into(),
                value: "lb_sticky=instance-a; Path=/api/lb".into(),
            },
            Header {
                name: "set-cookie".into(),
                value: "session=s-9; Path=/api/lb".into(),
            },
        ];
        Tracer::new(&hub, Some(ids())).record(|rid| {
            Hop::new(Kind::Response, "lb", "server", pairing::hop(rid, "lb"))
                .bytes(99)
                .detail(Detail {
                    headers,
                    ..Detail::default()
                })
        });
        let messages = hub.snapshot(&RunId("r".into())).unwrap();
        let m = &messages[0];
        assert_eq!(m.bytes, Some(99));
        let values: Vec<&str> = m
            .detail
            .iter()
            .flat_map(|d| &d.headers)
            .map(|h| h.value.as_str())
            .collect();
        assert_eq!(
            values,
            [
                "lb_sticky=[redacted: 10 bytes]; Path=/api/lb",
                "session=s-9 (the demo's session cookie); Path=/api/lb"
            ]
        );
    }
}
