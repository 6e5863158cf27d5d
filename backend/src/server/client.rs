//! Who a request comes from: the [`ClientId`] every per-client limit counts against. It is the
//! TCP peer, except when the peer is a trusted reverse proxy (`--trusted-proxy`): then it is the
//! rightmost address of `X-Forwarded-For` that is not a trusted proxy itself (the addresses to
//! its left were written by the client and prove nothing).
//!
//! Behind a proxy, the connections the server sees are the proxy's, not its clients': the
//! per-client connection cap is not applied to a trusted proxy at accept (the total is still
//! counted), and the per-client limits apply per request, to the forwarded client.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    str::FromStr,
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
};

use super::origin::RequestedHost;

/// A client as the per-client limits count it: an IPv4 address, or an IPv6 /64 (one host
/// usually holds a whole /64, so counting single IPv6 addresses would let it take 2^64 shares).
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, a listener on `[::]`) is its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClientId(IpAddr);

impl ClientId {
    pub fn of(ip: IpAddr) -> ClientId {
        match ip {
            IpAddr::V4(_) => ClientId(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientId(IpAddr::V4(v4)),
                None => ClientId(IpAddr::V6(Ipv6Addr::from(
                    u128::from(v6) & !(u128::from(u64::MAX)),
                ))),
            },
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// An IPv4 or IPv6 network, as `--trusted-proxy` takes it: `10.0.0.0/8`, `fd00::/8`, or a bare
/// address (a network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network's address, host bits cleared.
    network: IpAddr,
    /// Leading bits that must match: at most 32 (IPv4) or 128 (IPv6).
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & v4_mask(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & v6_mask(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn v4_mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn v6_mask(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or CIDR (10.0.0.0/8, fd00::/8)"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {bits}"))?,
        };
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & v4_mask(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & v6_mask(prefix)).into()),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-*` headers are believed. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[Cidr]>);

impl TrustedProxies {
    pub fn new(networks: &[Cidr]) -> TrustedProxies {
        TrustedProxies(networks.into())
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client a request from `peer` with these headers comes from: `peer` itself unless it
    /// is trusted; then the rightmost `X-Forwarded-For` hop that is not trusted (walking from
    /// the right, as each proxy appends the address it saw), the leftmost if all are trusted,
    /// and `peer` when the header is missing or a hop on the way is not an address.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> ClientId {
        ClientId::of(self.forwarded_for(peer, headers).unwrap_or(peer))
    }

    fn forwarded_for(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.trusts(peer) {
            return None;
        }
        // Several header lines are one list, in order (RFC 9110, 5.3).
        let lines = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|line| line.to_str().ok())
            .collect::<Option<Vec<_>>>()?;
        let mut leftmost = None;
        for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let hop = parse_hop(hop.trim())?;
            if !self.trusts(hop) {
                return Some(hop);
            }
            leftmost = Some(hop);
        }
        leftmost
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
}

/// Middleware: works out once per request who the client is ([`ClientId`], absent for a
/// request without a peer address, as `oneshot` tests send) and which host it addressed
/// ([`RequestedHost`], forwarded only from a trusted proxy), and keeps both in the request's
/// extensions for the limits, the `Origin` checks and the cross-site check.
///
/// A request mapper, not a wrapping middleware: its future is done before the handler runs, so
/// a held request (a parked long poll) keeps none of its state.
pub async fn identify(State(proxies): State<TrustedProxies>, mut request: Request) -> Request {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let forwarded = peer.is_some_and(|peer| proxies.trusts(peer));
    let host = RequestedHost::of(request.headers(), request.uri(), forwarded);
    if let Some(peer) = peer {
        let client = proxies.client_of(peer, request.headers());
        request.extensions_mut().insert(client);
    }
    request.extensions_mut().insert(host);
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        let nets: Vec<Cidr> = nets.iter().map(|n| n.parse().unwrap()).collect();
        TrustedProxies::new(&nets)
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    fn client(proxies: &TrustedProxies, peer: &str, lines: &[&str]) -> ClientId {
        proxies.client_of(ip(peer), &xff(lines))
    }

    #[test]
    fn cidrs_parse_and_match_v4_v6_and_v4_mapped() {
        let lan: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(lan.to_string(), "10.0.0.0/8", "host bits cleared");
        assert!(lan.contains(ip("10.200.0.1")));
        assert!(lan.contains(ip("::ffff:10.0.0.1")), "v4-mapped is v4");
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(!lan.contains(ip("::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nginx",
            "10.0.0.0/",
            "10.0.0/8",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let none = proxies(&[]);
        assert_eq!(
            client(&none, "10.0.0.9", &["203.0.113.7"]),
            ClientId::of(ip("10.0.0.9"))
        );
        let lan = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client(&lan, "192.0.2.1", &["203.0.113.7"]),
            ClientId::of(ip("192.0.2.1")),
            "an untrusted peer's X-Forwarded-For is ignored"
        );
        assert_eq!(
            client(&lan, "10.0.0.9", &["203.0.113.7"]),
            ClientId::of(ip("203.0.113.7"))
        );
        assert_eq!(
            client(&lan, "10.0.0.9", &[]),
            ClientId::of(ip("10.0.0.9")),
            "no header: the proxy itself"
        );
    }

    #[test]
    fn the_walk_skips_trusted_hops_and_ignores_what_the_client_wrote() {
        let lan = proxies(&["10.0.0.0/8", "fd00::/8"]);
        // The client wrote "1.1.1.1, 10.9.9.9"; the first proxy appended the client's real
        // address, the second proxy its predecessor's.
        let chain = ["1.1.1.1, 10.9.9.9, 203.0.113.7, 10.0.0.2"];
        assert_eq!(
            client(&lan, "10.0.0.1", &chain),
            ClientId::of(ip("203.0.113.7"))
        );
        // Split over several header lines, in order.
        let lines = ["1.1.1.1", "10.9.9.9, 203.0.113.7", "fd00::2"];
        assert_eq!(
            client(&lan, "10.0.0.1", &lines),
            ClientId::of(ip("203.0.113.7"))
        );
        // Every hop trusted: the leftmost.
        let all = ["10.5.5.5, 10.0.0.2"];
        assert_eq!(client(&lan, "10.0.0.1", &all), ClientId::of(ip("10.5.5.5")));
        // Ports are allowed.
        let ports = ["[2001:db8::1]:443, 10.0.0.2:80"];
        assert_eq!(
            client(&lan, "10.0.0.1", &ports),
            ClientId::of(ip("2001:db8::1"))
        );
    }

    #[test]
    fn garbage_on_the_trusted_side_falls_back_to_the_peer() {
        let lan = proxies(&["10.0.0.0/8"]);
        let peer = ClientId::of(ip("10.0.0.1"));
        for garbage in [
            "unknown",
            "",
            "203.0.113.7, , 10.0.0.2",
            "203.0.113.7, nope",
        ] {
            assert_eq!(client(&lan, "10.0.0.1", &[garbage]), peer, "{garbage:?}");
        }
        // Garbage left of the first untrusted hop is the client's own writing: ignored.
        let spoofed = ["<script>, 203.0.113.7"];
        assert_eq!(
            client(&lan, "10.0.0.1", &spoofed),
            ClientId::of(ip("203.0.113.7"))
        );
        let mut latin1 = HeaderMap::new();
        latin1.insert("x-forwarded-for", HeaderValue::from_bytes(b"\xe9").unwrap());
        assert_eq!(lan.client_of(ip("10.0.0.1"), &latin1), peer);
    }

    #[test]
    fn ipv6_clients_count_per_64_and_v4_mapped_as_v4() {
        let a = ClientId::of(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientId::of(ip("2001:db8:1:2:ffff:1:2:3"));
        let other = ClientId::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b, "one /64");
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientId::of(ip("::ffff:192.0.2.1")),
            ClientId::of(ip("192.0.2.1"))
        );
        let lan = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            client(&lan, "::ffff:127.0.0.1", &["2001:db8:1:2::99"]),
            a,
            "a v4-mapped proxy is trusted; its client counted per /64"
        );
    }
}
