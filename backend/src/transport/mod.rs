//! How the server pushes to a client over a held connection: the WebSocket loop every socket
//! demo shares (bounded outbox, pings, slow readers, shutdown, every frame traced) and the
//! bounded event stream of the Server-Sent Events demos.
//!
//! May import: `crate::trace`, `crate::server`, `crate::error`, `crate::AppState`. Nothing from
//! the actors or the patterns.

pub(crate) mod event_stream;
pub(crate) mod websocket;
