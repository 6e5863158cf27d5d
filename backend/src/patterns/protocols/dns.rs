//! The DNS lane: an authoritative DNS server for [`ZONE`] inside the process (hickory-server
//! on a loopback UDP port), asked by a real resolver (hickory-resolver) through a relay of
//! this lookup's own ([`DnsRelay`]) that records every datagram whole and, when asked, drops
//! the first query so the resolver's timeout and retry show.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{
        LowerName, Name, RData, Record, RecordType as DnsType,
        rdata::{A, AAAA, SOA, TXT},
    },
    xfer::Protocol,
};
use hickory_resolver::{
    Resolver,
    config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts},
    name_server::TokioConnectionProvider,
};
use hickory_server::{
    ServerFuture,
    authority::{Catalog, ZoneType},
    store::in_memory::InMemoryAuthority,
};
use protocol::{
    pairing,
    protocols::{Datagram, Direction, DnsLane, RecordType, ZONE},
    trace::{Detail, Header, Kind, Transport},
};
use tokio::net::UdpSocket;

use crate::trace::{Hop, HopTime, Tracer};

/// How long the resolver waits for an answer before it asks again.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);
/// Queries the resolver sends for one lookup at most (the first and its retries).
pub const ATTEMPTS: usize = 3;
/// The whole DNS lane gives up after this, whatever the resolver does.
pub const LANE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest datagram the relay takes (EDNS allows up to 4096 bytes; the zone's answers are small).
const MAX_DATAGRAM: usize = 4096;
/// Datagrams one lookup's relay passes on at most; a resolver gone wrong cannot loop it longer.
const MAX_DATAGRAMS: usize = 16;

/// One service of the zone: its address records and a line of text about it.
struct Service {
    name: &'static str,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    txt: &'static str,
}

/// The zone's services (the same ones the SQL table lists, [`protocol::protocols::SERVICES`]).
const SERVICES: [Service; 4] = [
    Service {
        name: "www",
        v4: Ipv4Addr::new(192, 0, 2, 10),
        v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10),
        txt: "the front door: serves the pages",
    },
    Service {
        name: "api",
        v4: Ipv4Addr::new(192, 0, 2, 11),
        v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11),
        txt: "the JSON API behind the pages",
    },
    Service {
        name: "db",
        v4: Ipv4Addr::new(192, 0, 2, 12),
        v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x12),
        txt: "PostgreSQL: orders and accounts",
    },
    Service {
        name: "queue",
        v4: Ipv4Addr::new(192, 0, 2, 13),
        v6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x13),
        txt: "the job queue the workers consume",
    },
];

/// The zone as an in-memory authority: its SOA, and A, AAAA and TXT records per service.
fn zone() -> Result<InMemoryAuthority, String> {
    let origin = Name::from_str(&format!("{ZONE}.")).map_err(|e| e.to_string())?;
    let name = |label: &str| {
        Name::from_str(label)
            .and_then(|n| n.append_domain(&origin))
            .map_err(|e| e.to_string())
    };
    let mut zone = InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false);
    let serial = 1;
    let soa = SOA::new(
        name("ns")?,
        name("hostmaster")?,
        serial,
        3600,
        600,
        86400,
        60,
    );
    zone.upsert_mut(
        Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)),
        serial,
    );
    for s in &SERVICES {
        let owner = name(s.name)?;
        for rdata in [
            RData::A(A(s.v4)),
            RData::AAAA(AAAA(s.v6)),
            RData::TXT(TXT::new(vec![s.txt.to_owned()])),
        ] {
            zone.upsert_mut(Record::from_rdata(owner.clone(), 60, rdata), serial);
        }
    }
    Ok(zone)
}

/// Starts the DNS server on a loopback UDP port, serving until `stopped` completes.
pub async fn start_server(
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr, String> {
    let zone = zone()?;
    let origin = Name::from_str(&format!("{ZONE}.")).map_err(|e| e.to_string())?;
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::from(&origin), vec![Arc::new(zone)]);
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("cannot bind the DNS server's UDP port: {e}"))?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    let mut server = ServerFuture::new(catalog);
    server.register_socket(socket);
    let token = server.shutdown_token().clone();
    tokio::spawn(async move {
        stopped.await;
        token.cancel();
    });
    tokio::spawn(async move {
        if let Err(e) = server.block_until_done().await {
            tracing::warn!(cause = %e, "the DNS server stopped");
        }
    });
    tracing::info!(%addr, zone = ZONE, "DNS server listening (UDP)");
    Ok(addr)
}

/// What one lookup's relay saw, in order, for the report.
#[derive(Default)]
struct Seen {
    datagrams: Vec<Datagram>,
    /// The hop id each query's DNS id was drawn with, so its answer pairs with it.
    hop_of: HashMap<u16, String>,
}

/// A UDP relay between the resolver and the DNS server, for one lookup: it records each
/// datagram as it passes (decoded, whole), and drops the first query when asked to.
struct DnsRelay {
    /// Where the resolver sends its queries.
    front: UdpSocket,
    /// Connected to the DNS server.
    back: UdpSocket,
    tracer: Tracer,
    drop_first: bool,
    seen: Arc<Mutex<Seen>>,
}

impl DnsRelay {
    async fn bind(
        server: SocketAddr,
        tracer: Tracer,
        drop_first: bool,
    ) -> std::io::Result<DnsRelay> {
        let front = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let back = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        back.connect(server).await?;
        Ok(DnsRelay {
            front,
            back,
            tracer,
            drop_first,
            seen: Arc::default(),
        })
    }

    /// Passes datagrams both ways until dropped (the lookup ended) or [`MAX_DATAGRAMS`].
    async fn run(&self) {
        let mut clients: HashMap<u16, SocketAddr> = HashMap::new();
        let (mut up, mut down) = (vec![0; MAX_DATAGRAM], vec![0; MAX_DATAGRAM]);
        let mut queries = 0usize;
        for _ in 0..MAX_DATAGRAMS {
            tokio::select! {
                got = self.front.recv_from(&mut up) => {
                    let Ok((n, from)) = got else { return };
                    queries += 1;
                    let dropped = self.drop_first && queries == 1;
                    let id = self.record(&up[..n], Direction::Request, dropped, queries);
                    if let Some(id) = id {
                        clients.insert(id, from);
                    }
                    if !dropped && self.back.send(&up[..n]).await.is_err() {
                        return;
                    }
                }
                got = self.back.recv(&mut down) => {
                    let Ok(n) = got else { return };
                    let id = self.record(&down[..n], Direction::Response, false, queries);
                    let to = id.and_then(|id| clients.get(&id).copied());
                    if let Some(to) = to {
                        let _ = self.front.send_to(&down[..n], to).await;
                    }
                }
            }
        }
    }

    /// Records one datagram (the `n`-th query, or an answer after it); its DNS id if it decodes.
    fn record(&self, wire: &[u8], direction: Direction, dropped: bool, n: usize) -> Option<u16> {
        let message = Message::from_vec(wire).ok();
        let id = message.as_ref().map(Message::id);
        let label = match &message {
            Some(m) => summary(m),
            None => format!("{} undecodable bytes", wire.len()),
        };
        let hop = {
            let mut seen = self.seen.lock().expect("relay log lock poisoned");
            seen.datagrams.push(Datagram {
                direction,
                id: id.unwrap_or(0),
                bytes: wire.len() as u64,
                dropped,
                label: label.clone(),
            });
            match (direction, id) {
                (Direction::Request, Some(id)) => {
                    let hop = format!("dns{n}");
                    seen.hop_of.insert(id, hop.clone());
                    hop
                }
                (_, Some(id)) => seen
                    .hop_of
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("dns-answer-{id}")),
                (_, None) => format!("dns-bad{n}"),
            }
        };
        let detail = message.as_ref().map(|m| detail(m, wire));
        self.tracer.record(|rid| {
            let drawn = if dropped {
                // Lost on the way: the DNS server never saw it, so no arrow reaches it.
                Hop::note("server", pairing::hop(rid, &format!("{hop}-lost"))).label(format!(
                    "UDP datagram lost: {label} (the DNS server never sees it; the resolver \
                     waits {} ms, then asks again)",
                    ATTEMPT_TIMEOUT.as_millis()
                ))
            } else {
                let (kind, from, to) = match direction {
                    Direction::Request => (Kind::Request, "server", "dns"),
                    Direction::Response => (Kind::Response, "dns", "server"),
                };
                Hop::new(kind, from, to, pairing::hop(rid, &hop)).label(label)
            };
            let drawn = drawn
                .transport(Transport::Udp)
                .at(HopTime::Whole)
                .bytes(wire.len() as u64);
            match detail {
                Some(d) => drawn.detail(d),
                None => drawn,
            }
        });
        id
    }
}

/// A datagram's text on its arrow: `query #1a2b A api.patternscope.test.` or
/// `answer #1a2b NOERROR 1 record`.
fn summary(m: &Message) -> String {
    let question = m
        .queries()
        .first()
        .map(|q| format!("{} {}", q.query_type(), q.name()))
        .unwrap_or_default();
    match m.message_type() {
        MessageType::Query => format!("query #{:04x} {question}", m.id()),
        MessageType::Response => {
            let n = m.answers().len();
            let records = if n == 1 { "record" } else { "records" };
            format!("answer #{:04x} {} {n} {records}", m.id(), rcode(m))
        }
    }
}

/// A response code by its mnemonic, as dig writes it: `NOERROR`, `NXDOMAIN`, `REFUSED`.
fn rcode(m: &Message) -> String {
    match m.response_code() {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// What the inspector shows of a datagram: the header's fields, the sections, and the bytes.
fn detail(m: &Message, wire: &[u8]) -> Detail {
    let h = m.header();
    let field = |name: &str, value: String| Header {
        name: name.to_owned(),
        value,
    };
    let headers = vec![
        field("id", format!("{} (0x{:04x})", m.id(), m.id())),
        field(
            "flags",
            format!(
                "{:?} opcode={:?} rd={} ra={} aa={} tc={}",
                h.message_type(),
                h.op_code(),
                h.recursion_desired(),
                h.recursion_available(),
                h.authoritative(),
                h.truncated()
            ),
        ),
        field("rcode", format!("{} ({})", rcode(m), m.response_code())),
        field(
            "counts",
            format!(
                "question {} · answer {} · authority {} · additional {}",
                m.queries().len(),
                m.answers().len(),
                m.name_servers().len(),
                m.additionals().len() + usize::from(m.extensions().is_some())
            ),
        ),
    ];
    let mut body = String::from(";; QUESTION SECTION\n");
    for q in m.queries() {
        body.push_str(&format!(
            "{} {} {}\n",
            q.name(),
            q.query_class(),
            q.query_type()
        ));
    }
    for (title, records) in [
        ("ANSWER", m.answers()),
        ("AUTHORITY", m.name_servers()),
        ("ADDITIONAL", m.additionals()),
    ] {
        if !records.is_empty() {
            body.push_str(&format!("\n;; {title} SECTION\n"));
            for r in records {
                body.push_str(&format!("{r}\n"));
            }
        }
    }
    if let Some(edns) = m.extensions() {
        body.push_str(&format!(
            "\n;; OPT (EDNS) max payload {} bytes\n",
            edns.max_payload()
        ));
    }
    body.push_str(&format!(
        "\n;; {} bytes on the wire\n{}",
        wire.len(),
        hex(wire)
    ));
    Detail {
        start_line: format!(
            "DNS {} id {} over UDP",
            match m.message_type() {
                MessageType::Query => "query",
                MessageType::Response => "response",
            },
            m.id()
        ),
        headers,
        body,
        body_bytes: wire.len() as u64,
        ..Detail::default()
    }
}

/// `bytes` as lines of 16 hex pairs.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Looks `label.ZONE` up (`record_type`) with a real resolver through a relay to the server at
/// `server`, recording each datagram with `tracer`.
pub async fn lookup(
    server: SocketAddr,
    label: &str,
    record_type: RecordType,
    drop_first: bool,
    tracer: Tracer,
) -> Result<DnsLane, String> {
    let name = format!("{label}.{ZONE}.");
    let relay = DnsRelay::bind(server, tracer, drop_first)
        .await
        .map_err(|e| format!("cannot open the relay's UDP ports: {e}"))?;
    let front = relay
        .front
        .local_addr()
        .map_err(|e| format!("relay address: {e}"))?;
    let mut config = ResolverConfig::new();
    let mut server_config = NameServerConfig::new(front, Protocol::Udp);
    server_config.trust_negative_responses = true;
    config.add_name_server(server_config);
    let mut opts = ResolverOpts::default();
    opts.timeout = ATTEMPT_TIMEOUT;
    opts.attempts = ATTEMPTS;
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.try_tcp_on_error = false;
    opts.num_concurrent_reqs = 1;
    opts.ndots = 0;
    let resolver = Resolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(opts)
        .build();
    let wanted = match record_type {
        RecordType::A => DnsType::A,
        RecordType::Aaaa => DnsType::AAAA,
        RecordType::Txt => DnsType::TXT,
    };
    let started = Instant::now();
    let asked = tokio::time::timeout(LANE_TIMEOUT, resolver.lookup(name.as_str(), wanted));
    let answer = tokio::select! {
        answer = asked => answer,
        _ = relay.run() => return Err("the DNS relay stopped".into()),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let seen = std::mem::take(&mut *relay.seen.lock().expect("relay log lock poisoned"));
    let last_code = seen
        .datagrams
        .iter()
        .rev()
        .find(|d| d.direction == Direction::Response)
        .and_then(|d| d.label.split(' ').nth(2).map(str::to_owned));
    let (answers, outcome) = match answer {
        Err(_) => (
            Vec::new(),
            format!("no answer within {} s", LANE_TIMEOUT.as_secs()),
        ),
        Ok(Ok(found)) => (
            found
                .record_iter()
                .filter(|r| r.record_type() == wanted)
                .map(|r| r.data().to_string())
                .collect(),
            last_code.unwrap_or_else(|| "NOERROR".into()),
        ),
        Ok(Err(e)) => (Vec::new(), last_code.unwrap_or_else(|| e.to_string())),
    };
    Ok(DnsLane {
        name,
        record_type,
        answers,
        outcome,
        datagrams: seen.datagrams,
        elapsed_ms,
    })
}

/// The address a service's A record holds, for tests.
#[cfg(test)]
pub fn address_of(label: &str) -> Option<std::net::IpAddr> {
    SERVICES
        .iter()
        .find(|s| s.name == label)
        .map(|s| std::net::IpAddr::V4(s.v4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::trace::{RequestId, RunId};

    use crate::trace::{TraceHub, TraceIds};

    fn traced(hub: &TraceHub) -> Tracer {
        Tracer::new(
            hub,
            Some(TraceIds {
                run: RunId("r".into()),
                request: RequestId("1".into()),
                connection: RequestId("1".into()),
            }),
        )
    }

    #[tokio::test]
    async fn the_resolver_gets_the_zones_answer_in_one_exchange() {
        let server = start_server(std::future::pending()).await.unwrap();
        let hub = TraceHub::default();
        let lane = lookup(server, "api", RecordType::A, false, traced(&hub))
            .await
            .unwrap();
        assert_eq!(lane.outcome, "NOERROR");
        assert_eq!(lane.answers, [address_of("api").unwrap().to_string()]);
        let d = &lane.datagrams;
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].direction, Direction::Request);
        assert_eq!(d[1].direction, Direction::Response);
        assert_eq!(d[0].id, d[1].id, "an answer carries its query's id");
        assert!(d[0].label.contains("A api.patternscope.test."), "{d:?}");
        let messages = hub.snapshot(&RunId("r".into())).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].request_id, messages[1].request_id);
        assert_eq!(messages[0].transport, Transport::Udp);
        let detail = messages[1].detail.as_ref().unwrap();
        assert!(detail.body.contains("ANSWER SECTION"), "{}", detail.body);
    }

    #[tokio::test]
    async fn a_dropped_query_is_asked_again_after_the_timeout() {
        let server = start_server(std::future::pending()).await.unwrap();
        let hub = TraceHub::default();
        let lane = lookup(server, "db", RecordType::Txt, true, traced(&hub))
            .await
            .unwrap();
        assert_eq!(
            lane.answers,
            ["\"PostgreSQL: orders and accounts\""
                .trim_matches('"')
                .to_owned()]
        );
        let d = &lane.datagrams;
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].dropped && !d[1].dropped);
        assert_eq!(d[1].id, d[2].id);
        assert!(lane.elapsed_ms >= ATTEMPT_TIMEOUT.as_millis() as f64);
        let kinds: Vec<Kind> = hub
            .snapshot(&RunId("r".into()))
            .unwrap()
            .iter()
            .map(|m| m.kind)
            .collect();
        assert_eq!(kinds, [Kind::Note, Kind::Request, Kind::Response]);
    }

    #[tokio::test]
    async fn a_name_outside_the_zone_is_a_real_nxdomain() {
        let server = start_server(std::future::pending()).await.unwrap();
        let lane = lookup(
            server,
            "nope",
            RecordType::A,
            false,
            Tracer::new(&TraceHub::default(), None),
        )
        .await
        .unwrap();
        assert_eq!(lane.outcome, "NXDOMAIN");
        assert!(lane.answers.is_empty());
        assert_eq!(lane.datagrams.len(), 2);
    }
}
