//! Long polling: the same job; each poll is held by the server until the job changes or a
//! timeout passes, and the client asks again at once.

use leptos::{prelude::*, task::spawn_local};
use protocol::trace::Actor;
use web_sys::AbortController;

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
pub fn LongPolling() -> impl IntoView {
    let recorder = use_recorder();
    let params = JobParams::new(5, 400);
    let timeout = url_param("timeout_ms", "3000");
    let progress = RwSignal::new(None);
    let status = RwSignal::new(String::new());
    let abort: StoredValue<Option<AbortController>, LocalStorage> = StoredValue::new_local(None);

    let on_stop = Callback::new(move |_| {
        abort.with_value(|a| a.iter().for_each(AbortController::abort));
        recorder.finish_run();
    });
    let on_run = Callback::new(move |_| {
        recorder.start_run();
        progress.set(None);
        status.set("Submitting the job…".into());
        let spec = params.spec();
        let timeout_ms = timeout.get_untracked();
        let controller = AbortController::new().ok();
        abort.set_value(controller.clone());
        spawn_local(waiting::submit_and_follow(
            recorder,
            spec,
            status,
            async move |job| {
                let signal = controller.as_ref().map(AbortController::signal);
                waiting::long_poll(recorder, &job, &timeout_ms, signal.as_ref(), |u| {
                    progress.set(Some(u))
                })
                .await?;
                Ok("Done: the server answered the moment the job finished.".into())
            },
        ));
    });

    view! {
        <DemoFrame
            pattern=catalog::find("long-polling").expect("catalogued")
            recorder=recorder
            actors=vec![Actor::browser(), Actor::server(), Actor::new("worker")]
            on_run=on_run
            on_stop=on_stop
            network_path="/api/jobs/"
            status=status
            metrics=metrics::poll_metrics
        >
            <JobInputs params=params/>
            <NumberInput label="Hold at most (ms)" testid="param-timeout" value=timeout/>
            <JobProgress update=progress/>
        </DemoFrame>
    }
}
