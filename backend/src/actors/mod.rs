//! Actors inside the process that the server talks to over real HTTP: each listens on its own
//! loopback port (a balancer, instances, a sidecar, an app), and the relay carries a traced
//! request from one to the next.
//!
//! May import: `crate::trace`, `crate::server`, `crate::error`. Nothing from the patterns.

pub(crate) mod inner_listener;
pub(crate) mod relay;
