//! Server-Sent Events: one EventSource request carries every update; "drop the connection"
//! makes the server cut the stream, and the browser comes back with `Last-Event-ID`.

use leptos::{prelude::*, task::spawn_local};
use protocol::job::{JobId, JobUpdate};
use protocol::trace::Actor;

use crate::{
    model::catalog,
    recording::{api, event_stream::EventStream, recorder::use_recorder, waiting},
    views::{
        demo_frame::DemoFrame,
        job_controls::{JobInputs, JobParams, JobProgress},
    },
};

#[component]
pub fn ServerSentEvents() -> impl IntoView {
    let recorder = use_recorder();
    let params = JobParams::new(8, 400);
    let progress = RwSignal::new(None::<JobUpdate>);
    let status = RwSignal::new(String::new());
    let running = recorder.running();
    let stream = StoredValue::new(None::<EventStream>);
    let job = RwSignal::new(None::<JobId>);

    let close = move || stream.with_value(|s| s.iter().for_each(EventStream::close));
    let on_stop = Callback::new(move |_| {
        close();
        recorder.finish_run();
    });
    let on_run = Callback::new(move |_| {
        close();
        recorder.start_run();
        progress.set(None);
        job.set(None);
        status.set("Submitting the job…".into());
        let spec = params.spec();
        spawn_local(async move {
            let created = match api::submit_job(recorder, &spec).await {
                Ok(c) => c,
                Err(e) => {
                    status.set(format!("The server refused the job: {e}"));
                    recorder.finish_run();
                    return;
                }
            };
            let opened = waiting::stream_events(
                recorder,
                &created.job,
                move |update| progress.set(Some(update)),
                move || {
                    status.set("Done: every update arrived on the stream.".into());
                    recorder.finish_run();
                },
            );
            match opened {
                Ok(s) => {
                    stream.set_value(Some(s));
                    job.set(Some(created.job.clone()));
                    status.set(format!(
                        "Job {} accepted; listening on one event stream.",
                        created.job.0
                    ));
                }
                Err(e) => {
                    status.set(format!("Could not open the event stream: {e}"));
                    recorder.finish_run();
                }
            }
        });
    });
    let drop_connection = move |_| {
        if let Some(id) = job.get_untracked() {
            spawn_local(async move {
                match api::drop_job_streams(recorder, &id).await {
                    Ok(_) => status.set("The server dropped the stream; the browser will reconnect with Last-Event-ID.".into()),
                    Err(e) => status.set(format!("Drop failed: {e}")),
                }
            });
        }
    };

    view! {
        <DemoFrame
            pattern=catalog::find("sse").expect("catalogued")
            recorder=recorder
            actors=vec![Actor::browser(), Actor::server(), Actor::new("worker")]
            on_run=on_run
            on_stop=on_stop
            network_path="/events"
            status=status
        >
            <JobInputs params=params/>
            <button type="button" data-testid="drop-connection"
                disabled=move || !running.get() || job.with(Option::is_none)
                on:click=drop_connection>"Drop the connection"</button>
            <JobProgress update=progress/>
        </DemoFrame>
    }
}
