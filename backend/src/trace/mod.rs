//! The trace: what the server saw of each run, and how it reaches the page. The hub keeps a
//! bounded log per run and fans it out to the trace socket; the recording middleware logs
//! every traced HTTP exchange; every other hop (to a worker, a store, an instance, a WebSocket
//! frame, an SSE event, a relayed request, a multiplexing lane) is recorded through the one
//! [`Tracer`].
//!
//! May import: `crate::server`, `crate::error`, `crate::AppState`. Nothing from the transports,
//! the actors or the patterns.

mod clock;
mod http_half;
mod hub;
mod ids;
mod phases;
mod record;
pub(crate) mod socket;
mod tracer;

pub(crate) use clock::server_now_us;
pub(crate) use http_half::{head_size, headers_of};
pub use hub::TraceHub;
pub(crate) use ids::TraceIds;
pub(crate) use phases::Phases;
pub(crate) use record::{last_event_id, last_event_id_text};
pub(crate) use tracer::{Hop, HopTime, Tracer};
