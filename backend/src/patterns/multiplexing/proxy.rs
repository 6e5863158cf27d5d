//! The proxy: `GET /api/mux/proxy?n=N&via=h2|h1&pool=K&item_ms=T` forwards N item requests to
//! the upstream at once, either as N streams of one HTTP/2 connection (the `h2` crate, which
//! exposes stream ids that hyper's client hides) or over a pool of at most K HTTP/1.1
//! connections (hyper), opened on demand like a real client pool; an item that finds every
//! connection busy waits for one to come back. Connections live only for the run: they are
//! closed when it ends, and dropped (so closed) if the page goes away mid-run.

use protocol::ApiError;
use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use axum::{
    Json,
    extract::State,
    http::{Request, response::Parts},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use protocol::{
    multiplexing::{ForwardedItem, MAX_ITEM_MS, MAX_ITEMS, MAX_POOL, ProxyReport, Via},
    pairing,
    trace::{Kind, Transport},
};
use serde::Deserialize;
use tokio::{net::TcpStream, sync::mpsc, task::JoinSet};

use super::{in_range, upstream};
use crate::server::rate_limit::Client;
use crate::{
    AppState,
    error::AppError,
    extract::AppQuery,
    trace::{Hop, HopTime, Phases, TraceIds, Tracer, server_now_us},
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProxyQuery {
    n: u32,
    via: String,
    pool: Option<u32>,
    item_ms: u32,
}

/// `GET /api/mux/proxy`: forwards the items and reports how.
#[utoipa::path(get, path = "/mux/proxy", tag = "multiplexing", params(ProxyQuery),
    responses((status = 200, description = "How each item travelled", body = ProxyReport),
        (status = 422, description = "Parameters missing, of the wrong type or out of range", body = ApiError), (status = 429, description = "This client (or the server) has as many proxy runs forwarding as it may (Retry-After)", body = ApiError)))]
pub async fn forward(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    query: Result<AppQuery<ProxyQuery>, AppError>,
) -> Result<Response, AppError> {
    let AppQuery(q) = query?;
    let n = in_range("n", q.n, 1, MAX_ITEMS)?;
    let via = Via::parse(&q.via)
        .ok_or_else(|| AppError::Unprocessable(format!("via must be h2 or h1, got {:?}", q.via)))?;
    let pool = match via {
        Via::H2 => 1,
        Via::H1 => {
            let pool = q.pool.ok_or_else(|| {
                AppError::Unprocessable("pool (1 to 16 connections) is needed with via=h1".into())
            })?;
            in_range("pool", pool, 1, MAX_POOL)?
        }
    };
    let item_ms = in_range("item_ms", q.item_ms, 0, MAX_ITEM_MS)?;
    // Held until the run ends: bounds the connections all runs together open upstream.
    let _run_slot = state.mux.start_run(client)?;
    let upstream = state.mux.upstream(&state).await?;
    let run = Arc::new(Forwarding {
        tracer: Tracer::new(&state.trace, trace),
        upstream: upstream.addr(),
        item_ms,
        in_flight: AtomicU32::new(0),
        max_in_flight: AtomicU32::new(0),
    });
    let started = server_now_us();
    let mut phases = Phases::default();
    let (opened, mut forwarded) = phases
        .time_async("forward", async {
            match via {
                Via::H2 => run.clone().over_h2(n).await,
                Via::H1 => run.clone().over_pool(n, pool).await,
            }
        })
        .await?;
    forwarded.sort_by_key(|f| f.item);
    let upstream_connections = forwarded
        .iter()
        .map(|f| f.connection)
        .collect::<BTreeSet<_>>()
        .len() as u32;
    let report = ProxyReport {
        via,
        items: n,
        connections_opened: opened,
        upstream_connections,
        max_concurrent: run.max_in_flight.load(Ordering::SeqCst),
        total_ms: (server_now_us() - started) as f64 / 1000.0,
        forwarded,
    };
    Ok(phases.attach(Json(report).into_response()))
}

fn internal(context: &'static str) -> impl Fn(&dyn std::fmt::Display) -> AppError {
    move |e| AppError::Internal(format!("{context}: {e}"))
}

/// One HTTP/1.1 connection of the pool, named after its lane.
struct Lane {
    name: String,
    connection: u64,
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

/// Where an item travelled: its lane, the connection, and on HTTP/2 its stream.
struct Route<'a> {
    lane: &'a str,
    connection: u64,
    /// `None` over HTTP/1.1.
    stream: Option<u64>,
}

/// One proxy run: where to forward, and what to trace it under.
struct Forwarding {
    tracer: Tracer,
    upstream: SocketAddr,
    item_ms: u32,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
}

impl Forwarding {
    /// Opens a TCP connection to the upstream for `lane`; traced as a connect hop.
    async fn connect(
        &self,
        lane: &str,
        transport: Transport,
    ) -> Result<(TcpStream, u64), AppError> {
        let start = server_now_us();
        let tcp = TcpStream::connect(self.upstream)
            .await
            .map_err(|e| internal("cannot connect to the upstream")(&e))?;
        let _ = tcp.set_nodelay(true);
        let connection = u64::from(tcp.local_addr().map(|a| a.port()).unwrap_or(0));
        let how = match transport {
            Transport::H2 => "HTTP/2 without TLS (h2c, prior knowledge)",
            _ => "HTTP/1.1",
        };
        let connected = server_now_us();
        self.tracer.record(|rid| {
            Hop::new(
                Kind::Connect,
                "server",
                lane,
                pairing::hop(rid, &format!("connect-{lane}")),
            )
            .transport(transport)
            .at(HopTime::Span(start, connected.max(start)))
            .on(Some(connection), None)
            .label(format!("TCP connect :{connection} → upstream, {how}"))
        });
        Ok((tcp, connection))
    }

    fn closed(&self, lane: &str, connection: u64, transport: Transport) {
        self.tracer.record(|rid| {
            Hop::new(
                Kind::Close,
                "server",
                lane,
                pairing::hop(rid, &format!("close-{lane}")),
            )
            .transport(transport)
            .on(Some(connection), None)
            .label(format!("close :{connection}"))
        });
    }

    /// The item request, with the trace context as headers.
    fn item_request(
        &self,
        item: u32,
        uri: String,
        lane: &str,
        sent_us: i64,
        waited_us: i64,
    ) -> Request<()> {
        let mut request = Request::get(uri).body(()).expect("a valid item request");
        if let Some(ids) = self.tracer.ids() {
            let headers = request.headers_mut();
            let mut set = |name: &'static str, value: String| {
                if let Ok(v) = value.parse() {
                    headers.insert(name, v);
                }
            };
            set(upstream::RUN_HEADER, ids.run.0.clone());
            set(
                upstream::REQUEST_HEADER,
                pairing::item(&ids.request.0, item),
            );
            set(upstream::LANE_HEADER, lane.to_owned());
            set(upstream::SENT_HEADER, sent_us.to_string());
            set(upstream::WAITED_HEADER, waited_us.to_string());
        }
        request
    }

    fn item_path(&self, item: u32) -> String {
        format!("/item/{item}?ms={}", self.item_ms)
    }

    fn began(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    /// Records the answer's hop back from the lane and sums the item up.
    fn answered(
        &self,
        item: u32,
        route: Route<'_>,
        Parts {
            status, headers, ..
        }: &Parts,
        (queued_us, sent_us): (i64, i64),
    ) -> Result<ForwardedItem, AppError> {
        let Route {
            lane,
            connection,
            stream,
        } = route;
        let transport = if stream.is_some() {
            Transport::H2
        } else {
            Transport::Http1
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let received = server_now_us();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let answered = header(upstream::ANSWERED_HEADER)
            .and_then(|v| v.parse().ok())
            .unwrap_or(received);
        // The upstream's view of the connection is the truth the tests check.
        let connection = header(upstream::CONNECTION_HEADER)
            .and_then(|v| v.parse().ok())
            .unwrap_or(connection);
        let on_stream = stream.map(|s| format!(" · stream {s}")).unwrap_or_default();
        self.tracer.record(|rid| {
            Hop::new(
                Kind::Response,
                lane,
                "server",
                pairing::hop(rid, &format!("i{item}")),
            )
            .transport(transport)
            .at(HopTime::Span(answered, received.max(answered)))
            .on(Some(connection), stream)
            .label(format!("{} item {item}{on_stream}", status.as_u16()))
        });
        if !status.is_success() {
            return Err(AppError::Internal(format!(
                "the upstream answered item {item} with {status}"
            )));
        }
        Ok(ForwardedItem {
            item,
            lane: lane.to_owned(),
            connection,
            stream,
            waited_ms: (sent_us - queued_us) as f64 / 1000.0,
            round_trip_ms: (received - sent_us) as f64 / 1000.0,
        })
    }

    /// Every item as a stream of one HTTP/2 connection, all at once.
    async fn over_h2(self: Arc<Self>, n: u32) -> Result<(u32, Vec<ForwardedItem>), AppError> {
        let lane = "conn-1";
        let (tcp, connection) = self.connect(lane, Transport::H2).await?;
        let (sender, driver) = h2::client::handshake(tcp)
            .await
            .map_err(|e| internal("HTTP/2 handshake with the upstream failed")(&e))?;
        // Owned by this future: if the page goes away, dropping it aborts the connection.
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            if let Err(err) = driver.await {
                tracing::debug!(cause = %err, "proxy: HTTP/2 connection ended");
            }
            None
        });
        let queued = server_now_us();
        for item in 1..=n {
            let (run, sender) = (self.clone(), sender.clone());
            tasks.spawn(
                async move { Some(run.send_h2(sender, item, lane, connection, queued).await) },
            );
        }
        drop(sender);
        let mut forwarded = Vec::with_capacity(n as usize);
        while forwarded.len() < n as usize {
            match tasks.join_next().await {
                Some(Ok(Some(result))) => forwarded.push(result?),
                // The connection ended. Normally that is because every stream is done and the
                // last item's result is merely not collected yet (the driver can finish first);
                // if it closed early, the items still open fail with their own error.
                Some(Ok(None)) => continue,
                Some(Err(e)) => return Err(internal("a forwarding task failed")(&e)),
                None => break,
            }
        }
        tasks.abort_all();
        self.closed(lane, connection, Transport::H2);
        Ok((1, forwarded))
    }

    async fn send_h2(
        &self,
        sender: h2::client::SendRequest<Bytes>,
        item: u32,
        lane: &str,
        connection: u64,
        queued: i64,
    ) -> Result<ForwardedItem, AppError> {
        let fail = internal("forwarding over HTTP/2 failed");
        // Waits while the upstream's SETTINGS allow no more concurrent streams.
        let mut sender = sender.ready().await.map_err(|e| fail(&e))?;
        let sent = server_now_us();
        let uri = format!("http://{}{}", self.upstream, self.item_path(item));
        let request = self.item_request(item, uri, lane, sent, sent - queued);
        self.began();
        let (response, _) = sender.send_request(request, true).map_err(|e| fail(&e))?;
        let stream = u64::from(response.stream_id().as_u32());
        let response = response.await.map_err(|e| fail(&e))?;
        let (parts, mut body) = response.into_parts();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| fail(&e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let route = Route {
            lane,
            connection,
            stream: Some(stream),
        };
        self.answered(item, route, &parts, (queued, sent))
    }

    /// The items over a pool of at most `size` HTTP/1.1 connections, in order: each takes an
    /// idle connection, opens one while fewer than `size` exist, or waits for one to come back.
    async fn over_pool(
        self: Arc<Self>,
        n: u32,
        size: u32,
    ) -> Result<(u32, Vec<ForwardedItem>), AppError> {
        // Idle connections; capacity `size`, so giving one back never waits.
        let (idle_tx, mut idle_rx) = mpsc::channel::<Lane>(size as usize);
        // Connection drivers and item tasks, owned by this future (dropped = aborted = closed).
        let mut drivers = JoinSet::new();
        let mut items: JoinSet<Result<ForwardedItem, AppError>> = JoinSet::new();
        let mut forwarded = Vec::with_capacity(n as usize);
        let mut lanes: Vec<(String, u64)> = Vec::new();
        let mut noted_wait = false;
        // Every item was asked for at once; how long each waits for a connection counts from here.
        let queued = server_now_us();
        for item in 1..=n {
            let lane = match idle_rx.try_recv() {
                Ok(lane) => lane,
                Err(_) if (lanes.len() as u32) < size => {
                    let name = format!("conn-{}", lanes.len() + 1);
                    let (tcp, connection) = self.connect(&name, Transport::Http1).await?;
                    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                        .await
                        .map_err(|e| internal("HTTP/1.1 handshake with the upstream failed")(&e))?;
                    drivers.spawn(async move {
                        if let Err(err) = conn.await {
                            tracing::debug!(cause = %err, "proxy: HTTP/1.1 connection ended");
                        }
                    });
                    lanes.push((name.clone(), connection));
                    Lane {
                        name,
                        connection,
                        sender,
                    }
                }
                Err(_) => {
                    if !noted_wait {
                        noted_wait = true;
                        self.tracer.record(|rid| {
                            Hop::note("server", pairing::hop(rid, "pool-full")).label(format!(
                                "all {size} connections busy: items {item}–{n} wait for a free one"
                            ))
                        });
                    }
                    // Wait for a connection to come back, noticing a failed item meanwhile.
                    loop {
                        tokio::select! {
                            lane = idle_rx.recv() => break lane.expect("this loop holds a sender"),
                            Some(done) = items.join_next() => {
                                forwarded.push(done.map_err(|e| internal("a forwarding task failed")(&e))??);
                            }
                        }
                    }
                }
            };
            let (run, idle) = (self.clone(), idle_tx.clone());
            items.spawn(async move { run.send_h1(lane, item, queued, idle).await });
        }
        while let Some(done) = items.join_next().await {
            forwarded.push(done.map_err(|e| internal("a forwarding task failed")(&e))??);
        }
        drop(idle_tx);
        // Every connection is idle again: close them (dropping a sender ends its connection).
        while let Ok(lane) = idle_rx.try_recv() {
            drop(lane.sender);
        }
        for (name, connection) in &lanes {
            self.closed(name, *connection, Transport::Http1);
        }
        drivers.abort_all();
        Ok((lanes.len() as u32, forwarded))
    }

    async fn send_h1(
        &self,
        mut lane: Lane,
        item: u32,
        queued: i64,
        idle: mpsc::Sender<Lane>,
    ) -> Result<ForwardedItem, AppError> {
        let fail = internal("forwarding over HTTP/1.1 failed");
        lane.sender.ready().await.map_err(|e| fail(&e))?;
        let sent = server_now_us();
        let (parts, ()) = self
            .item_request(item, self.item_path(item), &lane.name, sent, sent - queued)
            .into_parts();
        let mut request = Request::from_parts(parts, Empty::<Bytes>::new());
        let host = self
            .upstream
            .to_string()
            .parse()
            .expect("an address is a valid Host");
        request.headers_mut().insert("host", host);
        self.began();
        let response = lane
            .sender
            .send_request(request)
            .await
            .map_err(|e| fail(&e))?;
        let (parts, body) = response.into_parts();
        body.collect().await.map_err(|e| fail(&e))?;
        let route = Route {
            lane: &lane.name,
            connection: lane.connection,
            stream: None,
        };
        let done = self.answered(item, route, &parts, (queued, sent));
        // Back to the pool for the next waiting item.
        let _ = idle.try_send(lane);
        done
    }
}
