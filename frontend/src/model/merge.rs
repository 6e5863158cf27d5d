//! Merges the browser's and the server's records of a run into one trace on the browser's clock.
//!
//! Each exchange is seen twice: the browser knows when it sent a request and when the response
//! finished arriving; the server knows when the request arrived and when it answered. Pairing
//! them by request id gives NTP-style clock samples; the one with the lowest round trip sets the
//! offset (until one exists, the trace socket's `Clock` message gives a first guess). Mapped
//! times are then clamped so causality holds on screen: nothing arrives before it was sent.

use std::collections::{HashMap, HashSet};

use protocol::trace::{Actor, Detail, Kind, Message, Phase, RequestId, Transport};

use super::phases::ON_THE_WIRE;

/// One arrow of the diagram, every time on the browser's clock (µs since the run started).
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    /// Stable across updates, so the renderer keeps (and does not re-animate) the element.
    pub key: String,
    pub request_id: Option<RequestId>,
    pub from: Actor,
    pub to: Actor,
    pub kind: Kind,
    pub transport: Transport,
    pub sent_us: i64,
    /// `None` while the message is still travelling (or the connection is still held).
    pub recv_us: Option<i64>,
    pub label: String,
    pub bytes: Option<u64>,
    pub status: Option<u16>,
    pub connection: Option<u64>,
    pub stream: Option<u64>,
    /// Start line, headers and body as the most reliable observer saw them; `phases` are the
    /// browser's own (queueing, waiting for the first byte, download).
    pub detail: Detail,
    /// The server's phases for a response (parse, process, serialize), on the browser's clock.
    pub server_phases: Vec<Phase>,
}

/// Estimates `server_clock - browser_clock` in µs from request/response pairs, falling back to
/// `hint` (from the trace socket's `Clock` message). The page keeps its estimate in [`Merger`];
/// this whole-record version is what the tests hold it to.
#[cfg(test)]
pub fn clock_offset(browser: &[Message], server: &[Message], hint: Option<i64>) -> i64 {
    let (browser_idx, server_idx) = (index(&refs(browser)), index(&refs(server)));
    let mut best: Option<(i64, i64)> = None; // (round trip, offset)
    for breq in browser {
        if let Some((round_trip, offset)) = sample(breq, &browser_idx, &server_idx)
            && best.is_none_or(|(rt, _)| round_trip < rt)
        {
            best = Some((round_trip, offset));
        }
    }
    best.map(|(_, offset)| offset).or(hint).unwrap_or(0)
}

/// First messages by (request id, kind), as [`index`] makes them.
type Index<'a> = HashMap<(&'a RequestId, Kind), &'a Message>;

/// The NTP-style clock sample `breq` gives, `(round trip, offset)`, if it is a browser request
/// whose exchange both observers have seen whole (its first response on each side).
fn sample(breq: &Message, browser_idx: &Index, server_idx: &Index) -> Option<(i64, i64)> {
    if breq.kind != Kind::Request {
        return None;
    }
    let rid = breq.request_id.as_ref()?;
    let bresp = browser_idx.get(&(rid, Kind::Response))?;
    let sreq = server_idx.get(&(rid, Kind::Request))?;
    let sresp = server_idx.get(&(rid, Kind::Response))?;
    // The request left when it went on the wire, which the response's phases tell (Resource
    // Timing's `requestStart`): a wait for one of the six connections, or for a connection to
    // open, happens on the browser's side only and would skew the estimate by half its length.
    let sent = breq.sent_us?;
    let on_the_wire = bresp
        .detail
        .iter()
        .flat_map(|d| &d.phases)
        .find(|p| ON_THE_WIRE.contains(&p.name.as_str()))
        .map(|p| p.start_us)
        .filter(|&t| t >= sent);
    let (t0, t1, t2, t3) = (
        on_the_wire.unwrap_or(sent),
        sreq.recv_us?,
        sresp.sent_us?,
        bresp.recv_us?,
    );
    let round_trip = (t3 - t0) - (t2 - t1);
    let offset = ((t1 - t0) + (t2 - t3)) / 2;
    Some((round_trip, offset))
}

/// The first message of each (request id, kind): one exchange's halves, or one pushed event.
fn index<'a>(messages: &[&'a Message]) -> Index<'a> {
    let mut map = HashMap::new();
    for &m in messages {
        if let Some(rid) = &m.request_id {
            map.entry((rid, m.kind)).or_insert(m);
        }
    }
    map
}

fn mapped_phases(detail: Option<&Detail>, to_browser: impl Fn(i64) -> i64) -> Vec<Phase> {
    detail
        .iter()
        .flat_map(|d| &d.phases)
        .map(|p| Phase {
            start_us: to_browser(p.start_us),
            ..p.clone()
        })
        .collect()
}

/// The merged trace, sorted by send time. The page merges through [`Merger`], a record at a
/// time; this whole-record merge is what the tests hold it to, and how they build a trace.
#[cfg(test)]
pub fn merge(browser: &[Message], server: &[Message], hint: Option<i64>) -> Vec<Drawn> {
    let offset = clock_offset(browser, server, hint);
    let mut out = merge_part(&refs(browser), &refs(server), offset);
    out.sort_by(order);
    out
}

/// The order of the merged trace: by send time, then by key (unique in a run).
fn order(a: &Drawn, b: &Drawn) -> std::cmp::Ordering {
    a.sent_us.cmp(&b.sent_us).then_with(|| a.key.cmp(&b.key))
}

/// The arrows of `browser` and `server` at clock `offset`, unsorted. What a message becomes
/// depends only on the messages with its request id (and on none when it has none), so this
/// gives, for any set of whole request-id groups, exactly their part of the whole trace's merge:
/// [`Merger`] redoes only the groups a new record joins.
fn merge_part(browser: &[&Message], server: &[&Message], offset: i64) -> Vec<Drawn> {
    let to_browser = |us: i64| us - offset;
    let server_idx = index(server);
    let browser_idx = index(browser);
    let arrival = |rid: &RequestId| {
        server_idx
            .get(&(rid, Kind::Request))
            .and_then(|r| r.recv_us)
            .map(to_browser)
    };
    let mut out = Vec::new();

    for b in browser {
        let mut d = drawn(b, format!("b{}", b.seq));
        let Some(rid) = &b.request_id else {
            out.push(d);
            continue;
        };
        let Some(s) = server_idx.get(&(rid, b.kind)).copied() else {
            out.push(d);
            continue;
        };
        d.connection = s.connection.or(d.connection);
        match b.kind {
            Kind::Request => {
                d.recv_us = s.recv_us.map(to_browser).map(|r| r.max(d.sent_us));
                d.transport = s.transport;
                d.bytes = s.bytes.or(d.bytes);
                if let Some(sd) = &s.detail {
                    // The server saw every header the browser really sent; the browser knows the body.
                    d.detail.start_line = sd.start_line.clone();
                    d.detail.headers = sd.headers.clone();
                    d.detail.headers_truncated = sd.headers_truncated;
                    d.detail.headers_bytes = sd.headers_bytes;
                }
            }
            Kind::Response => {
                let floor = arrival(rid).unwrap_or(i64::MIN);
                let ceiling = d.recv_us.unwrap_or(i64::MAX);
                if let Some(sent) = s.sent_us.map(to_browser) {
                    d.sent_us = sent.max(floor).min(ceiling);
                }
                d.bytes = d.bytes.or(s.bytes);
                d.server_phases = mapped_phases(s.detail.as_ref(), to_browser);
            }
            _ => {
                // A pushed event or a frame: each observer saw one end of it.
                if b.sent_us.is_none()
                    && let Some(sent) = s.sent_us.map(to_browser)
                {
                    d.sent_us = sent.min(d.recv_us.unwrap_or(i64::MAX));
                }
                if b.recv_us.is_none() {
                    d.recv_us = s.recv_us.map(to_browser).map(|r| r.max(d.sent_us));
                }
                d.bytes = d.bytes.or(s.bytes);
                if d.detail.body.is_empty()
                    && let Some(sd) = &s.detail
                {
                    d.detail.body = sd.body.clone();
                    d.detail.body_bytes = sd.body_bytes;
                    d.detail.body_truncated = sd.body_truncated;
                }
            }
        }
        out.push(d);
    }

    // Everything the server saw that the browser has no half of: a response or event still on
    // its way, or hops inside the server.
    for s in server {
        if s.request_id
            .as_ref()
            .is_some_and(|rid| browser_idx.contains_key(&(rid, s.kind)))
        {
            continue;
        }
        let mut d = drawn(s, format!("s{}", s.seq));
        d.sent_us = s.sent_us.or(s.recv_us).map(to_browser).unwrap_or(0);
        // Known only if the server saw both ends (a hop inside it, a ping and its pong);
        // otherwise it is still on its way to the page.
        d.recv_us = s.recv_us.map(to_browser);
        if s.kind == Kind::Response {
            // Its arrow must not start before the request it answers arrived.
            if let Some(floor) = s.request_id.as_ref().and_then(arrival) {
                d.sent_us = d.sent_us.max(floor);
            }
            d.server_phases = mapped_phases(s.detail.as_ref(), to_browser);
        }
        out.push(d);
    }

    // A browser request the server never reported (refused before it was traced) ends where its
    // response began, so it is not drawn as in flight forever.
    let response_start: HashMap<RequestId, i64> = out
        .iter()
        .filter(|d| d.kind == Kind::Response)
        .filter_map(|d| Some((d.request_id.clone()?, d.sent_us)))
        .collect();
    for d in out
        .iter_mut()
        .filter(|d| d.kind == Kind::Request && d.recv_us.is_none())
    {
        if let Some(rid) = &d.request_id
            && let Some(&start) = response_start.get(rid)
        {
            d.recv_us = Some(start.max(d.sent_us));
        }
    }

    // Causality on screen: an answer never leaves before its request arrived, whatever the
    // clock estimate says.
    let request_end: HashMap<RequestId, i64> = out
        .iter()
        .filter(|d| d.kind == Kind::Request)
        .filter_map(|d| Some((d.request_id.clone()?, d.recv_us.unwrap_or(d.sent_us))))
        .collect();
    for d in out.iter_mut().filter(|d| d.kind == Kind::Response) {
        if let Some(&floor) = d.request_id.as_ref().and_then(|rid| request_end.get(rid))
            && d.sent_us < floor
        {
            d.sent_us = floor;
            if let Some(recv) = d.recv_us {
                d.recv_us = Some(recv.max(floor));
            }
        }
    }

    out
}

/// The merged trace kept up to date as records arrive, redoing only what each new record changes.
///
/// During a run records are only appended. A new record changes the arrows of its own request
/// id (see [`merge_part`]), or adds one arrow when it has none, unless it gives a better clock
/// sample: that moves every arrow, so the whole trace is merged again (as it is the first time,
/// after [`Merger::restart`], and when a new hint changes the offset). Either way `update` leaves
/// exactly what [`merge`] gives for the same records (unit-tested), at a cost that depends on the
/// new records, not on the length of the trace, for all but the whole merges.
#[derive(Debug, Default)]
pub struct Merger {
    /// How many browser and server records are merged in.
    merged: (usize, usize),
    /// The clock offset the trace is drawn with; `None` until the first merge.
    offset: Option<i64>,
    /// The best clock sample so far: (round trip, index of its browser request, offset). Ties
    /// go to the earlier request, as in [`clock_offset`].
    best: Option<(i64, usize, i64)>,
    /// Every request id's records and where its arrows are in the trace.
    groups: HashMap<RequestId, Group>,
}

/// The records that carry one request id, and the arrows they make.
#[derive(Debug, Default)]
struct Group {
    /// Indices into the browser's and the server's records.
    browser: Vec<usize>,
    server: Vec<usize>,
    /// Each of its arrows by its place in the sorted trace: (send time, key).
    drawn: Vec<(i64, String)>,
}

impl Merger {
    /// Forgets what was merged: the next update merges the records from scratch (a new run, a
    /// reset, an import).
    pub fn restart(&mut self) {
        *self = Merger::default();
    }

    /// The clock offset the trace is drawn with (see [`clock_offset`]).
    pub fn offset(&self) -> i64 {
        self.offset.unwrap_or(0)
    }

    /// Brings `trace` (what this merger left there last time) up to date with `browser` and
    /// `server`, which may only have grown since (unless restarted). Returns whether `trace`
    /// changed.
    pub fn update(
        &mut self,
        trace: &mut Vec<Drawn>,
        browser: &[Message],
        server: &[Message],
        hint: Option<i64>,
    ) -> bool {
        if browser.len() < self.merged.0 || server.len() < self.merged.1 {
            self.restart();
        }
        let (from_browser, from_server) = self.merged;
        self.merged = (browser.len(), server.len());
        let mut touched: HashSet<RequestId> = HashSet::new();
        let (mut loose_browser, mut loose_server) = (Vec::new(), Vec::new());
        for (i, m) in browser.iter().enumerate().skip(from_browser) {
            match &m.request_id {
                Some(rid) => {
                    self.groups.entry(rid.clone()).or_default().browser.push(i);
                    touched.insert(rid.clone());
                }
                None => loose_browser.push(&browser[i]),
            }
        }
        for (i, m) in server.iter().enumerate().skip(from_server) {
            match &m.request_id {
                Some(rid) => {
                    self.groups.entry(rid.clone()).or_default().server.push(i);
                    touched.insert(rid.clone());
                }
                None => loose_server.push(&server[i]),
            }
        }
        // A sample needs both halves on both sides, all of one request id: only the touched
        // groups can have new ones.
        for rid in &touched {
            let g = &self.groups[rid];
            let browser_idx = index(&pick(browser, &g.browser));
            let server_idx = index(&pick(server, &g.server));
            for &i in &g.browser {
                if let Some((round_trip, offset)) = sample(&browser[i], &browser_idx, &server_idx)
                    && self
                        .best
                        .is_none_or(|(rt, at, _)| (round_trip, i) < (rt, at))
                {
                    self.best = Some((round_trip, i, offset));
                }
            }
        }
        let offset = self.best.map(|(_, _, offset)| offset).or(hint).unwrap_or(0);
        if self.offset != Some(offset) {
            self.offset = Some(offset);
            *trace = merge_part(&refs(browser), &refs(server), offset);
            trace.sort_by(order);
            for g in self.groups.values_mut() {
                g.drawn.clear();
            }
            for d in trace.iter() {
                if let Some(g) = d.request_id.as_ref().and_then(|r| self.groups.get_mut(r)) {
                    g.drawn.push((d.sent_us, d.key.clone()));
                }
            }
            return true;
        }
        if touched.is_empty() && loose_browser.is_empty() && loose_server.is_empty() {
            return false;
        }
        for rid in &touched {
            let Some(g) = self.groups.get_mut(rid) else {
                continue;
            };
            for (sent_us, key) in g.drawn.drain(..) {
                if let Ok(at) = trace
                    .binary_search_by(|d| (d.sent_us, d.key.as_str()).cmp(&(sent_us, key.as_str())))
                {
                    trace.remove(at);
                }
            }
            let redrawn = merge_part(&pick(browser, &g.browser), &pick(server, &g.server), offset);
            for d in redrawn {
                g.drawn.push((d.sent_us, d.key.clone()));
                insert_sorted(trace, d);
            }
        }
        for d in merge_part(&loose_browser, &loose_server, offset) {
            insert_sorted(trace, d);
        }
        true
    }
}

fn refs(messages: &[Message]) -> Vec<&Message> {
    messages.iter().collect()
}

/// The messages at `indices`.
fn pick<'a>(messages: &'a [Message], indices: &[usize]) -> Vec<&'a Message> {
    indices.iter().map(|&i| &messages[i]).collect()
}

/// Puts `d` at its place in the sorted `trace` (after any equal one, as a stable sort would).
fn insert_sorted(trace: &mut Vec<Drawn>, d: Drawn) {
    let at = trace.partition_point(|x| order(x, &d) != std::cmp::Ordering::Greater);
    trace.insert(at, d);
}

fn drawn(m: &Message, key: String) -> Drawn {
    Drawn {
        key,
        request_id: m.request_id.clone(),
        from: m.from.clone(),
        to: m.to.clone(),
        kind: m.kind,
        transport: m.transport,
        sent_us: m.sent_us.or(m.recv_us).unwrap_or(0),
        recv_us: m.recv_us,
        label: m.label.clone(),
        bytes: m.bytes,
        status: m.status,
        connection: m.connection,
        stream: m.stream,
        detail: m.detail.clone().unwrap_or_default(),
        server_phases: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::phases::{STALLED, WAITING};
    use protocol::trace::Observer;
    use protocol::trace::RunId;

    pub fn message(
        observer: Observer,
        kind: Kind,
        rid: &str,
        sent: Option<i64>,
        recv: Option<i64>,
    ) -> Message {
        let (from, to) = match kind {
            Kind::Response => (Actor::server(), Actor::browser()),
            _ => (Actor::browser(), Actor::server()),
        };
        Message {
            run: RunId("r".into()),
            seq: 0,
            observer,
            request_id: Some(RequestId(rid.into())),
            from,
            to,
            kind,
            transport: Transport::Http1,
            sent_us: sent,
            recv_us: recv,
            connection: None,
            stream: None,
            label: format!("{kind:?} {rid}"),
            bytes: None,
            status: None,
            detail: None,
        }
    }

    /// One exchange: browser sends at `t0`, server (clock ahead by `skew`) receives 1 ms later,
    /// works `work` µs, the answer takes 1 ms back.
    pub fn exchange(rid: &str, t0: i64, work: i64, skew: i64) -> (Vec<Message>, Vec<Message>) {
        let t1 = t0 + 1_000;
        let t2 = t1 + work;
        let t3 = t2 + 1_000;
        (
            vec![
                message(Observer::Browser, Kind::Request, rid, Some(t0), None),
                message(Observer::Browser, Kind::Response, rid, None, Some(t3)),
            ],
            vec![
                message(Observer::Server, Kind::Request, rid, None, Some(t1 + skew)),
                message(Observer::Server, Kind::Response, rid, Some(t2 + skew), None),
            ],
        )
    }

    #[test]
    fn offset_comes_from_the_pair_with_the_lowest_round_trip() {
        let (b, s) = exchange("1", 0, 50_000, 7_000_000);
        assert_eq!(clock_offset(&b, &s, Some(123)), 7_000_000);
        assert_eq!(clock_offset(&[], &[], Some(123)), 123);
        assert_eq!(clock_offset(&[], &[], None), 0);
    }

    #[test]
    fn a_wait_for_a_connection_does_not_skew_the_offset() {
        // Asked for at 0, the request waited 20 ms for a connection and went out at 20 ms.
        let (mut b, s) = exchange("1", 20_000, 50_000, 7_000_000);
        b[0].sent_us = Some(0);
        b[1].detail = Some(Detail {
            phases: vec![
                Phase {
                    name: STALLED.into(),
                    start_us: 0,
                    dur_us: 20_000,
                },
                Phase {
                    name: WAITING.into(),
                    start_us: 20_000,
                    dur_us: 52_000,
                },
            ],
            ..Detail::default()
        });
        assert_eq!(clock_offset(&b, &s, None), 7_000_000);
        // Without the phases, half the wait shows in the estimate.
        b[1].detail = None;
        assert_eq!(clock_offset(&b, &s, None), 7_010_000);
    }

    #[test]
    fn pairs_merge_into_two_arrows_on_the_browser_clock() {
        let (b, s) = exchange("1", 10_000, 50_000, -3_000_000);
        let drawn = merge(&b, &s, None);
        assert_eq!(drawn.len(), 2);
        assert_eq!(
            (drawn[0].kind, drawn[0].sent_us, drawn[0].recv_us),
            (Kind::Request, 10_000, Some(11_000))
        );
        assert_eq!(
            (drawn[1].kind, drawn[1].sent_us, drawn[1].recv_us),
            (Kind::Response, 61_000, Some(62_000))
        );
    }

    #[test]
    fn causality_holds_even_with_a_bad_clock_guess() {
        // Only the server's arrival is known so far, and the hint is off by a second.
        let (b, s) = exchange("1", 10_000, 50_000, 0);
        let drawn = merge(&b[..1], &s[..1], Some(1_000_000));
        assert_eq!(drawn.len(), 1);
        assert!(drawn[0].recv_us.unwrap() >= drawn[0].sent_us);
    }

    #[test]
    fn a_response_never_leaves_before_its_request_arrived() {
        // A bad clock guess would put the server's answer before the browser even asked.
        let (b, s) = exchange("1", 500_000, 1_000, 0);
        let drawn = merge(&b[..1], &s, Some(-2_000_000));
        let request = drawn.iter().find(|d| d.kind == Kind::Request).unwrap();
        let response = drawn.iter().find(|d| d.kind == Kind::Response).unwrap();
        assert!(response.sent_us >= request.recv_us.unwrap());
        assert!(request.recv_us.unwrap() >= request.sent_us);
    }

    #[test]
    fn server_response_without_browser_half_is_in_flight() {
        let (b, s) = exchange("1", 0, 50_000, 0);
        let drawn = merge(&b[..1], &s, None);
        assert_eq!(drawn.len(), 2);
        let resp = &drawn[1];
        assert_eq!(resp.kind, Kind::Response);
        assert_eq!(resp.recv_us, None, "still on its way to the browser");
        assert!(resp.sent_us >= drawn[0].recv_us.unwrap());
    }

    #[test]
    fn a_pushed_event_is_drawn_from_its_server_send_to_its_browser_arrival() {
        let mut server_event =
            message(Observer::Server, Kind::Event, "1-e1", Some(5_000_000), None);
        server_event.from = Actor::server();
        server_event.to = Actor::browser();
        server_event.bytes = Some(120);
        // Before the browser has it: in flight.
        let drawn = merge(&[], std::slice::from_ref(&server_event), Some(4_000_000));
        assert_eq!((drawn[0].sent_us, drawn[0].recv_us), (1_000_000, None));
        // Once it has: one arrow, server send → browser arrival, sizes from the server.
        let mut browser_event = message(
            Observer::Browser,
            Kind::Event,
            "1-e1",
            None,
            Some(1_002_000),
        );
        browser_event.from = Actor::server();
        browser_event.to = Actor::browser();
        let drawn = merge(&[browser_event], &[server_event], Some(4_000_000));
        assert_eq!(drawn.len(), 1);
        assert_eq!(
            (drawn[0].sent_us, drawn[0].recv_us, drawn[0].bytes),
            (1_000_000, Some(1_002_000), Some(120))
        );
    }

    #[test]
    fn a_frame_from_the_client_ends_where_the_server_received_it() {
        let mut sent = message(Observer::Browser, Kind::Push, "3-c1", Some(10_000), None);
        sent.from = Actor::new("client-1");
        let mut got = message(Observer::Server, Kind::Push, "3-c1", None, Some(2_012_000));
        got.from = Actor::new("client-1");
        let drawn = merge(&[sent], &[got], Some(2_000_000));
        assert_eq!(drawn.len(), 1);
        assert_eq!((drawn[0].sent_us, drawn[0].recv_us), (10_000, Some(12_000)));
    }

    #[test]
    fn a_ping_the_server_saw_answered_is_not_in_flight() {
        let mut ping = message(
            Observer::Server,
            Kind::Push,
            "2-p1",
            Some(1_000),
            Some(1_100),
        );
        ping.from = Actor::server();
        ping.to = Actor::browser();
        let drawn = merge(&[], &[ping], Some(0));
        assert_eq!(drawn[0].recv_us, Some(1_100));
    }

    #[test]
    fn internal_hops_are_drawn_whole() {
        let mut hop = message(
            Observer::Server,
            Kind::Event,
            "1-s1",
            Some(2_000),
            Some(2_000),
        );
        hop.from = Actor::new("worker");
        hop.to = Actor::server();
        let drawn = merge(&[], &[hop], Some(0));
        assert_eq!((drawn[0].sent_us, drawn[0].recv_us), (2_000, Some(2_000)));
    }

    /// A run's records in the order they could arrive: exchanges (some answered slowly, so a
    /// later one has the best clock sample), pushed events seen first by the server, then the
    /// browser, and notes without a request id, interleaved by a fixed pseudo-random sequence.
    fn arrivals() -> Vec<Message> {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut out = Vec::new();
        let mut t = 0;
        for i in 0..60 {
            t += 7_000 + next(20_000) as i64;
            match next(4) {
                0 | 1 => {
                    // Later exchanges answer faster: better samples keep arriving.
                    let work = 90_000 - i * 1_000 + next(5_000) as i64;
                    let (b, s) = exchange(&format!("x{i}"), t, work, 3_000_000);
                    out.extend(b.into_iter().chain(s));
                }
                2 => {
                    let rid = format!("x{}-e{i}", next(i as u64 + 1));
                    let mut s = message(
                        Observer::Server,
                        Kind::Event,
                        &rid,
                        Some(t + 3_000_000),
                        None,
                    );
                    s.from = Actor::server();
                    s.to = Actor::browser();
                    s.bytes = Some(10 + i as u64);
                    let mut b =
                        message(Observer::Browser, Kind::Event, &rid, None, Some(t + 2_000));
                    b.from = Actor::server();
                    b.to = Actor::browser();
                    out.extend([s, b]);
                }
                _ => {
                    let mut note = message(Observer::Browser, Kind::Note, "", Some(t), Some(t));
                    note.request_id = None;
                    out.push(note);
                }
            }
        }
        // Shuffle a little: neighbours swap, as two sockets' deliveries would.
        for i in 1..out.len() {
            if next(3) == 0 {
                out.swap(i - 1, i);
            }
        }
        out
    }

    #[test]
    fn the_incremental_merge_gives_the_whole_merge_after_every_record() {
        let (mut browser, mut server) = (Vec::new(), Vec::new());
        let mut merger = Merger::default();
        let mut trace = Vec::new();
        for (step, mut m) in arrivals().into_iter().enumerate() {
            match m.observer {
                Observer::Browser => {
                    m.seq = browser.len() as u64;
                    browser.push(m);
                }
                Observer::Server => {
                    m.seq = server.len() as u64 + 1_000;
                    server.push(m);
                }
            }
            // The trace socket's first guess arrives part way through.
            let hint = (step > 5).then_some(2_990_000);
            merger.update(&mut trace, &browser, &server, hint);
            assert_eq!(trace, merge(&browser, &server, hint), "after record {step}");
            assert_eq!(merger.offset(), clock_offset(&browser, &server, hint));
        }
        assert!(trace.len() > 60);
        // Nothing new: nothing changes.
        assert!(!merger.update(&mut trace, &browser, &server, Some(2_990_000)));
        // A new run: the records are replaced.
        merger.restart();
        let (b, s) = exchange("1", 0, 1_000, 0);
        assert!(merger.update(&mut trace, &b, &s, None));
        assert_eq!(trace, merge(&b, &s, None));
    }
}
