//! What the waiting-for-results demos share on the page: the job's parameters and its progress
//! bar (the loops' stoppable sleep, [`crate::recording::waiting::pause_while`], is with the loops).

use leptos::prelude::*;

use super::share::url_param;
use protocol::job::{JobSpec, JobUpdate};

/// The job's parameters as typed (the server judges them: out-of-range values get its 422).
#[derive(Clone, Copy)]
pub struct JobParams {
    pub steps: RwSignal<String>,
    pub step_ms: RwSignal<String>,
    pub payload_bytes: RwSignal<String>,
}

impl JobParams {
    pub fn new(steps: u32, step_ms: u32) -> JobParams {
        JobParams {
            steps: url_param("steps", &steps.to_string()),
            step_ms: url_param("step_ms", &step_ms.to_string()),
            payload_bytes: url_param("payload_bytes", "200"),
        }
    }

    /// The spec to submit; an unreadable number becomes 0, which the server refuses by name.
    pub fn spec(&self) -> JobSpec {
        let n = |s: RwSignal<String>| s.get_untracked().trim().parse().unwrap_or(0);
        JobSpec {
            steps: n(self.steps),
            step_ms: n(self.step_ms),
            payload_bytes: n(self.payload_bytes),
        }
    }
}

/// A labelled number input bound to `value`.
#[component]
pub fn NumberInput(
    label: &'static str,
    testid: &'static str,
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <input data-testid=testid type="number" prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))/>
        </label>
    }
}

/// The job's parameter inputs.
#[component]
pub fn JobInputs(params: JobParams) -> impl IntoView {
    view! {
        <NumberInput label="Job steps" testid="param-steps" value=params.steps/>
        <NumberInput label="Time per step (ms)" testid="param-step-ms" value=params.step_ms/>
        <NumberInput label="Bytes per update" testid="param-payload" value=params.payload_bytes/>
    }
}

/// The job's progress as this client knows it.
#[component]
pub fn JobProgress(update: RwSignal<Option<JobUpdate>>) -> impl IntoView {
    let known = move || update.with(|u| u.as_ref().map(|u| (u.version, u.steps, u.done)));
    view! {
        <div class="job-progress">
            <progress
                data-testid="job-progress"
                max=move || known().map(|k| k.1).unwrap_or(1)
                value=move || known().map(|k| k.0).unwrap_or(0)
                aria-label="Job progress as this client knows it"
            ></progress>
            <span>
                {move || match known() {
                    None => "no job yet".to_owned(),
                    Some((_, _, true)) => "job done".to_owned(),
                    Some((v, n, false)) => format!("step {v} of {n}"),
                }}
            </span>
        </div>
    }
}
