//! The frame every demo page shares: title, controls (Run, Stop, Reset and the demo's own
//! parameters), the diagram beside the inspector, measured metrics, the explanation, and where
//! to find the traffic in the Network tab.

use leptos::{prelude::*, task::spawn_local};
use protocol::trace::{Actor, Kind};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, HtmlInputElement, Url};

use crate::{
    catalog::Pattern,
    diagram::SequenceDiagram,
    export::{TraceFile, to_mermaid},
    inspector::Inspector,
    layout,
    merge::Drawn,
    metrics::{MetricsBar, TraceMetrics, http_metrics},
    playback::{Playback, at_time, instants},
    recorder::Recorder,
    share::CopyLink,
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
    let selected = RwSignal::new(None::<String>);
    let compact = RwSignal::new(false);
    let lifelines = actors.clone();
    let import_error = RwSignal::new(String::new());
    let import = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        spawn_local(async move {
            let text = JsFuture::from(file.text())
                .await
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default();
            match TraceFile::from_json(&text) {
                Ok(saved) => {
                    import_error.set(String::new());
                    selected.set(None);
                    recorder.import(saved);
                }
                Err(e) => import_error.set(e),
            }
        });
    };
    let recorded = recorder.trace();
    let playback = Playback::new(recorded);
    // What the diagram shows: the run now, or as it was at the paused or replayed moment.
    let filter_text = RwSignal::new(String::new());
    let filter_kind = RwSignal::new(String::new());
    let trace = Memo::new(move |_| {
        let shown = match playback.view.get() {
            Some(t) => recorded.with(|r| at_time(r, t)),
            None => recorded.get(),
        };
        let (text, kind) = (filter_text.get().to_lowercase(), filter_kind.get());
        if text.is_empty() && kind.is_empty() {
            return shown;
        }
        shown
            .into_iter()
            .filter(|d| matches(d, &text, &kind))
            .collect()
    });
    let now_us = Signal::derive(move || {
        playback
            .view
            .get()
            .unwrap_or_else(|| recorder.now_us().get())
    });
    let running = recorder.running();
    let run_id = recorder.run_signal();
    let metrics = Signal::derive(move || {
        recorded.with(|t| {
            let mut all = http_metrics(t);
            all.extend(metrics.map(|own| own(t)).unwrap_or_default());
            all
        })
    });
    let reset = move |_: ()| {
        on_stop.run(());
        playback.live();
        recorder.reset();
        selected.set(None);
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
                <p class="summary">{pattern.summary}</p>
            </header>
            // `novalidate`: out-of-range values go to the server, whose 4xx is part of the lesson.
            <RunControls
                running=running
                on_run=Callback::new(move |_| {
                    playback.live();
                    on_run.run(());
                })
                on_stop=on_stop
                on_reset=Callback::new(reset)
            >
                {children()}
            </RunControls>
            <p class="status" role="status" data-testid="status">{move || status.get()}</p>
            <MetricsBar metrics=metrics/>
            <div class="toolbar" role="group" aria-label="Save and load this run">
                <button type="button" data-testid="export-json" disabled=move || recorded.with(Vec::is_empty)
                    on:click=move |_| {
                        let file = recorder.export(pattern.slug);
                        download(&format!("patternscope-{}.json", pattern.slug), "application/json", &file.to_json());
                    }>"Export JSON"</button>
                <button type="button" data-testid="export-mermaid" disabled=move || recorded.with(Vec::is_empty)
                    on:click=move |_| {
                        let text = recorded.with(|t| to_mermaid(t, &layout::actors(t, &lifelines)));
                        download(&format!("patternscope-{}.mmd", pattern.slug), "text/plain", &text);
                    }>"Export Mermaid"</button>
                <label class="import">
                    "Import JSON"
                    <input type="file" accept=".json,application/json" data-testid="import-json" on:change=import/>
                </label>
                <label class="check">
                    <input type="checkbox" data-testid="time-to-scale" prop:checked=move || !compact.get()
                        on:change=move |ev| compact.set(!event_target_checked(&ev))/>
                    "Time to scale"
                </label>
                <label>
                    "Show"
                    <select data-testid="filter-kind" on:change=move |ev| filter_kind.set(event_target_value(&ev))>
                        <option value="">"every kind"</option>
                        {Kind::ALL.iter().map(|k| view! { <option value=k.as_str()>{k.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <input type="search" data-testid="filter-text" placeholder="find: label or lifeline" aria-label="Find messages by label or lifeline"
                    prop:value=move || filter_text.get() on:input=move |ev| filter_text.set(event_target_value(&ev))/>
                <CopyLink/>
                <span class="import-error" role="alert">{move || import_error.get()}</span>
            </div>
            <div class="stage">
                <div class="diagram-column">
                    <PlaybackBar playback=playback recorded=recorded now_us=recorder.now_us()/>
                    <SequenceDiagram trace=trace preferred=actors now_us=now_us selected=selected compact=compact/>
                </div>
                <Inspector trace=trace selected=selected/>
            </div>
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

/// Offers `text` to the user as a file called `name`.
fn download(name: &str, mime: &str, text: &str) {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = Url::create_object_url_with_blob(&blob) else {
        return;
    };
    let anchor = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("a").ok())
        .and_then(|a| a.dyn_into::<HtmlAnchorElement>().ok());
    if let Some(a) = anchor {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = Url::revoke_object_url(&url);
}

/// Pause/live, step, scrub and replay controls; the keyboard drives them too (space pauses or
/// resumes, the arrow keys step) while the bar or the diagram has focus.
#[component]
fn PlaybackBar(
    playback: Playback,
    recorded: Memo<Vec<Drawn>>,
    now_us: Signal<i64>,
) -> impl IntoView {
    let end_ms = move || {
        recorded
            .with(|t| instants(t).last().copied().unwrap_or(0))
            .max(now_us.get())
            / 1000
    };
    let shown_ms = move || playback.view.get().map(|t| t / 1000).unwrap_or_else(end_ms);
    let toggle = move || {
        if playback.view.get_untracked().is_some() {
            playback.live();
        } else {
            playback.pause(now_us.get_untracked());
        }
    };
    let step = move |forward: bool| {
        recorded.with_untracked(|t| playback.step(t, now_us.get_untracked(), forward))
    };
    let keys = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        " " => {
            ev.prevent_default();
            toggle();
        }
        "ArrowRight" => {
            ev.prevent_default();
            step(true);
        }
        "ArrowLeft" => {
            ev.prevent_default();
            step(false);
        }
        _ => {}
    };
    view! {
        <div class="playback" role="group" aria-label="Playback" on:keydown=keys>
            <button type="button" data-testid="pause" aria-pressed=move || playback.view.get().is_some().to_string()
                on:click=move |_| toggle()>
                {move || if playback.view.get().is_some() { "▶ Live" } else { "Pause" }}
            </button>
            <button type="button" data-testid="step-back" aria-label="Step back" on:click=move |_| step(false)>"◀ Step"</button>
            <button type="button" data-testid="step-forward" aria-label="Step forward" on:click=move |_| step(true)>"Step ▶"</button>
            <input type="range" data-testid="scrub" aria-label="Time in the run (ms)" min="0"
                max=move || end_ms().to_string() prop:value=move || shown_ms().to_string()
                on:input=move |ev| {
                    let ms: i64 = event_target_value(&ev).parse().unwrap_or(0);
                    playback.pause(ms * 1000);
                }/>
            <span class="playback-time" data-testid="playback-time">{move || format!("{} ms", shown_ms())}</span>
            <button type="button" data-testid="replay" on:click=move |_| playback.replay()>"↺ Replay"</button>
            <select data-testid="speed" aria-label="Replay speed" on:change=move |ev| {
                playback.speed.set(event_target_value(&ev).parse().unwrap_or(1.0))
            }>
                <option value="0.25">"0.25×"</option>
                <option value="0.5">"0.5×"</option>
                <option value="1" selected>"1×"</option>
                <option value="2">"2×"</option>
                <option value="4">"4×"</option>
            </select>
        </div>
    }
}

/// Whether `d` passes the filter: its kind is `kind` (or `kind` is empty) and `text` (lower
/// case) is in its label or one of its lifelines.
pub fn matches(d: &Drawn, text: &str, kind: &str) -> bool {
    (kind.is_empty() || d.kind.as_str() == kind)
        && (text.is_empty()
            || d.label.to_lowercase().contains(text)
            || d.from.0.contains(text)
            || d.to.0.contains(text))
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
            <div class="params">{children()}</div>
            <div class="buttons">
                <button type="submit" class="primary" data-testid="run" disabled=move || running.get()>"Run"</button>
                <button type="button" data-testid="stop" disabled=move || !running.get() on:click=move |_| on_stop.run(())>"Stop"</button>
                <button type="button" data-testid="reset" on:click=move |_| on_reset.run(())>"Reset"</button>
            </div>
        </form>
    }
}
