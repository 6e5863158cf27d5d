//! The four ways a client can learn of a job's progress, as reusable client loops: the single
//! demos and the side-by-side comparison run exactly the same code. Also the loops' stoppable
//! sleep ([`pause_while`]), which the demos that pace their own requests use too.

use leptos::prelude::*;
use protocol::{
    job::{JobId, JobSpec, JobUpdate},
    push::{ClientFrame, ServerFrame},
};
use web_sys::AbortSignal;

use super::{
    api,
    event_stream::EventStream,
    recorder::Recorder,
    socket_stream::{SocketEvent, TracedSocket},
};

/// Submits `spec`, then runs `follow` on the job until it is done; the status line says how it
/// went (`follow`'s message, or the failure) and the run ends.
pub async fn submit_and_follow(
    rec: Recorder,
    spec: JobSpec,
    status: RwSignal<String>,
    follow: impl AsyncFnOnce(JobId) -> Result<String, String>,
) {
    match api::submit_job(rec, &spec).await {
        Ok(created) => {
            status.set(format!("Job {} accepted; following it…", created.job.0));
            status.set(
                follow(created.job)
                    .await
                    .unwrap_or_else(|e| format!("Failed: {e}")),
            );
        }
        Err(e) => status.set(format!("The server refused the job: {e}")),
    }
    rec.finish_run();
}

/// A polling interval as typed, kept to 20 ms–10 s (250 ms if unreadable): the page's own
/// pace, not a parameter the server judges.
pub fn interval_ms(typed: &str) -> u32 {
    typed.trim().parse().unwrap_or(250).clamp(20, 10_000)
}

/// Short polling: ask every `every_ms` until the job is done or the run stops.
pub async fn short_poll(
    rec: Recorder,
    job: &JobId,
    every_ms: u32,
    on_update: impl Fn(JobUpdate),
) -> Result<(), String> {
    while pause_while(rec.running(), every_ms).await {
        let update = api::job_status(rec, job, None).await?;
        let done = update.done;
        on_update(update);
        if done {
            break;
        }
    }
    Ok(())
}

/// Long polling: ask, let the server hold the request until something changes (or
/// `timeout_ms`), ask again at once; until done or the run stops.
pub async fn long_poll(
    rec: Recorder,
    job: &JobId,
    timeout_ms: &str,
    abort: Option<&AbortSignal>,
    on_update: impl Fn(JobUpdate),
) -> Result<(), String> {
    let mut after = 0;
    while rec.running().get_untracked() {
        let answer = api::wait_for_job(rec, job, after, timeout_ms, abort).await?;
        after = answer.update.version;
        let done = answer.update.done;
        on_update(answer.update);
        if done {
            break;
        }
    }
    Ok(())
}

/// Server-Sent Events: one stream of `progress` events, closed at `done`.
pub fn stream_events(
    rec: Recorder,
    job: &JobId,
    on_update: impl Fn(JobUpdate) + 'static,
    on_done: impl Fn() + 'static,
) -> Result<EventStream, String> {
    let path = format!("/api/jobs/{}/events", job.0);
    let me = StoredValue::new(None::<EventStream>);
    let stream = EventStream::open(rec, &path, &["progress", "done"], move |event| {
        if let Ok(update) = serde_json::from_str::<JobUpdate>(&event.data) {
            on_update(update);
        }
        if event.name == "done" {
            me.with_value(|s| s.iter().for_each(EventStream::close));
            on_done();
        }
    })?;
    me.set_value(Some(stream));
    Ok(stream)
}

/// WebSocket push: follow the job on a socket of lifeline `browser`, closed when it is done.
pub fn follow_over_socket(
    rec: Recorder,
    job: &JobId,
    on_update: impl Fn(JobUpdate) + 'static,
    on_done: impl Fn() + 'static,
    on_error: impl Fn(String) + 'static,
) -> Result<TracedSocket, String> {
    let me = StoredValue::new(None::<TracedSocket>);
    let job = job.clone();
    let socket = TracedSocket::open(rec, "/api/push/ws", "browser", move |event| match event {
        SocketEvent::Open => me.with_value(|s| {
            if let Some(s) = s {
                s.send(&ClientFrame::Follow { job: job.clone() });
            }
        }),
        SocketEvent::Frame(ServerFrame::Progress { update }) => {
            let done = update.done;
            on_update(update);
            if done {
                me.with_value(|s| s.iter().for_each(TracedSocket::close));
                on_done();
            }
        }
        SocketEvent::Frame(ServerFrame::Error { error }) => on_error(error),
        SocketEvent::Frame(_) => {}
        SocketEvent::Closed { code, reason } if code != 1000 => {
            on_error(format!("closed by the server: {code} {reason}"))
        }
        SocketEvent::Closed { .. } => {}
    })?;
    me.set_value(Some(socket));
    Ok(socket)
}

/// Sleeps `ms`, waking early (and returning false) once `running` turns false.
pub async fn pause_while(running: Signal<bool>, ms: u32) -> bool {
    let mut left = ms;
    while left > 0 {
        if !running.get_untracked() {
            return false;
        }
        let step = left.min(50);
        gloo_timers::future::TimeoutFuture::new(step).await;
        left -= step;
    }
    running.get_untracked()
}
