//! What every run is viewed through: the toolbar (export JSON, Mermaid or SVG, import, time to
//! scale, filter and find), the playback bar, the sequence diagram, the inspector and the timing
//! waterfall. The single-lane demo frame has one; the comparison page has one per lane.

use leptos::{prelude::*, task::spawn_local};
use protocol::trace::{Actor, Kind};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, HtmlInputElement, Url, XmlSerializer};

use super::{
    diagram::SequenceDiagram,
    inspector::Inspector,
    link_control::ShapedNote,
    playback::{Playback, Shown, at_time},
    waterfall::Waterfall,
};
use crate::{
    model::{
        export::{standalone_svg, to_mermaid},
        layout,
        merge::Drawn,
    },
    recording::recorder::Recorder,
};

/// The view of a run, in its own WebAssembly chunk: a first visit draws the page and its Run
/// button from the smaller chunks, then fetches this one. What is recorded meanwhile is kept by
/// the recorder and drawn once the view arrives.
#[component]
pub fn TraceView(
    recorder: Recorder,
    /// The demo's slug, naming exported files.
    slug: &'static str,
    /// Lifelines drawn from the start.
    actors: Vec<Actor>,
    /// Inspector under the diagram rather than beside it (narrow lanes).
    #[prop(optional)]
    stacked: bool,
) -> impl IntoView {
    let loaded = Suspend::new(chunk::trace_view(recorder, slug, actors, stacked));
    let loading = || view! { <p class="trace-loading" data-testid="trace-loading">"Loading the diagram…"</p> };
    view! { <Suspense fallback=loading>{loaded}</Suspense> }
}

/// The split points (see `demos::chunks`).
mod chunk {
    #![allow(unsafe_code)] // the split points' generated loader statics and `extern "C"` imports

    use leptos::prelude::*;
    use protocol::trace::Actor;

    use crate::{
        model::{export::TraceFile, har},
        recording::recorder::Recorder,
    };

    /// An imported file: a trace this page exported, or a HAR file (the Network tab's "Save all
    /// as HAR"). Its own chunk, fetched at the first import: the readers of both formats are
    /// not needed to draw a run.
    #[lazy]
    pub(super) fn read_import(text: String) -> Result<TraceFile, String> {
        TraceFile::from_json(&text).or_else(|not_ours| match har::parse(&text) {
            Ok(file) => Ok(har::to_trace(&file, har::Secrets::Hidden)),
            Err(e) if e.starts_with(har::NOT_HAR) => Err(not_ours),
            Err(e) => Err(e),
        })
    }

    #[lazy]
    pub(super) fn trace_view(
        recorder: Recorder,
        slug: &'static str,
        actors: Vec<Actor>,
        stacked: bool,
    ) -> AnyView {
        view! { <super::LoadedTraceView recorder=recorder slug=slug actors=actors stacked=stacked/> }
            .into_any()
    }
}

#[component]
fn LoadedTraceView(
    recorder: Recorder,
    slug: &'static str,
    actors: Vec<Actor>,
    stacked: bool,
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
            match chunk::read_import(text).await {
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
    // Live and unfiltered, that is the recorded trace itself, not a copy of it.
    let altered = Memo::new(move |_| {
        let moment = playback.view.get();
        let (text, kind) = (filter_text.get().to_lowercase(), filter_kind.get());
        let filtered = !(text.is_empty() && kind.is_empty());
        let keep = |d: &Drawn| !filtered || matches(d, &text, &kind);
        match moment {
            Some(t) => Some(
                recorded
                    .with(|r| at_time(r, t))
                    .into_iter()
                    .filter(keep)
                    .collect(),
            ),
            None if filtered => {
                Some(recorded.with(|r| r.iter().filter(|d| keep(d)).cloned().collect()))
            }
            None => None,
        }
    });
    let trace = Shown { recorded, altered };
    let now_us = Signal::derive(move || {
        playback
            .view
            .get()
            .unwrap_or_else(|| recorder.now_us().get())
    });
    // A new run, a reset or an import is followed live again, nothing selected.
    let run = recorder.run_signal();
    Effect::new(move |was: Option<Option<protocol::trace::RunId>>| {
        let now = run.get();
        if was.is_some_and(|was| was != now) {
            playback.live();
            selected.set(None);
        }
        now
    });
    // The page draws only the part of a long diagram near the view, so the file is drawn
    // apart: the same diagram, every message in it, in an element that is never attached.
    let export_actors = actors.clone();
    let export_svg = move |_| {
        let Some(holder) = document()
            .create_element("div")
            .ok()
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        else {
            return;
        };
        let preferred = export_actors.clone();
        let drawn = leptos::mount::mount_to(holder.clone(), move || {
            view! { <SequenceDiagram trace=trace preferred=preferred now_us=now_us selected=selected compact=compact whole=true/> }
        });
        let svg = holder.query_selector("svg.sequence-diagram").ok().flatten();
        let markup = svg.and_then(|svg| XmlSerializer::new().ok()?.serialize_to_string(&svg).ok());
        drop(drawn);
        if let Some(markup) = markup {
            download(
                &format!("patternscope-{slug}.svg"),
                "image/svg+xml",
                &standalone_svg(&markup, &format!("Patternscope: {slug}")),
            );
        }
    };
    let empty = move || recorded.with(Vec::is_empty);
    let running = recorder.running();
    let growing = Signal::derive(move || running.get() && playback.view.with(Option::is_none));
    // A message not yet received is still on its way while the run is live or while the view is
    // an earlier moment of it; shown at the end of a finished run, it never arrived.
    let travelling = Signal::derive(move || running.get() || playback.view.with(Option::is_some));
    view! {
        <div class="trace-view" class:stacked=stacked>
            <div class="toolbar" role="group" aria-label="Save, load and filter this run">
                <button type="button" data-testid="export-json" disabled=empty
                    on:click=move |_| {
                        let file = recorder.export(slug);
                        download(&format!("patternscope-{slug}.json"), "application/json", &file.to_json());
                    }>"Export JSON"</button>
                <button type="button" data-testid="export-mermaid" disabled=empty
                    on:click=move |_| {
                        let text = recorded.with(|t| to_mermaid(t, &layout::actors(t, &lifelines)));
                        download(&format!("patternscope-{slug}.mmd"), "text/plain", &text);
                    }>"Export Mermaid"</button>
                <button type="button" data-testid="export-svg" disabled=empty on:click=export_svg>"Export SVG"</button>
                <label class="import">
                    "Import JSON or HAR"
                    <input type="file" class="visually-hidden" accept=".json,.har,application/json" data-testid="import-json" on:change=import/>
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
                <span class="import-error" role="alert">{move || import_error.get()}</span>
            </div>
            <ShapedNote link=recorder.link()/>
            <div class="stage">
                <div class="diagram-column">
                    <PlaybackBar playback=playback recorded=recorded now_us=recorder.now_us()/>
                    <SequenceDiagram trace=trace preferred=actors now_us=now_us selected=selected compact=compact growing=growing
                        reveal_latest=Signal::derive(move || playback.moved.get())/>
                    <Waterfall trace=trace selected=selected open=!stacked/>
                </div>
                {if stacked {
                    view! {
                        <Show when=move || selected.with(Option::is_some)>
                            <Inspector trace=trace selected=selected running=travelling/>
                        </Show>
                    }
                    .into_any()
                } else {
                    view! { <Inspector trace=trace selected=selected running=travelling/> }.into_any()
                }}
            </div>
        </div>
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
    recorded: ReadSignal<Vec<Drawn>>,
    now_us: Signal<i64>,
) -> impl IntoView {
    // The run's last instant, without sorting every instant of it on each message.
    let last_us = Memo::new(move |_| {
        recorded.with(|t| {
            t.iter()
                .flat_map(|d| [Some(d.sent_us), d.recv_us])
                .flatten()
                .max()
                .unwrap_or(0)
        })
    });
    let end_ms = move || last_us.get().max(now_us.get()) / 1000;
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
                    playback.seek(ms * 1000);
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
