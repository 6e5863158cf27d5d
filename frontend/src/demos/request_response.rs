//! The request/response demo: the same order sent as JSON, XML or MessagePack to the echo
//! endpoint, with simulated processing time; or a body the learner types themselves.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    echo::{EchoReply, Format, Order},
    trace::{Actor, Kind},
};
use web_sys::AbortController;

use crate::{
    model::{
        catalog,
        format::{human_bytes, human_us},
        merge::Drawn,
    },
    recording::{
        api::{self, Incoming},
        recorder::use_recorder,
    },
    views::{demo_frame::DemoFrame, share::url_param},
};

/// "json", "xml", "msgpack", or "compare" (all three in turn).
fn formats(choice: &str) -> Vec<Format> {
    match Format::parse(choice) {
        Some(f) => vec![f],
        None => Format::ALL.to_vec(),
    }
}

/// The order in `format`: JSON here, XML and MessagePack through [`codecs`].
async fn encode(format: Format, order: &Order) -> Vec<u8> {
    match format {
        Format::Json => serde_json::to_vec(order).unwrap_or_default(),
        _ => match codecs::run(codecs::Job::Encode(format, order.clone())).await {
            codecs::Done::Encoded(bytes) => bytes,
            codecs::Done::Decoded(_) => Vec::new(),
        },
    }
}

/// An echo reply in whichever format the server answered.
async fn decode(reply: &Incoming) -> Result<EchoReply, String> {
    let format = Format::from_content_type(&reply.content_type)
        .ok_or_else(|| format!("unexpected content type {:?}", reply.content_type))?;
    match format {
        Format::Json => serde_json::from_slice(&reply.body).map_err(|e| e.to_string()),
        _ => match codecs::run(codecs::Job::Decode(format, reply.body.clone())).await {
            codecs::Done::Decoded(result) => result,
            codecs::Done::Encoded(_) => Err("the codec answered with an encoding".into()),
        },
    }
}

/// The XML and MessagePack codecs (quick-xml, rmp-serde and the echo types' XML shapes): a
/// WebAssembly chunk of their own (see `demos::chunks`), fetched when one of those formats is
/// chosen, so a first visit that sends JSON, the default, does not download them. One split
/// point for both directions: code two split points share would go to the main module.
mod codecs {
    #![allow(unsafe_code)] // the split point's generated loader static and `extern "C"` import

    use leptos::prelude::*;
    use protocol::echo::{self, EchoReply, Format, Order};

    pub(super) enum Job {
        Encode(Format, Order),
        Decode(Format, Vec<u8>),
    }

    pub(super) enum Done {
        Encoded(Vec<u8>),
        Decoded(Result<EchoReply, String>),
    }

    #[lazy]
    pub(super) fn run(job: Job) -> Done {
        match job {
            Job::Encode(format, order) => {
                Done::Encoded(echo::encode_order(format, &order).unwrap_or_default())
            }
            Job::Decode(format, body) => Done::Decoded(echo::decode_reply(format, &body)),
        }
    }
}

/// One finished exchange of this run, as the results table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRow {
    pub format: String,
    pub status: u16,
    pub body_up: u64,
    pub body_down: u64,
    /// Server-Timing phases, ms: parse, process, serialize.
    pub phases_ms: [Option<f64>; 3],
    pub latency_us: i64,
}

/// The run's finished exchanges, in order, from the merged trace.
pub fn exchange_rows(trace: &[Drawn]) -> Vec<ExchangeRow> {
    trace
        .iter()
        .filter(|d| d.kind == Kind::Request && d.from == Actor::browser())
        .filter_map(|req| {
            let resp = trace.iter().find(|d| {
                d.kind == Kind::Response && d.request_id == req.request_id && d.recv_us.is_some()
            })?;
            let phase = |name: &str| {
                resp.server_phases
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| p.dur_us as f64 / 1000.0)
            };
            let content_type = req
                .detail
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-type"))
                .map(|h| h.value.as_str())
                .unwrap_or("");
            Some(ExchangeRow {
                format: Format::from_content_type(content_type)
                    .map(|f| f.as_str().to_owned())
                    .unwrap_or_else(|| content_type.to_owned()),
                status: resp.status.unwrap_or(0),
                body_up: req.detail.body_bytes,
                body_down: resp.detail.body_bytes,
                phases_ms: [phase("parse"), phase("process"), phase("serialize")],
                latency_us: resp.recv_us? - req.sent_us,
            })
        })
        .collect()
}

/// Each exchange's sizes and the server's phases side by side, so formats can be compared.
#[component]
fn ResultsTable(trace: ReadSignal<Vec<Drawn>>) -> impl IntoView {
    let rows = Memo::new(move |_| trace.with(|t| exchange_rows(t)));
    let ms = |v: Option<f64>| {
        v.map(|v| format!("{v:.2} ms"))
            .unwrap_or_else(|| "–".into())
    };
    view! {
        <Show when=move || rows.with(|r| !r.is_empty())>
            <table class="results" data-testid="results">
                <caption>"Each exchange: body sizes and the server's Server-Timing phases"</caption>
                <thead>
                    <tr>
                        <th scope="col">"#"</th>
                        <th scope="col">"format"</th>
                        <th scope="col">"status"</th>
                        <th scope="col">"body sent"</th>
                        <th scope="col">"body received"</th>
                        <th scope="col">"parse"</th>
                        <th scope="col">"process"</th>
                        <th scope="col">"serialize"</th>
                        <th scope="col">"round trip"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        rows.get()
                            .into_iter()
                            .enumerate()
                            .map(|(i, r)| {
                                let format = r.format.clone();
                                view! {
                                    <tr data-format=format>
                                        <td>{i + 1}</td>
                                        <td>{r.format}</td>
                                        <td>{r.status}</td>
                                        <td>{human_bytes(r.body_up)}</td>
                                        <td>{human_bytes(r.body_down)}</td>
                                        <td>{ms(r.phases_ms[0])}</td>
                                        <td>{ms(r.phases_ms[1])}</td>
                                        <td>{ms(r.phases_ms[2])}</td>
                                        <td>{human_us(r.latency_us)}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
        </Show>
    }
}

#[component]
pub fn RequestResponse() -> impl IntoView {
    let pattern = catalog::find("request-response").expect("catalogued");
    let recorder = use_recorder();
    let trace = recorder.trace();
    let format = url_param("format", "json");
    let items = url_param("items", "20");
    let process_ms = url_param("process_ms", "150");
    let repeat = url_param("repeat", "1");
    let own_body = RwSignal::new(false);
    let body_text = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let abort: StoredValue<Option<AbortController>, LocalStorage> = StoredValue::new_local(None);

    let item_count = move || items.get().trim().parse::<u32>().unwrap_or(0);
    // "Edit the body myself" starts from the generated body in the chosen (text) format.
    let toggle_own = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        if on && body_text.with_untracked(String::is_empty) {
            let f = Format::parse(&format.get_untracked())
                .filter(|f| f.is_text())
                .unwrap_or(Format::Json);
            let sample = Order::sample(item_count().min(200));
            spawn_local(async move {
                body_text.set(String::from_utf8(encode(f, &sample).await).unwrap_or_default());
            });
        }
        own_body.set(on);
    };
    // The codecs' chunk as soon as a format that needs them is chosen, not at the run.
    Effect::new(move |_| {
        if format.get() != "json" {
            spawn_local(codecs::__preload_run());
        }
    });

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
                        None => (f.content_type(), encode(f, &order).await),
                    };
                    let sent = body.len() as u64;
                    match api::echo(recorder, content_type, body, &process, signal.as_ref()).await {
                        Ok(reply) if reply.is_success() => {
                            let summary = match decode(&reply).await {
                                Ok(r) => format!(
                                    "{} items, total {:.2}",
                                    r.items,
                                    r.total_cents as f64 / 100.0
                                ),
                                Err(e) => format!("reply unreadable: {e}"),
                            };
                            status.set(format!(
                                "{} {}: sent a {} {} body, got {} back ({summary}).",
                                reply.status,
                                reply.status_text,
                                human_bytes(sent),
                                f.as_str().to_uppercase(),
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
            below=move || view! { <ResultsTable trace=trace/> }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::merge::{merge, tests::exchange};
    use protocol::trace::{Detail, Header, Phase};

    #[test]
    fn rows_pair_requests_with_their_responses_and_phases() {
        let (mut b, mut s) = exchange("1", 0, 5_000, 0);
        b[0].detail = Some(Detail {
            headers: vec![Header {
                name: "content-type".into(),
                value: "application/xml".into(),
            }],
            body_bytes: 900,
            ..Detail::default()
        });
        b[1].status = Some(200);
        s[1].detail = Some(Detail {
            phases: vec![Phase {
                name: "parse".into(),
                start_us: 1_000,
                dur_us: 1_500,
            }],
            ..Detail::default()
        });
        let rows = exchange_rows(&merge(&b, &s, None));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].format, "xml");
        assert_eq!(rows[0].status, 200);
        assert_eq!(rows[0].body_up, 900);
        assert_eq!(rows[0].phases_ms, [Some(1.5), None, None]);
        assert_eq!(rows[0].latency_us, 7_000);
        // An unanswered request is not a row yet.
        assert!(exchange_rows(&merge(&b[..1], &s[..1], None)).is_empty());
    }
}
