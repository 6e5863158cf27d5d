//! The multiplexing demo's wire types: the proxy's report on forwarding N items over one HTTP/2
//! connection or a pool of HTTP/1.1 connections, and the slow endpoint's answer that says how
//! many of the run's requests the server had in flight at once.

use serde::{Deserialize, Serialize};

/// Most items one proxy run may forward.
pub const MAX_ITEMS: u32 = 64;
/// Largest HTTP/1.1 pool the proxy may open.
pub const MAX_POOL: u32 = 16;
/// Longest time the upstream may take per item.
pub const MAX_ITEM_MS: u32 = 5_000;
/// Longest a slow request from the page may be held.
pub const MAX_SLOW_MS: u32 = 10_000;

/// How the proxy talks to the upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// One HTTP/2 connection (h2c, prior knowledge); every item is a stream of it.
    H2,
    /// A pool of HTTP/1.1 connections; each carries one item at a time.
    H1,
}

impl Via {
    pub fn parse(s: &str) -> Option<Via> {
        match s {
            "h2" => Some(Via::H2),
            "h1" => Some(Via::H1),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Via::H2 => "h2",
            Via::H1 => "h1",
        }
    }
}

/// One item as it travelled from the proxy to the upstream and back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForwardedItem {
    pub item: u32,
    /// The connection lane it used (`conn-1`…).
    pub lane: String,
    /// The connection's id: the proxy's local port, which the upstream sees as the peer port.
    pub connection: u64,
    /// The HTTP/2 stream id (odd, increasing), for `Via::H2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
    /// How long it waited for a free connection (ms).
    pub waited_ms: f64,
    /// From handing the request to the connection to having the whole answer (ms).
    pub round_trip_ms: f64,
}

/// The answer to `GET /api/mux/proxy`: what the proxy did and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProxyReport {
    pub via: Via,
    pub items: u32,
    /// Connections the proxy opened to the upstream for this run.
    pub connections_opened: u32,
    /// Distinct connections the upstream saw this run's items arrive on.
    pub upstream_connections: u32,
    /// Most items in flight to the upstream at once.
    pub max_concurrent: u32,
    /// From the first connect to the last answer (ms).
    pub total_ms: f64,
    pub forwarded: Vec<ForwardedItem>,
}

/// The answer to `GET /api/mux/slow`: one held request, and how many of its run's requests the
/// server was holding at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SlowAnswer {
    /// The run's requests in flight at the server when this one arrived (itself included).
    pub in_flight_at_arrival: u32,
    /// The most of the run's requests in flight at the server at once, so far.
    pub max_in_flight: u32,
    /// The HTTP version the server saw: `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    pub held_ms: u32,
}

/// The upstream's answer to one forwarded item: which item, on which connection and stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamAnswer {
    pub item: u32,
    pub connection: u64,
    pub stream: Option<u64>,
}
