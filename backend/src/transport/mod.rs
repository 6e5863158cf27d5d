//! How the server pushes to a client over a held connection: the WebSocket loop every socket
//! demo shares (bounded outbox, pings, slow readers, shutdown, every frame traced), on a socket
//! taken back from hyper by the server's own handshake so that a publisher can write to it
//! directly, and the bounded event stream of the Server-Sent Events demos.
//!
//! May import: `crate::trace`, `crate::server`, `crate::error`, `crate::AppState`. Nothing from
//! the actors or the patterns.

pub(crate) mod event_stream;
pub(crate) mod shared_socket;
pub(crate) mod upgrade;
pub(crate) mod websocket;
