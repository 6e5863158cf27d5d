//! Multiplexing vs a connection pool, on both sides of the server: the server as a proxy
//! forwarding N items to its upstream over one HTTP/2 connection or a pool of HTTP/1.1
//! connections (each connection a lifeline), and the page itself firing N slow requests at once
//! (over HTTP/1.1 the browser keeps six per origin in flight; over HTTP/2 all of them).

use futures_util::future::join_all;
use leptos::{prelude::*, task::spawn_local};
use protocol::trace::{Actor, Kind, Transport};
use web_sys::AbortController;

use crate::{
    model::{
        catalog,
        format::human_us,
        merge::Drawn,
        metrics::{Metric, is_client},
        phases::{CONNECTING, QUEUED, STALLED},
    },
    recording::{api, recorder::use_recorder},
    views::{demo_frame::DemoFrame, job_controls::NumberInput, share::url_param},
};

/// Whether `d` is the proxy's request to the upstream over one of its connection lanes.
fn is_lane_request(d: &Drawn) -> bool {
    d.kind == Kind::Request && d.to.0.starts_with("conn-")
}

fn is_slow_request(d: &Drawn) -> bool {
    d.kind == Kind::Request && is_client(&d.from) && d.label.contains("/api/mux/slow")
}

/// The answer to `req` (same request id, from the actor it was sent to).
fn answer_to<'a>(trace: &'a [Drawn], req: &Drawn) -> Option<&'a Drawn> {
    trace
        .iter()
        .find(|d| d.kind == Kind::Response && d.request_id == req.request_id && d.from == req.to)
}

/// The most intervals open at one instant (an interval ends before one starting at its end).
pub fn max_overlap(intervals: &[(i64, i64)]) -> usize {
    let mut edges: Vec<(i64, i32)> = intervals
        .iter()
        .flat_map(|&(from, to)| [(from, 1), (to, -1)])
        .collect();
    edges.sort_unstable();
    let mut open = 0i32;
    let mut most = 0i32;
    for (_, step) in edges {
        open += step;
        most = most.max(open);
    }
    most as usize
}

fn metric(name: &'static str, label: &'static str, value: f64, shown: String) -> Metric {
    Metric {
        name,
        label,
        value,
        shown,
    }
}

/// What a run of this demo measured, from its trace (so an imported run shows the same).
pub fn mux_metrics(trace: &[Drawn]) -> Vec<Metric> {
    let mut out = Vec::new();
    let lane_requests: Vec<&Drawn> = trace.iter().filter(|d| is_lane_request(d)).collect();
    if !lane_requests.is_empty() {
        let connections: std::collections::BTreeSet<u64> =
            lane_requests.iter().filter_map(|d| d.connection).collect();
        let streams = lane_requests.iter().filter(|d| d.stream.is_some()).count();
        let spans: Vec<(i64, i64)> = lane_requests
            .iter()
            .filter_map(|req| Some((req.sent_us, answer_to(trace, req)?.recv_us?)))
            .collect();
        let concurrent = max_overlap(&spans);
        let start = trace
            .iter()
            .filter(|d| d.kind == Kind::Connect && d.to.0.starts_with("conn-"))
            .map(|d| d.sent_us)
            .min();
        let end = spans.iter().map(|s| s.1).max();
        let forward = start.zip(end).map(|(s, e)| e - s).unwrap_or(0);
        out.extend([
            metric(
                "upstream-connections",
                "connections to upstream",
                connections.len() as f64,
                connections.len().to_string(),
            ),
            metric(
                "h2-streams",
                "HTTP/2 streams",
                streams as f64,
                streams.to_string(),
            ),
            metric(
                "upstream-concurrent",
                "items in flight at once",
                concurrent as f64,
                concurrent.to_string(),
            ),
            metric(
                "forward-ms",
                "proxy total (connect → last item)",
                forward as f64 / 1000.0,
                human_us(forward),
            ),
        ]);
    }
    let slow: Vec<&Drawn> = trace.iter().filter(|d| is_slow_request(d)).collect();
    if !slow.is_empty() {
        let answers: Vec<&Drawn> = slow
            .iter()
            .filter_map(|req| answer_to(trace, req).filter(|a| a.recv_us.is_some()))
            .collect();
        let held_at_once = answers
            .iter()
            .filter_map(|a| serde_json::from_str::<serde_json::Value>(&a.detail.body).ok())
            .filter_map(|body| body.get("max_in_flight")?.as_u64())
            .max()
            .unwrap_or(0);
        let h2 = answers
            .iter()
            .filter(|a| a.transport == Transport::H2)
            .count();
        let start = slow.iter().map(|d| d.sent_us).min().unwrap_or(0);
        let end = answers
            .iter()
            .filter_map(|a| a.recv_us)
            .max()
            .unwrap_or(start);
        out.extend([
            metric(
                "server-max-in-flight",
                "held at once by the server",
                held_at_once as f64,
                held_at_once.to_string(),
            ),
            metric(
                "h2-requests",
                "requests over HTTP/2",
                h2 as f64,
                format!("{h2} of {}", answers.len()),
            ),
            metric(
                "burst-ms",
                "all answered after",
                (end - start) as f64 / 1000.0,
                human_us(end - start),
            ),
        ]);
    }
    out
}

/// One row of the table under the diagram.
struct Row {
    what: String,
    protocol: &'static str,
    lane: String,
    waited_us: i64,
    round_trip_us: i64,
}

fn request_rows(trace: &[Drawn]) -> Vec<Row> {
    let lanes = trace
        .iter()
        .filter(|d| is_lane_request(d))
        .filter_map(|req| {
            let answer = answer_to(trace, req)?;
            let waited_us = req
                .label
                .split(" · waited ")
                .nth(1)
                .and_then(|w| w.split(' ').next()?.parse::<i64>().ok())
                .map_or(0, |ms| ms * 1000);
            Some(Row {
                what: req.label.split(" · ").next().unwrap_or_default().to_owned(),
                protocol: req.transport.as_str(),
                lane: match (req.connection, req.stream) {
                    (Some(c), Some(s)) => format!("{} :{c}, stream {s}", req.to.0),
                    (Some(c), None) => format!("{} :{c}", req.to.0),
                    _ => req.to.0.clone(),
                },
                waited_us,
                round_trip_us: answer.recv_us? - req.sent_us,
            })
        });
    let page = trace
        .iter()
        .filter(|d| is_slow_request(d))
        .filter_map(|req| {
            let answer = answer_to(trace, req).filter(|a| a.recv_us.is_some())?;
            let waited_us = answer
                .detail
                .phases
                .iter()
                .filter(|p| [QUEUED, CONNECTING, STALLED].contains(&p.name.as_str()))
                .map(|p| p.dur_us)
                .sum();
            let at_arrival = serde_json::from_str::<serde_json::Value>(&answer.detail.body)
                .ok()
                .and_then(|b| b.get("in_flight_at_arrival")?.as_u64());
            Some(Row {
                what: format!(
                    "request {}",
                    req.request_id.as_ref().map_or("", |r| r.0.as_str())
                ),
                protocol: answer.transport.as_str(),
                lane: match (req.connection, at_arrival) {
                    (Some(c), Some(n)) => format!("connection :{c}, {n} held on arrival"),
                    (None, Some(n)) => format!("{n} held on arrival"),
                    _ => String::new(),
                },
                waited_us,
                round_trip_us: answer.recv_us? - req.sent_us,
            })
        });
    lanes.chain(page).collect()
}

#[component]
fn RequestTable(trace: ReadSignal<Vec<Drawn>>) -> impl IntoView {
    let count = Memo::new(move |_| trace.with(|t| request_rows(t).len()));
    view! {
        <Show when=move || count.get() != 0>
            <table class="results" data-testid="results">
                <caption>"Each request: the protocol it used, its connection, and how long it waited for one"</caption>
                <thead>
                    <tr>
                        <th scope="col">"request"</th>
                        <th scope="col">"protocol"</th>
                        <th scope="col">"connection"</th>
                        <th scope="col">"waited for a connection"</th>
                        <th scope="col">"round trip"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || trace.with(|t| request_rows(t)).into_iter().map(|r| view! {
                        <tr data-protocol=r.protocol>
                            <td>{r.what}</td>
                            <td>{r.protocol}</td>
                            <td>{r.lane}</td>
                            <td>{human_us(r.waited_us)}</td>
                            <td>{human_us(r.round_trip_us)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </Show>
    }
}

#[component]
pub fn Multiplexing() -> impl IntoView {
    let recorder = use_recorder();
    let side = url_param("side", "proxy");
    let n = url_param("n", "12");
    let via = url_param("via", "h2");
    let pool = url_param("pool", "3");
    let item_ms = url_param("item_ms", "300");
    let slow_ms = url_param("slow_ms", "1000");
    let status = RwSignal::new(String::new());
    // Aborting the run's fetches ends them in the browser and (the server sees the connection
    // go) ends the proxy's upstream connections too.
    let abort = StoredValue::new_local(None::<AbortController>);
    let cancel = move || abort.update_value(|a| a.take().iter().for_each(AbortController::abort));
    on_cleanup(cancel);
    let secure = web_sys::window()
        .and_then(|w| w.location().protocol().ok())
        .is_some_and(|p| p == "https:");

    let on_stop = Callback::new(move |_| {
        cancel();
        recorder.finish_run();
    });
    let on_run = Callback::new(move |_| {
        cancel();
        recorder.start_run();
        let controller = AbortController::new().ok();
        let signal = controller.as_ref().map(AbortController::signal);
        abort.set_value(controller);
        let (n, via, pool, item_ms, slow_ms) = (
            n.get_untracked(),
            via.get_untracked(),
            pool.get_untracked(),
            item_ms.get_untracked(),
            slow_ms.get_untracked(),
        );
        let browser_side = side.get_untracked() == "browser";
        status.set(if browser_side {
            format!("Sending {n} requests at once…")
        } else {
            format!("Asking the proxy for {n} items…")
        });
        spawn_local(async move {
            let outcome = if browser_side {
                let count: usize = n.trim().parse().unwrap_or(0).clamp(1, 64);
                let calls = (0..count).map(|_| api::mux_slow(recorder, &slow_ms, signal.as_ref()));
                let answers = join_all(calls).await;
                let most = answers.iter().flatten().map(|a| a.max_in_flight).max();
                match (answers.iter().find_map(|a| a.as_ref().err()), most) {
                    (Some(e), _) => format!("A request failed: {e}"),
                    (None, most) => format!(
                        "Done: {count} requests sent at once; the server held at most {} at a time.",
                        most.unwrap_or(0)
                    ),
                }
            } else {
                match api::mux_proxy(recorder, &n, &via, &pool, &item_ms, signal.as_ref()).await {
                    Ok(r) => format!(
                        "Done: {} items over {} connection{} in {:.0} ms, at most {} in flight at once.",
                        r.items,
                        r.upstream_connections,
                        if r.upstream_connections == 1 { "" } else { "s" },
                        r.total_ms,
                        r.max_concurrent
                    ),
                    Err(e) => format!("The proxy refused: {e}"),
                }
            };
            status.set(outcome);
            recorder.finish_run();
        });
    });

    let trace = recorder.trace();
    view! {
        <DemoFrame
            pattern=catalog::find("multiplexing").expect("catalogued")
            recorder=recorder
            actors=["browser", "server"].map(Actor::new).to_vec()
            on_run=on_run
            on_stop=on_stop
            network_path="/api/mux/"
            status=status
            metrics=mux_metrics
            below=move || view! {
                <RequestTable trace=trace/>
                <p class="hint" data-testid="protocol-hint">
                    {if secure {
                        "This page came over TLS, so the browser speaks HTTP/2 to the server: the browser side's requests all share one connection."
                    } else {
                        "This page came over plain HTTP, so the browser speaks HTTP/1.1 to the server: at most six connections, one request each. \
                         Start the server with --tls 127.0.0.1:8443 and open this page at https://127.0.0.1:8443 to see HTTP/2."
                    }}
                </p>
            }
        >
            <label>
                "Side"
                <select data-testid="param-side" prop:value=move || side.get()
                    on:change=move |ev| side.set(event_target_value(&ev))>
                    <option value="proxy">"server as proxy → upstream"</option>
                    <option value="browser">"this page → server"</option>
                </select>
            </label>
            <NumberInput label="Requests at once" testid="param-n" value=n/>
            <Show
                when=move || side.get() != "browser"
                fallback=move || view! { <NumberInput label="Server holds each (ms)" testid="param-slow-ms" value=slow_ms/> }
            >
                <label>
                    "Proxy → upstream over"
                    <select data-testid="param-via" prop:value=move || via.get()
                        on:change=move |ev| via.set(event_target_value(&ev))>
                        <option value="h2">"one HTTP/2 connection (streams)"</option>
                        <option value="h1">"a pool of HTTP/1.1 connections"</option>
                    </select>
                </label>
                <Show when=move || via.get() == "h1">
                    <NumberInput label="Pool size" testid="param-pool" value=pool/>
                </Show>
                <NumberInput label="Upstream time per item (ms)" testid="param-item-ms" value=item_ms/>
            </Show>
        </DemoFrame>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts_intervals_open_at_once() {
        assert_eq!(max_overlap(&[]), 0);
        assert_eq!(max_overlap(&[(0, 10), (5, 15), (20, 30)]), 2);
        // Back to back is one at a time: a pool connection reused.
        assert_eq!(max_overlap(&[(0, 10), (10, 20), (20, 30)]), 1);
        assert_eq!(max_overlap(&[(0, 100); 6]), 6);
    }
}
