//! The request/response-beyond-HTTP demo's wire types: one lookup that asks a DNS server over
//! UDP and PostgreSQL over its wire protocol, and what the server saw of each exchange.

use serde::{Deserialize, Serialize};

/// The zone the demo's DNS server is authoritative for; every name looked up is under it.
pub const ZONE: &str = "patternscope.test";
/// The services the zone and the SQL table both describe (other names are real misses:
/// NXDOMAIN from DNS, no row from SQL).
pub const SERVICES: [&str; 4] = ["www", "api", "db", "queue"];
/// The one SQL statement the demo sends (parameterised: `$1` is the service name).
pub const SQL: &str = "SELECT name, port, owner, note FROM patternscope_services WHERE name = $1";
/// Longest DNS label the lookup accepts (RFC 1035).
pub const MAX_LABEL: usize = 63;

/// The DNS record type asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "TXT")]
    Txt,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Txt => "TXT",
        }
    }
}

/// Whether `name` is one DNS label the lookup accepts: 1 to 63 of `[a-z0-9-]`, not starting or
/// ending with `-`. Says what is wrong otherwise.
pub fn check_label(name: &str) -> Result<(), String> {
    let fits = !name.is_empty()
        && name.len() <= MAX_LABEL
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if fits {
        Ok(())
    } else {
        Err(format!(
            "name must be one DNS label: 1 to {MAX_LABEL} of a-z 0-9 -, not starting or ending \
             with -, got {:?}",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// Which way a datagram or a wire message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the server's client (the resolver, tokio-postgres) to the other server.
    Request,
    /// Back from the other server.
    Response,
}

/// One DNS datagram the server's resolver exchanged with the DNS server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Datagram {
    pub direction: Direction,
    /// The DNS message id (a query and its answer share it).
    pub id: u16,
    /// Its size on the wire (the UDP payload).
    pub bytes: u64,
    /// Dropped on the way (the demo's control), so the DNS server never saw it.
    pub dropped: bool,
    /// What the diagram writes on it, such as `query #1a2b A api.patternscope.test.`.
    pub label: String,
}

/// What the DNS lane did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DnsLane {
    /// The name asked for, fully qualified.
    pub name: String,
    pub record_type: RecordType,
    /// The answer's records as text (`127.0.0.11`, `"front door"`); empty when there is none.
    pub answers: Vec<String>,
    /// How the lookup ended: `NOERROR`, `NXDOMAIN`, or why there is no answer (a timeout).
    pub outcome: String,
    /// Every datagram in the order the relay saw them.
    pub datagrams: Vec<Datagram>,
    /// From the first query to the end of the lookup.
    pub elapsed_ms: f64,
}

/// One PostgreSQL wire-protocol message (or a run of the same one) as it crossed the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WireMessage {
    pub direction: Direction,
    /// The protocol's name for it: `Parse`, `BindComplete`, `DataRow`, `StartupMessage`.
    pub name: String,
    /// How many such messages came together in one read (drawn as one arrow, `ParameterStatus
    /// ×13`); 1 for most.
    pub count: u32,
    /// Its size on the wire (all of them): type byte (where it has one) and length included.
    pub bytes: u64,
}

/// One row of the demo's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceRow {
    pub name: String,
    pub port: i32,
    pub owner: String,
    pub note: String,
}

/// What the SQL lane did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SqlLane {
    /// Whether the server was started with `--postgres-url`; when not, nothing was sent.
    pub enabled: bool,
    /// The statement sent (with `$1`), when enabled.
    pub sql: String,
    /// The rows PostgreSQL answered with.
    pub rows: Vec<ServiceRow>,
    /// Every message on the connection, in the order the relay saw them.
    pub messages: Vec<WireMessage>,
    /// Why there is no answer (not enabled: how to enable it; or what failed).
    pub error: Option<String>,
    pub elapsed_ms: f64,
}

/// The answer to `GET /api/protocols/lookup`: both lanes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LookupReport {
    pub dns: DnsLane,
    pub sql: SqlLane,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked() {
        for good in ["api", "a", "x-1", &"a".repeat(63)] {
            assert!(check_label(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "API", "a.b", "ä", &"a".repeat(64)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }
}
