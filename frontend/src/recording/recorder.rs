//! The browser half of the trace: what this page sent and received, on its own clock, plus the
//! server half as it streams in over the trace socket, merged into one reactive trace.

use leptos::prelude::*;
use protocol::{
    LINK_PARAM, REQUEST_PARAM, RUN_PARAM,
    link::Link,
    trace::{Actor, Kind, Message, Observer, RequestId, RunId, TraceServerMsg, Transport},
};

use super::trace_socket::{TraceSocket, WatchAgain};
use crate::model::{
    export::TraceFile,
    merge::{Drawn, Merger},
    resume,
};

/// Milliseconds since the page loaded (`performance.now()`).
pub fn perf_now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// The link the page's URL names (`?link=`, as the link control and a share link set it);
/// local when it names none or an unknown one.
pub fn page_link() -> Link {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get(LINK_PARAM))
        .and_then(|name| Link::from_name(&name))
        .unwrap_or_default()
}

/// A fresh run id: 128 bits from the browser's CSPRNG, in 32 hex digits. The id is what
/// keeps one learner's run apart from another's, so it must not be guessable.
pub fn new_run_id() -> RunId {
    let mut bytes = [0u8; 16];
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    let filled = crypto.is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    assert!(filled, "the page needs crypto.getRandomValues");
    RunId(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One page's recorder. `Copy`: every field is a reactive handle.
#[derive(Clone, Copy)]
pub struct Recorder {
    run: RwSignal<Option<RunId>>,
    /// The link the server shapes the run to: the page's `?link=` when the run started, or
    /// the one an imported run was saved with.
    link: RwSignal<Link>,
    /// `performance.now()` when the run started: the browser clock's zero.
    origin_ms: RwSignal<f64>,
    browser: RwSignal<Vec<Message>>,
    server: RwSignal<Vec<Message>>,
    next_request: RwSignal<u64>,
    /// Whether a run is in progress; while it is, `now_us` ticks so held exchanges grow.
    running: RwSignal<bool>,
    now_us: RwSignal<i64>,
    /// Both halves merged on the browser's clock: brought up to date in place, at once, by
    /// [`Recorder::merge_new`] after every change to the records, redoing only what changed (so
    /// a message streamed into a long trace costs what that message changes, not the trace).
    trace: RwSignal<Vec<Drawn>>,
    merger: StoredValue<Merger>,
    /// The clock-offset guess before any request/response pair gives a better one.
    hint: Memo<Option<i64>>,
    imported_hint: RwSignal<Option<i64>>,
    /// Server clock minus browser clock (µs), as the merge estimates it.
    offset: RwSignal<i64>,
    socket: TraceSocket,
}

/// A recorder with its trace socket, for the calling component; both end when it does.
pub fn use_recorder() -> Recorder {
    {
        let run = RwSignal::new(None);
        let origin_ms = RwSignal::new(0.0);
        let browser = RwSignal::new(Vec::new());
        let server = RwSignal::new(Vec::new());
        // Which of the server's logs of the run `server` came from (its `Watching` answer).
        let server_log: RwSignal<Option<u64>> = RwSignal::new(None);
        // The latest `Clock` message: (server µs, `performance.now()` ms when it arrived).
        let clock: RwSignal<Option<(i64, f64)>> = RwSignal::new(None);
        // An imported run brings the guess it was drawn with.
        let imported_hint: RwSignal<Option<i64>> = RwSignal::new(None);
        // The trace socket's clock reading as a first guess at the offset between the clocks.
        let hint = Memo::new(move |_| {
            imported_hint.get().or_else(|| {
                clock.get().map(|(server_us, at_ms)| {
                    server_us - ((at_ms - origin_ms.get()) * 1000.0) as i64
                })
            })
        });
        let trace = RwSignal::new(Vec::new());
        let merger = StoredValue::new(Merger::default());
        let offset = RwSignal::new(0);
        // Filled in below: the socket's handler needs the recorder, which needs the socket.
        let this = StoredValue::new(None::<Recorder>);
        let merge_new = move || {
            if let Some(rec) = this.try_get_value().flatten() {
                rec.merge_new();
            }
        };
        let on_server = move |msg: TraceServerMsg| match msg {
            TraceServerMsg::Clock { server_now_us } => {
                clock.set(Some((server_now_us, perf_now_ms())));
                merge_new();
            }
            // The log the run's messages are numbered in, for a later re-watch.
            TraceServerMsg::Watching { run: watched, log } => {
                if run.with_untracked(|r| r.as_ref() == Some(&watched)) {
                    server_log.set(Some(log));
                }
            }
            TraceServerMsg::Message(m) => {
                // After a reconnect the server may repeat what the page has: keep each once.
                if run.with_untracked(|r| r.as_ref() == Some(&m.run))
                    && server.with_untracked(|s| resume::is_new(s, &m))
                {
                    server.update_untracked(|s| s.push(*m));
                    merge_new();
                }
            }
            TraceServerMsg::Error { error } => leptos::logging::warn!("trace socket: {error}"),
        };
        // After a reconnect: the run again, after the highest `seq` the page holds of it.
        let socket = TraceSocket::open(on_server, move || {
            Some(WatchAgain {
                run: run.get_untracked()?,
                after: server.with_untracked(|s| resume::resume_after(s)),
                log: server_log.get_untracked(),
            })
        });
        let now_us = RwSignal::new(0);
        let running = RwSignal::new(false);
        let rec = Recorder {
            run,
            link: RwSignal::new(Link::Local),
            origin_ms,
            browser,
            server,
            next_request: RwSignal::new(0),
            running,
            now_us,
            trace,
            merger,
            hint,
            imported_hint,
            offset,
            socket,
        };
        this.set_value(Some(rec));
        // Tick the clock while a run is live so in-flight arrows and held bars grow.
        let ticker = gloo_timers::callback::Interval::new(50, move || {
            if running.get_untracked() {
                now_us.set(rec.elapsed_us());
            }
        });
        let ticker = StoredValue::new_local(Some(ticker));
        on_cleanup(move || ticker.update_value(|t| drop(t.take())));
        rec
    }
}

impl Recorder {
    /// Starts a new run: clears the trace, zeroes the clock and watches the run's server half.
    pub fn start_run(&self) -> RunId {
        let run = new_run_id();
        self.imported_hint.set(None);
        self.browser.set(Vec::new());
        self.server.set(Vec::new());
        self.next_request.set(0);
        self.origin_ms.set(perf_now_ms());
        self.merge_anew();
        self.now_us.set(0);
        self.link.set(page_link());
        self.run.set(Some(run.clone()));
        self.running.set(true);
        self.socket.watch(&run);
        if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
            p.clear_resource_timings();
            p.set_resource_timing_buffer_size(2_000);
        }
        run
    }

    /// Marks the run finished: the clock stops ticking; the trace stays.
    pub fn finish_run(&self) {
        self.now_us.set(self.elapsed_us());
        self.running.set(false);
    }

    /// Forgets the run and its trace.
    /// The run as a file: both observers' messages and the clock guess it was drawn with.
    pub fn export(&self, demo: &str) -> TraceFile {
        TraceFile {
            version: TraceFile::VERSION,
            demo: demo.to_owned(),
            browser: self.browser.get_untracked(),
            server: self.server.get_untracked(),
            clock_hint: self.hint.get_untracked(),
            link: self.link.get_untracked(),
        }
    }

    /// Replaces the trace with a saved run, drawn as it was; nothing is sent.
    pub fn import(&self, file: TraceFile) {
        self.running.set(false);
        let run = file
            .browser
            .iter()
            .chain(&file.server)
            .map(|m| m.run.clone())
            .next();
        self.run.set(run);
        self.link.set(file.link);
        self.imported_hint.set(file.clock_guess());
        self.browser.set(file.browser);
        self.server.set(file.server);
        self.merge_anew();
        let end = self.trace.with_untracked(|t| {
            t.iter()
                .flat_map(|d| [Some(d.sent_us), d.recv_us])
                .flatten()
                .max()
        });
        self.now_us.set(end.unwrap_or(0));
    }

    pub fn reset(&self) {
        self.imported_hint.set(None);
        self.link.set(Link::Local);
        self.running.set(false);
        self.run.set(None);
        self.browser.set(Vec::new());
        self.server.set(Vec::new());
        self.merge_anew();
        self.now_us.set(0);
    }

    pub fn run_id(&self) -> Option<RunId> {
        self.run.get_untracked()
    }

    pub fn run_signal(&self) -> Signal<Option<RunId>> {
        self.run.into()
    }

    /// The link of the run shown: the one it ran over or was saved with.
    pub fn link(&self) -> Signal<Link> {
        self.link.into()
    }

    /// The query parameters that make a request part of this run: its ids, and its link
    /// unless local (which is the default, so a local run's URLs stay as short as before).
    pub fn run_params(&self, rid: &str) -> Vec<(&'static str, String)> {
        let run = self.run_id().map(|r| r.0).unwrap_or_default();
        let mut params = vec![(RUN_PARAM, run), (REQUEST_PARAM, rid.to_owned())];
        let link = self.link.get_untracked();
        if link != Link::Local {
            params.push((LINK_PARAM, link.name().to_owned()));
        }
        params
    }

    /// [`Recorder::run_params`] appended to `path`, as the browser will request it.
    pub fn run_url(&self, path: &str, rid: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        let query: Vec<String> = self
            .run_params(rid)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{path}{sep}{}", query.join("&"))
    }

    pub fn running(&self) -> Signal<bool> {
        self.running.into()
    }

    pub fn now_us(&self) -> Signal<i64> {
        self.now_us.into()
    }

    pub fn trace(&self) -> ReadSignal<Vec<Drawn>> {
        self.trace.read_only()
    }

    pub fn clock_offset(&self) -> Signal<i64> {
        self.offset.into()
    }

    /// Merges the records that arrived since the last merge into the trace (or all of them
    /// again, when the clock estimate moved).
    fn merge_new(&self) {
        let hint = self.hint.get_untracked();
        let mut changed = false;
        self.browser.with_untracked(|b| {
            self.server.with_untracked(|s| {
                self.trace.update_untracked(|t| {
                    self.merger
                        .update_value(|m| changed = m.update(t, b, s, hint))
                })
            })
        });
        if changed {
            self.trace.notify();
        }
        let offset = self.merger.with_value(Merger::offset);
        if self.offset.get_untracked() != offset {
            self.offset.set(offset);
        }
    }

    /// Merges the records from scratch: they were replaced (a new run, a reset, an import).
    fn merge_anew(&self) {
        self.merger.update_value(Merger::restart);
        self.merge_new();
    }

    /// Microseconds since the run started.
    pub fn elapsed_us(&self) -> i64 {
        self.to_run_us(perf_now_ms())
    }

    /// A `performance.now()`-style timestamp (ms) on the run's clock (µs).
    pub fn to_run_us(self, perf_ms: f64) -> i64 {
        ((perf_ms - self.origin_ms.get_untracked()) * 1000.0).round() as i64
    }

    pub fn next_request_id(&self) -> RequestId {
        let n = self.next_request.get_untracked() + 1;
        self.next_request.set(n);
        RequestId(n.to_string())
    }

    /// A message the browser observed in this run, with its times, sizes and detail left
    /// for the caller to fill in.
    pub fn message(
        &self,
        kind: Kind,
        request_id: Option<String>,
        (from, to): (Actor, Actor),
        transport: Transport,
        label: String,
    ) -> Message {
        Message {
            run: self.run_id().unwrap_or(RunId(String::new())),
            seq: 0,
            observer: Observer::Browser,
            request_id: request_id.map(RequestId),
            from,
            to,
            kind,
            transport,
            sent_us: None,
            recv_us: None,
            connection: None,
            stream: None,
            label,
            bytes: None,
            status: None,
            detail: None,
        }
    }

    /// Records something the page did by itself (its own work, a remark), as a self-message on
    /// the `browser` lifeline.
    pub fn note(&self, kind: Kind, label: String) {
        let now = self.elapsed_us();
        let ends = (Actor::browser(), Actor::browser());
        self.record(Message {
            sent_us: Some(now),
            recv_us: Some(now),
            ..self.message(kind, None, ends, Transport::Internal, label)
        });
    }

    /// Records something the browser saw, unless the run it belongs to has been replaced.
    pub fn record(&self, mut message: Message) {
        if self
            .run
            .with_untracked(|r| r.as_ref() != Some(&message.run))
        {
            return;
        }
        self.browser.update_untracked(|b| {
            message.seq = b.len() as u64;
            b.push(message);
        });
        self.merge_new();
    }
}
