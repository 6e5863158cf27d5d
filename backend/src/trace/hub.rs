//! The trace hub: a bounded log per run of what the server saw, fanned out to the pages
//! watching that run.

use std::{
    collections::VecDeque,
    mem::size_of,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use protocol::trace::{Message, RunId};
use tokio::sync::broadcast;

use super::{clock::instant_at_us, http_half::HttpHalf};
use crate::server::{
    client::ClientId,
    expiring::{CLASS_CLIENTS, Expiring, Locked, Refused, WhenFull},
};

/// Runs one client may have kept at once: one run of every demo page (the comparison's lanes
/// included) is fewer. Past it, the client's own least recently touched run that no page is
/// watching is forgotten, never another client's.
pub const RUNS_PER_CLIENT: usize = 16;
/// Runs kept at once: every client's share for [`CLASS_CLIENTS`] clients (a class of 30 and
/// two abusers fit with room to spare). When full, the least recently touched run not watched
/// of the client holding the most goes; a run a page is watching is never evicted (when every
/// run is watched, a new run is not recorded until one is not).
pub const MAX_RUNS: usize = RUNS_PER_CLIENT * CLASS_CLIENTS;
/// Messages kept per run; older ones are dropped first.
pub const MAX_MESSAGES_PER_RUN: usize = 2_000;
/// A run untouched for this long is forgotten.
pub const RUN_TTL: Duration = Duration::from_secs(15 * 60);
/// Messages a watching page may fall behind before it is told it is too slow and dropped.
pub const WATCH_BUFFER: usize = 512;
/// Bytes one run's log may hold (its messages' heap, estimated by [`Entry::heap_bytes`], and
/// its queue's slots); beyond it the run's oldest messages are dropped. A recorded message
/// holds at most 8 KiB of header lines and 4 KiB of body (`Detail::HEADERS_LIMIT`,
/// `Detail::BODY_LIMIT`), a typical HTTP half under 1 KiB: 1 MiB keeps the 2,000 messages
/// of a busy demo run, or the last ~80 of a run sending the largest heads it may.
pub const RUN_BUDGET: usize = 1024 * 1024;
/// Bytes all runs' logs may hold together. Beyond it the runs no page watches are trimmed,
/// least recently recorded first, their oldest messages first (to [`GLOBAL_TRIM_TO`], so one
/// trim makes room for many records); only if that is not enough are watched runs trimmed,
/// and never below [`WATCHED_SHARE`]. [`MAX_RUNS`] runs cannot exceed it however they are
/// filled, and 64 MiB of traces keeps the server's resident memory well under 256 MiB
/// (`trace_bytes` in `bench/RESULTS.md` for 512 runs filled with the largest messages).
pub const GLOBAL_BUDGET: usize = 64 * 1024 * 1024;
/// A global trim stops once all runs hold this much: 1/16 below [`GLOBAL_BUDGET`].
pub const GLOBAL_TRIM_TO: usize = GLOBAL_BUDGET - GLOBAL_BUDGET / 16;
/// What a run a page is watching keeps at least when the global budget is reached: its share
/// of it, so that even [`MAX_RUNS`] watched runs stay within it (128 KiB: the last ~250
/// messages of an ordinary run). Short of that, a watched run keeps its whole [`RUN_BUDGET`].
pub const WATCHED_SHARE: usize = GLOBAL_TRIM_TO / MAX_RUNS;

/// Per-run logs of server-side messages. Cheap to clone.
#[derive(Clone)]
pub struct TraceHub {
    /// Each run's log, touched by every record and watch, counted against the share of the
    /// client whose request or trace socket made it; forgotten after [`RUN_TTL`] untouched
    /// (unless `--store-ttl` says otherwise) and never while a page watches it; the least
    /// recently touched unwatched run evicted beyond [`RUNS_PER_CLIENT`] or [`MAX_RUNS`].
    runs: Expiring<RunId, RunLog>,
    /// Bytes all runs' logs hold now: each log adds and subtracts its own, and gives back what
    /// it still holds when it is dropped (expired, evicted).
    bytes: Arc<AtomicUsize>,
    budget: Budget,
}

/// The byte budgets a hub keeps its runs within (tests use small ones).
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// See [`RUN_BUDGET`].
    run: usize,
    /// See [`GLOBAL_BUDGET`].
    global: usize,
    /// See [`GLOBAL_TRIM_TO`].
    trim_to: usize,
    /// See [`WATCHED_SHARE`].
    watched_share: usize,
}

impl Default for TraceHub {
    fn default() -> Self {
        TraceHub {
            runs: Expiring::new(RUN_TTL)
                .bounded(MAX_RUNS, WhenFull::EvictLeastRecent)
                .shared(RUNS_PER_CLIENT, "traced runs")
                .kept_while(RunLog::watched),
            bytes: Arc::default(),
            budget: Budget {
                run: RUN_BUDGET,
                global: GLOBAL_BUDGET,
                trim_to: GLOBAL_TRIM_TO,
                watched_share: WATCHED_SHARE,
            },
        }
    }
}

/// Where a page resumes watching a run: after the highest `seq` it holds, numbered in which of
/// the server's logs of the run (`None` from a page that does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub after: u64,
    pub log: Option<u64>,
}

/// What a watch gets: which log the run's messages are numbered in, those recorded already,
/// and a receiver for the ones to come.
pub struct Watched {
    pub log: u64,
    pub backlog: Vec<Message>,
    pub live: broadcast::Receiver<Message>,
}

struct RunLog {
    /// Names this log among every log of the run the server has started, so a page resuming
    /// with numbers from another one (before a restart, or on another instance) is told apart.
    id: u64,
    /// The newest messages, at most `MAX_MESSAGES_PER_RUN` and [`RUN_BUDGET`] bytes, replayed
    /// to a page that starts watching.
    messages: VecDeque<Logged>,
    next_seq: u64,
    /// Fan-out to watching pages; bounded, so a slow page lags and is dropped. Made by the
    /// first watch: its buffer holds [`WATCH_BUFFER`] message slots (over 100 KiB), which a
    /// run nobody watches has no use for.
    live: Option<broadcast::Sender<Message>>,
    /// Bytes this log holds: its entries' [`Logged::bytes`], its queue's slots and the watch
    /// buffer.
    bytes: usize,
    /// The hub's total, which `bytes` is part of.
    total: Arc<AtomicUsize>,
    /// When a message was last recorded: runs nobody watches are trimmed least recent first.
    recorded: Instant,
}

/// One entry of a run's log and the heap bytes it was counted as when appended: kept beside it,
/// so that dropping the oldest entry (every record, once a busy run is at its bound) reads only
/// this slot, not the entry's cold strings and header block as [`Entry::heap_bytes`] does.
#[derive(Clone)]
struct Logged {
    entry: Entry,
    bytes: usize,
}

/// One message of a run's log: made, or one half of an HTTP exchange as the trace middleware
/// saw it, made into a message only when the trace is read. Every traced request records two
/// halves and the trace is read far less often, so the strings (start line, label, headers) are
/// not built for most of them.
#[derive(Clone)]
enum Entry {
    /// Boxed: a message is four times the size of a half, which most entries are.
    Made(Box<Message>),
    Http {
        seq: u64,
        half: HttpHalf,
    },
}

impl Entry {
    fn run(&self) -> &RunId {
        match self {
            Entry::Made(message) => &message.run,
            Entry::Http { half, .. } => half.run(),
        }
    }

    fn seq(&self) -> u64 {
        match self {
            Entry::Made(message) => message.seq,
            Entry::Http { seq, .. } => *seq,
        }
    }

    fn set_seq(&mut self, to: u64) {
        match self {
            Entry::Made(message) => message.seq = to,
            Entry::Http { seq, .. } => *seq = to,
        }
    }

    fn message(&self) -> Message {
        match self {
            Entry::Made(message) => Message::clone(message),
            Entry::Http { seq, half } => half.message(*seq),
        }
    }

    fn into_message(self) -> Message {
        match self {
            Entry::Made(message) => *message,
            Entry::Http { seq, half } => half.message(seq),
        }
    }

    /// The heap bytes this entry holds beyond its slot in the log's queue: a made message's
    /// box and strings (header lines, body, phases), or a half's header block, phases and
    /// exchange (counted with each half that shares it: an overestimate while both are kept).
    /// Allocator rounding is not counted.
    fn heap_bytes(&self) -> usize {
        match self {
            Entry::Made(message) => size_of::<Message>() + message_heap_bytes(message),
            Entry::Http { half, .. } => half.heap_bytes(),
        }
    }
}

/// The heap a message's strings and vectors hold (its detail is inside it).
fn message_heap_bytes(m: &Message) -> usize {
    let detail = m.detail.as_ref().map_or(0, |d| {
        d.start_line.capacity()
            + d.body.capacity()
            + d.headers.capacity() * size_of::<protocol::trace::Header>()
            + d.headers
                .iter()
                .map(|h| h.name.capacity() + h.value.capacity())
                .sum::<usize>()
            + d.phases.capacity() * size_of::<protocol::trace::Phase>()
            + d.phases.iter().map(|p| p.name.capacity()).sum::<usize>()
    });
    m.run.0.capacity()
        + m.request_id.as_ref().map_or(0, |r| r.0.capacity())
        + m.from.0.capacity()
        + m.to.0.capacity()
        + m.label.capacity()
        + detail
}

/// The bytes of a watch buffer's slots (a message and the slot's bookkeeping each).
const WATCH_BUFFER_BYTES: usize = WATCH_BUFFER * (size_of::<Message>() + 32);

impl RunLog {
    /// An empty log, made at `now`.
    fn new(total: &Arc<AtomicUsize>, now: Instant) -> Self {
        RunLog {
            // 53 bits: exact as a JavaScript number too.
            id: rand::random::<u64>() >> 11,
            messages: VecDeque::new(),
            next_seq: 0,
            live: None,
            bytes: 0,
            total: Arc::clone(total),
            recorded: now,
        }
    }

    /// Numbers the log on from `after` (a page holding messages up to `after` of another log of
    /// the run), so that everything in it is new to that page; nothing when it already is.
    fn number_on_from(&mut self, after: u64) {
        let first = self
            .messages
            .front()
            .map_or(self.next_seq, |logged| logged.entry.seq());
        if first > after {
            return;
        }
        let shift = after + 1 - first;
        for Logged { entry, .. } in &mut self.messages {
            entry.set_seq(entry.seq() + shift);
        }
        self.next_seq += shift;
    }

    /// Whether a page is watching the run now: then it is neither evicted nor expired.
    fn watched(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|live| live.receiver_count() > 0)
    }

    /// Counts `bytes` more in this log and the hub's total.
    fn grow(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    fn shrink(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.total.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The queue's slots as counted: its capacity, which it keeps when messages go.
    fn slot_bytes(&self) -> usize {
        self.messages.capacity() * size_of::<Logged>()
    }

    /// Appends `entry`, recorded at `now`, counting its bytes (measured now, while the entry is
    /// fresh in the cache) and any slots the queue grew by.
    fn append(&mut self, entry: Entry, now: Instant) {
        let slots = self.slot_bytes();
        let bytes = entry.heap_bytes();
        self.messages.push_back(Logged { entry, bytes });
        let grown = self.slot_bytes() - slots;
        self.grow(bytes + grown);
        self.recorded = now;
    }

    /// Drops the oldest entry into `freed` (freed once the hub's lock is released); `false`
    /// when there is none.
    fn drop_oldest(&mut self, freed: &mut Freed) -> bool {
        let Some(oldest) = self.messages.pop_front() else {
            return false;
        };
        self.shrink(oldest.bytes);
        freed.push(oldest);
        true
    }

    /// Gives back the queue's spare slots once it is three quarters empty (a log trimmed by the
    /// global budget), so the bytes counted are the bytes freed.
    fn fit_slots(&mut self) {
        if self.messages.len() < self.messages.capacity() / 4 {
            let slots = self.slot_bytes();
            self.messages.shrink_to_fit();
            let shrunk = slots - self.slot_bytes();
            self.shrink(shrunk);
        }
    }

    /// Drops the fan-out once no page watches (its slots are a watch buffer's worth of
    /// memory, held by every run ever watched otherwise).
    fn forget_unwatched_live(&mut self) {
        if self
            .live
            .as_ref()
            .is_some_and(|live| live.receiver_count() == 0)
        {
            self.live = None;
            self.shrink(WATCH_BUFFER_BYTES);
        }
    }

    /// The fan-out to watching pages, made (and counted) on the first watch.
    fn live(&mut self) -> &broadcast::Sender<Message> {
        if self.live.is_none() {
            self.grow(WATCH_BUFFER_BYTES);
        }
        self.live
            .get_or_insert_with(|| broadcast::channel(WATCH_BUFFER).0)
    }
}

/// Entries dropped from the logs under the hub's lock, freed once it is released. The first is
/// held in place: a record at its run's bound drops one, and a `Vec` for it was an allocation
/// per record.
#[derive(Default)]
struct Freed {
    first: Option<Logged>,
    more: Vec<Logged>,
}

impl Freed {
    fn push(&mut self, logged: Logged) {
        match self.first {
            None => self.first = Some(logged),
            Some(_) => self.more.push(logged),
        }
    }
}

impl Drop for RunLog {
    /// An expired or evicted run gives its bytes back to the hub's total.
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl TraceHub {
    /// The same hub, forgetting runs untouched for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> TraceHub {
        self.runs = self.runs.with_ttl(ttl);
        self
    }

    /// The same hub, within these byte budgets (per run, all runs) instead of
    /// [`RUN_BUDGET`] and [`GLOBAL_BUDGET`]; the trim target and the watched share scale.
    #[cfg(test)]
    fn with_budget(mut self, run: usize, global: usize) -> TraceHub {
        let trim_to = global - global / 16;
        self.budget = Budget {
            run,
            global,
            trim_to,
            watched_share: trim_to / MAX_RUNS,
        };
        self
    }

    /// Forgets the runs untouched for longer than the TTL (the periodic sweep calls it).
    pub fn prune(&self) {
        self.runs.prune();
    }

    /// Records `message` (its `seq` is assigned here) and sends it to the run's watchers.
    pub fn record(&self, message: Message) {
        self.push(Entry::Made(Box::new(message)), None, Instant::now());
    }

    /// Records one half of a traced HTTP exchange, kept as it is until the trace is read (or
    /// made into its message at once when a page is watching the run). A new run counts
    /// against `client`'s share.
    pub fn record_http(&self, half: HttpHalf, client: Option<ClientId>) {
        // The run is touched when the half was seen: the clock is not read again for it.
        let at = instant_at_us(half.at_us);
        self.push(Entry::Http { seq: 0, half }, client, at);
    }

    /// Appends `entry` to its run's log with the run's next `seq`, and sends it to the watchers;
    /// dropped when the run is new and every run kept is watched. Then keeps the run within
    /// [`MAX_MESSAGES_PER_RUN`] and [`RUN_BUDGET`], and all runs within [`GLOBAL_BUDGET`].
    /// `now` is when it was recorded: the run is touched then.
    fn push(&self, mut entry: Entry, client: Option<ClientId>, now: Instant) {
        // Freed once the lock is released: the oldest entries' memory is cold, and every traced
        // request waits for this lock.
        let mut freed = Freed::default();
        {
            let mut runs = self.runs.lock();
            let Ok(log) = Self::log_for(&mut runs, entry.run(), client, &self.bytes, now) else {
                tracing::debug!(run = %entry.run().0, "not recorded: every run kept is watched");
                return;
            };
            entry.set_seq(log.next_seq);
            log.next_seq += 1;
            // No watcher is fine: the log keeps the message for a later watch or GET (and with
            // none, the copy for them is not made).
            log.forget_unwatched_live();
            if let Some(live) = &log.live {
                let _ = live.send(entry.message());
            }
            log.append(entry, now);
            // The newest message is always kept: no single one comes near the budget.
            while log.messages.len() > MAX_MESSAGES_PER_RUN
                || (log.bytes > self.budget.run && log.messages.len() > 1)
            {
                log.drop_oldest(&mut freed);
            }
            if self.bytes.load(Ordering::Relaxed) > self.budget.global {
                self.trim(&mut runs, &mut freed);
            }
        }
        drop(freed);
    }

    /// Brings all runs down to the budget's `trim_to`: the runs nobody watches first, least
    /// recently recorded first, their oldest messages first; then, if that was not enough, the
    /// watched ones, each down to `watched_share` at least.
    fn trim(&self, runs: &mut Locked<'_, RunId, RunLog>, freed: &mut Freed) {
        let over = || self.bytes.load(Ordering::Relaxed) > self.budget.trim_to;
        let mut logs: Vec<&mut RunLog> = runs.values_mut().collect();
        logs.sort_by_key(|log| (log.watched(), log.recorded));
        for log in logs {
            if !over() {
                break;
            }
            log.forget_unwatched_live();
            // A watched run's share is of its messages; its watch buffer is the watcher's.
            let keep = if log.watched() {
                self.budget.watched_share + WATCH_BUFFER_BYTES
            } else {
                0
            };
            while over() && log.bytes > keep && log.drop_oldest(freed) {}
            log.fit_slots();
        }
    }

    /// The run's recorded messages and a receiver for the ones to come, taken under one lock
    /// so nothing falls between them (the messages are made after it is released). A page
    /// resuming after a reconnect gets only those numbered above `after`; one whose numbers came
    /// from another log of the run (the server restarted, or the run moved to this instance)
    /// gets this whole log, numbered on from `after`. A new run counts against `client`'s
    /// share; refused when every run kept is watched.
    pub fn watch(
        &self,
        run: &RunId,
        resume: Option<Resume>,
        client: Option<ClientId>,
    ) -> Result<Watched, Refused> {
        let (log, entries, live) = {
            let mut runs = self.runs.lock();
            let log = Self::log_for(&mut runs, run, client, &self.bytes, Instant::now())?;
            let skip = match resume {
                None => 0,
                Some(Resume {
                    after,
                    log: Some(theirs),
                }) if theirs != log.id => {
                    log.number_on_from(after);
                    0
                }
                // The log is in `seq` order: skip what the page has without copying it.
                Some(Resume { after, .. }) => log
                    .messages
                    .partition_point(|logged| logged.entry.seq() <= after),
            };
            let entries: Vec<Entry> = log
                .messages
                .range(skip..)
                .map(|logged| logged.entry.clone())
                .collect();
            (log.id, entries, log.live().subscribe())
        };
        Ok(Watched {
            log,
            backlog: entries.into_iter().map(Entry::into_message).collect(),
            live,
        })
    }

    /// The run's recorded messages, or `None` for a run never seen (or expired).
    pub fn snapshot(&self, run: &RunId) -> Option<Vec<Message>> {
        let entries = {
            let runs = self.runs.lock();
            let log = runs.get(run)?;
            log.messages
                .iter()
                .map(|logged| logged.entry.clone())
                .collect::<Vec<_>>()
        };
        Some(entries.into_iter().map(Entry::into_message).collect())
    }

    /// How many runs are kept now.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Bytes all runs' logs hold now (see [`GLOBAL_BUDGET`]).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The run's log, touched `now`; made for `client` (evicting an unwatched run past its share
    /// or [`MAX_RUNS`]), counting its bytes in `total`, if there is none; refused when every
    /// run that could go is watched.
    fn log_for<'a>(
        runs: &'a mut Locked<'_, RunId, RunLog>,
        run: &RunId,
        client: Option<ClientId>,
        total: &Arc<AtomicUsize>,
        now: Instant,
    ) -> Result<&'a mut RunLog, Refused> {
        runs.get_or_insert_for_at(client, run, now, || RunLog::new(total, now))
    }
}

#[cfg(test)]
mod tests {
    use protocol::trace::{Actor, Detail, Kind, Observer, Transport};

    use super::{super::clock::server_now_us, *};

    fn msg(run: &str) -> Message {
        Message {
            run: RunId(run.into()),
            seq: 0,
            observer: Observer::Server,
            request_id: None,
            from: Actor::browser(),
            to: Actor::server(),
            kind: Kind::Request,
            transport: Transport::Http1,
            sent_us: None,
            recv_us: Some(server_now_us()),
            connection: None,
            stream: None,
            label: "GET /".into(),
            bytes: None,
            status: None,
            detail: None,
        }
    }

    #[test]
    fn runs_and_messages_are_bounded() {
        let hub = TraceHub::default();
        for i in 0..MAX_RUNS + 10 {
            hub.record(msg(&format!("r{i}")));
        }
        assert_eq!(hub.run_count(), MAX_RUNS);
        assert!(
            hub.snapshot(&RunId("r0".into())).is_none(),
            "oldest run evicted"
        );
        for _ in 0..MAX_MESSAGES_PER_RUN + 5 {
            hub.record(msg("busy"));
        }
        let kept = hub.snapshot(&RunId("busy".into())).unwrap();
        assert_eq!(kept.len(), MAX_MESSAGES_PER_RUN);
        assert_eq!(kept[0].seq, 5, "oldest messages dropped first");
    }

    /// A message as large as a recorded one gets: the most header lines and body kept.
    fn big(run: &str) -> Message {
        let header = protocol::trace::Header {
            name: "x-filler".into(),
            value: "v".repeat(Detail::HEADER_VALUE_LIMIT),
        };
        Message {
            detail: Some(
                Detail {
                    body: "b".repeat(Detail::BODY_LIMIT),
                    ..Detail::default()
                }
                .with_headers(vec![header; 20]),
            ),
            ..msg(run)
        }
    }

    /// The bytes the hub's runs hold, counted afresh.
    fn counted(hub: &TraceHub) -> usize {
        hub.runs.lock().values_mut().map(|log| log.bytes).sum()
    }

    /// The bytes the hub's runs hold, measured afresh from their entries: what the sizes kept
    /// beside them add up to.
    fn measured(hub: &TraceHub) -> usize {
        let watch_buffer = |log: &RunLog| log.live.as_ref().map_or(0, |_| WATCH_BUFFER_BYTES);
        hub.runs
            .lock()
            .values_mut()
            .map(|log| {
                let entries: usize = log.messages.iter().map(|l| l.entry.heap_bytes()).sum();
                entries + log.slot_bytes() + watch_buffer(log)
            })
            .sum()
    }

    #[test]
    fn a_run_is_kept_within_its_byte_budget_newest_first() {
        let hub = TraceHub::default();
        let one = big("r").detail.map_or(0, |d| {
            d.body.len() + d.headers.iter().map(|h| h.value.len()).sum::<usize>()
        });
        assert!(
            one > 11_000,
            "a big message holds its header lines and body"
        );
        for _ in 0..200 {
            hub.record(big("r"));
        }
        let kept = hub.snapshot(&RunId("r".into())).unwrap();
        assert!(hub.bytes() <= RUN_BUDGET, "{} bytes kept", hub.bytes());
        assert!(
            hub.bytes() > RUN_BUDGET - 2 * one,
            "the budget is used, not left empty"
        );
        assert_eq!(hub.bytes(), counted(&hub), "the total is the runs' sum");
        assert_eq!(
            hub.bytes(),
            measured(&hub),
            "the sizes kept are the entries'"
        );
        assert!(kept.len() < 200 && kept.len() > 50, "{} kept", kept.len());
        assert_eq!(kept.last().unwrap().seq, 199, "the newest kept");
        assert_eq!(kept[0].seq, 200 - kept.len() as u64, "the oldest dropped");
        // Small messages: the count cap binds first, and the bytes follow what is kept.
        for _ in 0..MAX_MESSAGES_PER_RUN {
            hub.record(msg("r"));
        }
        assert_eq!(
            hub.snapshot(&RunId("r".into())).unwrap().len(),
            MAX_MESSAGES_PER_RUN
        );
        assert!(hub.bytes() <= RUN_BUDGET, "{} bytes", hub.bytes());
        assert_eq!(hub.bytes(), counted(&hub));
        assert_eq!(hub.bytes(), measured(&hub));
    }

    #[test]
    fn past_the_global_budget_unwatched_runs_go_first_least_recent_first() {
        // Room for about 12 runs of 20 big messages.
        let hub = TraceHub::default().with_budget(RUN_BUDGET, 20 * 20 * 17_000);
        let watched = RunId("watched".into());
        let _watching = hub.watch(&watched, None, None).unwrap();
        for _ in 0..20 {
            hub.record(big("watched"));
        }
        for run in 0..30 {
            for _ in 0..20 {
                hub.record(big(&format!("r{run}")));
            }
        }
        assert!(hub.bytes() <= hub.budget.global, "{} bytes", hub.bytes());
        assert_eq!(hub.bytes(), counted(&hub));
        let kept = |run: &str| hub.snapshot(&RunId(run.into())).map_or(0, |m| m.len());
        assert_eq!(kept("watched"), 20, "the watched run is left whole");
        assert_eq!(kept("r0"), 0, "the least recent run emptied first");
        assert_eq!(kept("r29"), 20, "the newest run whole");
        assert_eq!(hub.run_count(), 31, "runs are trimmed, not forgotten");
    }

    #[test]
    fn watched_runs_keep_their_share_when_only_they_are_left() {
        let share_of = |global: usize| (global - global / 16) / MAX_RUNS;
        let global = 4 * 1024 * 1024;
        let hub = TraceHub::default().with_budget(RUN_BUDGET, global);
        let mut watching = Vec::new();
        for run in 0..8 {
            watching.push(hub.watch(&RunId(format!("w{run}")), None, None).unwrap());
            for _ in 0..60 {
                hub.record(big(&format!("w{run}")));
            }
        }
        assert!(hub.bytes() <= global, "{} bytes", hub.bytes());
        let logs = hub.runs.lock();
        for log in logs.values() {
            assert!(log.bytes >= share_of(global), "{} bytes kept", log.bytes);
        }
    }

    #[test]
    fn bytes_are_given_back_when_runs_expire_or_are_evicted() {
        let hub = TraceHub::default().with_ttl(Duration::from_millis(100));
        for run in 0..MAX_RUNS + 3 {
            hub.record(big(&format!("r{run}")));
        }
        assert_eq!(hub.bytes(), counted(&hub), "evicted runs gave theirs back");
        // A run watched, then left: its watch buffer is given back with it (a watched run
        // would be kept).
        let watching = hub.watch(&RunId("r600".into()), None, None).unwrap();
        drop(watching);
        std::thread::sleep(Duration::from_millis(200));
        hub.prune();
        assert_eq!(hub.run_count(), 0);
        assert_eq!(hub.bytes(), 0);
    }

    #[test]
    fn runs_watched_once_give_their_watch_buffers_back_before_a_watched_run_loses_anything() {
        // A class: each learner's earlier runs were watched, then left; one run is watched now.
        let hub = TraceHub::default();
        let mine = RunId("mine".into());
        let watching = hub.watch(&mine, None, None).unwrap();
        for _ in 0..20 {
            hub.record(msg("mine"));
        }
        for run in 0..700 {
            let run = format!("left{run}");
            hub.record(msg(&run));
            drop(hub.watch(&RunId(run), None, None).unwrap());
        }
        hub.record(msg("mine"));
        assert_eq!(
            hub.snapshot(&mine).unwrap().len(),
            21,
            "the watched run lost nothing"
        );
        assert!(hub.bytes() <= GLOBAL_BUDGET, "{} bytes", hub.bytes());
        // A run whose watcher left gives its buffer back on its next record too.
        let left = RunId("left0".into());
        let before = hub.bytes();
        hub.record(msg("left0"));
        assert!(
            hub.bytes() < before || hub.runs.lock().get(&left).is_none_or(|l| l.live.is_none())
        );
        drop(watching);
    }

    #[test]
    fn untouched_runs_expire_on_the_sweep() {
        // A TTL that a loaded machine's preemption between the record and the prune below
        // does not use up (with 50 ms, "new" could expire before the prune saw it).
        const TTL: Duration = Duration::from_millis(300);
        let past_the_ttl = || std::thread::sleep(TTL + Duration::from_millis(100));
        let hub = TraceHub::default().with_ttl(TTL);
        hub.record(msg("old"));
        past_the_ttl();
        hub.record(msg("new"));
        hub.prune();
        assert_eq!(hub.run_count(), 1);
        assert!(
            hub.snapshot(&RunId("old".into())).is_none(),
            "expired run forgotten"
        );
        past_the_ttl();
        hub.prune();
        assert_eq!(hub.run_count(), 0, "nothing kept past the TTL");
    }

    #[tokio::test]
    async fn watch_sees_backlog_then_live() {
        let hub = TraceHub::default();
        hub.record(msg("w"));
        let mut watched = hub.watch(&RunId("w".into()), None, None).unwrap();
        assert_eq!(watched.backlog.len(), 1);
        hub.record(msg("w"));
        assert_eq!(watched.live.recv().await.unwrap().seq, 1);
    }

    #[test]
    fn a_resumed_watch_gets_only_what_came_after() {
        let hub = TraceHub::default();
        for _ in 0..5 {
            hub.record(msg("r"));
        }
        let log = hub.watch(&RunId("r".into()), None, None).unwrap().log;
        let seqs = |after: Option<u64>, log: Option<u64>| {
            let resume = after.map(|after| Resume { after, log });
            let watched = hub.watch(&RunId("r".into()), resume, None).unwrap();
            watched.backlog.iter().map(|m| m.seq).collect::<Vec<_>>()
        };
        assert_eq!(seqs(None, None), [0, 1, 2, 3, 4]);
        assert_eq!(seqs(Some(2), Some(log)), [3, 4]);
        assert_eq!(seqs(Some(2), None), [3, 4], "a page that names no log");
        assert_eq!(seqs(Some(4), Some(log)), [] as [u64; 0]);
        assert_eq!(seqs(Some(99), Some(log)), [] as [u64; 0]);
    }

    #[test]
    fn a_page_resuming_with_numbers_of_another_log_gets_this_one_whole_numbered_on() {
        // The page held messages 0..=6 of the run's log on a server that has since restarted
        // (or of another instance); this server's log of the run has three messages so far.
        let hub = TraceHub::default();
        for _ in 0..3 {
            hub.record(msg("moved"));
        }
        let run = RunId("moved".into());
        let theirs = hub.watch(&run, None, None).unwrap().log ^ 1;
        let resume = Some(Resume {
            after: 6,
            log: Some(theirs),
        });
        let watched = hub.watch(&run, resume, None).unwrap();
        let seqs: Vec<u64> = watched.backlog.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [7, 8, 9], "all new to the page, in order");
        hub.record(msg("moved"));
        assert_eq!(hub.snapshot(&run).unwrap().last().unwrap().seq, 10);
        // Asking again (the page had not heard `Watching` yet) numbers nothing twice.
        let again = hub.watch(&run, resume, None).unwrap();
        assert_eq!(again.backlog.first().map(|m| m.seq), Some(7));
        // More messages than the page held: still all kept, numbered after its last.
        let hub = TraceHub::default();
        for _ in 0..20 {
            hub.record(msg("busy"));
        }
        let busy = RunId("busy".into());
        let theirs = hub.watch(&busy, None, None).unwrap().log ^ 1;
        let watched = hub
            .watch(
                &busy,
                Some(Resume {
                    after: 4,
                    log: Some(theirs),
                }),
                None,
            )
            .unwrap();
        assert_eq!(watched.backlog.len(), 20);
        assert_eq!(watched.backlog[0].seq, 5);
    }

    /// Records a message for `run` as if a request of `client` had made it.
    fn record_as(hub: &TraceHub, run: &str, client: Option<ClientId>) {
        hub.push(Entry::Made(Box::new(msg(run))), client, Instant::now());
    }

    fn client(n: u8) -> Option<ClientId> {
        Some(ClientId::of(std::net::IpAddr::from([10, 0, 0, n])))
    }

    #[test]
    fn a_watched_run_survives_a_full_store() {
        let hub = TraceHub::default();
        let watching = hub
            .watch(&RunId("watched".into()), None, client(1))
            .unwrap()
            .live;
        for c in 0..CLASS_CLIENTS as u8 + 4 {
            for i in 0..RUNS_PER_CLIENT {
                record_as(&hub, &format!("c{c}-{i}"), client(c + 10));
            }
        }
        assert_eq!(hub.run_count(), MAX_RUNS);
        assert!(
            hub.snapshot(&RunId("watched".into())).is_some(),
            "never evicted"
        );
        drop(watching);
        for i in 0..RUNS_PER_CLIENT {
            record_as(&hub, &format!("mine{i}"), client(1));
        }
        assert!(
            hub.snapshot(&RunId("watched".into())).is_none(),
            "evictable once no page watches it"
        );
    }

    #[test]
    fn a_client_past_its_share_loses_its_own_oldest_unwatched_run() {
        let hub = TraceHub::default();
        record_as(&hub, "other", client(2));
        let _watching = hub
            .watch(&RunId("mine-0".into()), None, client(1))
            .unwrap()
            .live;
        for i in 1..=RUNS_PER_CLIENT {
            record_as(&hub, &format!("mine-{i}"), client(1));
        }
        assert!(hub.snapshot(&RunId("mine-0".into())).is_some(), "watched");
        assert!(
            hub.snapshot(&RunId("mine-1".into())).is_none(),
            "its oldest idle"
        );
        assert!(
            hub.snapshot(&RunId("other".into())).is_some(),
            "another client's"
        );
        assert_eq!(hub.run_count(), RUNS_PER_CLIENT + 1);
    }

    #[test]
    fn when_every_run_is_watched_a_new_one_is_refused_not_evicting() {
        let hub = TraceHub::default();
        let mut watching = Vec::new();
        for c in 0..CLASS_CLIENTS as u8 {
            for i in 0..RUNS_PER_CLIENT {
                let run = RunId(format!("c{c}-{i}"));
                watching.push(hub.watch(&run, None, client(c)).unwrap().live);
            }
        }
        let refused = hub.watch(&RunId("late".into()), None, client(200));
        assert!(matches!(refused, Err(Refused::Full { .. })));
        hub.record(msg("late"));
        assert!(
            hub.snapshot(&RunId("late".into())).is_none(),
            "not recorded"
        );
        assert_eq!(hub.run_count(), MAX_RUNS);
    }
}
