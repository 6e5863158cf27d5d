//! A queue that pushes: the page publishes jobs; the broker (embedded, or RabbitMQ when the
//! server offers it) pushes them to competing consumers within their prefetch, they
//! acknowledge, one can be slow or die mid-job; a puller beside them asks on an interval. The
//! figures are measured from the drawn trace; the server's own final counts are shown under them.

use std::collections::HashMap;

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    queue::{Engine, QueueReport, QueueSpec},
    trace::{Actor, Kind},
};

use crate::{
    model::{catalog, format::human_us, merge::Drawn, metrics::Metric},
    recording::{api, recorder::use_recorder, waiting::pause_while},
    views::{demo_frame::DemoFrame, job_controls::NumberInput, share::url_param},
};

/// The job number in a hop's label (`deliver job #3 · tag 2`).
pub fn job_of(label: &str) -> Option<u32> {
    let rest = label.split("job #").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn is_consumer(actor: &Actor) -> bool {
    actor.0.starts_with("consumer-")
}

/// Average time from each job's publish to its first arrival at a consumer `at` picks.
fn latency(trace: &[Drawn], at: impl Fn(&Drawn) -> bool) -> Option<i64> {
    let published: HashMap<u32, i64> = trace
        .iter()
        .filter(|d| d.kind == Kind::Publish)
        .filter_map(|d| Some((job_of(&d.label)?, d.sent_us)))
        .collect();
    let mut first: HashMap<u32, i64> = HashMap::new();
    for d in trace.iter().filter(|d| at(d)) {
        if let Some(job) = job_of(&d.label) {
            let arrived = d.recv_us.unwrap_or(d.sent_us);
            first
                .entry(job)
                .and_modify(|t| *t = (*t).min(arrived))
                .or_insert(arrived);
        }
    }
    let waits: Vec<i64> = first
        .iter()
        .filter_map(|(job, arrived)| Some(arrived - published.get(job)?))
        .collect();
    (!waits.is_empty()).then(|| waits.iter().sum::<i64>() / waits.len() as i64)
}

fn latency_metric(name: &'static str, label: &'static str, us: Option<i64>) -> Option<Metric> {
    us.map(|us| Metric {
        name,
        label,
        value: us as f64 / 1_000.0,
        shown: human_us(us),
    })
}

/// Lifelines of the consumers a run may have, for the per-consumer metric names.
const CONSUMERS: [(&str, &str); 4] = [
    ("acks-consumer-1", "acks by consumer-1"),
    ("acks-consumer-2", "acks by consumer-2"),
    ("acks-consumer-3", "acks by consumer-3"),
    ("acks-consumer-4", "acks by consumer-4"),
];

/// Push and pull, measured from the drawn hops.
pub fn queue_metrics(trace: &[Drawn]) -> Vec<Metric> {
    let count = |keep: &dyn Fn(&Drawn) -> bool| trace.iter().filter(|d| keep(d)).count();
    let pushed = |d: &Drawn| d.kind == Kind::Deliver && is_consumer(&d.to);
    let got = |d: &Drawn| d.kind == Kind::Response && d.to.0 == "puller";
    let acked_by = |who: &str| {
        count(&|d| d.kind == Kind::Response && d.from.0 == who && d.label.starts_with("ack "))
    };
    let metric = Metric::count;
    let mut all = vec![
        metric(
            "published",
            "jobs published",
            count(&|d| d.kind == Kind::Publish),
        ),
        metric(
            "push-requests",
            "push: consumer requests (basic.consume)",
            count(&|d| d.kind == Kind::Connect && is_consumer(&d.from)),
        ),
        metric("push-deliveries", "push: deliveries", count(&pushed)),
        metric(
            "redelivered",
            "push: redelivered",
            count(&|d| pushed(d) && d.label.contains("redelivered")),
        ),
        metric(
            "push-acks",
            "push: acks",
            count(&|d| d.kind == Kind::Response && is_consumer(&d.from)),
        ),
        metric(
            "pull-polls",
            "pull: polls (basic.get)",
            count(&|d| d.kind == Kind::Request && d.from.0 == "puller"),
        ),
        metric(
            "empty-polls",
            "pull: empty polls",
            count(&|d| got(d) && d.label == "get-empty"),
        ),
        metric("pull-acks", "pull: acks", acked_by("puller")),
    ];
    all.extend(latency_metric(
        "push-latency",
        "push: publish → consumer (avg)",
        latency(trace, |d| pushed(d)),
    ));
    all.extend(latency_metric(
        "pull-latency",
        "pull: publish → puller (avg)",
        latency(trace, |d| got(d) && d.label.starts_with("get-ok")),
    ));
    for (name, label) in CONSUMERS {
        let who = label.trim_start_matches("acks by ");
        if trace.iter().any(|d| d.to.0 == who || d.from.0 == who) {
            all.push(metric(name, label, acked_by(who)));
        }
    }
    all
}

/// The server's report, lane by lane.
#[component]
fn ReportTable(report: QueueReport) -> impl IntoView {
    let per = |lane: &protocol::queue::LaneReport| {
        lane.per_consumer
            .iter()
            .map(|c| format!("{} {}", c.consumer, c.acks))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let row = |name: &'static str, push: String, pull: String| {
        view! {
            <tr data-testid="report-row" data-name=name>
                <th scope="row">{name}</th>
                <td data-lane="push">{push}</td>
                <td data-lane="pull">{pull}</td>
            </tr>
        }
    };
    let (push, pull) = (&report.push, &report.pull);
    let ms = |v: f64| format!("{v:.1} ms");
    view! {
        <table class="results" data-testid="queue-report" data-engine=report.engine.as_str()
            data-done=report.done.to_string()>
            <caption>{format!(
                "What the server counted on {} ({} jobs published{})",
                report.engine.as_str(),
                report.published,
                if report.done { ", all acknowledged on both lanes" } else { ", not all done yet" }
            )}</caption>
            <thead><tr><th scope="col">"figure"</th><th scope="col">"push (broker delivers)"</th><th scope="col">"pull (consumer asks)"</th></tr></thead>
            <tbody>
                {row("requests to the broker", push.requests.to_string(), pull.requests.to_string())}
                {row("empty polls", "—".into(), pull.empty_polls.to_string())}
                {row("deliveries", push.deliveries.to_string(), pull.deliveries.to_string())}
                {row("redelivered", push.redelivered.to_string(), pull.redelivered.to_string())}
                {row("acks", push.acks.to_string(), pull.acks.to_string())}
                {row("publish → consumer, avg", ms(push.latency_avg_ms), ms(pull.latency_avg_ms))}
                {row("publish → consumer, max", ms(push.latency_max_ms), ms(pull.latency_max_ms))}
                {row("acks per consumer", per(push), per(pull))}
            </tbody>
        </table>
    }
}

/// The lifelines drawn from the start: the consumers the page opens with (1 to 4) before the
/// puller, so the two lanes sit side by side.
fn lifelines(consumers: &str) -> Vec<Actor> {
    let n = consumers.trim().parse::<usize>().unwrap_or(2).clamp(1, 4);
    let mut actors = vec![
        Actor::new("browser"),
        Actor::new("server"),
        Actor::new("queue"),
    ];
    actors.extend((1..=n).map(|i| Actor::new(&format!("consumer-{i}"))));
    actors.push(Actor::new("puller"));
    actors
}

#[component]
pub fn Queue() -> impl IntoView {
    let recorder = use_recorder();
    let running = recorder.running();
    let engine = url_param("engine", "embedded");
    let jobs = url_param("jobs", "10");
    let consumers = url_param("consumers", "2");
    let prefetch = url_param("prefetch", "2");
    let work_ms = url_param("work_ms", "150");
    let slow = url_param("slow", "0");
    let kill = url_param("kill", "1");
    let poll_ms = url_param("poll_ms", "300");
    let gap_ms = url_param("gap_ms", "100");
    let status = RwSignal::new(String::new());
    let report = RwSignal::new(None::<QueueReport>);
    // Whether the server offers RabbitMQ, once it has said so. A signal set by a task rather
    // than a resource: a resource read here would hold the whole page in its route's
    // `<Suspense>` until the answer came, Run button included.
    let rabbit = RwSignal::new(false);
    spawn_local(async move {
        if let Ok(info) = api::queue_info().await {
            // (try_set: the page may have been left before the answer came.)
            let _ = rabbit.try_set(info.engines.contains(&Engine::Rabbitmq));
        }
    });
    let rabbit_offered = move || rabbit.get();
    let live = api::release_on_leave("/api/queue/run");

    let on_stop = Callback::new(move |_| recorder.finish_run());
    let on_run = Callback::new(move |_| {
        let run = recorder.start_run();
        report.set(None);
        let number =
            |s: RwSignal<String>, default: u32| s.get_untracked().trim().parse().unwrap_or(default);
        // Out-of-range values go to the server, whose 422 names them.
        let spec = QueueSpec {
            engine: if engine.get_untracked() == "rabbitmq" {
                Engine::Rabbitmq
            } else {
                Engine::Embedded
            },
            consumers: number(consumers, 2).min(255) as u8,
            prefetch: number(prefetch, 2).min(u16::MAX.into()) as u16,
            work_ms: number(work_ms, 150),
            slow: number(slow, 0).min(255) as u8,
            kill: number(kill, 0).min(255) as u8,
            poll_ms: number(poll_ms, 300),
        };
        let n = number(jobs, 10).clamp(1, 40);
        let gap = number(gap_ms, 100).min(5_000);
        let live = live.clone();
        status.set(format!(
            "Declaring the run's queues on {}…",
            spec.engine.as_str()
        ));
        spawn_local(async move {
            let started = match api::queue_start(recorder, &spec).await {
                Ok(started) => started,
                Err(e) => {
                    status.set(format!("Could not start: {e}"));
                    recorder.finish_run();
                    return;
                }
            };
            *live.lock().expect("run lock poisoned") = Some(run.clone());
            status.set(format!(
                "Publishing {n} jobs to {} and {}…",
                started.push_queue, started.pull_queue
            ));
            for i in 1..=n {
                if i > 1 && !pause_while(running, gap).await {
                    break;
                }
                if let Err(e) = api::queue_publish(recorder).await {
                    status.set(format!("Publish failed: {e}"));
                    break;
                }
            }
            if running.get_untracked() {
                status
                    .set("Published; waiting until both lanes have acknowledged every job…".into());
                if let Err(e) = api::queue_report(recorder, 15_000).await {
                    status.set(format!("Report failed: {e}"));
                }
            }
            if live.lock().expect("run lock poisoned").take().is_some() {
                // The stop answers the final counts: the consumers and the puller have ended.
                match api::queue_stop(recorder).await {
                    Ok(r) => {
                        status.set(format!(
                            "{} jobs{}: pushed {} deliveries ({} redelivered) with {} requests; pulled with {} polls, {} of them empty.",
                            r.published,
                            if r.done { "" } else { " (not all done)" },
                            r.push.deliveries,
                            r.push.redelivered,
                            r.push.requests,
                            r.pull.requests,
                            r.pull.empty_polls
                        ));
                        report.set(Some(r));
                    }
                    // Stopped by hand: the recorder has ended the run, so the stop goes unrecorded.
                    Err(_) if !running.get_untracked() => {
                        api::release_quietly("/api/queue/run", run);
                    }
                    Err(e) => status.set(format!("Stop failed: {e}")),
                }
            }
            recorder.finish_run();
        });
    });

    view! {
        <DemoFrame
            pattern=catalog::find("queue").expect("catalogued")
            recorder=recorder
            actors=lifelines(&consumers.get_untracked())
            on_run=on_run
            on_stop=on_stop
            network_path="/api/queue/"
            status=status
            metrics=queue_metrics
            below=move || view! { {move || report.get().map(|r| view! { <ReportTable report=r/> })} }
        >
            <label>
                "Broker"
                <select data-testid="param-engine" prop:value=move || engine.get()
                    on:change=move |ev| engine.set(event_target_value(&ev))>
                    <option value="embedded">"embedded (inside this server)"</option>
                    <option value="rabbitmq" disabled=move || !rabbit_offered()>
                        {move || if rabbit_offered() { "RabbitMQ" } else { "RabbitMQ (start the server with --amqp-url)" }}
                    </option>
                </select>
            </label>
            <NumberInput label="Jobs" testid="param-jobs" value=jobs/>
            <NumberInput label="Pause between publishes (ms)" testid="param-gap-ms" value=gap_ms/>
            <NumberInput label="Consumers (pushed to)" testid="param-consumers" value=consumers/>
            <NumberInput label="Prefetch (unacked per consumer)" testid="param-prefetch" value=prefetch/>
            <NumberInput label="Work per job (ms)" testid="param-work-ms" value=work_ms/>
            <NumberInput label="Slow consumer (×4; 0: none)" testid="param-slow" value=slow/>
            <NumberInput label="Kill consumer mid-job (0: none)" testid="param-kill" value=kill/>
            <NumberInput label="Puller asks every (ms)" testid="param-poll-ms" value=poll_ms/>
        </DemoFrame>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labels_job_number_is_found() {
        assert_eq!(job_of("deliver job #12 · tag 3 · redelivered"), Some(12));
        assert_eq!(
            job_of("killed mid job #4: channel closed, 2 unacked"),
            Some(4)
        );
        assert_eq!(job_of("get-empty"), None);
    }
}
