//! All four notification patterns side by side: four identical jobs started at the same moment,
//! each followed by a different client loop from [`crate::recording::waiting`], four diagrams, and one table
//! of what each cost, measured from its own trace.

use leptos::{prelude::*, task::spawn_local};
use protocol::{job::JobUpdate, trace::Actor};
use web_sys::AbortController;

use crate::{
    model::{
        catalog,
        metrics::{Metric, http_metrics, notification_metrics, poll_metrics},
    },
    recording::{
        api,
        event_stream::EventStream,
        recorder::{Recorder, use_recorder},
        socket_stream::TracedSocket,
        waiting,
    },
    views::{
        demo_frame::RunControls,
        job_controls::{JobInputs, JobParams, JobProgress, NumberInput},
        share::{CopyLink, url_param},
        trace_view::TraceView,
    },
};

/// The figures the table compares, in row order.
const ROWS: [&str; 8] = [
    "requests",
    "bytes-up",
    "bytes-down",
    "latency-notify-p50",
    "latency-notify-p95",
    "empty-polls",
    "connections",
    "held-ms",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Strategy {
    ShortPolling,
    LongPolling,
    Sse,
    WebSocket,
}

/// One pattern's column: its own run, trace and diagram.
#[derive(Clone, Copy)]
struct Lane {
    strategy: Strategy,
    name: &'static str,
    title: &'static str,
    /// Names this lane's exported files.
    slug: &'static str,
    recorder: Recorder,
    progress: RwSignal<Option<JobUpdate>>,
    /// Open streams and sockets, and the long poll's abort handle, closed on Stop.
    stream: StoredValue<Option<EventStream>>,
    socket: StoredValue<Option<TracedSocket>>,
    abort: StoredValue<Option<AbortController>, LocalStorage>,
}

impl Lane {
    fn new(
        strategy: Strategy,
        name: &'static str,
        title: &'static str,
        slug: &'static str,
    ) -> Lane {
        Lane {
            strategy,
            name,
            title,
            slug,
            recorder: use_recorder(),
            progress: RwSignal::new(None),
            stream: StoredValue::new(None),
            socket: StoredValue::new(None),
            abort: StoredValue::new_local(None),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let offset = self.recorder.clock_offset().get();
        self.recorder.trace().with(|t| {
            let mut all = http_metrics(t);
            all.extend(poll_metrics(t));
            all.extend(notification_metrics(t, offset));
            all
        })
    }

    fn stop(&self) {
        self.stream
            .with_value(|s| s.iter().for_each(EventStream::close));
        self.socket
            .with_value(|s| s.iter().for_each(TracedSocket::close));
        self.abort
            .with_value(|a| a.iter().for_each(AbortController::abort));
        self.recorder.finish_run();
    }

    fn run(
        self,
        spec: protocol::job::JobSpec,
        every_ms: u32,
        timeout_ms: String,
        status: RwSignal<String>,
    ) {
        let rec = self.recorder;
        rec.start_run();
        self.progress.set(None);
        let progress = self.progress;
        let on_update = move |u: JobUpdate| progress.set(Some(u));
        let fail = move |e: String| {
            status.set(format!("{}: {e}", self.title));
            rec.finish_run();
        };
        spawn_local(async move {
            let created = match api::submit_job(rec, &spec).await {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            match self.strategy {
                Strategy::ShortPolling => {
                    if let Err(e) =
                        waiting::short_poll(rec, &created.job, every_ms, on_update).await
                    {
                        return fail(e);
                    }
                    rec.finish_run();
                }
                Strategy::LongPolling => {
                    let controller = AbortController::new().ok();
                    self.abort.set_value(controller.clone());
                    let signal = controller.as_ref().map(AbortController::signal);
                    if let Err(e) = waiting::long_poll(
                        rec,
                        &created.job,
                        &timeout_ms,
                        signal.as_ref(),
                        on_update,
                    )
                    .await
                    {
                        return fail(e);
                    }
                    rec.finish_run();
                }
                Strategy::Sse => {
                    match waiting::stream_events(rec, &created.job, on_update, move || {
                        rec.finish_run()
                    }) {
                        Ok(s) => self.stream.set_value(Some(s)),
                        Err(e) => fail(e),
                    }
                }
                Strategy::WebSocket => {
                    let opened = waiting::follow_over_socket(
                        rec,
                        &created.job,
                        on_update,
                        move || rec.finish_run(),
                        fail,
                    );
                    match opened {
                        Ok(s) => self.socket.set_value(Some(s)),
                        Err(e) => fail(e),
                    }
                }
            }
        });
    }
}

#[component]
pub fn Compare() -> impl IntoView {
    let pattern = catalog::find("compare").expect("catalogued");
    let lanes = [
        Lane::new(
            Strategy::ShortPolling,
            "short-polling",
            "Short polling",
            "compare-short-polling",
        ),
        Lane::new(
            Strategy::LongPolling,
            "long-polling",
            "Long polling",
            "compare-long-polling",
        ),
        Lane::new(Strategy::Sse, "sse", "Server-Sent Events", "compare-sse"),
        Lane::new(
            Strategy::WebSocket,
            "websocket",
            "WebSocket",
            "compare-websocket",
        ),
    ];
    let params = JobParams::new(6, 400);
    let interval = url_param("interval_ms", "250");
    let timeout = url_param("timeout_ms", "5000");
    let status = RwSignal::new(String::new());
    let running = Signal::derive(move || lanes.iter().any(|l| l.recorder.running().get()));

    let run = move |_: ()| {
        status.set("Four identical jobs started at the same moment.".into());
        let spec = params.spec();
        let every = waiting::interval_ms(&interval.get_untracked());
        for lane in lanes {
            lane.run(spec.clone(), every, timeout.get_untracked(), status);
        }
    };
    let stop = move |_: ()| lanes.iter().for_each(Lane::stop);
    let reset = move |_: ()| {
        for lane in lanes {
            lane.stop();
            lane.recorder.reset();
            lane.progress.set(None);
        }
        status.set(String::new());
    };

    let table = move || {
        let measured: Vec<Vec<Metric>> = lanes.iter().map(Lane::metrics).collect();
        ROWS.iter()
            .map(|row| {
                let label = measured[0].iter().find(|m| m.name == *row).map(|m| m.label).unwrap_or(row);
                let cells = lanes
                    .iter()
                    .zip(&measured)
                    .map(|(lane, metrics)| {
                        let m = metrics.iter().find(|m| m.name == *row).cloned();
                        let (value, shown) = m.map(|m| (m.value, m.shown)).unwrap_or((0.0, "–".into()));
                        view! {
                            <td data-testid="metric" data-name=format!("{}:{row}", lane.name) data-value=value.to_string()>
                                {shown}
                            </td>
                        }
                    })
                    .collect_view();
                view! { <tr><th scope="row">{label}</th>{cells}</tr> }
            })
            .collect_view()
    };

    view! {
        <article class="demo compare">
            <header class="demo-head">
                <a class="back" href="/">"← All patterns"</a>
                <h1>{pattern.title}</h1>
                <div class="head-actions"><CopyLink/></div>
                <p class="summary">{pattern.summary}</p>
            </header>
            <RunControls running=running on_run=Callback::new(run) on_stop=Callback::new(stop) on_reset=Callback::new(reset)>
                <JobInputs params=params/>
                <NumberInput label="Short poll every (ms)" testid="param-interval" value=interval/>
                <NumberInput label="Long poll holds at most (ms)" testid="param-timeout" value=timeout/>
            </RunControls>
            <p class="status" role="status" data-testid="status">{move || status.get()}</p>
            <table class="results compare-table" data-testid="compare-table">
                <caption>"Measured per pattern: requests and bytes from Resource Timing, frame and event sizes; latency from the worker's emit to the page"</caption>
                <thead>
                    <tr>
                        <th scope="col">"metric"</th>
                        {lanes.iter().map(|l| view! { <th scope="col">{l.title}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>{table}</tbody>
            </table>
            <div class="compare-grid">
                {lanes
                    .into_iter()
                    .map(|lane| {
                        view! {
                            <section class="lane" data-lane=lane.name>
                                <h2>{lane.title}</h2>
                                <JobProgress update=lane.progress/>
                                <TraceView
                                    recorder=lane.recorder
                                    slug=lane.slug
                                    actors=["browser", "server", "worker"].map(Actor::new).to_vec()
                                    stacked=true
                                />
                            </section>
                        }
                    })
                    .collect_view()}
            </div>
            <section class="explain">
                <div>
                    <h2>"How to read it"</h2>
                    <p>{pattern.how}</p>
                </div>
                <div>
                    <h2>"Pros"</h2>
                    <ul>{pattern.pros.iter().map(|p| view! { <li>{*p}</li> }).collect_view()}</ul>
                    <h2>"Cons"</h2>
                    <ul>{pattern.cons.iter().map(|p| view! { <li>{*p}</li> }).collect_view()}</ul>
                </div>
            </section>
        </article>
    }
}
