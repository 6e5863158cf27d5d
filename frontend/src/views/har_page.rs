//! `/har`: any site's traffic, from a HAR file (the Network tab's "Save all as HAR"), drawn with
//! the same diagram, waterfall, inspector and exports as a run. The file is read by the
//! browser's own `JSON.parse`, then its entries are turned into the trace in slices of
//! [`SLICE`], the page yielding between them under a progress bar, so a 50 MB file never
//! freezes it. Filters by origin, type and status redraw the kept entries; credentials stay
//! hidden unless the switch shows them.

use std::collections::BTreeSet;

use leptos::{prelude::*, task::spawn_local};
use protocol::trace::{Actor, Message};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DragEvent, File, HtmlInputElement};

use super::trace_view::TraceView;
use crate::{
    model::{
        export::TraceFile,
        har::{self, Converter, Entry, MAX_ENTRIES, MAX_FILE_BYTES, Secrets},
    },
    recording::recorder::use_recorder,
};

/// Entries turned between two yields to the page.
const SLICE: usize = 250;

/// What the filters know of one entry.
#[derive(Debug, Clone)]
struct Meta {
    /// Its request id in the trace (`h1`, `h2`, …).
    rid: String,
    origin: String,
    kind: String,
    status: String,
}

/// The entry's type, as the Network tab's filter names it.
fn kind_of(entry: &Entry) -> String {
    if let Some(t) = &entry.resource_type {
        return t.to_lowercase();
    }
    let mime = entry.response.content.mime_type.to_lowercase();
    let kind = if mime.contains("html") {
        "document"
    } else if mime.contains("javascript") {
        "script"
    } else if mime.contains("css") {
        "stylesheet"
    } else if mime.starts_with("image/") {
        "image"
    } else if mime.contains("event-stream") {
        "eventsource"
    } else if mime.contains("json") || mime.contains("xml") {
        "fetch"
    } else {
        "other"
    };
    kind.to_owned()
}

fn status_of(entry: &Entry) -> String {
    match entry.response.status {
        0 => "failed".to_owned(),
        s => format!("{}xx", s / 100),
    }
}

/// The file's whole trace and what the filters know of each entry.
struct Loaded {
    trace: TraceFile,
    meta: Vec<Meta>,
}

/// `trace` with only the entries `keep` says, each with its frames, events and notes.
fn kept(trace: &TraceFile, meta: &[Meta], keep: impl Fn(&Meta) -> bool) -> TraceFile {
    let rids: BTreeSet<&str> = meta
        .iter()
        .filter(|m| keep(m))
        .map(|m| m.rid.as_str())
        .collect();
    let of_entry = |m: &Message| {
        m.request_id.as_ref().is_none_or(|r| {
            let entry = r.0.split('-').next().unwrap_or_default();
            rids.contains(entry) || entry == "note"
        })
    };
    TraceFile {
        browser: trace
            .browser
            .iter()
            .filter(|m| of_entry(m))
            .cloned()
            .collect(),
        ..trace.clone()
    }
}

/// Reads `file` whole and parses it with the browser's JSON parser.
async fn read_json(file: &File) -> Result<JsValue, String> {
    if file.size() > MAX_FILE_BYTES as f64 {
        return Err(format!(
            "the file is {:.1} MB; at most {} MB are read",
            file.size() / 1e6,
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    let text = JsFuture::from(file.text())
        .await
        .map_err(|_| "the file could not be read".to_owned())?
        .as_string()
        .unwrap_or_default();
    js_sys::JSON::parse(&text).map_err(|_| format!("{}: not JSON", har::NOT_HAR))
}

/// The file's `log.entries`, checked.
fn entries_of(json: &JsValue) -> Result<js_sys::Array, String> {
    let entries = js_sys::Reflect::get(json, &"log".into())
        .ok()
        .filter(|log| log.is_object())
        .and_then(|log| js_sys::Reflect::get(&log, &"entries".into()).ok())
        .and_then(|e| e.dyn_into::<js_sys::Array>().ok())
        .ok_or_else(|| format!("{}: it has no log.entries list", har::NOT_HAR))?;
    if entries.length() as usize > MAX_ENTRIES {
        return Err(format!(
            "the file has {} entries; at most {MAX_ENTRIES} are drawn",
            entries.length()
        ));
    }
    Ok(entries)
}

#[component]
pub fn HarPage() -> impl IntoView {
    let recorder = use_recorder();
    let error = RwSignal::new(String::new());
    let progress = RwSignal::new(None::<(usize, usize)>);
    let show_secrets = RwSignal::new(false);
    let summary = RwSignal::new(String::new());
    let origins = RwSignal::new(Vec::<String>::new());
    let kinds = RwSignal::new(Vec::<String>::new());
    let (origin, kind, status) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    // The parsed file (kept to turn again when the credentials switch changes) and its trace.
    let json = StoredValue::new_local(None::<JsValue>);
    let loaded = StoredValue::new_local(None::<Loaded>);
    // A newer load or switch replaces a conversion still going.
    let generation = StoredValue::new(0u64);

    let redraw = move || {
        loaded.with_value(|l| {
            let Some(l) = l else { return };
            let (o, k, s) = (
                origin.get_untracked(),
                kind.get_untracked(),
                status.get_untracked(),
            );
            let keep = |m: &Meta| {
                (o.is_empty() || m.origin == o)
                    && (k.is_empty() || m.kind == k)
                    && (s.is_empty() || m.status == s)
            };
            let file = kept(&l.trace, &l.meta, keep);
            let shown = l.meta.iter().filter(|m| keep(m));
            let from = origins.with_untracked(Vec::len);
            summary.set(format!(
                "{} of {} entries drawn, from {from} origin{}.",
                shown.count(),
                l.meta.len(),
                if from == 1 { "" } else { "s" }
            ));
            recorder.import(file);
        });
    };

    let convert = move || {
        let Some(value) = json.get_value() else {
            return;
        };
        let secrets = if show_secrets.get_untracked() {
            Secrets::Shown
        } else {
            Secrets::Hidden
        };
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        spawn_local(async move {
            let entries = match entries_of(&value) {
                Ok(e) => e,
                Err(e) => {
                    error.set(e);
                    return;
                }
            };
            let total = entries.length() as usize;
            let starts: Vec<String> = entries
                .iter()
                .map(|e| {
                    js_sys::Reflect::get(&e, &"startedDateTime".into())
                        .ok()
                        .and_then(|s| s.as_string())
                        .unwrap_or_default()
                })
                .collect();
            let mut converter = Converter::new(
                har::earliest_start(starts.iter().map(String::as_str)),
                secrets,
            );
            let mut meta = Vec::with_capacity(total);
            for (i, value) in entries.iter().enumerate() {
                let text = js_sys::JSON::stringify(&value)
                    .ok()
                    .and_then(|t| t.as_string())
                    .unwrap_or_default();
                let entry: Entry = match serde_json::from_str(&text) {
                    Ok(e) => e,
                    Err(e) => {
                        error.set(format!("a broken HAR file: entry {} ({e})", i + 1));
                        progress.set(None);
                        return;
                    }
                };
                converter.add(&entry);
                meta.push(Meta {
                    rid: format!("h{}", converter.added()),
                    origin: har::origin(&entry.request.url),
                    kind: kind_of(&entry),
                    status: status_of(&entry),
                });
                if (i + 1) % SLICE == 0 {
                    progress.set(Some((i + 1, total)));
                    gloo_timers::future::TimeoutFuture::new(0).await;
                    if generation.get_value() != mine {
                        return;
                    }
                }
            }
            let distinct = |f: fn(&Meta) -> &String| {
                meta.iter()
                    .map(f)
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
            };
            origins.set(distinct(|m| &m.origin));
            kinds.set(distinct(|m| &m.kind));
            loaded.set_value(Some(Loaded {
                trace: converter.finish(),
                meta,
            }));
            progress.set(None);
            redraw();
        });
    };

    let load = move |file: File| {
        error.set(String::new());
        summary.set(String::new());
        progress.set(Some((0, 0)));
        spawn_local(async move {
            match read_json(&file).await {
                Ok(value) => {
                    json.set_value(Some(value));
                    origin.set(String::new());
                    kind.set(String::new());
                    status.set(String::new());
                    convert();
                }
                Err(e) => {
                    progress.set(None);
                    error.set(e);
                }
            }
        });
    };
    let picked = move |ev: leptos::ev::Event| {
        let file = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|files| files.get(0));
        if let Some(file) = file {
            load(file);
        }
    };
    let dropped = move |ev: DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0))
        {
            load(file);
        }
    };
    let filter = |label: &'static str,
                  testid: &'static str,
                  value: RwSignal<String>,
                  options: Signal<Vec<String>>| {
        view! {
            <label>
                {label}
                <select data-testid=testid prop:value=move || value.get()
                    on:change=move |ev| {
                        value.set(event_target_value(&ev));
                        redraw();
                    }>
                    <option value="">"all"</option>
                    {move || options.get().into_iter().map(|o| view! { <option value=o.clone()>{o.clone()}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    let statuses = Signal::derive(|| {
        ["1xx", "2xx", "3xx", "4xx", "5xx", "failed"]
            .map(str::to_owned)
            .to_vec()
    });

    view! {
        <article class="demo har">
            <header class="demo-head">
                <a class="back" href="/">"← All patterns"</a>
                <h1>"Your own traffic, from a HAR file"</h1>
                <p class="summary">
                    "In DevTools → Network, right-click a request and choose “Save all as HAR”, then drop the file here. \
                     Each origin becomes a lifeline; each request and its answer are drawn at the file's own times, \
                     with its timing phases in the waterfall. The file stays in this page: nothing is sent anywhere."
                </p>
            </header>
            <div class="controls har-controls">
                <label class="drop-zone" data-testid="har-drop"
                    on:dragover=move |ev: DragEvent| ev.prevent_default()
                    on:drop=dropped>
                    "Drop a .har file here, or "
                    <span class="pick">"choose one"</span>
                    <input type="file" class="visually-hidden" accept=".har,.json,application/json"
                        data-testid="har-file" on:change=picked/>
                </label>
                <label class="switch">
                    <input type="checkbox" data-testid="show-credentials" prop:checked=move || show_secrets.get()
                        on:change=move |ev| {
                            show_secrets.set(event_target_checked(&ev));
                            convert();
                        }/>
                    "show credentials (Cookie, Set-Cookie, Authorization)"
                </label>
                {filter("Origin", "filter-origin", origin, origins.into())}
                {filter("Type", "filter-type", kind, kinds.into())}
                {filter("Status", "filter-status", status, statuses)}
            </div>
            <Show when=move || progress.get().is_some()>
                <p class="har-progress">
                    <progress data-testid="har-progress"
                        max=move || progress.get().map_or(1, |p| p.1.max(1)) value=move || progress.get().map_or(0, |p| p.0)></progress>
                    {move || progress.get().map(|(done, total)| format!(" reading entries: {done} of {total}"))}
                </p>
            </Show>
            <p class="import-error" role="alert" data-testid="har-error">{move || error.get()}</p>
            <p class="status" role="status" data-testid="status">{move || summary.get()}</p>
            <TraceView recorder=recorder slug="har" actors=vec![Actor::browser()]/>
            <section class="explain">
                <div>
                    <h2>"How to read it"</h2>
                    <p>
                        "A HAR records what the browser saw, not the server: a request is drawn arriving at its origin \
                         when the browser finished sending it, and the answer leaving when its first byte came back, so the \
                         whole wait (the network both ways and the server's work) is drawn at the origin. WebSocket \
                         messages that Chrome saved (_webSocketMessages) are drawn as frames on their connection. \
                         Credentials are hidden unless the switch shows them, and exports carry only what is shown."
                    </p>
                </div>
            </section>
        </article>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_keeps_an_entrys_messages_and_the_notes() {
        let text = r#"{"log":{"entries":[
          {"startedDateTime":"2026-12-06T10:00:00Z","request":{"method":"GET","url":"http://a/x"},"response":{"status":200}},
          {"startedDateTime":"2026-12-06T10:00:01Z","request":{"method":"GET","url":"http://b/y"},"response":{"status":404}}]}}"#;
        let har = har::parse(text).unwrap();
        let trace = har::to_trace(&har, Secrets::Hidden);
        let meta: Vec<Meta> = har
            .log
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| Meta {
                rid: format!("h{}", i + 1),
                origin: har::origin(&e.request.url),
                kind: kind_of(e),
                status: status_of(e),
            })
            .collect();
        let only_b = kept(&trace, &meta, |m| m.origin == "http://b");
        assert_eq!(only_b.browser.len(), 2);
        assert!(
            only_b
                .browser
                .iter()
                .all(|m| m.to.0 == "http://b" || m.from.0 == "http://b")
        );
        assert_eq!(kept(&trace, &meta, |m| m.status == "4xx").browser.len(), 2);
        assert_eq!(kept(&trace, &meta, |_| true).browser.len(), 4);
    }
}
