//! The trace hub: a bounded log per run of what the server saw, fanned out to the pages
//! watching that run.

use std::{collections::VecDeque, time::Duration};

use protocol::trace::{Message, RunId};
use tokio::sync::broadcast;

use super::http_half::HttpHalf;
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

/// Per-run logs of server-side messages. Cheap to clone.
#[derive(Clone)]
pub struct TraceHub {
    /// Each run's log, touched by every record and watch, counted against the share of the
    /// client whose request or trace socket made it; forgotten after [`RUN_TTL`] untouched
    /// (unless `--store-ttl` says otherwise) and never while a page watches it; the least
    /// recently touched unwatched run evicted beyond [`RUNS_PER_CLIENT`] or [`MAX_RUNS`].
    runs: Expiring<RunId, RunLog>,
}

impl Default for TraceHub {
    fn default() -> Self {
        TraceHub {
            runs: Expiring::new(RUN_TTL)
                .bounded(MAX_RUNS, WhenFull::EvictLeastRecent)
                .shared(RUNS_PER_CLIENT, "traced runs")
                .kept_while(RunLog::is_watched),
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
    /// The newest messages, at most `MAX_MESSAGES_PER_RUN`, replayed to a page that starts watching.
    messages: VecDeque<Entry>,
    next_seq: u64,
    /// Fan-out to watching pages; bounded, so a slow page lags and is dropped.
    live: broadcast::Sender<Message>,
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
}

impl RunLog {
    fn new() -> Self {
        RunLog {
            // 53 bits: exact as a JavaScript number too.
            id: rand::random::<u64>() >> 11,
            messages: VecDeque::new(),
            next_seq: 0,
            live: broadcast::channel(WATCH_BUFFER).0,
        }
    }

    /// Whether a page is watching the run: then it is neither evicted nor expired.
    fn is_watched(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// Numbers the log on from `after` (a page holding messages up to `after` of another log of
    /// the run), so that everything in it is new to that page; nothing when it already is.
    fn number_on_from(&mut self, after: u64) {
        let first = self.messages.front().map_or(self.next_seq, Entry::seq);
        if first > after {
            return;
        }
        let shift = after + 1 - first;
        for entry in &mut self.messages {
            entry.set_seq(entry.seq() + shift);
        }
        self.next_seq += shift;
    }
}

impl TraceHub {
    /// The same hub, forgetting runs untouched for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> TraceHub {
        self.runs = self.runs.with_ttl(ttl);
        self
    }

    /// Forgets the runs untouched for longer than the TTL (the periodic sweep calls it).
    pub fn prune(&self) {
        self.runs.prune();
    }

    /// Records `message` (its `seq` is assigned here) and sends it to the run's watchers.
    pub fn record(&self, message: Message) {
        self.push(Entry::Made(Box::new(message)), None);
    }

    /// Records one half of a traced HTTP exchange, kept as it is until the trace is read (or
    /// made into its message at once when a page is watching the run). A new run counts
    /// against `client`'s share.
    pub fn record_http(&self, half: HttpHalf, client: Option<ClientId>) {
        self.push(Entry::Http { seq: 0, half }, client);
    }

    /// Appends `entry` to its run's log with the run's next `seq`, and sends it to the watchers;
    /// dropped when the run is new and every run kept is watched.
    fn push(&self, mut entry: Entry, client: Option<ClientId>) {
        let evicted = {
            let mut runs = self.runs.lock();
            let Ok(log) = Self::log_for(&mut runs, entry.run(), client) else {
                tracing::debug!(run = %entry.run().0, "not recorded: every run kept is watched");
                return;
            };
            entry.set_seq(log.next_seq);
            log.next_seq += 1;
            let evicted = if log.messages.len() == MAX_MESSAGES_PER_RUN {
                log.messages.pop_front()
            } else {
                None
            };
            // No watcher is fine: the log keeps the message for a later watch or GET (and with
            // none, the copy for them is not made).
            if log.live.receiver_count() > 0 {
                let _ = log.live.send(entry.message());
            }
            log.messages.push_back(entry);
            evicted
        };
        // Freed once the lock is released: the oldest entry's memory is cold, and every traced
        // request waits for this lock.
        drop(evicted);
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
            let log = Self::log_for(&mut runs, run, client)?;
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
                Some(Resume { after, .. }) => {
                    log.messages.partition_point(|entry| entry.seq() <= after)
                }
            };
            let entries: Vec<Entry> = log.messages.range(skip..).cloned().collect();
            (log.id, entries, log.live.subscribe())
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
            runs.get(run)?.messages.clone()
        };
        Some(entries.into_iter().map(Entry::into_message).collect())
    }

    /// How many runs are kept now.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// The run's log, touched now; made for `client` (evicting an unwatched run past its share
    /// or [`MAX_RUNS`]) if there is none; refused when every run that could go is watched.
    fn log_for<'a>(
        runs: &'a mut Locked<'_, RunId, RunLog>,
        run: &RunId,
        client: Option<ClientId>,
    ) -> Result<&'a mut RunLog, Refused> {
        runs.get_or_insert_for(client, run, RunLog::new)
    }
}

#[cfg(test)]
mod tests {
    use protocol::trace::{Actor, Kind, Observer, Transport};

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
        hub.push(Entry::Made(Box::new(msg(run))), client);
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
