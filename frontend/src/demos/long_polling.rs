//! Long polling: the same job; each poll is held by the server until the job changes or a
//! timeout passes, and the client asks again at once.

use leptos::{prelude::*, task::spawn_local};
use protocol::trace::Actor;
use web_sys::AbortController;

use crate::{
    api, catalog,
    demo_frame::DemoFrame,
    job_controls::{JobInputs, JobParams, JobProgress, NumberInput},
    metrics,
    recorder::use_recorder,
    waiting,
};

#[component]
pub fn LongPolling() -> impl IntoView {
    let recorder = use_recorder();
    let params = JobParams::new(5, 400);
    let timeout = RwSignal::new("3000".to_owned());
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
        spawn_local(async move {
            let signal = controller.as_ref().map(AbortController::signal);
            match api::submit_job(recorder, &spec).await {
                Ok(created) => {
                    status.set(format!(
                        "Job {} accepted; waiting on the server for each change.",
                        created.job.0
                    ));
                    let polled = waiting::long_poll(
                        recorder,
                        &created.job,
                        &timeout_ms,
                        signal.as_ref(),
                        |u| progress.set(Some(u)),
                    )
                    .await;
                    status.set(match polled {
                        Ok(()) => "Done: the server answered the moment the job finished.".into(),
                        Err(e) => format!("Long poll failed: {e}"),
                    });
                }
                Err(e) => status.set(format!("The server refused the job: {e}")),
            }
            recorder.finish_run();
        });
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
