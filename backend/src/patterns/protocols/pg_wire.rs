//! PostgreSQL's wire protocol as it crosses the relay: a decoder that cuts each direction's
//! bytes into the protocol's messages (a type byte and a length; the startup message has no
//! type byte) and says what each one carries, and the relay that passes the bytes on unchanged
//! while recording every message as a hop. What is drawn is what was on the wire, not a guess.

use std::sync::{Arc, Mutex};

use protocol::{
    pairing,
    protocols::{Direction, WireMessage},
    trace::{Detail, Header, Kind, Transport},
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::dns::hex;
use crate::trace::{Hop, HopTime, Tracer};

/// A message longer than this is passed on but not decoded (the demo's are far smaller).
const MAX_DECODED: usize = 64 * 1024;
/// Messages one connection's relay records at most; later ones are still passed on.
pub const MAX_RECORDED: usize = 200;

/// One whole message of either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The type byte; `None` for the untyped startup message.
    pub tag: Option<u8>,
    /// What follows the length field (empty when the message was too long to decode).
    pub payload: Vec<u8>,
    /// Its size on the wire: type byte, length and payload.
    pub wire_bytes: usize,
}

/// Cuts one direction's byte stream into [`Frame`]s, however the reads split it.
pub struct Decoder {
    direction: Direction,
    /// The client's first message has no type byte.
    untyped_next: bool,
    buf: Vec<u8>,
    /// Bytes of an over-long message still to skip.
    skipping: usize,
}

impl Decoder {
    pub fn new(direction: Direction) -> Decoder {
        Decoder {
            direction,
            untyped_next: direction == Direction::Request,
            buf: Vec::new(),
            skipping: 0,
        }
    }

    /// The messages `bytes` completes.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Frame> {
        let skip = self.skipping.min(bytes.len());
        self.skipping -= skip;
        bytes = &bytes[skip..];
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        loop {
            let head = if self.untyped_next { 4 } else { 5 };
            if self.buf.len() < head {
                return frames;
            }
            let tag = (!self.untyped_next).then(|| self.buf[0]);
            let at = head - 4;
            let len = u32::from_be_bytes(self.buf[at..at + 4].try_into().expect("4 bytes"));
            let len = (len as usize).max(4);
            let wire_bytes = at + len;
            if len > MAX_DECODED {
                // Recorded by name and size only; its bytes are skipped as they come.
                self.untyped_next = false;
                let have = self.buf.len().min(wire_bytes);
                self.skipping = wire_bytes - have;
                self.buf.drain(..have);
                frames.push(Frame {
                    tag,
                    payload: Vec::new(),
                    wire_bytes,
                });
                continue;
            }
            if self.buf.len() < wire_bytes {
                return frames;
            }
            let payload = self.buf[head..wire_bytes].to_vec();
            self.buf.drain(..wire_bytes);
            let frame = Frame {
                tag,
                payload,
                wire_bytes,
            };
            // An SSL or GSS request is followed by another untyped message (the startup).
            self.untyped_next =
                tag.is_none() && matches!(untyped_code(&frame), 80877103 | 80877104);
            frames.push(frame);
        }
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }
}

/// The request code of an untyped message (the protocol version, or a special request's code).
fn untyped_code(frame: &Frame) -> u32 {
    frame
        .payload
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
}

/// The protocol's name for `frame`, sent in `direction`.
pub fn name(frame: &Frame, direction: Direction) -> &'static str {
    let Some(tag) = frame.tag else {
        return match untyped_code(frame) {
            80877103 => "SSLRequest",
            80877104 => "GSSENCRequest",
            80877102 => "CancelRequest",
            _ => "StartupMessage",
        };
    };
    match direction {
        Direction::Request => match tag {
            b'P' => "Parse",
            b'B' => "Bind",
            b'D' => "Describe",
            b'E' => "Execute",
            b'S' => "Sync",
            b'H' => "Flush",
            b'Q' => "Query",
            b'C' => "Close",
            b'X' => "Terminate",
            b'p' => "PasswordMessage",
            b'F' => "FunctionCall",
            b'd' => "CopyData",
            b'c' => "CopyDone",
            b'f' => "CopyFail",
            _ => "Unknown",
        },
        Direction::Response => match tag {
            b'R' => match untyped_code(frame) {
                0 => "AuthenticationOk",
                3 => "AuthenticationCleartextPassword",
                5 => "AuthenticationMD5Password",
                10 => "AuthenticationSASL",
                11 => "AuthenticationSASLContinue",
                12 => "AuthenticationSASLFinal",
                _ => "Authentication",
            },
            b'S' => "ParameterStatus",
            b'K' => "BackendKeyData",
            b'Z' => "ReadyForQuery",
            b'1' => "ParseComplete",
            b'2' => "BindComplete",
            b'3' => "CloseComplete",
            b't' => "ParameterDescription",
            b'T' => "RowDescription",
            b'D' => "DataRow",
            b'C' => "CommandComplete",
            b'n' => "NoData",
            b's' => "PortalSuspended",
            b'I' => "EmptyQueryResponse",
            b'E' => "ErrorResponse",
            b'N' => "NoticeResponse",
            b'A' => "NotificationResponse",
            b'v' => "NegotiateProtocolVersion",
            _ => "Unknown",
        },
    }
}

/// Reads the fields of a payload in order; every read stops quietly at the end.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn i16(&mut self) -> i16 {
        let b = self.take(2);
        if b.len() == 2 {
            i16::from_be_bytes([b[0], b[1]])
        } else {
            0
        }
    }
    fn i32(&mut self) -> i32 {
        let b = self.take(4);
        if b.len() == 4 {
            i32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            0
        }
    }
    /// A NUL-terminated string.
    fn cstr(&mut self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.take(end + 1);
        s
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A value as a person reads it: text when it is text, else its bytes (and as an integer when
/// it is one of 2, 4 or 8 bytes: tokio-postgres asks for binary results).
fn value(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => {
            let n = match bytes.len() {
                2 => Some(i64::from(i16::from_be_bytes([bytes[0], bytes[1]]))),
                4 => Some(i64::from(i32::from_be_bytes(bytes.try_into().expect("4")))),
                8 => Some(i64::from_be_bytes(bytes.try_into().expect("8"))),
                _ => None,
            };
            let as_int = n.map(|n| format!(" = {n}")).unwrap_or_default();
            format!("binary {}{as_int}", hex(bytes).replace('\n', " "))
        }
    }
}

/// What a message carries, field by field (`name: value`), and a one-line summary for its arrow.
pub fn fields(frame: &Frame, direction: Direction) -> (Vec<(String, String)>, String) {
    let mut f = Fields(&frame.payload);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_owned(), v));
    let summary;
    match (direction, frame.tag) {
        (_, None) => {
            let code = f.i32();
            if code == 196608 {
                put("protocol", "3.0".into());
                let mut pairs = Vec::new();
                while !f.is_empty() {
                    let k = f.cstr();
                    if k.is_empty() {
                        break;
                    }
                    let v = f.cstr();
                    pairs.push(format!("{k}={v}"));
                    put(&k, v);
                }
                summary = pairs
                    .iter()
                    .find(|p| p.starts_with("user="))
                    .cloned()
                    .unwrap_or_default();
            } else {
                put("code", code.to_string());
                summary = String::new();
            }
        }
        (Direction::Request, Some(tag)) => match tag {
            b'P' => {
                let statement = f.cstr();
                let query = f.cstr();
                let n = f.i16();
                let types: Vec<String> = (0..n).map(|_| f.i32().to_string()).collect();
                put("statement", format!("{statement:?}"));
                put("query", query.clone());
                put("parameter type oids", types.join(", "));
                summary = query;
            }
            b'B' => {
                let portal = f.cstr();
                let statement = f.cstr();
                let formats: Vec<String> = (0..f.i16()).map(|_| f.i16().to_string()).collect();
                let n = f.i16();
                let mut values = Vec::new();
                for i in 1..=n {
                    let len = f.i32();
                    let v = if len < 0 {
                        "NULL".to_owned()
                    } else {
                        value(f.take(len as usize))
                    };
                    values.push(format!("${i}={v}"));
                }
                let results: Vec<String> = (0..f.i16()).map(|_| f.i16().to_string()).collect();
                put("portal", format!("{portal:?}"));
                put("statement", format!("{statement:?}"));
                put("parameter formats (0 text, 1 binary)", formats.join(", "));
                put("parameters", values.join(", "));
                put("result formats", results.join(", "));
                summary = values.join(", ");
            }
            b'D' | b'C' => {
                let what = if f.u8() == b'S' {
                    "statement"
                } else {
                    "portal"
                };
                let name = f.cstr();
                put(what, format!("{name:?}"));
                summary = format!("{what} {name:?}");
            }
            b'E' => {
                let portal = f.cstr();
                let max = f.i32();
                put("portal", format!("{portal:?}"));
                put(
                    "max rows",
                    if max == 0 {
                        "all".into()
                    } else {
                        max.to_string()
                    },
                );
                summary = format!("portal {portal:?}");
            }
            b'Q' => {
                let q = f.cstr();
                put("query", q.clone());
                summary = q;
            }
            b'p' => {
                put(
                    "credential",
                    format!("[redacted: {} bytes]", frame.payload.len()),
                );
                summary = String::new();
            }
            _ => summary = String::new(),
        },
        (Direction::Response, Some(tag)) => match tag {
            b'R' => {
                let code = f.i32();
                put("auth code", code.to_string());
                summary = String::new();
            }
            b'S' => {
                let k = f.cstr();
                let v = f.cstr();
                summary = format!("{k}={v}");
                put(&k, v);
            }
            b'K' => {
                put("process id", f.i32().to_string());
                put("secret key", "[redacted: 4 bytes]".into());
                summary = String::new();
            }
            b'Z' => {
                let status = match f.u8() {
                    b'I' => "idle",
                    b'T' => "in a transaction",
                    b'E' => "in a failed transaction",
                    _ => "?",
                };
                put("transaction status", status.into());
                summary = status.into();
            }
            b't' => {
                let types: Vec<String> = (0..f.i16()).map(|_| f.i32().to_string()).collect();
                put("parameter type oids", types.join(", "));
                summary = format!("{} parameter(s)", types.len());
            }
            b'T' => {
                let mut names = Vec::new();
                for _ in 0..f.i16() {
                    let name = f.cstr();
                    let (_table, _column) = (f.i32(), f.i16());
                    let oid = f.i32();
                    let (_len, _modifier, format) = (f.i16(), f.i32(), f.i16());
                    put(&name, format!("type oid {oid}, format {format}"));
                    names.push(name);
                }
                summary = names.join(", ");
            }
            b'D' => {
                let mut values = Vec::new();
                for i in 1..=f.i16() {
                    let len = f.i32();
                    let v = if len < 0 {
                        "NULL".to_owned()
                    } else {
                        value(f.take(len as usize))
                    };
                    put(&format!("column {i}"), v.clone());
                    values.push(v);
                }
                summary = values.join(" | ");
            }
            b'C' => {
                let tag = f.cstr();
                put("command tag", tag.clone());
                summary = tag;
            }
            b'E' | b'N' => {
                let mut message = String::new();
                loop {
                    let code = f.u8();
                    if code == 0 {
                        break;
                    }
                    let v = f.cstr();
                    let field = match code {
                        b'S' => "severity",
                        b'C' => "code",
                        b'M' => "message",
                        b'D' => "detail",
                        b'H' => "hint",
                        _ => "field",
                    };
                    if code == b'M' {
                        message = v.clone();
                    }
                    put(field, v);
                }
                summary = message;
            }
            _ => summary = String::new(),
        },
    }
    (out, summary)
}

/// The answer that completes a request the client sent, by the protocol's rules (the server
/// answers in order); `None` for one that gets no answer of its own (Flush, Terminate, a
/// password, which the start-up's ReadyForQuery answers).
pub fn completed_by(request: &str) -> Option<&'static [&'static str]> {
    Some(match request {
        "StartupMessage" | "Sync" | "Query" => &["ReadyForQuery"],
        "Parse" => &["ParseComplete"],
        "Bind" => &["BindComplete"],
        "Describe" => &["RowDescription", "NoData"],
        "Execute" => &["CommandComplete", "EmptyQueryResponse", "PortalSuspended"],
        "Close" => &["CloseComplete"],
        _ => return None,
    })
}

/// What one connection's relay saw, in order, for the report, and the requests still waiting
/// for the answer that completes them. Cheap to clone.
#[derive(Clone, Default)]
pub struct WireLog(Arc<Mutex<Wire>>);

#[derive(Default)]
struct Wire {
    messages: Vec<WireMessage>,
    /// Requests sent and not yet answered, oldest first: the hop id each was drawn with and
    /// the answers that complete it. An answer that completes the oldest is drawn with its id,
    /// so the server's activation bar spans the two; any other answer is part of the work
    /// (ParameterStatus, DataRow) and drawn on its own.
    waiting: std::collections::VecDeque<(String, &'static [&'static str])>,
}

impl Wire {
    /// The hop name the `n`-th message, `name`, is drawn with.
    fn hop(&mut self, name: &str, direction: Direction, n: usize) -> String {
        let own = format!("pg{n}");
        match direction {
            Direction::Request => {
                if let Some(answers) = completed_by(name) {
                    self.waiting.push_back((own.clone(), answers));
                }
                own
            }
            Direction::Response if name == "ErrorResponse" => {
                // The failed request is answered; the server skips the rest until Sync.
                let failed = self.waiting.pop_front().map(|(id, _)| id);
                while let Some((_, answers)) = self.waiting.front() {
                    if answers == &["ReadyForQuery"] {
                        break;
                    }
                    self.waiting.pop_front();
                }
                failed.unwrap_or(own)
            }
            Direction::Response => match self.waiting.front() {
                Some((_, answers)) if answers.contains(&name) => {
                    self.waiting.pop_front().map_or(own, |(id, _)| id)
                }
                _ => own,
            },
        }
    }
}

impl WireLog {
    pub fn take(&self) -> Vec<WireMessage> {
        std::mem::take(&mut self.0.lock().expect("wire log lock poisoned").messages)
    }

    /// Records `run` (messages of one name that came in one read, most often one) in the log
    /// and as one hop; false once [`MAX_RECORDED`] are kept.
    fn record(&self, run: &[Frame], direction: Direction, tracer: &Tracer) -> bool {
        let Some(first) = run.first() else {
            return true;
        };
        let name = name(first, direction);
        let bytes: usize = run.iter().map(|f| f.wire_bytes).sum();
        let hop = {
            let mut wire = self.0.lock().expect("wire log lock poisoned");
            if wire.messages.len() >= MAX_RECORDED {
                return false;
            }
            wire.messages.push(WireMessage {
                direction,
                name: name.to_owned(),
                count: run.len() as u32,
                bytes: bytes as u64,
            });
            let n = wire.messages.len();
            wire.hop(name, direction, n)
        };
        tracer.record(|rid| {
            let mut headers = Vec::new();
            let mut wire = Vec::new();
            let mut summary = String::new();
            for frame in run {
                let (fields, said) = fields(frame, direction);
                headers.extend(
                    fields
                        .into_iter()
                        .map(|(name, value)| Header { name, value }),
                );
                summary = said;
                wire.extend(frame.tag);
                let len = frame.wire_bytes - usize::from(frame.tag.is_some());
                wire.extend_from_slice(&(len as u32).to_be_bytes());
                wire.extend_from_slice(&frame.payload);
            }
            let tag = first
                .tag
                .map_or("no type byte".to_owned(), |t| format!("'{}'", t as char));
            let (label, start_line) = match run.len() {
                1 if summary.is_empty() => {
                    (name.to_owned(), format!("{name} ({tag}), {bytes} bytes"))
                }
                1 => (
                    format!("{name} {}", summary.chars().take(120).collect::<String>()),
                    format!("{name} ({tag}), {bytes} bytes"),
                ),
                k => (
                    format!("{name} ×{k}"),
                    format!("{k} {name} messages ({tag}) in one read, {bytes} bytes in all"),
                ),
            };
            let (kind, from, to) = match direction {
                // Terminate gets no answer: the client closes the connection after it.
                Direction::Request if name == "Terminate" => (Kind::Close, "server", "postgres"),
                Direction::Request => (Kind::Request, "server", "postgres"),
                Direction::Response => (Kind::Response, "postgres", "server"),
            };
            Hop::new(kind, from, to, pairing::hop(rid, &hop))
                .label(label)
                .transport(Transport::Tcp)
                .at(HopTime::Whole)
                .bytes(bytes as u64)
                .detail(Detail {
                    start_line,
                    headers,
                    body: hex(&wire),
                    body_bytes: wire.len() as u64,
                    ..Detail::default()
                })
        });
        true
    }
}

/// Passes `from`'s bytes to `to` unchanged until `from` ends, recording each whole message.
pub async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    direction: Direction,
    log: WireLog,
    tracer: Tracer,
) -> std::io::Result<()> {
    let mut decoder = Decoder::new(direction);
    let mut buf = vec![0; 16 * 1024];
    let mut recording = true;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        // Recorded before passing on: the hop's time is when the relay had the bytes.
        // Messages of one name in one read (a dozen ParameterStatus at start-up) are one hop.
        let frames = decoder.push(&buf[..n]);
        let direction = decoder.direction();
        for run in frames.chunk_by(|a, b| name(a, direction) == name(b, direction)) {
            recording = recording && log.record(run, direction, &tracer);
        }
        to.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((payload.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn the_startup_then_typed_messages_are_cut_however_the_reads_split_them() {
        let mut startup = Vec::new();
        let body = b"\x00\x03\x00\x00user\x00postgres\x00\x00";
        startup.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        startup.extend_from_slice(body);
        let parse = typed(b'P', b"\x00SELECT 1\x00\x00\x00");
        let sync = typed(b'S', b"");
        let stream: Vec<u8> = [startup, parse, sync].concat();
        for split in 1..stream.len() {
            let mut d = Decoder::new(Direction::Request);
            let mut frames = d.push(&stream[..split]);
            frames.extend(d.push(&stream[split..]));
            let names: Vec<&str> = frames.iter().map(|f| name(f, Direction::Request)).collect();
            assert_eq!(
                names,
                ["StartupMessage", "Parse", "Sync"],
                "split at {split}"
            );
            assert_eq!(frames[2].wire_bytes, 5);
        }
    }

    #[test]
    fn answers_are_named_and_read_field_by_field() {
        let mut d = Decoder::new(Direction::Response);
        let row = typed(
            b'D',
            b"\x00\x02\x00\x00\x00\x03api\x00\x00\x00\x04\x00\x00\x01\xbb",
        );
        let frames = d.push(&[typed(b'1', b""), row, typed(b'Z', b"I")].concat());
        let names: Vec<&str> = frames
            .iter()
            .map(|f| name(f, Direction::Response))
            .collect();
        assert_eq!(names, ["ParseComplete", "DataRow", "ReadyForQuery"]);
        let (_, summary) = fields(&frames[1], Direction::Response);
        assert_eq!(summary, "\"api\" | binary 00 00 01 bb = 443");
        let (_, summary) = fields(&frames[2], Direction::Response);
        assert_eq!(summary, "idle");
    }

    #[test]
    fn each_answer_that_completes_a_request_pairs_with_it_in_order() {
        let mut wire = Wire::default();
        let mut n = 0;
        let mut hop = |name: &str, direction| {
            n += 1;
            wire.hop(name, direction, n)
        };
        let (req, resp) = (Direction::Request, Direction::Response);
        let sent: Vec<String> = ["Parse", "Describe", "Sync"]
            .iter()
            .map(|m| hop(m, req))
            .collect();
        assert_eq!(hop("ParseComplete", resp), sent[0]);
        assert_eq!(
            hop("ParameterDescription", resp),
            "pg5",
            "part of the Describe's work"
        );
        assert_eq!(hop("RowDescription", resp), sent[1]);
        assert_eq!(hop("ReadyForQuery", resp), sent[2]);
        // A failed Bind: the Execute before the Sync is skipped; the Sync is still answered.
        let bind = hop("Bind", req);
        hop("Execute", req);
        let sync = hop("Sync", req);
        assert_eq!(hop("ErrorResponse", resp), bind);
        assert_eq!(hop("ReadyForQuery", resp), sync);
        assert_eq!(hop("Terminate", req), "pg13");
        assert!(wire.waiting.is_empty());
    }

    #[test]
    fn an_over_long_message_is_named_and_skipped() {
        let mut d = Decoder::new(Direction::Response);
        let mut big = vec![b'D'];
        big.extend_from_slice(&((MAX_DECODED + 10) as u32).to_be_bytes());
        let frames = d.push(&big);
        assert_eq!(frames.len(), 1);
        assert!(frames[0].payload.is_empty());
        assert!(d.push(&vec![0; MAX_DECODED + 6]).is_empty());
        let frames = d.push(&typed(b'Z', b"I"));
        assert_eq!(name(&frames[0], Direction::Response), "ReadyForQuery");
    }
}
