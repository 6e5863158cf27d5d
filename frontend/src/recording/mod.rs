//! The recording: every exchange the page has with the server, each recorded as it happens. The
//! network calls, the recorder that holds the run's records and merged trace, the trace
//! WebSocket that brings the server's half, the recorded EventSource and WebSocket, and the
//! client loops that wait for a job.
//!
//! May import [`crate::model`]; never [`crate::views`] or [`crate::demos`].

pub mod api;
pub mod event_stream;
pub mod recorder;
pub mod socket_stream;
pub mod trace_socket;
pub mod waiting;
