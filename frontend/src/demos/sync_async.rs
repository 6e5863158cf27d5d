//! Synchronous vs asynchronous, on both sides: a client that waits for each call vs one that
//! fires them all and keeps working; a handler that blocks a thread of a small pool (requests
//! queue) vs one that awaits (requests overlap).

use futures_util::future::join_all;
use leptos::{prelude::*, task::spawn_local};
use protocol::trace::{Actor, Kind};

use crate::{
    model::catalog,
    recording::{api, recorder::use_recorder, waiting::pause_while},
    views::{
        demo_frame::DemoFrame,
        job_controls::NumberInput,
        share::{count_param, url_param},
    },
};

#[component]
pub fn SyncAsync() -> impl IntoView {
    let recorder = use_recorder();
    let requests = url_param("calls", "4");
    let work_ms = url_param("work_ms", "500");
    let handler = url_param("handler", "blocking");
    let client = url_param("client", "concurrent");
    let status = RwSignal::new(String::new());
    let running = recorder.running();

    let on_stop = Callback::new(move |_| recorder.finish_run());
    let on_run = Callback::new(move |_| {
        recorder.start_run();
        let n = count_param(requests, 4, 1..=12);
        let ms = work_ms.get_untracked();
        let handler = handler.get_untracked();
        let concurrent = client.get_untracked() == "concurrent";
        status.set(format!(
            "{n} calls to the {handler} handler, {}…",
            if concurrent {
                "all at once"
            } else {
                "one after another"
            }
        ));
        spawn_local(async move {
            let started = recorder.elapsed_us();
            let failures = if concurrent {
                // The asynchronous client: fire every call, then keep doing its own work.
                let outstanding = RwSignal::new(n);
                spawn_local(async move {
                    let mut tick = 0;
                    while outstanding.get_untracked() > 0 && pause_while(running, 150).await {
                        tick += 1;
                        recorder.note(Kind::Work, format!("page keeps working ({tick})"));
                    }
                });
                let calls = (0..n).map(|_| {
                    let (handler, ms) = (handler.clone(), ms.clone());
                    async move {
                        let result = api::work(recorder, &handler, &ms).await;
                        outstanding.update(|o| *o -= 1);
                        result
                    }
                });
                join_all(calls)
                    .await
                    .into_iter()
                    .filter_map(Result::err)
                    .collect::<Vec<_>>()
            } else {
                // The synchronous client: each call waits for the one before.
                let mut failures = Vec::new();
                for _ in 0..n {
                    if !running.get_untracked() {
                        break;
                    }
                    if let Err(e) = api::work(recorder, &handler, &ms).await {
                        failures.push(e);
                    }
                }
                failures
            };
            let took = (recorder.elapsed_us() - started) as f64 / 1000.0;
            status.set(match failures.first() {
                Some(e) => format!("A call failed: {e}"),
                None => format!("Done: {n} calls answered in {took:.0} ms."),
            });
            recorder.finish_run();
        });
    });

    view! {
        <DemoFrame
            pattern=catalog::find("sync-async").expect("catalogued")
            recorder=recorder
            actors=["browser", "server", "pool"].map(Actor::new).to_vec()
            on_run=on_run
            on_stop=on_stop
            network_path="/api/work/"
            status=status
        >
            <NumberInput label="Calls" testid="param-requests" value=requests/>
            <NumberInput label="Work per call (ms)" testid="param-work-ms" value=work_ms/>
            <label>
                "Server handler"
                <select data-testid="param-handler" prop:value=move || handler.get()
                    on:change=move |ev| handler.set(event_target_value(&ev))>
                    <option value="blocking">"blocks a pool thread (2 threads)"</option>
                    <option value="async">"awaits (frees its thread)"</option>
                </select>
            </label>
            <label>
                "Client"
                <select data-testid="param-client" prop:value=move || client.get()
                    on:change=move |ev| client.set(event_target_value(&ev))>
                    <option value="concurrent">"asynchronous: all at once, keeps working"</option>
                    <option value="sequential">"synchronous: waits for each answer"</option>
                </select>
            </label>
        </DemoFrame>
    }
}
