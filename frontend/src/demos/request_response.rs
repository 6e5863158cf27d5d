//! The request/response demo: the same order sent as JSON, XML or MessagePack to the echo
//! endpoint, with simulated processing time; or a body the learner types themselves.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    echo::{self, Format, Order},
    trace::Actor,
};
use web_sys::AbortController;

use crate::{api, catalog, demo_frame::DemoFrame, metrics::human_bytes, recorder::use_recorder};

/// "json", "xml", "msgpack", or "compare" (all three in turn).
fn formats(choice: &str) -> Vec<Format> {
    match Format::parse(choice) {
        Some(f) => vec![f],
        None => Format::ALL.to_vec(),
    }
}

#[component]
pub fn RequestResponse() -> impl IntoView {
    let pattern = catalog::find("request-response").expect("catalogued");
    let recorder = use_recorder();
    let format = RwSignal::new("json".to_owned());
    let items = RwSignal::new("20".to_owned());
    let process_ms = RwSignal::new("150".to_owned());
    let repeat = RwSignal::new("1".to_owned());
    let own_body = RwSignal::new(false);
    let body_text = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let abort: StoredValue<Option<AbortController>, LocalStorage> = StoredValue::new_local(None);

    let item_count = move || items.get().trim().parse::<u32>().unwrap_or(0);
    // Preview of the generated body in the chosen (text) format, for "edit the body myself".
    let generated = move || {
        let f = Format::parse(&format.get())
            .filter(|f| f.is_text())
            .unwrap_or(Format::Json);
        String::from_utf8(
            echo::encode_order(f, &Order::sample(item_count().min(200))).unwrap_or_default(),
        )
        .unwrap_or_default()
    };
    let toggle_own = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        if on && body_text.with_untracked(String::is_empty) {
            body_text.set(generated());
        }
        own_body.set(on);
    };

    let on_stop = Callback::new(move |_| {
        abort.with_value(|a| {
            if let Some(a) = a {
                a.abort();
            }
        });
        recorder.finish_run();
    });
    let on_run = Callback::new(move |_| {
        recorder.start_run();
        status.set(String::new());
        let controller = AbortController::new().ok();
        abort.set_value(controller.clone());
        let chosen = formats(&format.get_untracked());
        let repeat = repeat
            .get_untracked()
            .trim()
            .parse::<u32>()
            .unwrap_or(1)
            .clamp(1, 20);
        let process = process_ms.get_untracked();
        let own = own_body.get_untracked().then(|| body_text.get_untracked());
        let order = Order::sample(item_count());
        spawn_local(async move {
            let signal = controller.as_ref().map(|c| c.signal());
            'run: for _ in 0..repeat {
                for &f in &chosen {
                    let (content_type, body) = match &own {
                        Some(text) => (f.content_type(), text.clone().into_bytes()),
                        None => (
                            f.content_type(),
                            echo::encode_order(f, &order).unwrap_or_default(),
                        ),
                    };
                    let sent = body.len() as u64;
                    match api::echo(recorder, content_type, body, &process, signal.as_ref()).await {
                        Ok(reply) if reply.is_success() => {
                            let summary = match api::decode_reply(&reply) {
                                Ok(r) => format!(
                                    "{} items, total {:.2}",
                                    r.items,
                                    r.total_cents as f64 / 100.0
                                ),
                                Err(e) => format!("reply unreadable: {e}"),
                            };
                            status.set(format!(
                                "{} {}: sent {} of {}, got {} back ({summary}).",
                                reply.status,
                                reply.status_text,
                                human_bytes(sent),
                                f.as_str(),
                                human_bytes(reply.body.len() as u64)
                            ));
                        }
                        Ok(reply) => status.set(format!(
                            "The server refused it: {} — {}",
                            reply.status,
                            reply.error_text()
                        )),
                        Err(e) => {
                            status.set(format!("Request failed: {e}"));
                            break 'run;
                        }
                    }
                    if !recorder.running().get_untracked() {
                        break 'run;
                    }
                }
            }
            recorder.finish_run();
        });
    });

    let body_editor = move || {
        own_body.get().then(|| {
            view! {
                <label class="wide">
                    "Body (sent as typed, with the chosen format's Content-Type)"
                    <textarea
                        data-testid="body-input"
                        rows="8"
                        spellcheck="false"
                        prop:value=move || body_text.get()
                        on:input=move |ev| body_text.set(event_target_value(&ev))
                    ></textarea>
                </label>
            }
        })
    };

    view! {
        <DemoFrame
            pattern=pattern
            recorder=recorder
            actors=vec![Actor::browser(), Actor::server()]
            on_run=on_run
            on_stop=on_stop
            network_path="/api/echo"
            status=status
        >
            <label>
                "Format"
                <select data-testid="param-format" on:change=move |ev| format.set(event_target_value(&ev)) prop:value=move || format.get()>
                    <option value="json">"JSON"</option>
                    <option value="xml">"XML"</option>
                    <option value="msgpack">"MessagePack (binary)"</option>
                    <option value="compare">"All three, one after another"</option>
                </select>
            </label>
            <label>
                "Items in the order"
                <input data-testid="param-items" type="number" min="0" max="20000" prop:value=move || items.get()
                    on:input=move |ev| items.set(event_target_value(&ev))/>
            </label>
            <label>
                "Server processing (ms)"
                <input data-testid="param-process-ms" type="number" min="0" max="10000" prop:value=move || process_ms.get()
                    on:input=move |ev| process_ms.set(event_target_value(&ev))/>
            </label>
            <label>
                "Repeat"
                <input data-testid="param-repeat" type="number" min="1" max="20" prop:value=move || repeat.get()
                    on:input=move |ev| repeat.set(event_target_value(&ev))/>
            </label>
            <label class="check">
                <input data-testid="param-own-body" type="checkbox" prop:checked=move || own_body.get() on:change=toggle_own/>
                "Edit the body myself"
            </label>
            {body_editor}
        </DemoFrame>
    }
}
