//! A HAR file (HAR 1.2, as Chrome's and Firefox's Network tab save it with "Save all as HAR")
//! made into a trace the diagram, waterfall, inspector and exports draw like any run: each
//! origin a lifeline beside the browser, each entry a request and its response placed by the
//! file's own times, its timing phases (blocked, DNS, connect, TLS, send, wait, receive) on the
//! response, and WebSocket messages (Chrome's `_webSocketMessages`) and event-stream messages
//! (`_eventSourceMessages`) as frames on their connection.
//!
//! A HAR records only the browser's side: a request is drawn arriving when it was sent (its
//! `send` phase) and the answer leaving when its first byte came (after `wait`), so the whole
//! wait (network and server together) is drawn at the origin.
//!
//! `Cookie`, `Set-Cookie`, `Authorization` and `Proxy-Authorization` values are hidden unless
//! [`Secrets::Shown`]: what is hidden is never in the trace, so no export can carry it.
//! Pure functions, unit-tested natively; the page converts a big file in slices
//! ([`Converter`]).

use protocol::trace::{
    Actor, Detail, Header, Kind, Message, Observer, Phase, RequestId, RunId, Transport,
};
use serde::{Deserialize, Deserializer, de::IntoDeserializer};

use super::export::TraceFile;

/// The file's entries the page draws at most.
pub const MAX_ENTRIES: usize = 20_000;
/// The largest file the page reads, in bytes.
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// Frames drawn per WebSocket or event stream at most (the rest are counted in a note).
pub const MAX_FRAMES_PER_ENTRY: usize = 2_000;

/// Whether header values that carry credentials are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Hidden,
    Shown,
}

#[derive(Debug, Deserialize)]
pub struct Har {
    pub log: Log,
}

#[derive(Debug, Deserialize)]
pub struct Log {
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub started_date_time: String,
    /// Total milliseconds, from the start to the last byte.
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub time: f64,
    pub request: HarRequest,
    pub response: HarResponse,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default, rename = "_resourceType")]
    pub resource_type: Option<String>,
    /// The connection id (recent Chrome writes the server's port here instead, and the id in
    /// `_connectionId`): see [`Entry::connection_number`]. A string or a number, as writers
    /// differ (chrome-har writes `_connectionId` as a number).
    #[serde(default)]
    pub connection: Option<serde_json::Value>,
    /// The connection id as recent Chrome writes it.
    #[serde(default, rename = "_connectionId")]
    pub connection_id: Option<serde_json::Value>,
    #[serde(default, rename = "_webSocketMessages")]
    pub web_socket_messages: Vec<Frame>,
    #[serde(default, rename = "_eventSourceMessages")]
    pub event_source_messages: Vec<EventSourceMessage>,
}

impl Entry {
    /// The connection the entry went over: `_connectionId` where the file has one (recent
    /// Chrome, whose `connection` is then the server's port), else `connection`.
    pub fn connection_number(&self) -> Option<u64> {
        let number = |id: &serde_json::Value| match id {
            serde_json::Value::String(text) => text.trim().parse().ok(),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        };
        self.connection_id
            .as_ref()
            .and_then(number)
            .or_else(|| self.connection.as_ref().and_then(number))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HarRequest {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub http_version: String,
    #[serde(default)]
    pub headers: Vec<NameValue>,
    #[serde(default = "unknown", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub headers_size: i64,
    #[serde(default = "unknown", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub body_size: i64,
    #[serde(default)]
    pub post_data: Option<PostData>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HarResponse {
    /// 0 (or `null`) when no answer came.
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub status: u16,
    #[serde(default)]
    pub status_text: String,
    #[serde(default)]
    pub http_version: String,
    #[serde(default)]
    pub headers: Vec<NameValue>,
    #[serde(default)]
    pub content: Content,
    #[serde(default = "unknown", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub headers_size: i64,
    #[serde(default = "unknown", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub body_size: i64,
    /// Bytes on the wire, where Chrome knows them (`null` reads as absent).
    #[serde(default, rename = "_transferSize")]
    pub transfer_size: Option<i64>,
}

/// What a size or a timing the file does not know, or that does not apply, is taken as: -1, as
/// HAR writes it.
const UNKNOWN: i8 = -1;

fn unknown() -> i64 {
    UNKNOWN.into()
}

/// A number the file may write as `null` (chrome-har writes NaN so), read as if it were
/// missing: `MISSING`, what the field's `default` gives, instead of refusing the whole file.
fn null_as<'de, D, T, const MISSING: i8>(number: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(number)? {
        Some(n) => Ok(n),
        None => T::deserialize(MISSING.into_deserializer()),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NameValue {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A request's body: its `text`, or only its `params` (chrome-har writes form and JSON bodies
/// so, a JSON body's fields with their JSON values).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub text: Option<String>,
    /// The body's fields, by name.
    #[serde(default)]
    pub params: Vec<PostParam>,
}

/// One field of a body written as `params`: a form's text, or any JSON value of a JSON body.
#[derive(Debug, Clone, Deserialize)]
pub struct PostParam {
    pub name: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

impl PostData {
    /// The body as the inspector shows it: its text, else its params, as a JSON object for a
    /// JSON body and form-encoded (`name=value` joined by `&`) otherwise.
    pub fn shown(&self) -> String {
        match &self.text {
            Some(text) if !text.is_empty() || self.params.is_empty() => text.clone(),
            _ if self.mime_type.contains("json") => serde_json::Value::Object(
                self.params
                    .iter()
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .collect(),
            )
            .to_string(),
            _ => self
                .params
                .iter()
                .map(|p| match &p.value {
                    serde_json::Value::String(text) => format!("{}={text}", p.name),
                    other => format!("{}={other}", p.name),
                })
                .collect::<Vec<_>>()
                .join("&"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub size: i64,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
}

/// Milliseconds of each phase; -1 (or absent, or `null`) when it does not apply.
#[derive(Debug, Clone, Deserialize)]
pub struct Timings {
    #[serde(default = "unknown_ms", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub blocked: f64,
    #[serde(default = "unknown_ms", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub dns: f64,
    #[serde(default = "unknown_ms", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub connect: f64,
    #[serde(default = "unknown_ms", deserialize_with = "null_as::<_, _, UNKNOWN>")]
    pub ssl: f64,
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub send: f64,
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub wait: f64,
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub receive: f64,
}

fn unknown_ms() -> f64 {
    UNKNOWN.into()
}

impl Default for Timings {
    fn default() -> Timings {
        Timings {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            ssl: -1.0,
            send: 0.0,
            wait: 0.0,
            receive: 0.0,
        }
    }
}

/// One WebSocket message as Chrome saves it: `send` or `receive`, at `time` (seconds since the
/// epoch; absent or `null`: drawn with the message before it, or when the connection opened),
/// with its opcode (1 text, 2 binary) and data.
#[derive(Debug, Clone, Deserialize)]
pub struct Frame {
    #[serde(rename = "type")]
    pub direction: String,
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub time: f64,
    #[serde(default = "text_opcode", deserialize_with = "null_as::<_, _, 1>")]
    pub opcode: u8,
    #[serde(default)]
    pub data: String,
}

fn text_opcode() -> u8 {
    1
}

/// One event-stream message: its type, id and data, at `time` (seconds since the epoch; absent
/// or `null` as for a [`Frame`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSourceMessage {
    #[serde(default, deserialize_with = "null_as::<_, _, 0>")]
    pub time: f64,
    #[serde(default)]
    pub event_name: String,
    #[serde(default)]
    pub event_id: String,
    #[serde(default)]
    pub data: String,
}

/// How every refusal of a file that is not a HAR at all begins.
pub const NOT_HAR: &str = "not a HAR file";

/// Reads a HAR file's text: a clear error for what is not one.
pub fn parse(text: &str) -> Result<Har, String> {
    if text.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the file is {:.1} MB; at most {} MB are read",
            text.len() as f64 / 1e6,
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{NOT_HAR}: not JSON ({e})"))?;
    from_value(value)
}

/// A HAR from its parsed JSON (the page parses with the browser's own `JSON.parse`).
pub fn from_value(value: serde_json::Value) -> Result<Har, String> {
    if value.pointer("/log/entries").is_none_or(|e| !e.is_array()) {
        return Err(format!("{NOT_HAR}: it has no log.entries list"));
    }
    let har: Har = serde_json::from_value(value).map_err(|e| format!("a broken HAR file: {e}"))?;
    if har.log.entries.len() > MAX_ENTRIES {
        return Err(format!(
            "the file has {} entries; at most {MAX_ENTRIES} are drawn",
            har.log.entries.len()
        ));
    }
    Ok(har)
}

/// Milliseconds since the epoch of an ISO 8601 date-time as HAR writes it
/// (`2026-12-06T10:02:22.123Z`, or with an offset such as `+01:00`).
pub fn epoch_ms(text: &str) -> Option<f64> {
    let (date, time) = text.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset_min) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, mi) = zone[1..]
            .split_once(':')
            .unwrap_or((&zone[1..3], &zone[3..]));
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 60 + mi.parse::<i64>().ok()?),
        )
    };
    let mut hms = clock.split(':');
    let (h, mi) = (
        hms.next()?.parse::<i64>().ok()?,
        hms.next()?.parse::<i64>().ok()?,
    );
    let s: f64 = hms.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let minutes = days * 1440 + h * 60 + mi - offset_min;
    Some(minutes as f64 * 60_000.0 + s * 1000.0)
}

/// The origin of `url` (`https://example.org`, `http://127.0.0.1:8080`), or the url itself.
/// A WebSocket's (`ws://`, `wss://`) is its server's `http://` (`https://`) one: a page and its
/// socket to the same server are one lifeline.
pub fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let scheme = if scheme.eq_ignore_ascii_case("ws") {
        "http"
    } else if scheme.eq_ignore_ascii_case("wss") {
        "https"
    } else {
        scheme
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// `url` without its origin: the path and query a request line carries.
fn path_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

fn is_secret(name: &str) -> bool {
    [
        "cookie",
        "set-cookie",
        "authorization",
        "proxy-authorization",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

fn headers(list: &[NameValue], secrets: Secrets) -> Vec<Header> {
    list.iter()
        .map(|h| Header {
            name: h.name.clone(),
            value: if secrets == Secrets::Hidden && is_secret(&h.name) {
                "(hidden: switch \"show credentials\" on to see it)".into()
            } else {
                h.value.clone()
            },
        })
        .collect()
}

fn transport(version: &str) -> Transport {
    let v = version.to_ascii_lowercase();
    if v.contains("h2") || v.contains("http/2") || v.contains("h3") || v.contains("http/3") {
        Transport::H2
    } else {
        Transport::Http1
    }
}

fn us(ms: f64) -> i64 {
    (ms * 1000.0).round() as i64
}

/// Non-negative milliseconds of a phase (-1: it did not apply).
fn phase_ms(ms: f64) -> f64 {
    if ms.is_finite() && ms > 0.0 { ms } else { 0.0 }
}

/// The body as the inspector shows it: text as it is, base64 said so, cut to the limit.
fn body_of(text: Option<&str>, encoding: Option<&str>) -> (String, bool) {
    let text = text.unwrap_or_default();
    let shown = match encoding {
        Some(e) if !text.is_empty() => format!("({e}-encoded) {text}"),
        _ => text.to_owned(),
    };
    let limit = Detail::BODY_LIMIT;
    if shown.len() <= limit {
        return (shown, false);
    }
    let mut cut = limit;
    while !shown.is_char_boundary(cut) {
        cut -= 1;
    }
    (shown[..cut].to_owned(), true)
}

/// Bytes on the wire of a request or response: headers and body where the file knows them.
fn wire_bytes(headers: i64, body: i64) -> Option<u64> {
    let total = headers.max(0) + body.max(0);
    (headers >= 0 || body >= 0).then_some(total as u64)
}

/// Entries made into the page's trace one at a time, so a big file converts in slices with the
/// page yielding between them: [`Converter::add`] each entry, then [`Converter::finish`].
pub struct Converter {
    /// The earliest start, in ms since the epoch: the trace's zero ([`earliest_start`]).
    zero_ms: f64,
    secrets: Secrets,
    run: RunId,
    messages: Vec<Message>,
    added: usize,
    /// Entries whose start date could not be read (drawn at zero, counted in a note).
    undated: usize,
}

/// The earliest of these start times, in ms since the epoch (0 when none can be read).
pub fn earliest_start<'a>(starts: impl IntoIterator<Item = &'a str>) -> f64 {
    starts
        .into_iter()
        .filter_map(epoch_ms)
        .min_by(f64::total_cmp)
        .unwrap_or(0.0)
}

impl Converter {
    pub fn new(zero_ms: f64, secrets: Secrets) -> Converter {
        Converter {
            zero_ms,
            secrets,
            run: RunId("har".into()),
            messages: Vec::new(),
            added: 0,
            undated: 0,
        }
    }

    /// Entries added so far.
    pub fn added(&self) -> usize {
        self.added
    }

    /// Adds one entry: its request, its response, its frames and events.
    pub fn add(&mut self, entry: &Entry) {
        self.added += 1;
        let n = self.added;
        self.entry(n, entry);
    }

    /// The trace: every message in the order it was sent, numbered.
    pub fn finish(mut self) -> TraceFile {
        if self.undated > 0 {
            let note = self.message(
                Kind::Note,
                "note".into(),
                (Actor::browser(), Actor::browser()),
                format!(
                    "{} entries had no readable start time: drawn at 0",
                    self.undated
                ),
            );
            self.messages.push(Message {
                sent_us: Some(0),
                recv_us: Some(0),
                ..note
            });
        }
        self.messages.sort_by_key(|m| m.sent_us.unwrap_or(0));
        for (seq, m) in self.messages.iter_mut().enumerate() {
            m.seq = seq as u64;
        }
        TraceFile {
            version: TraceFile::VERSION,
            demo: "har".into(),
            browser: self.messages,
            server: Vec::new(),
            clock_hint: None,
            link: Default::default(),
        }
    }

    fn message(&self, kind: Kind, rid: String, ends: (Actor, Actor), label: String) -> Message {
        Message {
            run: self.run.clone(),
            seq: 0,
            observer: Observer::Browser,
            request_id: Some(RequestId(rid)),
            from: ends.0,
            to: ends.1,
            kind,
            transport: Transport::Http1,
            sent_us: None,
            recv_us: None,
            connection: None,
            stream: None,
            label,
            bytes: None,
            status: None,
            detail: None,
        }
    }

    fn entry(&mut self, n: usize, e: &Entry) {
        let start_ms = match epoch_ms(&e.started_date_time) {
            Some(ms) => ms - self.zero_ms,
            None => {
                self.undated += 1;
                0.0
            }
        };
        let t = &e.timings;
        let connecting = phase_ms(t.dns) + phase_ms(t.connect);
        let phases_ms = [
            ("blocked", phase_ms(t.blocked)),
            ("dns", phase_ms(t.dns)),
            // HAR counts TLS inside connect; drawn apart.
            ("connect", (phase_ms(t.connect) - phase_ms(t.ssl)).max(0.0)),
            ("tls", phase_ms(t.ssl)),
            ("send", phase_ms(t.send)),
            ("wait", phase_ms(t.wait)),
            ("receive", phase_ms(t.receive)),
        ];
        let mut at = start_ms;
        let mut phases = Vec::new();
        for (name, ms) in phases_ms {
            if ms > 0.0 {
                phases.push(Phase {
                    name: name.into(),
                    start_us: us(at),
                    dur_us: us(ms),
                });
            }
            at += ms;
        }
        let sent_ms = start_ms + phase_ms(t.blocked) + connecting;
        let arrived_ms = sent_ms + phase_ms(t.send);
        let answered_ms = arrived_ms + phase_ms(t.wait);
        let end_ms = (start_ms + e.time.max(0.0)).max(answered_ms + phase_ms(t.receive));
        let site = Actor::new(&origin(&e.request.url));
        let rid = format!("h{n}");
        let connection = e.connection_number();
        let req = &e.request;
        let version = if req.http_version.is_empty() {
            &e.response.http_version
        } else {
            &req.http_version
        };
        let path = path_of(&req.url);
        let post = req.post_data.as_ref().map(PostData::shown);
        let (body, body_truncated) = body_of(post.as_deref(), None);
        let request = Message {
            transport: transport(version),
            sent_us: Some(us(sent_ms)),
            recv_us: Some(us(arrived_ms)),
            connection,
            bytes: wire_bytes(req.headers_size, req.body_size),
            detail: Some(Detail {
                start_line: format!("{} {path} {version}", req.method),
                headers: headers(&req.headers, self.secrets),
                body_bytes: req.body_size.max(0) as u64,
                body,
                body_truncated,
                ..Detail::default()
            }),
            ..self.message(
                Kind::Request,
                rid.clone(),
                (Actor::browser(), site.clone()),
                format!("{} {path}", req.method),
            )
        };
        self.messages.push(request);
        let res = &e.response;
        if res.status == 0 {
            // No answer came (cancelled, blocked, failed): the request alone, and why.
            let failed = self.message(
                Kind::Note,
                format!("{rid}-failed"),
                (Actor::browser(), Actor::browser()),
                format!("{} {}: no response", req.method, path),
            );
            self.messages.push(Message {
                sent_us: Some(us(end_ms)),
                recv_us: Some(us(end_ms)),
                ..failed
            });
            return;
        }
        let (body, body_truncated) =
            body_of(res.content.text.as_deref(), res.content.encoding.as_deref());
        let status_line = format!("{} {} {}", res.http_version, res.status, res.status_text);
        let is_socket = e.resource_type.as_deref() == Some("websocket") || res.status == 101;
        let response = Message {
            transport: transport(&res.http_version),
            sent_us: Some(us(answered_ms)),
            recv_us: Some(us(end_ms)),
            connection,
            status: Some(res.status),
            bytes: res
                .transfer_size
                .filter(|&n| n >= 0)
                .map(|n| n as u64)
                .or_else(|| wire_bytes(res.headers_size, res.body_size)),
            detail: Some(Detail {
                start_line: status_line.trim().to_owned(),
                headers: headers(&res.headers, self.secrets),
                body_bytes: res.content.size.max(0) as u64,
                body,
                body_truncated,
                phases,
                ..Detail::default()
            }),
            ..self.message(
                Kind::Response,
                rid.clone(),
                (site.clone(), Actor::browser()),
                format!("{} {}", res.status, res.status_text)
                    .trim()
                    .to_owned(),
            )
        };
        self.messages.push(response);
        let opened = (connection, us(answered_ms));
        if is_socket {
            self.frames(&rid, &site, opened, &e.web_socket_messages);
        }
        self.events(&rid, &site, opened, &e.event_source_messages);
    }

    /// Microseconds on the trace's clock of a message stamped `seconds` since the epoch; one
    /// with no time (absent, `null`) at `previous`, the time of the message before it.
    fn stamped(&self, seconds: f64, previous: i64) -> i64 {
        if seconds.is_finite() && seconds > 0.0 {
            us(seconds * 1000.0 - self.zero_ms)
        } else {
            previous
        }
    }

    /// The socket's frames, on its `(connection, opened at)`.
    fn frames(&mut self, rid: &str, site: &Actor, opened: (Option<u64>, i64), frames: &[Frame]) {
        let (connection, mut at) = opened;
        for (n, f) in frames.iter().take(MAX_FRAMES_PER_ENTRY).enumerate() {
            at = self.stamped(f.time, at);
            let sent = f.direction == "send";
            let ends = if sent {
                (Actor::browser(), site.clone())
            } else {
                (site.clone(), Actor::browser())
            };
            let what = match f.opcode {
                1 => "text",
                2 => "binary",
                8 => "close",
                9 => "ping",
                10 => "pong",
                _ => "frame",
            };
            let (body, body_truncated) = body_of(Some(&f.data), None);
            let label = format!("{what} {}", short(&f.data));
            let frame = Message {
                transport: Transport::WebSocket,
                sent_us: Some(at),
                recv_us: Some(at),
                connection,
                bytes: Some(f.data.len() as u64),
                detail: Some(Detail {
                    body_bytes: f.data.len() as u64,
                    body,
                    body_truncated,
                    ..Detail::default()
                }),
                ..self.message(Kind::Push, format!("{rid}-f{n}"), ends, label)
            };
            self.messages.push(frame);
        }
        self.too_many(rid, frames.len(), "WebSocket messages");
    }

    /// The stream's events, on its `(connection, opened at)`.
    fn events(
        &mut self,
        rid: &str,
        site: &Actor,
        opened: (Option<u64>, i64),
        events: &[EventSourceMessage],
    ) {
        let (connection, mut at) = opened;
        for (n, m) in events.iter().take(MAX_FRAMES_PER_ENTRY).enumerate() {
            at = self.stamped(m.time, at);
            let name = if m.event_name.is_empty() {
                "message"
            } else {
                &m.event_name
            };
            let (body, body_truncated) = body_of(Some(&m.data), None);
            let event = Message {
                transport: Transport::Sse,
                sent_us: Some(at),
                recv_us: Some(at),
                connection,
                bytes: Some(m.data.len() as u64),
                detail: Some(Detail {
                    body_bytes: m.data.len() as u64,
                    body,
                    body_truncated,
                    ..Detail::default()
                }),
                ..self.message(
                    Kind::Event,
                    format!("{rid}-e{n}"),
                    (site.clone(), Actor::browser()),
                    format!("{name} id={} {}", m.event_id, short(&m.data)),
                )
            };
            self.messages.push(event);
        }
        self.too_many(rid, events.len(), "event-stream messages");
    }

    fn too_many(&mut self, rid: &str, had: usize, what: &str) {
        if had <= MAX_FRAMES_PER_ENTRY {
            return;
        }
        let at = self.messages.last().and_then(|m| m.recv_us).unwrap_or(0);
        let note = self.message(
            Kind::Note,
            format!("{rid}-more"),
            (Actor::browser(), Actor::browser()),
            format!("{} more {what} not drawn", had - MAX_FRAMES_PER_ENTRY),
        );
        self.messages.push(Message {
            sent_us: Some(at),
            recv_us: Some(at),
            ..note
        });
    }
}

/// The first 40 characters of `text`, on one line.
fn short(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// The whole file at once (an import on a demo page, the tests; the HAR page goes in slices).
pub fn to_trace(har: &Har, secrets: Secrets) -> TraceFile {
    let zero = earliest_start(har.log.entries.iter().map(|e| e.started_date_time.as_str()));
    let mut converter = Converter::new(zero, secrets);
    for entry in &har.log.entries {
        converter.add(entry);
    }
    converter.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"{"log":{"version":"1.2","creator":{"name":"WebInspector","version":"537.36"},
      "entries":[
        {"startedDateTime":"2026-12-06T10:00:00.100Z","time":50,
         "request":{"method":"GET","url":"https://cdn.example.org/app.js","httpVersion":"h2",
           "headers":[{"name":"cookie","value":"sid=secret"}],"headersSize":-1,"bodySize":0},
         "response":{"status":200,"statusText":"","httpVersion":"h2","headers":[{"name":"set-cookie","value":"a=b"}],
           "content":{"size":10,"mimeType":"text/javascript","text":"alert(1);"},"headersSize":-1,"bodySize":-1,"_transferSize":300},
         "timings":{"blocked":1,"dns":-1,"connect":-1,"ssl":-1,"send":1,"wait":40,"receive":8},"connection":"7"},
        {"startedDateTime":"2026-12-06T11:00:00.000+01:00","time":20,
         "request":{"method":"POST","url":"http://127.0.0.1:8080/api/echo?run=r","httpVersion":"HTTP/1.1",
           "headers":[{"name":"authorization","value":"Bearer x"}],"headersSize":120,"bodySize":9,
           "postData":{"mimeType":"application/json","text":"{\"a\":1}"}},
         "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],
           "content":{"size":5,"mimeType":"application/json","text":"{}"},"headersSize":80,"bodySize":5},
         "timings":{"blocked":2,"dns":3,"connect":10,"ssl":4,"send":1,"wait":2,"receive":2}},
        {"startedDateTime":"2026-12-06T10:00:00.200Z","time":1000,"_resourceType":"websocket",
         "request":{"method":"GET","url":"ws://127.0.0.1:8080/api/push/ws","httpVersion":"HTTP/1.1","headers":[]},
         "response":{"status":101,"statusText":"Switching Protocols","httpVersion":"HTTP/1.1","headers":[],"content":{"size":0}},
         "timings":{"blocked":0,"send":0,"wait":5,"receive":0},
         "_webSocketMessages":[{"type":"send","time":1796551200.3,"opcode":1,"data":"{\"type\":\"follow\"}"},
                               {"type":"receive","time":1796551200.4,"opcode":1,"data":"{\"type\":\"progress\"}"}]}
      ]}}"#;

    #[test]
    fn dates_are_read_with_their_offsets() {
        assert_eq!(epoch_ms("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(epoch_ms("1970-01-02T00:00:01.5Z"), Some(86_401_500.0));
        assert_eq!(
            epoch_ms("2026-12-06T11:00:00.000+01:00"),
            epoch_ms("2026-12-06T10:00:00Z")
        );
        assert_eq!(epoch_ms("2026-12-06T10:00:00Z"), Some(1_796_551_200_000.0));
        assert_eq!(epoch_ms("yesterday"), None);
    }

    #[test]
    fn each_entry_is_a_request_and_its_response_from_its_origin() {
        let trace = to_trace(&parse(SMALL).unwrap(), Secrets::Hidden);
        let m = &trace.browser;
        // Sorted by start: the echo (10:00:00.000), the script (.100), the socket (.200).
        let requests: Vec<_> = m.iter().filter(|m| m.kind == Kind::Request).collect();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].label, "POST /api/echo?run=r");
        assert_eq!(requests[0].to.0, "http://127.0.0.1:8080");
        assert_eq!(requests[1].to.0, "https://cdn.example.org");
        assert_eq!(requests[1].transport, Transport::H2);
        // Placed by the file's times: blocked 2 + dns 3 + connect 10 before it left.
        assert_eq!(requests[0].sent_us, Some(15_000));
        assert_eq!(requests[1].sent_us, Some(101_000));
        let echo_answer = m
            .iter()
            .find(|x| x.kind == Kind::Response && x.request_id == requests[0].request_id)
            .unwrap();
        assert_eq!(echo_answer.sent_us, Some(18_000));
        assert_eq!(echo_answer.recv_us, Some(20_000));
        assert_eq!(echo_answer.bytes, Some(85));
        let phases: Vec<(&str, i64)> = echo_answer
            .detail
            .as_ref()
            .unwrap()
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.dur_us))
            .collect();
        assert_eq!(
            phases,
            [
                ("blocked", 2000),
                ("dns", 3000),
                ("connect", 6000),
                ("tls", 4000),
                ("send", 1000),
                ("wait", 2000),
                ("receive", 2000)
            ]
        );
        // Credentials hidden.
        let all = serde_json::to_string(&trace).unwrap();
        assert!(!all.contains("secret") && !all.contains("Bearer") && !all.contains("a=b"));
        // The socket's two messages, on its connection, in their directions.
        let frames: Vec<_> = m
            .iter()
            .filter(|m| m.transport == Transport::WebSocket)
            .collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            (frames[0].from.0.as_str(), frames[0].sent_us),
            ("browser", Some(300_000))
        );
        assert_eq!(frames[1].to.0, "browser");
        let shown = to_trace(&parse(SMALL).unwrap(), Secrets::Shown);
        assert!(serde_json::to_string(&shown).unwrap().contains("Bearer x"));
    }

    #[test]
    fn what_is_not_a_har_is_refused_clearly() {
        assert!(parse("not json").unwrap_err().contains("not JSON"));
        assert!(
            parse(r#"{"version":1}"#)
                .unwrap_err()
                .contains("no log.entries")
        );
        assert!(
            parse(r#"{"log":{"entries":[{"x":1}]}}"#)
                .unwrap_err()
                .starts_with("a broken HAR file")
        );
    }

    #[test]
    fn entries_added_one_at_a_time_make_the_same_trace() {
        let har = parse(SMALL).unwrap();
        let zero = earliest_start(har.log.entries.iter().map(|e| e.started_date_time.as_str()));
        let mut c = Converter::new(zero, Secrets::Hidden);
        for e in &har.log.entries {
            c.add(e);
        }
        assert_eq!(c.added(), 3);
        assert_eq!(c.finish(), to_trace(&har, Secrets::Hidden));
    }

    /// `log.entries` made into a file around these entries' JSON.
    fn har_of(entries: &str) -> Har {
        parse(&format!(
            r#"{{"log":{{"version":"1.2","entries":[{entries}]}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn chromes_connection_id_is_preferred_to_its_port() {
        let har = har_of(
            r#"{"startedDateTime":"2026-12-06T10:00:00Z","request":{"method":"GET","url":"https://a/x"},
                "response":{"status":200},"connection":"443","_connectionId":"1234"},
               {"startedDateTime":"2026-12-06T10:00:01Z","request":{"method":"GET","url":"https://a/y"},
                "response":{"status":200},"connection":"7"}"#,
        );
        let trace = to_trace(&har, Secrets::Hidden);
        let connections: Vec<_> = trace
            .browser
            .iter()
            .filter(|m| m.kind == Kind::Request)
            .map(|m| m.connection)
            .collect();
        assert_eq!(connections, [Some(1234), Some(7)]);
    }

    #[test]
    fn a_null_number_is_read_as_missing() {
        // chrome-har writes NaN as null.
        let har = har_of(
            r#"{"startedDateTime":"2026-12-06T10:00:00Z","time":null,"_resourceType":"websocket",
                "request":{"method":"GET","url":"ws://a/ws","headersSize":null,"bodySize":null},
                "response":{"status":101,"headersSize":null,"bodySize":null,"_transferSize":null,
                  "content":{"size":null}},
                "timings":{"blocked":null,"dns":-1,"connect":null,"ssl":null,"send":null,"wait":5,"receive":null},
                "_webSocketMessages":[{"type":"receive","time":null,"opcode":null,"data":"hi"}]},
               {"startedDateTime":"2026-12-06T10:00:01Z","request":{"method":"GET","url":"http://a/sse"},
                "response":{"status":200},
                "_eventSourceMessages":[{"time":null,"eventName":"tick","data":"1"}]},
               {"startedDateTime":"2026-12-06T10:00:02Z","request":{"method":"GET","url":"http://a/gone"},
                "response":{"status":null}}"#,
        );
        let socket = &har.log.entries[0];
        assert_eq!(socket.time, 0.0);
        assert_eq!(
            (socket.request.headers_size, socket.response.body_size),
            (-1, -1)
        );
        let t = &socket.timings;
        assert_eq!(
            (t.blocked, t.dns, t.connect, t.ssl),
            (-1.0, -1.0, -1.0, -1.0)
        );
        assert_eq!((t.send, t.wait, t.receive), (0.0, 5.0, 0.0));
        assert_eq!(socket.web_socket_messages[0].opcode, 1);
        let trace = to_trace(&har, Secrets::Hidden);
        let m = &trace.browser;
        let handshake = m.iter().find(|m| m.status == Some(101)).unwrap();
        // Sizes unknown, not 0.
        assert_eq!(handshake.bytes, None);
        assert_eq!(handshake.sent_us, Some(5_000));
        // A message with no time is drawn when its connection opened.
        let frame = m
            .iter()
            .find(|m| m.transport == Transport::WebSocket)
            .unwrap();
        assert_eq!(frame.sent_us, Some(5_000));
        let event = m.iter().find(|m| m.kind == Kind::Event).unwrap();
        assert_eq!(event.sent_us, Some(1_000_000));
        // No status: no answer came.
        assert!(m.iter().any(|m| m.label == "GET /gone: no response"));
    }

    #[test]
    fn a_body_with_only_params_is_shown_form_encoded() {
        let har = har_of(
            r#"{"startedDateTime":"2026-12-06T10:00:00Z","request":{"method":"POST","url":"http://a/form",
                  "postData":{"mimeType":"application/x-www-form-urlencoded",
                    "params":[{"name":"user","value":"ada"},{"name":"lang","value":"en"}]}},
                "response":{"status":204}}"#,
        );
        let trace = to_trace(&har, Secrets::Hidden);
        let request = trace
            .browser
            .iter()
            .find(|m| m.kind == Kind::Request)
            .unwrap();
        assert_eq!(request.detail.as_ref().unwrap().body, "user=ada&lang=en");
        // The text, where there is one, as it is.
        let with_text = PostData {
            mime_type: String::new(),
            text: Some("{\"a\":1}".into()),
            params: har.log.entries[0].request.post_data.clone().unwrap().params,
        };
        assert_eq!(with_text.shown(), "{\"a\":1}");
        // A JSON body written as params (chrome-har), its values JSON: shown as the object.
        let json: PostData = serde_json::from_str(
            r#"{"mimeType":"application/json","params":[{"name":"steps","value":2},{"name":"tag","value":"a"}]}"#,
        )
        .unwrap();
        assert_eq!(json.shown(), r#"{"steps":2,"tag":"a"}"#);
    }

    #[test]
    fn a_websocket_is_on_its_servers_lifeline() {
        assert_eq!(
            origin("ws://127.0.0.1:8080/api/push/ws"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin("WSS://example.org/live?x=1"), "https://example.org");
        assert_eq!(origin("https://example.org/"), "https://example.org");
        // SMALL's echo and its socket to the same server: one lifeline.
        let trace = to_trace(&parse(SMALL).unwrap(), Secrets::Hidden);
        let lifelines: std::collections::BTreeSet<&str> = trace
            .browser
            .iter()
            .flat_map(|m| [m.from.0.as_str(), m.to.0.as_str()])
            .collect();
        assert_eq!(
            lifelines.into_iter().collect::<Vec<_>>(),
            [
                "browser",
                "http://127.0.0.1:8080",
                "https://cdn.example.org"
            ]
        );
    }
}
