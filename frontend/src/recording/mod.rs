//! The recording: every exchange the page has with the server, each recorded as it happens. The
//! network calls, the recorder that holds the run's records and merged trace, the trace
//! WebSocket that brings the server's half, the recorded EventSource and WebSocket, and the
//! client loops that wait for a job.
//!
//! May import [`crate::model`]; never [`crate::views`] or [`crate::demos`].

pub(crate) mod api;
pub(crate) mod event_stream;
pub(crate) mod recorder;
pub(crate) mod socket_stream;
mod trace_socket;
pub(crate) mod waiting;
