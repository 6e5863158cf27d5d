//! Stateful vs stateless: log in through a load balancer, then make requests. In-memory
//! sessions are refused (401) by the other instance and after a restart; a signed token or a
//! shared store is accepted by every instance.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    stateful_stateless::{ClusterSpec, SessionMode},
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

/// What the balancer's instances did in this run: refusals, and who served what.
pub fn session_metrics(trace: &[Drawn]) -> Vec<Metric> {
    let refused = trace
        .iter()
        .filter(|d| d.kind == Kind::Response && is_client(&d.to) && d.recv_us.is_some())
        .filter(|d| d.status == Some(401))
        .count();
    let served_by = |name: &str| {
        trace
            .iter()
            .filter(|d| d.kind == Kind::Response && d.from.0 == name && d.status == Some(200))
            .count()
    };
    let (a, b) = (served_by("instance-a"), served_by("instance-b"));
    let metric = Metric::count;
    vec![
        metric("refused-401", "refused (401)", refused),
        metric("served-a", "answered by instance-a", a),
        metric("served-b", "answered by instance-b", b),
    ]
}

#[component]
pub fn StatefulStateless() -> impl IntoView {
    let recorder = use_recorder();
    let running = recorder.running();
    let mode = url_param("mode", "memory");
    let sticky = url_param("sticky", "off");
    let requests = url_param("requests", "4");
    let gap_ms = url_param("gap_ms", "400");
    let restart_after = url_param("restart_after", "0");
    let user = url_param("user", "ada");
    let status = RwSignal::new(String::new());
    let live = api::release_on_leave("/api/lb/cluster");

    let on_stop = Callback::new(move |_| recorder.finish_run());
    let on_run = Callback::new(move |_| {
        let run = recorder.start_run();
        let spec = ClusterSpec {
            mode: SessionMode::parse(&mode.get_untracked()).unwrap_or(SessionMode::Memory),
            sticky: sticky.get_untracked() == "on",
        };
        let number =
            |s: RwSignal<String>, default: u32| s.get_untracked().trim().parse().unwrap_or(default);
        let n = number(requests, 4).clamp(1, 20);
        let gap = number(gap_ms, 400).min(5_000);
        let restart_at = number(restart_after, 0);
        let user = user.get_untracked();
        let live = live.clone();
        status.set("Starting the balancer and two instances…".into());
        spawn_local(async move {
            if let Err(e) = api::lb_cluster(recorder, &spec).await {
                status.set(format!("Could not start the cluster: {e}"));
                recorder.finish_run();
                return;
            }
            *live.lock().expect("run lock poisoned") = Some(run);
            let login = api::lb_login(recorder, &user).await;
            let (mut ok, mut refused) = (0, 0);
            match login {
                Ok(answer) if answer.is_success() => {
                    for i in 1..=n {
                        if !pause_while(running, gap).await {
                            break;
                        }
                        if restart_at > 0
                            && i == restart_at + 1
                            && let Err(e) = api::lb_restart(recorder, "a").await
                        {
                            status.set(format!("Restart failed: {e}"));
                        }
                        match api::lb_profile(recorder).await {
                            Ok(answer) if answer.is_success() => ok += 1,
                            Ok(answer) if answer.status == 401 => refused += 1,
                            Ok(answer) => {
                                status.set(format!("{} {}", answer.status, answer.error_text()))
                            }
                            Err(e) => status.set(format!("Request failed: {e}")),
                        }
                    }
                    status.set(format!(
                        "{ok} request(s) accepted, {refused} refused with 401 ({} sessions{}).",
                        spec.mode.as_str(),
                        if spec.sticky {
                            ", sticky balancer"
                        } else {
                            ", round robin"
                        }
                    ));
                }
                Ok(answer) => status.set(format!(
                    "Login refused: {} {}",
                    answer.status,
                    answer.error_text()
                )),
                Err(e) => status.set(format!("Login failed: {e}")),
            }
            if live.lock().expect("run lock poisoned").take().is_some() {
                let _ = api::lb_stop(recorder).await;
            }
            recorder.finish_run();
        });
    });
    let restart = move |_| {
        spawn_local(async move {
            if let Err(e) = api::lb_restart(recorder, "a").await {
                status.set(format!("Restart failed: {e}"));
            }
        });
    };

    view! {
        <DemoFrame
            pattern=catalog::find("stateful-stateless").expect("catalogued")
            recorder=recorder
            actors=["browser", "server", "lb", "instance-a", "instance-b"].map(Actor::new).to_vec()
            on_run=on_run
            on_stop=on_stop
            network_path="/api/lb/"
            status=status
            metrics=session_metrics
        >
            <label>
                "Sessions live"
                <select data-testid="param-mode" prop:value=move || mode.get()
                    on:change=move |ev| mode.set(event_target_value(&ev))>
                    <option value="memory">"in the instance's memory (stateful)"</option>
                    <option value="token">"in a signed token (stateless)"</option>
                    <option value="store">"in a shared store (stateless instances)"</option>
                </select>
            </label>
            <label class="check">
                <input data-testid="param-sticky" type="checkbox" prop:checked=move || sticky.get() == "on"
                    on:change=move |ev| sticky.set(if event_target_checked(&ev) { "on" } else { "off" }.into())/>
                "Sticky balancer (cookie)"
            </label>
            <label>
                "User"
                <input data-testid="param-user" type="text" prop:value=move || user.get()
                    on:input=move |ev| user.set(event_target_value(&ev))/>
            </label>
            <NumberInput label="Requests after login" testid="param-requests" value=requests/>
            <NumberInput label="Pause between requests (ms)" testid="param-gap-ms" value=gap_ms/>
            <NumberInput label="Restart instance A after request # (0: never)" testid="param-restart-after" value=restart_after/>
            <button type="button" data-testid="restart-a" disabled=move || !running.get() on:click=restart>
                "Restart instance A now"
            </button>
        </DemoFrame>
    }
}
