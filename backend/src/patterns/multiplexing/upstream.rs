//! The upstream server the proxy forwards to: a real listener on 127.0.0.1 inside this process
//! that speaks HTTP/2 without TLS (h2c, prior knowledge) and HTTP/1.1 on the same port, counts
//! the connections it accepts, and answers `GET /item/{n}?ms=T` after T ms. It is the observer
//! of each item's arrival, so it records the proxy's request hop (with the real stream id).

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use protocol::{
    multiplexing::{MAX_ITEM_MS, UpstreamAnswer},
    trace::{Detail, Header, Kind, RequestId, RunId, Transport},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
};

use crate::trace::{Hop, HopTime, TraceHub, TraceIds, Tracer, server_now_us};

/// Connections the upstream serves at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Streams one HTTP/2 connection may have open at once (advertised in SETTINGS).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 100;
/// How long a new connection may take to say which protocol it speaks.
const PREFACE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Trace context the proxy passes along with each item, as headers (like `traceparent`).
pub const RUN_HEADER: &str = "x-trace-run";
pub const REQUEST_HEADER: &str = "x-trace-rid";
pub const LANE_HEADER: &str = "x-proxy-lane";
/// When the proxy handed the request to its connection (server clock, µs).
pub const SENT_HEADER: &str = "x-proxy-sent-us";
/// How long the item waited for a free connection first (µs).
pub const WAITED_HEADER: &str = "x-proxy-waited-us";
/// When the upstream answered (server clock, µs).
pub const ANSWERED_HEADER: &str = "x-upstream-answered-us";
/// The connection the item arrived on, as the upstream saw it (the proxy's port).
pub const CONNECTION_HEADER: &str = "x-upstream-connection";

/// The running upstream server.
pub struct Upstream {
    addr: SocketAddr,
    /// Every TCP connection accepted since start: the tests' proof of how many were used.
    accepted: Arc<AtomicU64>,
    /// Connections open now.
    open: Arc<AtomicUsize>,
}

impl Upstream {
    /// Binds 127.0.0.1 on a free port and serves until `stopped` completes.
    pub async fn start(
        trace: TraceHub,
        stopped: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Arc<Upstream>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept_loop(
            listener,
            trace,
            accepted.clone(),
            open.clone(),
            stopped,
        ));
        tracing::info!(%addr, "multiplexing demo: upstream server listening");
        Ok(Arc::new(Upstream {
            addr,
            accepted,
            open,
        }))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

async fn accept_loop(
    listener: TcpListener,
    trace: TraceHub,
    accepted: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
    stopped: impl Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropped (aborting every open connection) when the server stops.
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = &mut stopped => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(cause = %err, "upstream: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(true);
        let trace = trace.clone();
        let counted = OpenConnection::new(&open);
        connections.spawn(async move {
            let _held = (slot, counted);
            if let Err(err) = serve_connection(tcp, u64::from(peer.port()), trace).await {
                tracing::debug!(cause = %err, "upstream: connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Counts one open connection until dropped (however its task ends).
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> OpenConnection {
        open.fetch_add(1, Ordering::SeqCst);
        OpenConnection(open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves one connection in whichever protocol its first bytes announce.
async fn serve_connection(
    tcp: TcpStream,
    connection: u64,
    trace: TraceHub,
) -> Result<(), BoxError> {
    if speaks_h2(&tcp).await? {
        let mut conn = h2::server::Builder::new()
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .handshake::<_, Bytes>(tcp)
            .await?;
        // Dropped with the connection, so no stream outlives it.
        let mut streams = JoinSet::new();
        while let Some(next) = conn.accept().await {
            let (request, respond) = next?;
            streams.spawn(answer_h2(request, respond, connection, trace.clone()));
            while streams.try_join_next().is_some() {}
        }
    } else {
        let service = service_fn(move |request| answer_h1(request, connection, trace.clone()));
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .await?;
    }
    Ok(())
}

/// Whether the connection opens with the HTTP/2 preface (without consuming it).
async fn speaks_h2(tcp: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; PREFACE.len()];
    let deadline = tokio::time::Instant::now() + PREFACE_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if buf[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // Part of the preface so far: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One item request as the upstream received it.
struct ItemCall {
    item: u32,
    ms: u32,
    trace: Option<ItemTrace>,
}

/// The trace context the proxy sent along.
struct ItemTrace {
    run: RunId,
    request_id: String,
    lane: String,
    sent_us: i64,
    waited_us: i64,
}

impl ItemCall {
    /// `GET /item/{n}?ms=T`; `None` for anything else.
    fn parse(uri: &Uri, headers: &HeaderMap) -> Option<ItemCall> {
        let item = uri.path().strip_prefix("/item/")?.parse().ok()?;
        let ms: u32 = uri
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("ms="))?
            .parse()
            .ok()?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let trace = (|| {
            let run = header(RUN_HEADER).filter(|r| RunId::is_valid(r))?;
            let request_id = header(REQUEST_HEADER).filter(|r| RunId::is_valid(r))?;
            let lane = header(LANE_HEADER).filter(|l| RunId::is_valid(l))?;
            Some(ItemTrace {
                run: RunId(run.to_owned()),
                request_id: request_id.to_owned(),
                lane: lane.to_owned(),
                sent_us: header(SENT_HEADER)?.parse().ok()?,
                waited_us: header(WAITED_HEADER)
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(0),
            })
        })();
        Some(ItemCall {
            item,
            ms: ms.min(MAX_ITEM_MS),
            trace,
        })
    }

    /// Records the proxy's request arriving here, on `connection` (and `stream` for HTTP/2).
    fn arrived(
        &self,
        hub: &TraceHub,
        start_line: String,
        headers: &HeaderMap,
        stream: Option<u64>,
        connection: u64,
    ) {
        let Some(t) = &self.trace else { return };
        let transport = if stream.is_some() {
            Transport::H2
        } else {
            Transport::Http1
        };
        let mut label = format!("GET /item/{}?ms={}", self.item, self.ms);
        if let Some(s) = stream {
            label.push_str(&format!(" · stream {s}"));
        }
        if t.waited_us >= 1_000 {
            label.push_str(&format!(
                " · waited {} ms for a connection",
                t.waited_us / 1_000
            ));
        }
        // The item is this listener's own exchange: its id names the hop.
        let request = RequestId(t.request_id.clone());
        let ids = TraceIds {
            run: t.run.clone(),
            request: request.clone(),
            connection: request,
        };
        let received = server_now_us();
        Tracer::new(hub, Some(ids)).record(|rid| {
            Hop::new(Kind::Request, "server", &t.lane, rid.to_owned())
                .transport(transport)
                .at(HopTime::Span(t.sent_us, received.max(t.sent_us)))
                .on(Some(connection), stream)
                .label(label)
                .detail(Detail {
                    start_line,
                    headers: headers
                        .iter()
                        .map(|(name, value)| Header {
                            name: name.as_str().to_owned(),
                            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                        })
                        .collect(),
                    ..Detail::default()
                })
        });
    }

    /// Waits the item's time (the work an upstream would do).
    async fn work(&self) {
        tokio::time::sleep(Duration::from_millis(self.ms.into())).await;
    }

    /// The answer: a small JSON body, and when and on which connection it was answered.
    fn answer(&self, connection: u64, stream: Option<u64>) -> Response<Bytes> {
        let body = serde_json::to_vec(&UpstreamAnswer {
            item: self.item,
            connection,
            stream,
        })
        .expect("answers serialize");
        let mut response = Response::new(Bytes::from(body));
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(CONNECTION_HEADER, HeaderValue::from(connection));
        headers.insert(ANSWERED_HEADER, HeaderValue::from(server_now_us()));
        response
    }
}

fn not_an_item() -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(
        b"{\"error\":\"the upstream serves GET /item/{n}?ms=T\"}",
    ));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

async fn answer_h1(
    request: hyper::Request<Incoming>,
    connection: u64,
    trace: TraceHub,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(call) = ItemCall::parse(request.uri(), request.headers()) else {
        return Ok(not_an_item().map(Full::new));
    };
    let start_line = format!("{} {} HTTP/1.1", request.method(), request.uri());
    call.arrived(&trace, start_line, request.headers(), None, connection);
    call.work().await;
    Ok(call.answer(connection, None).map(Full::new))
}

async fn answer_h2(
    request: hyper::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    connection: u64,
    trace: TraceHub,
) {
    let stream = u64::from(respond.stream_id().as_u32());
    let response = match ItemCall::parse(request.uri(), request.headers()) {
        Some(call) => {
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let start_line = format!("{} {path} HTTP/2 (stream {stream})", request.method());
            call.arrived(
                &trace,
                start_line,
                request.headers(),
                Some(stream),
                connection,
            );
            call.work().await;
            call.answer(connection, Some(stream))
        }
        None => not_an_item(),
    };
    let (parts, body) = response.into_parts();
    if let Ok(mut send) = respond.send_response(Response::from_parts(parts, ()), false) {
        let _ = send.send_data(body, true);
    }
}
