//! Bad input, everywhere: one table of bad requests per endpoint and what each must get (a 4xx
//! with the JSON `{ "error": … }` body, or a WebSocket close code), and the client that tries
//! them against a running server. The same table drives `backend/tests/bad_input.rs` (which
//! fails on any mismatch) and the `bad-input` binary (which writes it into `bench/RESULTS.md`).

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::{
    self, Message as WsMessage,
    client::IntoClientRequest,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

/// A queue run's spec in range, for the queue demo's rows to spoil one field of.
const QUEUE_SPEC: &str = r#"{"engine":"embedded","consumers":2,"prefetch":2,"work_ms":100,"slow":0,"kill":1,"poll_ms":200}"#;

/// How long one case may take before it counts as a hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// What a case sends.
#[derive(Debug, Clone)]
pub enum Probe {
    /// One HTTP request. `{job}` or `{upload}` in the path is replaced by the id of a job or
    /// chunked upload (4 KiB announced) created just before.
    Http(HttpProbe),
    /// A WebSocket handshake (with `Origin` when given), then these steps.
    Ws {
        path: String,
        origin: Option<&'static str>,
        steps: Vec<WsStep>,
    },
    /// These bytes, as they are, on a connection of their own: a request hyper cannot parse,
    /// whose whole answer is read until the server closes.
    RawHead(String),
    /// Up to `hold` connections opened from this client and held, idle: the ones over the
    /// server's per-client cap must each be answered at once with a status and closed.
    HeldConnections { hold: usize },
    /// The same JSON request (`{n}` in the path replaced by its count) sent by this client,
    /// every `pace`, until it is refused, at most `at_most` times: this client's share of a
    /// store filled. The refusal must carry `Retry-After` and a reason containing `reason`.
    UntilRefused {
        method: &'static str,
        path: &'static str,
        body: String,
        at_most: usize,
        pace: Duration,
        reason: &'static str,
    },
}

/// One HTTP request of a case.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    /// More request headers (a browser's `Origin` or `Sec-Fetch-Site`).
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

/// One thing done on an open WebSocket.
#[derive(Debug, Clone)]
pub enum WsStep {
    Text(String),
    Binary(Vec<u8>),
    /// The same text frame `count` times, back to back.
    Burst {
        text: String,
        count: usize,
    },
    /// A text frame whose payload is not UTF-8 (sent as a raw frame).
    InvalidUtf8,
    /// `count` messages published over HTTP to `topic` in `room` (the socket does not read).
    Publish {
        room: &'static str,
        topic: &'static str,
        count: usize,
    },
}

/// What a case must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// This status, with a JSON `{ "error": … }` body.
    Status(u16),
    /// The socket closed by the server with this code.
    Close(u16),
    /// The socket stays open and answers with an `{"type":"error",…}` frame.
    ErrorFrame,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Status(s) => write!(f, "{s} JSON"),
            Expect::Close(c) => write!(f, "close {c}"),
            Expect::ErrorFrame => write!(f, "error frame, socket open"),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Case {
    /// `METHOD /api/path` as the OpenAPI description names it.
    pub endpoint: &'static str,
    /// The bad input, in a few words.
    pub input: String,
    pub probe: Probe,
    pub expect: Expect,
}

/// What a case got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// In the table's words: `413 {"error":"…"}`, `close 1009 (…)`.
    pub got: String,
    pub ok: bool,
}

fn http(
    endpoint: &'static str,
    input: impl Into<String>,
    method: &'static str,
    path: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    expect: u16,
) -> Case {
    Case {
        endpoint,
        input: input.into(),
        probe: Probe::Http(HttpProbe {
            method,
            path: path.into(),
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }),
        expect: Expect::Status(expect),
    }
}

/// `case` sent with one more request header.
fn with_header(mut case: Case, name: &'static str, value: &'static str) -> Case {
    if let Probe::Http(http) = &mut case.probe {
        http.headers.push((name, value));
    }
    case
}

fn get(endpoint: &'static str, input: &str, path: impl Into<String>, expect: u16) -> Case {
    http(endpoint, input, "GET", path, None, Vec::new(), expect)
}

fn json(
    endpoint: &'static str,
    input: &str,
    method: &'static str,
    path: &str,
    body: &str,
    expect: u16,
) -> Case {
    http(
        endpoint,
        input,
        method,
        path,
        Some("application/json"),
        body,
        expect,
    )
}

fn ws(
    endpoint: &'static str,
    input: &str,
    path: &str,
    origin: Option<&'static str>,
    steps: Vec<WsStep>,
    expect: Expect,
) -> Case {
    Case {
        endpoint,
        input: input.into(),
        probe: Probe::Ws {
            path: path.into(),
            origin,
            steps,
        },
        expect,
    }
}

const JSON: Option<&str> = Some("application/json");
const EVIL: Option<&str> = Some("https://evil.example");
/// Bigger than every JSON body limit the server has (axum's default is 2 MB).
const BIG: usize = 3 * 1024 * 1024;

/// The cases for one WebSocket endpoint's frames: oversize (over `limit`), not UTF-8, binary,
/// unreadable JSON, and a cross-origin handshake.
fn socket_cases(endpoint: &'static str, path: &str, limit: usize) -> Vec<Case> {
    vec![
        ws(
            endpoint,
            "cross-origin upgrade (Origin: https://evil.example)",
            path,
            EVIL,
            vec![],
            Expect::Status(403),
        ),
        ws(
            endpoint,
            &format!(
                "text message of {} KiB (limit {} KiB)",
                limit / 1024 + 1,
                limit / 1024
            ),
            path,
            None,
            vec![WsStep::Text("x".repeat(limit + 1024))],
            Expect::Close(1009),
        ),
        ws(
            endpoint,
            "text frame with invalid UTF-8",
            path,
            None,
            vec![WsStep::InvalidUtf8],
            Expect::Close(1007),
        ),
        ws(
            endpoint,
            "binary frame on a JSON text socket",
            path,
            None,
            vec![WsStep::Binary(vec![0, 1, 2])],
            Expect::Close(1003),
        ),
        ws(
            endpoint,
            "malformed JSON frame",
            path,
            None,
            vec![WsStep::Text("{\"type\":".into())],
            Expect::ErrorFrame,
        ),
        ws(
            endpoint,
            "unknown frame type",
            path,
            None,
            vec![WsStep::Text(r#"{"type":"launch"}"#.into())],
            Expect::ErrorFrame,
        ),
        get(endpoint, "plain GET, no upgrade headers", path, 400),
    ]
}

/// Every bad input tried, per endpoint.
#[rustfmt::skip]
pub fn cases() -> Vec<Case> {
    let mut c = vec![
        http("GET /api/health", "wrong method (POST)", "POST", "/api/health", None, "", 405),
        get("GET /api/nope", "unknown endpoint", "/api/nope", 404),
        get("GET /api/trace/{run}", "invalid run id", "/api/trace/bad!id", 400),
        get("GET /api/trace/{run}", "run id of 65 characters", format!("/api/trace/{}", "r".repeat(65)), 400),
        get("GET /api/trace/{run}", "unknown run", "/api/trace/never-seen", 404),
        http("GET /api/trace/{run}", "wrong method (DELETE)", "DELETE", "/api/trace/r1", None, "", 405),
        get("any endpoint", "malformed run query parameter", "/api/jobs/x?run=bad!&rid=1", 400),
        get("any endpoint", "unknown link", "/api/health?run=bad-input&rid=1&link=5g", 400),
        get("any endpoint", "empty link", "/api/health?run=bad-input&rid=1&link=", 400),
    ];
    c.extend(socket_cases("GET /api/trace/ws", "/api/trace/ws", 16 * 1024));
    c.push(ws("GET /api/trace/ws", "watch an invalid run id", "/api/trace/ws", None,
        vec![WsStep::Text(r#"{"type":"watch","run":"bad!"}"#.into())], Expect::ErrorFrame));
    c.extend([
        http("POST /api/echo", "malformed JSON", "POST", "/api/echo", JSON, "{\"customer\":", 400),
        http("POST /api/echo", "wrong types (customer: 5)", "POST", "/api/echo", JSON, r#"{"customer":5}"#, 400),
        http("POST /api/echo", "malformed XML", "POST", "/api/echo", Some("application/xml"), "<order><customer>", 400),
        http("POST /api/echo", "malformed MessagePack", "POST", "/api/echo", Some("application/msgpack"), vec![0xc1, 0xff], 400),
        http("POST /api/echo", "Content-Type text/plain", "POST", "/api/echo", Some("text/plain"), "hi", 415),
        http("POST /api/echo", "no Content-Type", "POST", "/api/echo", None, "{}", 415),
        http("POST /api/echo", "body of 1 MiB + 1 byte", "POST", "/api/echo", JSON, vec![b' '; 1024 * 1024 + 1], 413),
        http("POST /api/echo", "process_ms=-1", "POST", "/api/echo?process_ms=-1", JSON, r#"{"customer":"a"}"#, 422),
        http("POST /api/echo", "process_ms=99999999999", "POST", "/api/echo?process_ms=99999999999", JSON, r#"{"customer":"a"}"#, 422),
        http("POST /api/echo", "process_ms=10001 (over the limit)", "POST", "/api/echo?process_ms=10001", JSON, r#"{"customer":"a"}"#, 422),
        get("POST /api/echo", "wrong method (GET)", "/api/echo", 405),
        // Well-formed, but sent by another site's page: refused before anything is done.
        with_header(http("POST /api/echo", "another site's page (Origin: https://evil.example)", "POST", "/api/echo", JSON, r#"{"customer":"a"}"#, 403),
            "origin", "https://evil.example"),
        with_header(json("POST /api/jobs", "another site's page (Sec-Fetch-Site: cross-site)", "POST", "/api/jobs", r#"{"steps":1,"step_ms":10}"#, 403),
            "sec-fetch-site", "cross-site"),
        json("POST /api/jobs", "malformed JSON", "POST", "/api/jobs", "{\"steps\":", 400),
        json("POST /api/jobs", "wrong type (steps: \"x\")", "POST", "/api/jobs", r#"{"steps":"x","step_ms":10}"#, 422),
        json("POST /api/jobs", "negative steps", "POST", "/api/jobs", r#"{"steps":-1,"step_ms":10}"#, 422),
        json("POST /api/jobs", "steps = 2^32", "POST", "/api/jobs", r#"{"steps":4294967296,"step_ms":10}"#, 422),
        json("POST /api/jobs", "steps = 0", "POST", "/api/jobs", r#"{"steps":0,"step_ms":10}"#, 422),
        json("POST /api/jobs", "payload_bytes = 10^12", "POST", "/api/jobs", r#"{"steps":1,"step_ms":10,"payload_bytes":1000000000000}"#, 422),
        json("POST /api/jobs", "a JSON array", "POST", "/api/jobs", "[1,2]", 422),
        http("POST /api/jobs", "Content-Type text/plain", "POST", "/api/jobs", Some("text/plain"), r#"{"steps":1,"step_ms":10}"#, 415),
        http("POST /api/jobs", "body of 3 MiB", "POST", "/api/jobs", JSON, vec![b' '; BIG], 413),
        get("POST /api/jobs", "wrong method (GET)", "/api/jobs", 405),
        get("GET /api/jobs/{id}", "unknown id", "/api/jobs/j999999-0", 404),
        get("GET /api/jobs/{id}", "id of 4,000 characters", format!("/api/jobs/{}", "j".repeat(4000)), 404),
        http("GET /api/jobs/{id}", "wrong method (PUT)", "PUT", "/api/jobs/x", None, "", 405),
        get("GET /api/jobs/{id}/wait", "unknown id", "/api/jobs/nope/wait", 404),
        get("GET /api/jobs/{id}/wait", "timeout_ms=-5", "/api/jobs/{job}/wait?timeout_ms=-5", 422),
        get("GET /api/jobs/{id}/wait", "timeout_ms=99999999", "/api/jobs/{job}/wait?timeout_ms=99999999", 422),
        get("GET /api/jobs/{id}/wait", "after=abc", "/api/jobs/{job}/wait?after=abc", 422),
        get("GET /api/jobs/{id}/events", "unknown id", "/api/jobs/nope/events", 404),
        get("GET /api/jobs/{id}/events", "lastEventId=abc", "/api/jobs/{job}/events?lastEventId=abc", 400),
        http("POST /api/jobs/{id}/drop", "unknown id", "POST", "/api/jobs/nope/drop", None, "", 404),
        get("POST /api/jobs/{id}/drop", "wrong method (GET)", "/api/jobs/x/drop", 405),
    ]);
    c.extend(socket_cases("GET /api/push/ws", "/api/push/ws", 16 * 1024));
    c.extend([
        ws("GET /api/push/ws", "invalid `as` name", "/api/push/ws?as=%3Cscript%3E", None, vec![], Expect::Status(400)),
        ws("GET /api/push/ws", "follow an unknown job", "/api/push/ws", None,
            vec![WsStep::Text(r#"{"type":"follow","job":"nope"}"#.into())], Expect::ErrorFrame),
        ws("GET /api/push/ws", "say before joining a room", "/api/push/ws", None,
            vec![WsStep::Text(r#"{"type":"say","text":"hi"}"#.into())], Expect::ErrorFrame),
        // The default limit: 10 lines a second, 20 at once.
        ws("GET /api/push/ws", "chat flood: 60 lines at once", "/api/push/ws", None,
            vec![
                WsStep::Text(r#"{"type":"join","room":"bad-input-flood","name":"flooder"}"#.into()),
                WsStep::Burst { text: r#"{"type":"say","text":"spam"}"#.into(), count: 60 },
            ],
            Expect::ErrorFrame),
    ]);
    c.extend(socket_cases("GET /api/pubsub/ws", "/api/pubsub/ws", 16 * 1024));
    c.extend([
        ws("GET /api/pubsub/ws", "replay=-1", "/api/pubsub/ws?replay=-1", None, vec![], Expect::Status(400)),
        ws("GET /api/pubsub/ws", "prefetch 0", "/api/pubsub/ws", None,
            vec![WsStep::Text(r#"{"type":"subscribe","topic":"t","prefetch":0}"#.into())], Expect::ErrorFrame),
        ws("GET /api/pubsub/ws", "policy: never acknowledges (prefetch 1, 40 published)", "/api/pubsub/ws?room=bad-input-slow", None,
            vec![
                WsStep::Text(r#"{"type":"subscribe","topic":"t","prefetch":1}"#.into()),
                WsStep::Publish { room: "bad-input-slow", topic: "t", count: 40 },
            ],
            Expect::Close(1008)),
        json("POST /api/pubsub/publish", "malformed JSON", "POST", "/api/pubsub/publish", "{", 400),
        json("POST /api/pubsub/publish", "wrong type (text: 7)", "POST", "/api/pubsub/publish", r#"{"topic":"t","text":7}"#, 422),
        json("POST /api/pubsub/publish", "invalid topic name", "POST", "/api/pubsub/publish", r#"{"topic":"<b>","text":"x"}"#, 400),
        json("POST /api/pubsub/publish", "text of 8 KiB + 1", "POST", "/api/pubsub/publish",
            &format!(r#"{{"topic":"t","text":"{}"}}"#, "x".repeat(8 * 1024 + 1)), 413),
        http("POST /api/pubsub/publish", "Content-Type text/plain", "POST", "/api/pubsub/publish", Some("text/plain"), "{}", 415),
        get("POST /api/pubsub/publish", "wrong method (GET)", "/api/pubsub/publish", 405),
        json("POST /api/pubsub/ticker", "per_second = 0", "POST", "/api/pubsub/ticker", r#"{"topic":"t","per_second":0,"seconds":1,"bytes":1}"#, 422),
        json("POST /api/pubsub/ticker", "seconds = 2^40", "POST", "/api/pubsub/ticker", r#"{"topic":"t","per_second":1,"seconds":1099511627776,"bytes":1}"#, 422),
        json("POST /api/pubsub/ticker", "malformed JSON", "POST", "/api/pubsub/ticker", "{{", 400),
        http("DELETE /api/pubsub/ticker", "invalid room name", "DELETE", "/api/pubsub/ticker?room=%3C%3E", None, "", 400),
        get("GET /api/pubsub/events", "invalid topic", "/api/pubsub/events?topics=%3Cx%3E", 400),
        get("GET /api/pubsub/events", "no topics (a stream that could never deliver)", "/api/pubsub/events", 422),
        get("GET /api/pubsub/events", "replay=abc", "/api/pubsub/events?topics=t&replay=abc", 400),
        http("GET /api/pubsub/info", "wrong method (POST)", "POST", "/api/pubsub/info", None, "", 405),
        get("GET /api/work/blocking", "no ms", "/api/work/blocking", 422),
        get("GET /api/work/blocking", "ms=-1", "/api/work/blocking?ms=-1", 422),
        get("GET /api/work/blocking", "ms=10^30", "/api/work/blocking?ms=1000000000000000000000000000000", 422),
        get("GET /api/work/async", "ms=99999999", "/api/work/async?ms=99999999", 422),
        json("POST /api/uploads", "malformed JSON", "POST", "/api/uploads", "{\"name\":", 400),
        json("POST /api/uploads", "size = -1", "POST", "/api/uploads", &new_upload(-1), 422),
        json("POST /api/uploads", "size = 0", "POST", "/api/uploads", &new_upload(0), 422),
        json("POST /api/uploads", "size = 2^63 (over 16 MiB)", "POST", "/api/uploads", &new_upload(1 << 62), 422),
        json("POST /api/uploads", "sha256 not hex", "POST", "/api/uploads", r#"{"name":"a","size":1,"sha256":"zz"}"#, 422),
        json("POST /api/uploads", "name of 300 characters", "POST", "/api/uploads",
            &format!(r#"{{"name":"{}","size":1,"sha256":"{SHA}"}}"#, "n".repeat(300)), 422),
        http("POST /api/uploads/whole", "no name or sha256", "POST", "/api/uploads/whole", Some("application/octet-stream"), "x", 422),
        http("POST /api/uploads/whole", "empty file", "POST", format!("/api/uploads/whole?name=a&sha256={SHA}"), Some("application/octet-stream"), "", 422),
        http("POST /api/uploads/whole", "file of 16 MiB + 1 byte", "POST", format!("/api/uploads/whole?name=a&sha256={SHA}"),
            Some("application/octet-stream"), vec![0u8; 16 * 1024 * 1024 + 1], 413),
        get("GET /api/uploads/{id}", "unknown id", "/api/uploads/u0-0", 404),
        http("DELETE /api/uploads/{id}", "unknown id", "DELETE", "/api/uploads/u0-0", None, "", 404),
        http("PUT /api/uploads/{id}", "unknown id", "PUT", "/api/uploads/u0-0?offset=0", None, "x", 404),
        http("PUT /api/uploads/{id}", "offset=-1", "PUT", "/api/uploads/{upload}?offset=-1", None, "x", 422),
        http("PUT /api/uploads/{id}", "no offset", "PUT", "/api/uploads/{upload}", None, "x", 422),
        http("PUT /api/uploads/{id}", "wrong offset (100, server has 0)", "PUT", "/api/uploads/{upload}?offset=100", None, "x", 409),
        http("PUT /api/uploads/{id}", "empty chunk", "PUT", "/api/uploads/{upload}?offset=0", None, "", 422),
        http("PUT /api/uploads/{id}", "chunk past the announced 4 KiB", "PUT", "/api/uploads/{upload}?offset=0", None, vec![0u8; 5000], 413),
        http("PUT /api/uploads/{id}", "chunk of 1 MiB + 1 byte", "PUT", "/api/uploads/{upload}?offset=0", None, vec![0u8; 1024 * 1024 + 1], 413),
        http("PUT /api/uploads/{id}", "wrong method (PATCH)", "PATCH", "/api/uploads/x", None, "", 405),
        json("POST /api/lb/cluster", "no run/rid", "POST", "/api/lb/cluster", r#"{"mode":"memory","sticky":false}"#, 400),
        json("POST /api/lb/cluster", "malformed JSON", "POST", "/api/lb/cluster?run=bad-input&rid=1", "{", 400),
        json("POST /api/lb/cluster", "unknown mode", "POST", "/api/lb/cluster?run=bad-input&rid=1", r#"{"mode":"telepathy","sticky":false}"#, 422),
        http("DELETE /api/lb/cluster", "unknown run", "DELETE", "/api/lb/cluster?run=never-seen&rid=1", None, "", 404),
        http("POST /api/lb/cluster/restart", "instance=c", "POST", "/api/lb/cluster/restart?run=bad-input&rid=1&instance=c", None, "", 422),
        http("POST /api/lb/cluster/restart", "unknown run", "POST", "/api/lb/cluster/restart?run=never-seen&rid=1&instance=a", None, "", 404),
        get("GET /api/lb/{path}", "no cluster for the run", "/api/lb/profile?run=never-seen&rid=1", 404),
        get("GET /api/lb/{path}", "no run/rid", "/api/lb/profile", 400),
        json("POST /api/sidecar/setup", "fail_percent = 101", "POST", "/api/sidecar/setup?run=bad-input&rid=1", r#"{"fail_percent":101,"rate_per_s":0}"#, 422),
        json("POST /api/sidecar/setup", "malformed JSON", "POST", "/api/sidecar/setup?run=bad-input&rid=1", "[", 400),
        http("DELETE /api/sidecar/setup", "unknown run", "DELETE", "/api/sidecar/setup?run=never-seen&rid=1", None, "", 404),
        get("GET /api/sidecar/{path}", "no sidecar for the run", "/api/sidecar/orders/1?run=never-seen&rid=1", 404),
        get("GET /api/mux/proxy", "no parameters", "/api/mux/proxy", 422),
        get("GET /api/mux/proxy", "via=h3", "/api/mux/proxy?n=1&via=h3&item_ms=0", 422),
        get("GET /api/mux/proxy", "n=-1", "/api/mux/proxy?n=-1&via=h2&item_ms=0", 422),
        get("GET /api/mux/proxy", "n=4294967296", "/api/mux/proxy?n=4294967296&via=h2&item_ms=0", 422),
        get("GET /api/mux/proxy", "via=h1 without pool", "/api/mux/proxy?n=1&via=h1&item_ms=0", 422),
        get("GET /api/mux/slow", "no run/rid", "/api/mux/slow?ms=1", 400),
        get("GET /api/mux/slow", "ms=-1", "/api/mux/slow?ms=-1&run=bad-input&rid=1", 422),
        get("GET /api/rest/users/{id}", "id not a number", "/api/rest/users/abc", 400),
        get("GET /api/rest/users/{id}", "no such user (41)", "/api/rest/users/41", 404),
        get("GET /api/rest/users/{id}/posts", "limit=0", "/api/rest/users/1/posts?limit=0", 422),
        get("GET /api/rest/users/{id}/posts", "limit=x", "/api/rest/users/1/posts?limit=x", 422),
        get("GET /api/rest/posts/{id}/comments", "no such post (0)", "/api/rest/posts/0/comments", 404),
        json("POST /api/graphql", "malformed JSON", "POST", "/api/graphql", "{\"query\":", 400),
        http("POST /api/graphql", "no Content-Type", "POST", "/api/graphql", None, r#"{"query":"{ user(id: 1) { name } }"}"#, 415),
        json("POST /api/graphql", "query of the wrong type", "POST", "/api/graphql", r#"{"query":5}"#, 422),
        json("POST /api/graphql", "a query that does not parse", "POST", "/api/graphql", r#"{"query":"{ user(id: 1) { name "}"#, 400),
        json("POST /api/graphql", "an unknown field", "POST", "/api/graphql", r#"{"query":"{ user(id: 1) { password } }"}"#, 400),
        json("POST /api/graphql", "a query nested 7 deep (at most 6)", "POST", "/api/graphql",
            r#"{"query":"{ user(id: 1) { posts { commenters { posts { commenters { posts { title } } } } } } }"}"#, 400),
        json("POST /api/graphql", "a user that does not exist", "POST", "/api/graphql", r#"{"query":"{ user(id: 0) { name } }"}"#, 400),
        json("POST /api/graphql", "a query over 8 KiB", "POST", "/api/graphql", &format!(r#"{{"query":"{}"}}"#, " ".repeat(9000)), 413),
        json("POST /api/queue/run", "no run/rid", "POST", "/api/queue/run", QUEUE_SPEC, 400),
        json("POST /api/queue/run", "malformed JSON", "POST", "/api/queue/run?run=bad-input&rid=1", "{", 400),
        json("POST /api/queue/run", "consumers = 5", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace(r#""consumers":2"#, r#""consumers":5"#), 422),
        json("POST /api/queue/run", "prefetch = 0", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace(r#""prefetch":2"#, r#""prefetch":0"#), 422),
        json("POST /api/queue/run", "prefetch = 11", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace(r#""prefetch":2"#, r#""prefetch":11"#), 422),
        json("POST /api/queue/run", "work_ms = 2001", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace(r#""work_ms":100"#, r#""work_ms":2001"#), 422),
        json("POST /api/queue/run", "poll_ms = 10", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace(r#""poll_ms":200"#, r#""poll_ms":10"#), 422),
        json("POST /api/queue/run", "kill = 3 of 2 consumers", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace(r#""kill":1"#, r#""kill":3"#), 422),
        json("POST /api/queue/run", "engine = kafka", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace("embedded", "kafka"), 422),
        json("POST /api/queue/run", "engine = rabbitmq, no --amqp-url", "POST", "/api/queue/run?run=bad-input&rid=1", &QUEUE_SPEC.replace("embedded", "rabbitmq"), 422),
        http("POST /api/queue/publish", "unknown run", "POST", "/api/queue/publish?run=never-seen&rid=1", None, "", 404),
        http("POST /api/queue/publish", "no run/rid", "POST", "/api/queue/publish", None, "", 400),
        get("GET /api/queue/report", "wait_ms = 15001", "/api/queue/report?run=never-seen&rid=1&wait_ms=15001", 422),
        get("GET /api/queue/report", "unknown run", "/api/queue/report?run=never-seen&rid=1", 404),
        http("DELETE /api/queue/run", "unknown run", "DELETE", "/api/queue/run?run=never-seen&rid=1", None, "", 404),
        get("GET /api/protocols/lookup", "no parameters", "/api/protocols/lookup", 422),
        get("GET /api/protocols/lookup", "name with a dot", "/api/protocols/lookup?name=a.b&type=A", 422),
        get("GET /api/protocols/lookup", "name of 64 characters", format!("/api/protocols/lookup?name={}&type=A", "a".repeat(64)), 422),
        get("GET /api/protocols/lookup", "upper-case name", "/api/protocols/lookup?name=API&type=A", 422),
        get("GET /api/protocols/lookup", "type=MX", "/api/protocols/lookup?name=api&type=MX", 422),
        get("GET /api/protocols/lookup", "drop_first=maybe", "/api/protocols/lookup?name=api&type=A&drop_first=maybe", 422),
    ]);
    // Shares last: what they fill stays filled for this client.
    c.extend([
        share(
            "POST /api/uploads",
            "one more upload than a client's share (16)",
            "POST",
            "/api/uploads",
            new_upload(1),
            "one client may hold 16 uploads at once",
        ),
        json("POST /api/uploads", "16 MiB more than a client's byte share holds", "POST", "/api/uploads", &new_upload(16 * 1024 * 1024), 429),
        share(
            "POST /api/jobs",
            "one more running job than a client's share (64)",
            "POST",
            "/api/jobs",
            r#"{"steps":4,"step_ms":5000}"#.into(),
            "one client may hold 64 jobs at once",
        ),
        share(
            "POST /api/pubsub/ticker",
            "one more running ticker than a client's share (4)",
            "POST",
            "/api/pubsub/ticker?run=share-{n}&rid=1",
            r#"{"topic":"t","per_second":1,"bytes":1,"seconds":60}"#.into(),
            "one client may hold 4 running tickers at once",
        ),
    ]);
    let raw = |input: &str, head: String, expect: u16| Case {
        endpoint: "any path (refused before routing)",
        input: input.into(),
        probe: Probe::RawHead(head),
        expect: Expect::Status(expect),
    };
    let lines: String = (0..101).map(|n| format!("x-h{n}: 1\r\n")).collect();
    c.extend([
        raw(
            "101 header lines (at most 100)",
            format!("GET /api/health HTTP/1.1\r\nhost: x\r\n{lines}\r\n"),
            431,
        ),
        raw(
            "a malformed method (`G@T`)",
            "G@T /api/health HTTP/1.1\r\nhost: x\r\n\r\n".into(),
            400,
        ),
        raw(
            "a header line without a colon",
            "GET /api/health HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".into(),
            400,
        ),
    ]);
    c.push(Case {
        endpoint: "every WebSocket and stream endpoint",
        input: "too many connections from one client".into(),
        // Twice the server's default cap (256, `--max-connections-per-client`).
        probe: Probe::HeldConnections { hold: 512 },
        expect: Expect::Status(429),
    });
    c
}

/// A share case: `body` sent to `path` until refused (at most 80 times, 60 ms apart: under the
/// job and publish rates), the refusal a 429 naming `reason`.
fn share(
    endpoint: &'static str,
    input: &str,
    method: &'static str,
    path: &'static str,
    body: String,
    reason: &'static str,
) -> Case {
    Case {
        endpoint,
        input: input.into(),
        probe: Probe::UntilRefused {
            method,
            path,
            body,
            at_most: 80,
            pace: Duration::from_millis(60),
            reason,
        },
        expect: Expect::Status(429),
    }
}

/// Sends the request until it is refused; see [`Probe::UntilRefused`].
async fn run_until_refused(
    client: &reqwest::Client,
    base: &str,
    probe: &Probe,
    expect: u16,
) -> anyhow::Result<Outcome> {
    let Probe::UntilRefused {
        method,
        path,
        body,
        at_most,
        pace,
        reason,
    } = probe
    else {
        bail!("not a share case");
    };
    for n in 0..*at_most {
        let response = client
            .request(
                method.parse()?,
                format!("{base}{}", path.replace("{n}", &n.to_string())),
            )
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            tokio::time::sleep(*pace).await;
            continue;
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let text = response.text().await.unwrap_or_default();
        return Ok(Outcome {
            ok: status == expect
                && is_json_error(&text)
                && text.contains(reason)
                && retry_after.is_some_and(|s| s >= 1),
            got: format!(
                "{status} {} (after {n} accepted; Retry-After: {})",
                short(&text),
                retry_after.map_or("none".into(), |s| s.to_string())
            ),
        });
    }
    Ok(Outcome {
        ok: false,
        got: format!("never refused in {at_most} requests"),
    })
}

/// SHA-256 of nothing: well-formed hex for the upload cases.
const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn new_upload(size: i64) -> String {
    format!(r#"{{"name":"a.bin","size":{size},"sha256":"{SHA}"}}"#)
}

/// Fills `{job}` and `{upload}` in `path` with fresh ids.
async fn fill_ids(client: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<String> {
    let mut path = path.to_owned();
    if path.contains("{job}") {
        let created: serde_json::Value = client
            .post(format!("{base}/api/jobs"))
            .json(&serde_json::json!({ "steps": 2, "step_ms": 1000 }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["job"].as_str().context("job id")?;
        path = path.replace("{job}", id);
    }
    if path.contains("{upload}") {
        let created: serde_json::Value = client
            .post(format!("{base}/api/uploads"))
            .json(&serde_json::json!({ "name": "a.bin", "size": 4096, "sha256": SHA }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["id"].as_str().context("upload id")?;
        path = path.replace("{upload}", id);
    }
    Ok(path)
}

/// A response body as the table shows it: one line, at most 70 characters.
fn short(body: &str) -> String {
    let one_line = body.replace(['\n', '\r'], " ").replace('|', "\\|");
    match one_line.char_indices().nth(70) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// Whether `body` is the JSON error shape.
fn is_json_error(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").map(|e| e.is_string()))
        .unwrap_or(false)
}

async fn run_http(
    client: &reqwest::Client,
    base: &str,
    probe: &HttpProbe,
    expect: u16,
) -> anyhow::Result<Outcome> {
    let path = fill_ids(client, base, &probe.path).await?;
    let mut request = client.request(probe.method.parse()?, format!("{base}{path}"));
    if let Some(ct) = probe.content_type {
        request = request.header("content-type", ct);
    }
    for (name, value) in &probe.headers {
        request = request.header(*name, *value);
    }
    let response = request.body(probe.body.clone()).send().await?;
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = response.text().await.unwrap_or_default();
    Ok(Outcome {
        ok: status == expect && is_json && is_json_error(&text),
        got: format!("{status} {}", short(&text)),
    })
}

/// Sends `head` on a connection of its own and reads the answer until the server closes.
async fn run_raw(base: &str, head: &str, expect: u16) -> anyhow::Result<Outcome> {
    use tokio::io::AsyncReadExt;
    let mut tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await?;
    tcp.write_all(head.as_bytes()).await?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .unwrap_or("none");
    let json = head
        .to_ascii_lowercase()
        .contains("content-type: application/json");
    Ok(Outcome {
        ok: status == expect.to_string() && json && is_json_error(body),
        got: format!("{status} {}", short(body)),
    })
}

/// Opens `hold` connections from this client, asks `/api/health` on each and keeps them open
/// (keep-alive); then reads each one's answer. Passes when the first was answered 200 and the
/// ones over the cap `expect` with a JSON error body.
async fn run_held(base: &str, hold: usize, expect: u16) -> anyhow::Result<Outcome> {
    let addr = base.trim_start_matches("http://");
    let request = format!("GET /api/health HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    let mut held = Vec::with_capacity(hold);
    for _ in 0..hold {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.write_all(request.as_bytes()).await?;
        held.push(tcp);
    }
    // Every answer is written as the server reaches it; give it a moment for the last one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut answers = Vec::with_capacity(hold);
    let mut buf = vec![0u8; 4096];
    for tcp in &held {
        let answer = match tcp.try_read(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(_) => String::new(),
        };
        answers.push(answer);
    }
    let status = |answer: &str| {
        answer
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("HTTP/1.1 ")
            .to_owned()
    };
    let refused: Vec<usize> = (0..hold)
        .filter(|&i| status(&answers[i]).starts_with(&expect.to_string()))
        .collect();
    let Some(&first) = refused.first() else {
        return Ok(Outcome {
            ok: false,
            got: format!("none of {hold} connections got {expect}"),
        });
    };
    let answer = &answers[first];
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json = answer
        .to_ascii_lowercase()
        .contains("content-type: application/json");
    Ok(Outcome {
        ok: status(&answers[0]).starts_with("200") && json && is_json_error(body),
        got: format!(
            "{} held, {} refused from connection {} on: {} {}",
            first,
            refused.len(),
            first + 1,
            status(answer),
            short(body)
        ),
    })
}

async fn run_ws(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    origin: Option<&str>,
    steps: &[WsStep],
    expect: Expect,
) -> anyhow::Result<Outcome> {
    let url = format!("{}{path}", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse()?);
    }
    let (mut socket, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(open) => open,
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            return Ok(Outcome {
                ok: expect == Expect::Status(status) && is_json_error(&body),
                got: format!("{status} {}", short(&body)),
            });
        }
        Err(e) => bail!("handshake failed: {e}"),
    };
    for step in steps {
        let sent = match step {
            WsStep::Text(t) => socket.send(WsMessage::Text(t.clone().into())).await,
            WsStep::Binary(b) => socket.send(WsMessage::Binary(b.clone().into())).await,
            WsStep::Burst { text, count } => {
                let mut sent = Ok(());
                for _ in 0..*count {
                    sent = socket.send(WsMessage::Text(text.clone().into())).await;
                    if sent.is_err() {
                        break;
                    }
                }
                sent
            }
            WsStep::InvalidUtf8 => {
                let frame =
                    Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
                socket.send(WsMessage::Frame(frame)).await
            }
            WsStep::Publish { room, topic, count } => {
                for n in 0..*count {
                    client
                        .post(format!("{base}/api/pubsub/publish"))
                        .json(&serde_json::json!({ "room": room, "topic": topic, "text": format!("m{n}") }))
                        .send()
                        .await?
                        .error_for_status()?;
                }
                Ok(())
            }
        };
        // The server may close before a later step: what it said is read below.
        if sent.is_err() {
            break;
        }
        // Let the server act on one step before the next (a subscription before publishes).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = loop {
        match socket.next().await {
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                break (
                    Some(u16::from(frame.code)),
                    format!("close {} ({})", u16::from(frame.code), short(&frame.reason)),
                );
            }
            Some(Ok(WsMessage::Close(None))) | None => {
                break (None, "closed without a code".to_owned());
            }
            Some(Ok(WsMessage::Text(t))) if t.contains(r#""type":"error""#) => {
                break (None, format!("error frame {}", short(&t)));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => break (None, format!("connection error: {e}")),
        }
    };
    let ok = match expect {
        Expect::Close(code) => got.0 == Some(code),
        Expect::ErrorFrame => got.1.starts_with("error frame"),
        _ => false,
    };
    // An error frame leaves the socket open: the server must still answer it.
    if ok && expect == Expect::ErrorFrame {
        socket.close(None).await.ok();
    }
    Ok(Outcome { ok, got: got.1 })
}

/// Tries one case against the server at `base` (`http://host:port`), within [`CASE_TIMEOUT`].
pub async fn run(client: &reqwest::Client, base: &str, case: &Case) -> Outcome {
    let tried = match (&case.probe, case.expect) {
        (Probe::HeldConnections { hold }, Expect::Status(code)) => {
            tokio::time::timeout(CASE_TIMEOUT, run_held(base, *hold, code)).await
        }
        (Probe::Http(probe), Expect::Status(code)) => {
            tokio::time::timeout(CASE_TIMEOUT, run_http(client, base, probe, code)).await
        }
        (Probe::RawHead(head), Expect::Status(code)) => {
            tokio::time::timeout(CASE_TIMEOUT, run_raw(base, head, code)).await
        }
        (
            Probe::Ws {
                path,
                origin,
                steps,
            },
            expect,
        ) => {
            tokio::time::timeout(
                CASE_TIMEOUT,
                run_ws(client, base, path, *origin, steps, expect),
            )
            .await
        }
        (probe @ Probe::UntilRefused { .. }, Expect::Status(code)) => {
            tokio::time::timeout(CASE_TIMEOUT, run_until_refused(client, base, probe, code)).await
        }
        (
            Probe::Http(_)
            | Probe::RawHead(_)
            | Probe::HeldConnections { .. }
            | Probe::UntilRefused { .. },
            expect,
        ) => {
            return Outcome {
                ok: false,
                got: format!("this kind of case cannot expect {expect}"),
            };
        }
    };
    match tried {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome {
            ok: false,
            got: format!("failed: {e:#}"),
        },
        Err(_) => Outcome {
            ok: false,
            got: format!("no answer within {} s (a hang)", CASE_TIMEOUT.as_secs()),
        },
    }
}

/// Every case, in order, with what it got.
pub async fn run_all(base: &str) -> Vec<(Case, Outcome)> {
    // No pooled connections: a server that answers an oversize body early (413) closes that
    // connection, and the next case must not be sent on it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client");
    let mut results = Vec::new();
    for case in cases() {
        let outcome = run(&client, base, &case).await;
        results.push((case, outcome));
    }
    results
}

/// Whether the server at `base` still answers `GET /api/health`.
pub async fn healthy(base: &str) -> bool {
    let answer = reqwest::Client::new()
        .get(format!("{base}/api/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    answer.is_ok_and(|r| r.status().is_success())
}

/// The table as markdown rows: endpoint, input, expected, got.
pub fn rows(results: &[(Case, Outcome)]) -> Vec<Vec<String>> {
    results
        .iter()
        .map(|(case, outcome)| {
            let mark = if outcome.ok { "" } else { "**MISMATCH** " };
            vec![
                format!("`{}`", case.endpoint),
                case.input.replace('|', "\\|"),
                case.expect.to_string(),
                format!("{mark}{}", outcome.got),
            ]
        })
        .collect()
}
