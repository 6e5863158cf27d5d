//! The stateful vs stateless demo's wire types: the cluster a run sets up (a balancer, two
//! instances, a session store), logging in, and what an instance answers.

use serde::{Deserialize, Serialize};

/// Where a logged-in session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// Stateful: in the memory of the instance that logged the user in, and nowhere else.
    Memory,
    /// Stateless: in the cookie itself, signed by the cluster's secret (HMAC-SHA256).
    Token,
    /// Stateless instances: in a session store every instance shares.
    Store,
}

impl SessionMode {
    pub const ALL: [SessionMode; 3] = [SessionMode::Memory, SessionMode::Token, SessionMode::Store];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionMode::Memory => "memory",
            SessionMode::Token => "token",
            SessionMode::Store => "store",
        }
    }

    pub fn parse(s: &str) -> Option<SessionMode> {
        SessionMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// `POST /api/lb/cluster`: what the run's cluster looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterSpec {
    pub mode: SessionMode,
    /// The balancer pins a client to the instance that first served it (a cookie).
    pub sticky: bool,
}

/// One instance as it runs now: its port changes when it is restarted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceInfo {
    /// `instance-a` or `instance-b`: its lifeline.
    pub name: String,
    pub port: u16,
    /// 1 at start, one more per restart.
    pub generation: u32,
}

/// The answer to `POST /api/lb/cluster` and to a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterInfo {
    pub spec: ClusterSpec,
    pub balancer_port: u16,
    pub instances: Vec<InstanceInfo>,
}

/// `POST /api/lb/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Login {
    pub user: String,
}

/// What an instance answers to a login or to `GET /api/lb/profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub user: String,
    /// The instance that answered.
    pub instance: String,
    pub mode: SessionMode,
    /// Requests made with this session so far, as the session's keeper counts them (a token
    /// carries no counter: always 0).
    pub requests: u32,
}

/// Longest user name a login accepts.
pub const MAX_USER_LEN: usize = 32;
