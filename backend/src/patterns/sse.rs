//! Server-Sent Events: `GET /api/jobs/{id}/events` streams the job's updates as `progress`
//! events with `id:` (the version) and a `retry:` hint, plus keep-alive comments. A client that
//! reconnects with `Last-Event-ID` (or `?lastEventId=` where it cannot set headers) resumes
//! after that id. `POST /api/jobs/{id}/drop` closes open streams from the server's side.
//! The bounded stream itself is [`crate::transport::event_stream`]'s, shared with the pub/sub demo.

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::AppError,
    trace::{Hop, HopTime, Tracer},
    trace::{TraceIds, last_event_id},
    transport::event_stream::{self, wire_bytes},
};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response, sse::Event},
};
use protocol::ApiError;
use protocol::{
    job::JobUpdate,
    pairing,
    trace::{Kind, Transport},
};
use serde::Deserialize;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(drop_streams))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

/// The `event:`/`id:`/`data:` block of one update, as it goes on the wire.
pub fn progress_event(update: &JobUpdate) -> (Event, String, usize) {
    let data = serde_json::to_string(update).expect("updates serialize");
    let name = if update.done { "done" } else { "progress" };
    let bytes = wire_bytes(name, update.version, &data) as usize;
    (
        Event::default()
            .event(name)
            .id(update.version.to_string())
            .data(&data),
        data,
        bytes,
    )
}

#[utoipa::path(get, path = "/jobs/{id}/events", tag = "jobs",
    description = "Server-Sent Events: `progress` and `done` events (data: a JobUpdate, id: its version) until the job is done. Resumes after `Last-Event-ID` (header) or `lastEventId` (query).",
    params(("id" = String, Path, description = "Job id"), EventsQuery,
        ("Last-Event-ID" = Option<u32>, Header, description = "Resume after this version")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 204, description = "The job is done and every event was seen"),
        (status = 400, description = "lastEventId is not a number", body = ApiError), (status = 404, description = "Unknown or expired job", body = ApiError)))]
async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
    trace: Option<TraceIds>,
) -> Result<Response, AppError> {
    let last = match (last_event_id(&headers), query.last_event_id) {
        (Some(n), _) => n,
        (None, Some(q)) => q.trim().parse().map_err(|_| {
            AppError::BadRequest(format!("lastEventId must be a number, got {q:?}"))
        })?,
        (None, None) => 0,
    };
    let job = state.jobs.get(&id)?;
    let latest = job.latest();
    if latest.done && last >= latest.version {
        // Nothing more will come: 204 tells the EventSource to stop reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (sink, response) = event_stream::open(state.stopped());
    let tracer = Tracer::new(&state.trace, trace);
    tokio::spawn(async move {
        let mut updates = job.subscribe();
        let mut dropped = job.on_drop_streams();
        let mut sent = last;
        loop {
            for update in job.since(sent) {
                let (event, data, bytes) = progress_event(&update);
                if sink
                    .offer(
                        event,
                        "too slow: events were piling up; reconnect to resume",
                    )
                    .is_err()
                {
                    // Full (the client is not reading) or gone: end the stream, never buffer more.
                    tracing::info!(job = %update.job.0, "event stream closed: client not reading");
                    return;
                }
                tracer.record(|rid| {
                    Hop::new(
                        Kind::Event,
                        "server",
                        "browser",
                        pairing::event(rid, update.version),
                    )
                    .transport(Transport::Sse)
                    .at(HopTime::Sent)
                    .label(format!(
                        "event: {} id: {}",
                        if update.done { "done" } else { "progress" },
                        update.version
                    ))
                    .bytes(bytes as u64)
                    .body(data)
                });
                sent = update.version;
                if update.done {
                    return;
                }
            }
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { return },
                _ = dropped.recv() => return,
                // Also on shutdown: the stream ends itself then.
                _ = sink.closed() => return,
            }
        }
    });
    Ok(response)
}

#[utoipa::path(post, path = "/jobs/{id}/drop", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "How many open streams were closed", body = protocol::job::Dropped),
        (status = 404, description = "Unknown or expired job", body = ApiError)))]
async fn drop_streams(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<protocol::job::Dropped>, AppError> {
    let job = state.jobs.get(&id)?;
    Ok(Json(protocol::job::Dropped {
        dropped: job.drop_streams(),
    }))
}
