//! The frame every demo page shares: title, controls (Run, Stop, Reset and the demo's own
//! parameters, a copy-link), measured metrics, the [`TraceView`] (toolbar, playback, diagram,
//! inspector, waterfall), the explanation, and where to find the traffic in the Network tab.

use leptos::prelude::*;
use protocol::trace::Actor;

use super::{link_control::LinkControl, share::CopyLink, trace_view::TraceView};
use crate::{
    model::{
        catalog::Pattern,
        metrics::{Metric, TraceMetrics, http_metrics},
    },
    recording::recorder::Recorder,
};

#[component]
pub fn DemoFrame(
    pattern: &'static Pattern,
    recorder: Recorder,
    /// Lifelines drawn from the start.
    actors: Vec<Actor>,
    on_run: Callback<()>,
    on_stop: Callback<()>,
    /// The path (without query) this demo's requests go to, for the Network tab hint.
    network_path: &'static str,
    /// A line under the controls: the last result or error.
    #[prop(into)]
    status: Signal<String>,
    /// Figures of its own the demo measures from the trace, shown after the shared ones.
    #[prop(optional)]
    metrics: Option<TraceMetrics>,
    /// Anything the demo shows under the diagram (a results table, say).
    #[prop(optional, into)]
    below: ViewFn,
    /// The demo's parameters.
    children: Children,
) -> impl IntoView {
    let running = recorder.running();
    let run_id = recorder.run_signal();
    let recorded = recorder.trace();
    let metrics = Signal::derive(move || {
        recorded.with(|t| {
            let mut all = http_metrics(t);
            all.extend(metrics.map(|own| own(t)).unwrap_or_default());
            all
        })
    });
    let reset = move |_: ()| {
        on_stop.run(());
        recorder.reset();
    };
    // Stop closes the run's connections: a line the demo wrote while it was live ("3 subscribers
    // connected; publish…") would then be stale. It says "stopped" until the demo writes anew.
    let stopped_at = RwSignal::new(None::<String>);
    let stop = Callback::new(move |_| {
        on_stop.run(());
        stopped_at.set(Some(status.get_untracked()));
    });
    let run = Callback::new(move |_| {
        stopped_at.set(None);
        on_run.run(());
    });
    let shown_status = move || {
        let now = status.get();
        match stopped_at.get() {
            Some(was) if was == now => {
                "Stopped: the run's connections are closed; what it recorded stays below."
                    .to_owned()
            }
            _ => now,
        }
    };
    let filter = move || match run_id.get() {
        Some(run) => format!("run={}", run.0),
        None => "run=".to_owned(),
    };
    view! {
        <article class="demo">
            <header class="demo-head">
                <a class="back" href="/">"← All patterns"</a>
                <h1>{pattern.title}</h1>
                <div class="head-actions"><CopyLink/></div>
                <p class="summary">{pattern.summary}</p>
            </header>
            // `novalidate`: out-of-range values go to the server, whose 4xx is part of the lesson.
            <RunControls
                running=running
                on_run=run
                on_stop=stop
                on_reset=Callback::new(reset)
            >
                {children()}
            </RunControls>
            <p class="status" role="status" data-testid="status">{shown_status}</p>
            <MetricsBar metrics=metrics/>
            <TraceView recorder=recorder slug=pattern.slug actors=actors/>
            {below.run()}
            <section class="explain">
                <div>
                    <h2>"How it works"</h2>
                    <p>{pattern.how}</p>
                    <p class="network-hint" data-testid="network-hint">
                        "Find every arrow in DevTools → Network: filter for "
                        <code>{network_path}</code>
                        " or for this run's "
                        <code>{filter}</code>
                        ". Each request's Timing tab shows the server's phases (Server-Timing)."
                    </p>
                </div>
                <div>
                    <h2>"Pros"</h2>
                    <ul>{pattern.pros.iter().map(|p| view! { <li>{*p}</li> }).collect_view()}</ul>
                    <h2>"Cons"</h2>
                    <ul>{pattern.cons.iter().map(|p| view! { <li>{*p}</li> }).collect_view()}</ul>
                    <h2>"Where it is used"</h2>
                    <p>{pattern.used_in}</p>
                </div>
            </section>
        </article>
    }
}

/// The demo's parameters with Run, Stop and Reset (the `run`/`stop`/`reset` test hooks). The
/// form does not validate: out-of-range values go to the server, whose 4xx is part of the lesson.
#[component]
pub fn RunControls(
    #[prop(into)] running: Signal<bool>,
    on_run: Callback<()>,
    on_stop: Callback<()>,
    on_reset: Callback<()>,
    children: Children,
) -> impl IntoView {
    view! {
        <form class="controls" aria-label="Run controls" novalidate on:submit=move |ev| {
            ev.prevent_default();
            on_run.run(());
        }>
            <div class="params">{children()}<LinkControl/></div>
            <div class="buttons">
                <button type="submit" class="primary" data-testid="run" disabled=move || running.get()>"Run"</button>
                <button type="button" data-testid="stop" disabled=move || !running.get() on:click=move |_| on_stop.run(())>"Stop"</button>
                <button type="button" data-testid="reset" on:click=move |_| on_reset.run(())>"Reset"</button>
            </div>
        </form>
    }
}

/// A row of metric cards with the `data-testid="metric"` hook.
#[component]
pub fn MetricsBar(#[prop(into)] metrics: Signal<Vec<Metric>>) -> impl IntoView {
    view! {
        <dl class="metrics" aria-label="Measured cost of this run">
            {move || {
                metrics
                    .get()
                    .into_iter()
                    .map(|m| {
                        view! {
                            <div class="metric" data-testid="metric" data-name=m.name data-value=m.value.to_string()>
                                <dt>{m.label}</dt>
                                <dd>{m.shown}</dd>
                            </div>
                        }
                    })
                    .collect_view()
            }}
        </dl>
    }
}
