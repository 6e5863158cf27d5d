//! Merges the browser's and the server's records of a run into one trace on the browser's clock.
//!
//! Each exchange is seen twice: the browser knows when it sent a request and when the response
//! finished arriving; the server knows when the request arrived and when it answered. Pairing
//! them by request id gives NTP-style clock samples; the one with the lowest round trip sets the
//! offset (until one exists, the trace socket's `Clock` message gives a first guess). Mapped
//! times are then clamped so causality holds on screen: nothing arrives before it was sent.

use std::collections::HashMap;

use protocol::trace::{Actor, Detail, Kind, Message, Phase, RequestId, Transport};

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
/// `hint` (from the trace socket's `Clock` message).
pub fn clock_offset(browser: &[Message], server: &[Message], hint: Option<i64>) -> i64 {
    let server_idx = index(server);
    let mut best: Option<(i64, i64)> = None; // (round trip, offset)
    for breq in browser.iter().filter(|m| m.kind == Kind::Request) {
        let Some(rid) = &breq.request_id else {
            continue;
        };
        let bresp = browser
            .iter()
            .find(|m| m.kind == Kind::Response && m.request_id.as_ref() == Some(rid));
        let (Some(bresp), Some(sreq), Some(sresp)) = (
            bresp,
            server_idx.get(&(rid, Kind::Request)),
            server_idx.get(&(rid, Kind::Response)),
        ) else {
            continue;
        };
        let (Some(t0), Some(t1), Some(t2), Some(t3)) =
            (breq.sent_us, sreq.recv_us, sresp.sent_us, bresp.recv_us)
        else {
            continue;
        };
        let round_trip = (t3 - t0) - (t2 - t1);
        let offset = ((t1 - t0) + (t2 - t3)) / 2;
        if best.is_none_or(|(rt, _)| round_trip < rt) {
            best = Some((round_trip, offset));
        }
    }
    best.map(|(_, offset)| offset).or(hint).unwrap_or(0)
}

/// The first message of each (request id, kind): one exchange's halves, or one pushed event.
fn index(messages: &[Message]) -> HashMap<(&RequestId, Kind), &Message> {
    let mut map = HashMap::new();
    for m in messages {
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

/// The merged trace, sorted by send time.
pub fn merge(browser: &[Message], server: &[Message], hint: Option<i64>) -> Vec<Drawn> {
    let offset = clock_offset(browser, server, hint);
    let to_browser = |us: i64| us - offset;
    let server_idx = index(server);
    let browser_idx = index(browser);
    let arrival = |rid: &RequestId| {
        server_idx
            .get(&(rid, Kind::Request))
            .and_then(|r| r.recv_us)
            .map(to_browser)
    };
    let mut out = Vec::with_capacity(browser.len() + server.len());

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

    out.sort_by(|a, b| a.sent_us.cmp(&b.sent_us).then_with(|| a.key.cmp(&b.key)));
    out
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
}
