//! Short polling: submit a job, get a handle at once (202), then ask "done yet?" every N ms.

use leptos::{prelude::*, task::spawn_local};
use protocol::trace::Actor;

use crate::{
    model::{catalog, metrics},
    recording::{recorder::use_recorder, waiting},
    views::{
        demo_frame::DemoFrame,
        job_controls::{JobInputs, JobParams, JobProgress, NumberInput},
        share::url_param,
    },
};

#[component]
pub fn ShortPolling() -> impl IntoView {
    let recorder = use_recorder();
    let params = JobParams::new(5, 400);
    let interval = url_param("interval_ms", "250");
    let progress = RwSignal::new(None);
    let status = RwSignal::new(String::new());

    let on_stop = Callback::new(move |_| recorder.finish_run());
    let on_run = Callback::new(move |_| {
        recorder.start_run();
        progress.set(None);
        status.set("Submitting the job…".into());
        let spec = params.spec();
        let every = waiting::interval_ms(&interval.get_untracked());
        spawn_local(waiting::submit_and_follow(
            recorder,
            spec,
            status,
            async move |job| {
                waiting::short_poll(recorder, &job, every, |u| progress.set(Some(u))).await?;
                Ok("Done: the last poll saw the final state.".into())
            },
        ));
    });

    view! {
        <DemoFrame
            pattern=catalog::find("short-polling").expect("catalogued")
            recorder=recorder
            actors=vec![Actor::browser(), Actor::server(), Actor::new("worker")]
            on_run=on_run
            on_stop=on_stop
            network_path="/api/jobs/"
            status=status
            metrics=metrics::poll_metrics
        >
            <JobInputs params=params/>
            <NumberInput label="Poll every (ms)" testid="param-interval" value=interval/>
            <JobProgress update=progress/>
        </DemoFrame>
    }
}
