//! Every network call a demo makes, each wrapped by the recorder: the request is recorded when
//! it leaves, the response when it has fully arrived, with sizes and timings taken from the
//! browser's Resource Timing entry for that exact URL.

use gloo_net::http::{Method, RequestBuilder};
use protocol::{
    ApiError, REQUEST_PARAM, RUN_PARAM,
    job::{JobCreated, JobId, JobSpec, JobUpdate, LongPollAnswer},
    multiplexing::{ProxyReport, SlowAnswer},
    protocols::LookupReport,
    rest_graphql::{GraphqlRequest, SCREEN_QUERY, ScreenAnswer},
    sidecar::{SidecarInfo, SidecarSpec},
    stateful_stateless::{ClusterInfo, ClusterSpec, Login},
    trace::{Actor, Detail, Header, Kind, Message, Phase, RunId, Transport},
    upload::{NewUpload, UploadId, UploadState},
};
use wasm_bindgen::JsCast;
use web_sys::{AbortSignal, PerformanceResourceTiming};

use super::recorder::Recorder;
use crate::model::phases::{CONNECTING, DOWNLOAD, HANDED_TO_PAGE, QUEUED, STALLED, WAITING};

/// An HTTP request a demo wants to make, before the run and request ids are added.
pub struct Outgoing<'a> {
    pub method: Method,
    /// Path and query, without `run` and `rid`.
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub body: Vec<u8>,
}

impl<'a> Outgoing<'a> {
    /// A request with no body.
    pub fn bodiless(method: Method, path: &'a str) -> Outgoing<'a> {
        Outgoing {
            method,
            path,
            content_type: None,
            body: Vec::new(),
        }
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub status: u16,
    pub status_text: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's `{ "error": … }`, or the status line.
    pub fn error_text(&self) -> String {
        serde_json::from_slice::<ApiError>(&self.body)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("{} {}", self.status, self.status_text))
    }
}

/// How a body looks in the inspector: text as text, binary as a hex dump, both truncated.
pub fn body_preview(content_type: Option<&str>, body: &[u8]) -> (String, bool) {
    let limit = Detail::BODY_LIMIT;
    let texty = content_type
        .is_none_or(|ct| ct.contains("json") || ct.contains("xml") || ct.starts_with("text/"));
    if texty {
        let cut = body.len().min(limit);
        (
            String::from_utf8_lossy(&body[..cut]).into_owned(),
            body.len() > limit,
        )
    } else {
        let cut = body.len().min(limit / 3);
        let hex: Vec<String> = body[..cut].iter().map(|b| format!("{b:02x}")).collect();
        let lines: Vec<String> = hex.chunks(16).map(|c| c.join(" ")).collect();
        (
            format!("(binary, {} bytes)\n{}", body.len(), lines.join("\n")),
            body.len() > cut,
        )
    }
}

/// The Resource Timing entry of `url`, once the browser has written it.
async fn resource_timing(url: &str) -> Option<PerformanceResourceTiming> {
    let window = web_sys::window()?;
    let absolute = format!("{}{url}", window.location().origin().ok()?);
    let performance = window.performance()?;
    for _ in 0..20 {
        let entries = performance.get_entries_by_name_with_entry_type(&absolute, "resource");
        if let Some(last) = entries.iter().last() {
            return last.dyn_into().ok();
        }
        gloo_timers::future::TimeoutFuture::new(10).await;
    }
    None
}

/// Sends `out` as part of the current run, recording both halves the browser sees.
pub async fn traced_fetch(
    rec: Recorder,
    out: Outgoing<'_>,
    abort: Option<&AbortSignal>,
) -> Result<Incoming, String> {
    rec.run_id().ok_or("no run is in progress")?;
    let rid = rec.next_request_id();
    // The URL the browser will really request, the run's parameters appended exactly as
    // gloo-net appends them (so Resource Timing finds it and labels match the Network tab).
    let url = rec.run_url(out.path, &rid.0);
    let method = out.method.to_string();
    let (body_text, truncated) = body_preview(out.content_type, &out.body);
    let ends = (Actor::browser(), Actor::server());
    let base = Message {
        sent_us: Some(rec.elapsed_us()),
        detail: Some(Detail {
            start_line: format!("{method} {url} HTTP/1.1"),
            headers: out
                .content_type
                .map(|ct| {
                    vec![Header {
                        name: "content-type".into(),
                        value: ct.into(),
                    }]
                })
                .unwrap_or_default(),
            body: body_text,
            body_bytes: out.body.len() as u64,
            body_truncated: truncated,
            ..Detail::default()
        }),
        ..rec.message(
            Kind::Request,
            Some(rid.0.clone()),
            ends,
            Transport::Http1,
            format!("{method} {url}"),
        )
    };
    rec.record(base.clone());

    // The ids go through `query` because gloo-net leaves a stray `&` on a URL that already has
    // a query and gets no `query` parameters.
    let mut builder = RequestBuilder::new(out.path)
        .query(rec.run_params(&rid.0))
        .method(out.method)
        .abort_signal(abort);
    if let Some(ct) = out.content_type {
        builder = builder.header("content-type", ct);
    }
    let sent = if out.body.is_empty() {
        builder.send().await
    } else {
        let body = js_sys::Uint8Array::from(out.body.as_slice());
        match builder.body(body) {
            Ok(request) => request.send().await,
            Err(e) => Err(e),
        }
    };
    let result = match sent {
        Ok(response) => {
            let status = response.status();
            // HTTP/2 carries no reason phrase: the standard one, as HTTP/1.1 would have sent.
            let status_text = Some(response.status_text())
                .filter(|text| !text.is_empty())
                .or_else(|| {
                    http::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let headers: Vec<Header> = response
                .headers()
                .entries()
                // Fetch hides `Set-Cookie`, but an `Authorization` would show: redacted as
                // the server redacts what it records.
                .map(|(name, value)| Header::recorded(name, value))
                .collect();
            let content_type = response.headers().get("content-type").unwrap_or_default();
            match response.binary().await {
                Ok(body) => Ok((
                    Incoming {
                        status,
                        status_text,
                        content_type,
                        body,
                    },
                    headers,
                )),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    let done_us = rec.elapsed_us();

    match result {
        Ok((incoming, headers)) => {
            let timing = resource_timing(&url).await;
            let protocol = timing
                .as_ref()
                .map(|t| t.next_hop_protocol())
                .unwrap_or_default();
            let transport = Transport::from_protocol(&protocol);
            let version = if transport == Transport::H2 {
                "HTTP/2"
            } else {
                "HTTP/1.1"
            };
            let (preview, truncated) = body_preview(Some(&incoming.content_type), &incoming.body);
            let at = |ms: f64| rec.to_run_us(ms);
            let phases = timing
                .as_ref()
                .map(|t| {
                    let phase = |name: &str, from: f64, to: f64| Phase {
                        name: name.into(),
                        start_us: at(from),
                        dur_us: ((to - from) * 1000.0).round().max(0.0) as i64,
                    };
                    // Chromium's Network-tab Timing rows: a reused connection has no
                    // connecting time; a request waiting for one of the six connections
                    // per origin shows as stalled.
                    let connect_start = t.connect_start().max(t.start_time());
                    let connect_end = t.connect_end().max(connect_start);
                    let request_start = t.request_start().max(connect_end);
                    vec![
                        phase(QUEUED, t.start_time(), connect_start),
                        phase(CONNECTING, connect_start, connect_end),
                        phase(STALLED, connect_end, request_start),
                        phase(WAITING, request_start, t.response_start()),
                        phase(DOWNLOAD, t.response_start(), t.response_end()),
                    ]
                })
                .unwrap_or_default();
            // When the page's own code had the whole answer (later than the network's
            // responseEnd when the main thread is busy): the moment that compares fairly with
            // an EventSource or WebSocket handler running.
            let mut phases = phases;
            phases.push(Phase {
                name: HANDED_TO_PAGE.into(),
                start_us: done_us,
                dur_us: 0,
            });
            let recv_us = timing
                .as_ref()
                .map(|t| at(t.response_end()))
                .unwrap_or(done_us);
            let bytes = timing
                .as_ref()
                .map(|t| t.transfer_size() as u64)
                .filter(|&b| b > 0)
                .or(Some(incoming.body.len() as u64));
            rec.record(Message {
                from: Actor::server(),
                to: Actor::browser(),
                kind: Kind::Response,
                transport,
                sent_us: timing.as_ref().map(|t| at(t.response_start())),
                recv_us: Some(recv_us),
                label: format!("{} {} {}", incoming.status, incoming.status_text, url),
                bytes,
                status: Some(incoming.status),
                detail: Some(Detail {
                    start_line: format!("{version} {} {}", incoming.status, incoming.status_text),
                    headers,
                    body: preview,
                    body_bytes: incoming.body.len() as u64,
                    body_truncated: truncated,
                    phases,
                    ..Detail::default()
                }),
                ..base
            });
            Ok(incoming)
        }
        Err(error) => {
            rec.record(Message {
                from: Actor::browser(),
                to: Actor::browser(),
                kind: Kind::Note,
                sent_us: Some(done_us),
                recv_us: Some(done_us),
                label: format!("failed: {error}"),
                detail: None,
                ..base
            });
            Err(error)
        }
    }
}

/// `POST /api/echo`: the request/response demo's one call.
pub async fn echo(
    rec: Recorder,
    content_type: &str,
    body: Vec<u8>,
    process_ms: &str,
    abort: Option<&AbortSignal>,
) -> Result<Incoming, String> {
    let path = format!(
        "/api/echo?process_ms={}",
        js_sys::encode_uri_component(process_ms)
    );
    traced_fetch(
        rec,
        Outgoing {
            method: Method::POST,
            path: &path,
            content_type: Some(content_type),
            body,
        },
        abort,
    )
    .await
}

/// Sends `out` and decodes a JSON answer; a 4xx/5xx becomes its `{ "error": … }` text.
pub async fn traced_json<T: serde::de::DeserializeOwned>(
    rec: Recorder,
    out: Outgoing<'_>,
    abort: Option<&AbortSignal>,
) -> Result<T, String> {
    let incoming = traced_fetch(rec, out, abort).await?;
    if !incoming.is_success() {
        return Err(format!("{} {}", incoming.status, incoming.error_text()));
    }
    serde_json::from_slice(&incoming.body).map_err(|e| format!("unreadable answer: {e}"))
}

/// `POST /api/jobs`: starts a job (202 and a handle).
pub async fn submit_job(rec: Recorder, spec: &JobSpec) -> Result<JobCreated, String> {
    let body = serde_json::to_vec(spec).map_err(|e| e.to_string())?;
    let out = Outgoing {
        method: Method::POST,
        path: "/api/jobs",
        content_type: Some("application/json"),
        body,
    };
    traced_json(rec, out, None).await
}

/// `GET /api/jobs/{id}`: the job's state right now (short polling).
pub async fn job_status(
    rec: Recorder,
    job: &JobId,
    abort: Option<&AbortSignal>,
) -> Result<JobUpdate, String> {
    let path = format!("/api/jobs/{}", job.0);
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), abort).await
}

/// `GET /api/jobs/{id}/wait`: held until the job passes `after` or `timeout_ms` (long polling).
pub async fn wait_for_job(
    rec: Recorder,
    job: &JobId,
    after: u32,
    timeout_ms: &str,
    abort: Option<&AbortSignal>,
) -> Result<LongPollAnswer, String> {
    let path = format!(
        "/api/jobs/{}/wait?after={after}&timeout_ms={}",
        job.0,
        js_sys::encode_uri_component(timeout_ms)
    );
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), abort).await
}

/// `POST /api/jobs/{id}/drop`: asks the server to cut the job's event streams.
pub async fn drop_job_streams(
    rec: Recorder,
    job: &JobId,
) -> Result<protocol::job::Dropped, String> {
    let path = format!("/api/jobs/{}/drop", job.0);
    traced_json(rec, Outgoing::bodiless(Method::POST, &path), None).await
}

/// `GET /api/work/{handler}?ms=N`: the sync/async demo's call (`handler` is `blocking` or `async`).
pub async fn work(
    rec: Recorder,
    handler: &str,
    ms: &str,
) -> Result<protocol::sync_async::WorkDone, String> {
    let path = format!(
        "/api/work/{handler}?ms={}",
        js_sys::encode_uri_component(ms)
    );
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), None).await
}

/// `POST /api/pubsub/publish`: hands one message to the broker (202 and its number).
pub async fn publish(
    rec: Recorder,
    message: &protocol::pubsub::PublishRequest,
) -> Result<protocol::pubsub::Published, String> {
    let body = serde_json::to_vec(message).map_err(|e| e.to_string())?;
    let out = Outgoing {
        method: Method::POST,
        path: "/api/pubsub/publish",
        content_type: Some("application/json"),
        body,
    };
    traced_json(rec, out, None).await
}

/// `POST /api/pubsub/ticker`: starts the server-side publisher of this run (or room).
pub async fn start_ticker(
    rec: Recorder,
    spec: &protocol::pubsub::TickerSpec,
) -> Result<protocol::pubsub::TickerStarted, String> {
    let body = serde_json::to_vec(spec).map_err(|e| e.to_string())?;
    let out = Outgoing {
        method: Method::POST,
        path: "/api/pubsub/ticker",
        content_type: Some("application/json"),
        body,
    };
    traced_json(rec, out, None).await
}

/// `DELETE /api/pubsub/ticker?room=`: stops it.
pub async fn stop_ticker(rec: Recorder, room: &str) -> Result<protocol::Stopped, String> {
    let path = format!(
        "/api/pubsub/ticker?room={}",
        js_sys::encode_uri_component(room)
    );
    traced_json(rec, Outgoing::bodiless(Method::DELETE, &path), None).await
}

/// `POST /api/uploads`: announces a chunked upload.
pub async fn announce_upload(rec: Recorder, new: &NewUpload) -> Result<UploadState, String> {
    let body = serde_json::to_vec(new).map_err(|e| e.to_string())?;
    let out = Outgoing {
        method: Method::POST,
        path: "/api/uploads",
        content_type: Some("application/json"),
        body,
    };
    traced_json(rec, out, None).await
}

/// `PUT /api/uploads/{id}?offset=N`: one chunk, at the offset the server acknowledged.
pub async fn upload_chunk(
    rec: Recorder,
    id: &UploadId,
    offset: u64,
    chunk: Vec<u8>,
    abort: Option<&AbortSignal>,
) -> Result<UploadState, String> {
    let path = format!("/api/uploads/{}?offset={offset}", id.0);
    let out = Outgoing {
        method: Method::PUT,
        path: &path,
        content_type: Some("application/octet-stream"),
        body: chunk,
    };
    traced_json(rec, out, abort).await
}

/// `GET /api/uploads/{id}`: how much of the upload the server holds (where to resume).
pub async fn upload_state(rec: Recorder, id: &UploadId) -> Result<UploadState, String> {
    let path = format!("/api/uploads/{}", id.0);
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), None).await
}

/// `DELETE /api/uploads/{id}`: the server may forget the upload.
pub async fn forget_upload(rec: Recorder, id: &UploadId) -> Result<(), String> {
    let path = format!("/api/uploads/{}", id.0);
    traced_fetch(rec, Outgoing::bodiless(Method::DELETE, &path), None)
        .await
        .map(|_| ())
}

/// `POST /api/uploads/whole`: the whole file in one request body.
pub async fn upload_whole(
    rec: Recorder,
    name: &str,
    sha256: &str,
    bytes: Vec<u8>,
    abort: Option<&AbortSignal>,
) -> Result<UploadState, String> {
    let path = format!(
        "/api/uploads/whole?name={}&sha256={sha256}",
        js_sys::encode_uri_component(name)
    );
    let out = Outgoing {
        method: Method::POST,
        path: &path,
        content_type: Some("application/octet-stream"),
        body: bytes,
    };
    traced_json(rec, out, abort).await
}

/// A JSON body for `out`.
fn json_body<'a, T: serde::Serialize>(
    method: Method,
    path: &'a str,
    value: &T,
) -> Result<Outgoing<'a>, String> {
    Ok(Outgoing {
        method,
        path,
        content_type: Some("application/json"),
        body: serde_json::to_vec(value).map_err(|e| e.to_string())?,
    })
}

/// `POST /api/lb/cluster`: starts this run's balancer and two instances.
pub async fn lb_cluster(rec: Recorder, spec: &ClusterSpec) -> Result<ClusterInfo, String> {
    traced_json(rec, json_body(Method::POST, "/api/lb/cluster", spec)?, None).await
}

/// `POST /api/lb/login` through the balancer; the answer is kept whole (a refusal is a lesson).
pub async fn lb_login(rec: Recorder, user: &str) -> Result<Incoming, String> {
    let login = Login {
        user: user.to_owned(),
    };
    traced_fetch(rec, json_body(Method::POST, "/api/lb/login", &login)?, None).await
}

/// `GET /api/lb/profile` through the balancer, with whatever session cookie the page has.
pub async fn lb_profile(rec: Recorder) -> Result<Incoming, String> {
    traced_fetch(
        rec,
        Outgoing::bodiless(Method::GET, "/api/lb/profile"),
        None,
    )
    .await
}

/// `POST /api/lb/cluster/restart?instance=a`: stops that instance and starts it again.
pub async fn lb_restart(rec: Recorder, instance: &str) -> Result<ClusterInfo, String> {
    let path = format!("/api/lb/cluster/restart?instance={instance}");
    traced_json(rec, Outgoing::bodiless(Method::POST, &path), None).await
}

/// `DELETE /api/lb/cluster`: stops this run's cluster.
pub async fn lb_stop(rec: Recorder) -> Result<protocol::Stopped, String> {
    traced_json(
        rec,
        Outgoing::bodiless(Method::DELETE, "/api/lb/cluster"),
        None,
    )
    .await
}

/// `POST /api/sidecar/setup`: starts this run's app and the sidecar in front of it.
pub async fn sidecar_setup(rec: Recorder, spec: &SidecarSpec) -> Result<SidecarInfo, String> {
    traced_json(
        rec,
        json_body(Method::POST, "/api/sidecar/setup", spec)?,
        None,
    )
    .await
}

/// `GET /api/sidecar/orders/{n}` through the sidecar; a 429 or 5xx is kept whole.
pub async fn sidecar_order(rec: Recorder, n: u32) -> Result<Incoming, String> {
    let path = format!("/api/sidecar/orders/{n}");
    traced_fetch(rec, Outgoing::bodiless(Method::GET, &path), None).await
}

/// `DELETE /api/sidecar/setup`: stops this run's app and sidecar.
pub async fn sidecar_stop(rec: Recorder) -> Result<protocol::Stopped, String> {
    traced_json(
        rec,
        Outgoing::bodiless(Method::DELETE, "/api/sidecar/setup"),
        None,
    )
    .await
}

/// `GET` of one REST resource (`/api/rest/…`, its query included), decoded.
pub async fn rest_get<T: serde::de::DeserializeOwned>(
    rec: Recorder,
    path: &str,
) -> Result<T, String> {
    traced_json(rec, Outgoing::bodiless(Method::GET, path), None).await
}

/// `POST /api/graphql` with the screen's query for `user`'s newest `posts`; `query` is its
/// query string (`batch=…`).
pub async fn graphql_screen(
    rec: Recorder,
    query: &str,
    user: u32,
    posts: u32,
) -> Result<ScreenAnswer, String> {
    let path = format!("/api/graphql?{query}");
    let request = GraphqlRequest {
        query: SCREEN_QUERY.to_owned(),
        variables: Some(serde_json::json!({ "user": user, "posts": posts })),
        operation_name: None,
    };
    traced_json(rec, json_body(Method::POST, &path, &request)?, None).await
}

/// The run whose server-side actors are up, kept outside the reactive system so the page's
/// cleanup can still read it after the signals are gone; when the page goes away while it is
/// set, the actors are released with a quiet `DELETE` of `path`.
pub fn release_on_leave(path: &'static str) -> std::sync::Arc<std::sync::Mutex<Option<RunId>>> {
    let live: std::sync::Arc<std::sync::Mutex<Option<RunId>>> = Default::default();
    let leaving = live.clone();
    leptos::prelude::on_cleanup(move || {
        if let Some(run) = leaving.lock().expect("run lock poisoned").take() {
            release_quietly(path, run);
        }
    });
    live
}

/// When the page goes away mid-run: a `DELETE` of the run's server-side actors, sent without
/// recording (the recorder is gone with the page). Its `rid` is `leave`.
pub fn release_quietly(path: impl Into<String>, run: RunId) {
    let path = path.into();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = RequestBuilder::new(&path)
            .query([(RUN_PARAM, run.0.as_str()), (REQUEST_PARAM, "leave")])
            .method(Method::DELETE)
            .send()
            .await;
    });
}

/// `GET /api/mux/proxy`: the server forwards `n` items to its upstream over one HTTP/2
/// connection (`via=h2`) or a pool of `pool` HTTP/1.1 connections (`via=h1`).
pub async fn mux_proxy(
    rec: Recorder,
    n: &str,
    via: &str,
    pool: &str,
    item_ms: &str,
    abort: Option<&AbortSignal>,
) -> Result<ProxyReport, String> {
    let e = |s: &str| String::from(js_sys::encode_uri_component(s));
    let mut path = format!(
        "/api/mux/proxy?n={}&via={}&item_ms={}",
        e(n),
        e(via),
        e(item_ms)
    );
    if via == "h1" {
        path.push_str(&format!("&pool={}", e(pool)));
    }
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), abort).await
}

/// `GET /api/mux/slow?ms=T`: one request the server holds T ms, counting the run's held ones.
pub async fn mux_slow(
    rec: Recorder,
    ms: &str,
    abort: Option<&AbortSignal>,
) -> Result<SlowAnswer, String> {
    let path = format!("/api/mux/slow?ms={}", js_sys::encode_uri_component(ms));
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), abort).await
}

/// `GET /api/queue/info`, untraced (before any run): the queue engines the server offers.
pub async fn queue_info() -> Result<protocol::queue::QueueInfo, String> {
    let response = RequestBuilder::new("/api/queue/info")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// `POST /api/queue/run`: declares this run's queues and starts its consumers and puller.
pub async fn queue_start(
    rec: Recorder,
    spec: &protocol::queue::QueueSpec,
) -> Result<protocol::queue::QueueStarted, String> {
    traced_json(rec, json_body(Method::POST, "/api/queue/run", spec)?, None).await
}

/// `POST /api/queue/publish`: one job onto both of the run's queues.
pub async fn queue_publish(rec: Recorder) -> Result<protocol::queue::JobPublished, String> {
    traced_json(
        rec,
        Outgoing::bodiless(Method::POST, "/api/queue/publish"),
        None,
    )
    .await
}

/// `GET /api/queue/report?wait_ms=N`: the server's counts, once every job is done or after N ms.
pub async fn queue_report(
    rec: Recorder,
    wait_ms: u32,
) -> Result<protocol::queue::QueueReport, String> {
    let path = format!("/api/queue/report?wait_ms={wait_ms}");
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), None).await
}

/// `DELETE /api/queue/run`: stops the run's consumers and deletes its queues; the final counts.
pub async fn queue_stop(rec: Recorder) -> Result<protocol::queue::QueueReport, String> {
    traced_json(
        rec,
        Outgoing::bodiless(Method::DELETE, "/api/queue/run"),
        None,
    )
    .await
}

/// `GET /api/protocols/lookup`: the server asks its DNS server (UDP) and PostgreSQL (its wire
/// protocol) about service `name`; `drop_first` loses the first DNS query on the way.
pub async fn protocols_lookup(
    rec: Recorder,
    name: &str,
    record_type: &str,
    drop_first: bool,
) -> Result<LookupReport, String> {
    let e = |s: &str| String::from(js_sys::encode_uri_component(s));
    let path = format!(
        "/api/protocols/lookup?name={}&type={}&drop_first={drop_first}",
        e(name),
        e(record_type)
    );
    traced_json(rec, Outgoing::bodiless(Method::GET, &path), None).await
}
