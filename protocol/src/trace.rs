//! The trace: an ordered list of messages between lifelines, recorded by two observers.
//!
//! The browser records what it sends and receives on its own clock (microseconds since the run
//! started); the server records what only it can see on its clock (microseconds since the server
//! started) and streams those records to the page. Both halves of one exchange share a
//! [`RequestId`], which is how the page pairs them and maps server time onto its own clock.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Identifies one run of one demo, chosen by the page. 1 to 64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// Longest run id the server accepts.
    pub const MAX_LEN: usize = 64;

    /// Whether `s` is an acceptable run (or request) id.
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// Identifies one exchange within a run, so the browser's and the server's records pair up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct RequestId(pub String);

/// A lifeline: `browser`, `server`, or a server-internal actor such as `worker` or `broker`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    pub fn new(name: &str) -> Self {
        Actor(name.to_owned())
    }
    pub fn browser() -> Self {
        Actor::new("browser")
    }
    pub fn server() -> Self {
        Actor::new("server")
    }
}

/// Which clock a message's timestamps are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Observer {
    /// Microseconds since the run started, by the page's `performance.now()`.
    Browser,
    /// Microseconds since the server process started, by its monotonic clock.
    Server,
}

/// What a message is; the diagram draws each kind with its own line style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A client asks (an HTTP request, a poll).
    Request,
    /// The answer to a request.
    Response,
    /// A server-initiated frame on an open connection.
    Push,
    /// One event of an event stream.
    Event,
    /// A connection opened (TCP, WebSocket upgrade).
    Connect,
    /// A connection closed.
    Close,
    /// A publisher hands a message to a broker.
    Publish,
    /// A broker hands a message to a subscriber.
    Deliver,
    /// A remark on one lifeline, such as an error.
    Note,
    /// Work done by one actor (a processing phase).
    Work,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Request,
        Kind::Response,
        Kind::Push,
        Kind::Event,
        Kind::Connect,
        Kind::Close,
        Kind::Publish,
        Kind::Deliver,
        Kind::Note,
        Kind::Work,
    ];

    /// The lowercase name used on the wire and in `data-kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::Push => "push",
            Kind::Event => "event",
            Kind::Connect => "connect",
            Kind::Close => "close",
            Kind::Publish => "publish",
            Kind::Deliver => "deliver",
            Kind::Note => "note",
            Kind::Work => "work",
        }
    }
}

/// How a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Transport {
    #[serde(rename = "http/1.1")]
    Http1,
    #[serde(rename = "h2")]
    H2,
    #[serde(rename = "websocket")]
    WebSocket,
    #[serde(rename = "sse")]
    Sse,
    /// Inside the server process (a channel, a function call).
    #[serde(rename = "internal")]
    Internal,
    /// A datagram with no connection (DNS over UDP).
    #[serde(rename = "udp")]
    Udp,
    /// A protocol's own messages over a TCP connection (PostgreSQL's wire protocol).
    #[serde(rename = "tcp")]
    Tcp,
}

impl Transport {
    /// The name used on the wire and in `data-transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http1 => "http/1.1",
            Transport::H2 => "h2",
            Transport::WebSocket => "websocket",
            Transport::Sse => "sse",
            Transport::Internal => "internal",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// From a Resource Timing `nextHopProtocol` or an HTTP version string.
    pub fn from_protocol(p: &str) -> Transport {
        match p {
            "h2" | "HTTP/2.0" | "HTTP/2" => Transport::H2,
            _ => Transport::Http1,
        }
    }
}

/// One header line as it was seen on the wire (credentials redacted: [`Header::recorded`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    /// Its size on the wire in HTTP/1.1: `name: value` and CRLF.
    pub fn wire_size(&self) -> usize {
        self.name.len() + 2 + self.value.len() + 2
    }

    /// The line as a trace records it: its value through [`redact_header`].
    pub fn recorded(name: String, value: String) -> Header {
        let value = match redact_header(&name, &value) {
            Cow::Borrowed(_) => value,
            Cow::Owned(redacted) => redacted,
        };
        Header { name, value }
    }
}

/// The cookie of the stateful/stateless demo, whose value the lesson shows (what the balancer
/// and the instances pass around is the point of the demo), so it is kept in recorded traces.
pub const DEMO_SESSION_COOKIE: &str = "session";

/// The value of header `name` as recorded traces and exports show it: the credentials a
/// browser or a client may carry (`Cookie`, `Set-Cookie`, `Authorization`,
/// `Proxy-Authorization`) become `[redacted: N bytes]`, so a shared trace does not hand them on.
/// Cookies keep their names and `Set-Cookie` its attributes; only values go. The exception is
/// the demo's own [`DEMO_SESSION_COOKIE`], kept and marked as such. Every other header is
/// unchanged. Only the display: a message's `bytes` stay its size on the wire.
pub fn redact_header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if name.eq_ignore_ascii_case("cookie") {
        let pairs: Vec<String> = value
            .split(';')
            .map(|pair| redact_cookie(pair.trim()))
            .collect();
        Cow::Owned(pairs.join("; "))
    } else if name.eq_ignore_ascii_case("set-cookie") {
        // `name=value` first, then attributes (`Path=/`, `HttpOnly`), which are no secret.
        let (cookie, attributes) = value.split_once(';').unwrap_or((value, ""));
        let mut shown = redact_cookie(cookie.trim());
        if !attributes.is_empty() {
            shown.push(';');
            shown.push_str(attributes);
        }
        Cow::Owned(shown)
    } else if name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
    {
        Cow::Owned(redacted(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// One `name=value` cookie pair as a trace shows it.
fn redact_cookie(pair: &str) -> String {
    match pair.split_once('=') {
        Some((name, _)) if name.trim() == DEMO_SESSION_COOKIE => {
            format!("{pair} (the demo's session cookie)")
        }
        Some((name, value)) => format!("{name}={}", redacted(value)),
        // A pair without `=` is a value with an empty name (RFC 6265bis).
        None if pair.is_empty() => String::new(),
        None => redacted(pair),
    }
}

/// The marker standing for a credential of `value`'s size.
fn redacted(value: &str) -> String {
    match value.len() {
        1 => "[redacted: 1 byte]".to_owned(),
        n => format!("[redacted: {n} bytes]"),
    }
}

/// A timed phase inside one actor, such as the server's `parse`, `process` and `serialize`, or
/// the browser's `waiting` for the first byte. `start_us` is on the observer's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Phase {
    pub name: String,
    pub start_us: i64,
    pub dur_us: i64,
}

/// What the inspector shows for one message: the message in HTTP anatomy (start line, headers,
/// blank line, body) plus its timing phases. Bodies are truncated to [`Detail::BODY_LIMIT`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Detail {
    /// `POST /api/echo?… HTTP/1.1` or `HTTP/1.1 200 OK`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start_line: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// The body as text (binary bodies as a hex dump), at most `BODY_LIMIT` bytes of it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// The whole body's size in bytes, before truncation.
    #[serde(default)]
    pub body_bytes: u64,
    #[serde(default)]
    pub body_truncated: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// Whether header lines were cut when recorded (a value beyond
    /// [`Detail::HEADER_VALUE_LIMIT`], or lines beyond [`Detail::HEADERS_LIMIT`] in all).
    /// Absent in traces recorded before headers were cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headers_truncated: bool,
    /// The header lines' size as sent (`name: value` and CRLF each), before they were cut;
    /// given only when `headers_truncated`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub headers_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Detail {
    /// Bodies longer than this are cut in the inspector (the wire carries them whole).
    pub const BODY_LIMIT: usize = 4096;
    /// A header value longer than this is cut when recorded (cookies, the longest browsers
    /// send, stay under 4 KiB each but rarely come near 1 KiB outside tracking).
    pub const HEADER_VALUE_LIMIT: usize = 1024;
    /// Header lines are recorded until their size (`name: value` and CRLF each, after each
    /// value is cut) would pass this; the rest are left out. Browsers send 1–2 KiB.
    pub const HEADERS_LIMIT: usize = 8 * 1024;

    /// `headers` as a trace keeps them: each value cut to [`Detail::HEADER_VALUE_LIMIT`] bytes
    /// (at a character boundary), and lines left out once [`Detail::HEADERS_LIMIT`] is
    /// reached. Sets `headers_truncated` and `headers_bytes` (their size as given) when
    /// anything was cut.
    pub fn with_headers(mut self, headers: Vec<Header>) -> Detail {
        let given: usize = headers.iter().map(Header::wire_size).sum();
        let mut kept = Vec::with_capacity(headers.len());
        let (mut size, mut cut) = (0, false);
        for mut header in headers {
            if header.value.len() > Self::HEADER_VALUE_LIMIT {
                header
                    .value
                    .truncate(floor_char_boundary(&header.value, Self::HEADER_VALUE_LIMIT));
                cut = true;
            }
            if size + header.wire_size() > Self::HEADERS_LIMIT {
                cut = true;
                break;
            }
            size += header.wire_size();
            kept.push(header);
        }
        self.headers = kept;
        self.headers_truncated = cut;
        self.headers_bytes = if cut { given as u64 } else { 0 };
        self
    }

    /// The same detail with its body cut to [`Detail::BODY_LIMIT`] bytes (at a character
    /// boundary), `body_truncated` set if it was, and `body_bytes` at least the body's size.
    pub fn with_body_cut(mut self) -> Detail {
        self.body_bytes = self.body_bytes.max(self.body.len() as u64);
        if self.body.len() > Self::BODY_LIMIT {
            self.body
                .truncate(floor_char_boundary(&self.body, Self::BODY_LIMIT));
            self.body.shrink_to_fit();
            self.body_truncated = true;
        }
        self
    }

    /// The size of the header lines kept, as they would go on the wire.
    pub fn headers_kept_bytes(&self) -> u64 {
        self.headers.iter().map(Header::wire_size).sum::<usize>() as u64
    }

    /// Detail of a message that is only a body (an event's data, a frame's payload).
    pub fn of_body(body: String) -> Detail {
        Detail {
            body_bytes: body.len() as u64,
            body,
            ..Detail::default()
        }
    }
}

/// The largest index at most `at` that starts a character of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// One message of a trace, as one observer saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub run: RunId,
    /// Order of recording within this observer and run.
    pub seq: u64,
    pub observer: Observer,
    /// Pairs the browser's and the server's records of one exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    pub from: Actor,
    pub to: Actor,
    pub kind: Kind,
    pub transport: Transport,
    /// When the sender let go of it, on the observer's clock, if the observer saw that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_us: Option<i64>,
    /// When the receiver had it, on the observer's clock, if the observer saw that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_us: Option<i64>,
    /// The connection it travelled on (the client's port as the server saw it), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    /// The HTTP/2 stream id, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
    /// The URL or a frame summary, so the learner can find it in the Network tab.
    pub label: String,
    /// Bytes on the wire (start line, headers and body), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The HTTP status of a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

/// What the page sends on the trace WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceClientMsg {
    /// Stream this run's server-side messages to me, starting with those already recorded.
    /// A later `Watch` replaces the earlier one. With `after` (a page whose socket reconnected,
    /// saying the highest `seq` it holds), the backlog starts after that message; pages that
    /// omit it get the whole backlog. With `log` too (the log those numbers came from, as
    /// `Watching` named it): should the server's log of the run be another one (the server
    /// restarted, or the run moved to this instance), its messages are numbered on from
    /// `after`, so the page keeps them all.
    Watch {
        run: RunId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log: Option<u64>,
    },
}

/// What the server sends on the trace WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceServerMsg {
    /// Sent on connect and after each `Watch`: the server's clock now, a first guess at the
    /// offset between the two clocks until a request/response pair gives a better one.
    Clock { server_now_us: i64 },
    /// Sent after each `Watch`, before the backlog: which of the server's logs of the run the
    /// messages that follow are numbered in (a new one each time the server starts a log of it).
    Watching { run: RunId, log: u64 },
    /// One server-side message of the watched run.
    Message(Box<Message>),
    /// The watch was refused (for example an invalid run id).
    Error { error: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_but_for_the_demos_session_cookie() {
        let shown = |name, value| redact_header(name, value).into_owned();
        assert_eq!(
            shown("Authorization", "Bearer abc.def"),
            "[redacted: 14 bytes]"
        );
        assert_eq!(shown("proxy-authorization", "x"), "[redacted: 1 byte]");
        assert_eq!(
            shown("cookie", "lb_sticky=instance-a; session=s-9; tracker=1234"),
            "lb_sticky=[redacted: 10 bytes]; session=s-9 (the demo's session cookie); \
             tracker=[redacted: 4 bytes]"
        );
        assert_eq!(shown("Cookie", "secret"), "[redacted: 6 bytes]");
        assert_eq!(
            shown(
                "set-cookie",
                "session=ada.99.c2ln; Path=/api/lb; HttpOnly; SameSite=Strict"
            ),
            "session=ada.99.c2ln (the demo's session cookie); Path=/api/lb; HttpOnly; \
             SameSite=Strict"
        );
        assert_eq!(
            shown("Set-Cookie", "sid=abcdef; Path=/"),
            "sid=[redacted: 6 bytes]; Path=/"
        );
        assert_eq!(
            shown("set-cookie", "sessionid=abc"),
            "sessionid=[redacted: 3 bytes]",
            "only the demo's cookie, by its exact name"
        );
        assert_eq!(shown("content-type", "text/plain"), "text/plain");
        assert!(matches!(
            redact_header("x-session", "session=s"),
            Cow::Borrowed("session=s")
        ));
        assert_eq!(
            Header::recorded("Authorization".into(), "Basic YWRhOmxvdmVsYWNl".into()),
            Header {
                name: "Authorization".into(),
                value: "[redacted: 22 bytes]".into()
            }
        );
    }

    #[test]
    fn headers_and_bodies_are_cut_when_recorded_and_say_so() {
        let line = |name: &str, value: String| Header {
            name: name.into(),
            value,
        };
        let small = Detail::default().with_headers(vec![line("a", "1".into())]);
        assert_eq!((small.headers.len(), small.headers_truncated), (1, false));
        assert_eq!(small.headers_bytes, 0);

        // One value over the limit (a multi-byte character across the cut), then enough
        // lines to pass the total.
        let long = format!(
            "{}é{}",
            "x".repeat(Detail::HEADER_VALUE_LIMIT - 1),
            "y".repeat(50)
        );
        let mut lines = vec![line("x-long", long.clone())];
        lines.extend((0..20).map(|i| line(&format!("x-{i}"), "z".repeat(1_000))));
        let given: usize = lines.iter().map(Header::wire_size).sum();
        let cut = Detail::default().with_headers(lines);
        assert!(cut.headers_truncated);
        assert_eq!(cut.headers_bytes, given as u64);
        assert_eq!(
            cut.headers[0].value,
            "x".repeat(Detail::HEADER_VALUE_LIMIT - 1)
        );
        assert!(cut.headers_kept_bytes() <= Detail::HEADERS_LIMIT as u64);
        assert!(cut.headers_kept_bytes() > (Detail::HEADERS_LIMIT - 1_100) as u64);
        assert_eq!(cut.headers.len(), 8, "lines kept in order until the total");

        let body = Detail::of_body("é".repeat(Detail::BODY_LIMIT)).with_body_cut();
        assert!(body.body_truncated);
        assert_eq!(body.body.len(), Detail::BODY_LIMIT);
        assert_eq!(body.body_bytes, 2 * Detail::BODY_LIMIT as u64);
        let whole = Detail::of_body("ok".into()).with_body_cut();
        assert_eq!(whole, Detail::of_body("ok".into()));
    }

    #[test]
    fn a_detail_from_before_headers_were_cut_still_loads() {
        let old: Detail = serde_json::from_str(
            r#"{"start_line":"GET / HTTP/1.1","body_bytes":0,"body_truncated":false}"#,
        )
        .unwrap();
        assert!(!old.headers_truncated);
        assert_eq!(old.headers_bytes, 0);
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("headers_"), "{text}");
        let cut = Detail {
            headers_truncated: true,
            headers_bytes: 412 * 1024,
            ..old
        };
        let text = serde_json::to_string(&cut).unwrap();
        assert_eq!(serde_json::from_str::<Detail>(&text).unwrap(), cut);
    }

    #[test]
    fn a_watch_without_after_still_parses_and_after_round_trips() {
        let old: TraceClientMsg = serde_json::from_str(r#"{"type":"watch","run":"r1"}"#).unwrap();
        assert_eq!(
            old,
            TraceClientMsg::Watch {
                run: RunId("r1".into()),
                after: None,
                log: None,
            }
        );
        let resume = TraceClientMsg::Watch {
            run: RunId("r1".into()),
            after: Some(41),
            log: Some(7),
        };
        let text = serde_json::to_string(&resume).unwrap();
        assert_eq!(text, r#"{"type":"watch","run":"r1","after":41,"log":7}"#);
        assert_eq!(
            serde_json::from_str::<TraceClientMsg>(&text).unwrap(),
            resume
        );
    }
}
