//! Sidecar: requests go through a proxy beside the app that adds a request id and trace
//! context, logs, retries the app's failures with backoff and limits the rate; the app knows
//! nothing of it.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    sidecar::SidecarSpec,
    trace::{Actor, Kind},
};

use crate::{
    model::{
        catalog,
        merge::Drawn,
        metrics::{Metric, is_client},
    },
    recording::{api, recorder::use_recorder, waiting::pause_while},
    views::{demo_frame::DemoFrame, job_controls::NumberInput, share::url_param},
};

/// What the sidecar did in this run: retries, app failures it absorbed, requests it refused.
pub fn sidecar_metrics(trace: &[Drawn]) -> Vec<Metric> {
    let count = |keep: &dyn Fn(&Drawn) -> bool| trace.iter().filter(|d| keep(d)).count();
    let retries =
        count(&|d| d.kind == Kind::Request && d.from.0 == "sidecar" && d.label.contains("(retry"));
    let app_failures = count(&|d| {
        d.kind == Kind::Response && d.from.0 == "app" && d.status.is_some_and(|s| s >= 500)
    });
    let limited = count(&|d| {
        d.kind == Kind::Response && is_client(&d.to) && d.recv_us.is_some() && d.status == Some(429)
    });
    let metric = Metric::count;
    vec![
        metric("retries", "retries by the sidecar", retries),
        metric("app-failures", "app failures (500)", app_failures),
        metric("rate-limited", "refused by the limit (429)", limited),
    ]
}

#[component]
pub fn Sidecar() -> impl IntoView {
    let recorder = use_recorder();
    let running = recorder.running();
    let requests = url_param("requests", "6");
    let fail = url_param("fail_percent", "50");
    let rate = url_param("rate_per_s", "5");
    let gap_ms = url_param("gap_ms", "100");
    let status = RwSignal::new(String::new());
    let live = api::release_on_leave("/api/sidecar/setup");

    let on_stop = Callback::new(move |_| recorder.finish_run());
    let on_run = Callback::new(move |_| {
        let run = recorder.start_run();
        let number =
            |s: RwSignal<String>, default: u32| s.get_untracked().trim().parse().unwrap_or(default);
        // Out-of-range values go to the server, whose 422 names them.
        let spec = SidecarSpec {
            fail_percent: number(fail, 0).min(255) as u8,
            rate_per_s: number(rate, 0),
        };
        let n = number(requests, 6).clamp(1, 30);
        let gap = number(gap_ms, 100).min(5_000);
        let live = live.clone();
        status.set("Starting the app and its sidecar…".into());
        spawn_local(async move {
            if let Err(e) = api::sidecar_setup(recorder, &spec).await {
                status.set(format!("Could not start them: {e}"));
                recorder.finish_run();
                return;
            }
            *live.lock().expect("run lock poisoned") = Some(run);
            let (mut ok, mut limited, mut failed) = (0, 0, 0);
            for i in 1..=n {
                if i > 1 && !pause_while(running, gap).await {
                    break;
                }
                match api::sidecar_order(recorder, i).await {
                    Ok(answer) if answer.is_success() => ok += 1,
                    Ok(answer) if answer.status == 429 => limited += 1,
                    Ok(_) => failed += 1,
                    Err(e) => {
                        status.set(format!("Request failed: {e}"));
                        failed += 1;
                    }
                }
            }
            status.set(format!(
                "{ok} answered, {limited} refused by the rate limit, {failed} failed after the sidecar's retries."
            ));
            if live.lock().expect("run lock poisoned").take().is_some() {
                let _ = api::sidecar_stop(recorder).await;
            }
            recorder.finish_run();
        });
    });

    view! {
        <DemoFrame
            pattern=catalog::find("sidecar").expect("catalogued")
            recorder=recorder
            actors=["browser", "server", "sidecar", "app"].map(Actor::new).to_vec()
            on_run=on_run
            on_stop=on_stop
            network_path="/api/sidecar/"
            status=status
            metrics=sidecar_metrics
        >
            <NumberInput label="Requests" testid="param-requests" value=requests/>
            <NumberInput label="App fails (% of requests)" testid="param-fail" value=fail/>
            <NumberInput label="Rate limit (requests/s, 0: off)" testid="param-rate" value=rate/>
            <NumberInput label="Pause between requests (ms)" testid="param-gap-ms" value=gap_ms/>
        </DemoFrame>
    }
}
