//! What every WebSocket upgrade gets from the server: small bounded buffers and a size cap on
//! what a client sends ([`bounded`]); and close codes for what a client can do wrong: a message
//! or frame over the limit (1009), a text frame that is not UTF-8 (1007), a binary frame on a
//! socket that speaks JSON text (1003), and any other protocol error (1002).

use axum::extract::{
    WebSocketUpgrade,
    ws::{CloseFrame, Message, Utf8Bytes},
};
use tokio_tungstenite::tungstenite::{
    error::{CapacityError, Error},
    protocol::WebSocketConfig,
};

use super::limits::Limits;

/// Bytes read from a socket at a time. Clients send small frames (subscribe, ack, chat lines;
/// longer ones are read in several goes), and tungstenite zero-fills the whole read buffer each
/// time it polls the socket, which a fan-out to thousands does once per delivery: 1 KiB keeps
/// both that and an idle socket's memory small.
pub const READ_BUFFER: usize = 1024;

/// The bounds every WebSocket upgrade gets (push, pub/sub, trace): small buffers (an idle
/// socket should cost kilobytes, not tungstenite's 128 KiB default), a bounded write buffer,
/// and `--ws-max-message` on each message and frame a client sends (more: closed with 1009).
pub fn bounded(ws: WebSocketUpgrade, limits: &Limits) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(limits.ws_max_message)
        .max_frame_size(limits.ws_max_message)
}

/// Bytes of frames gathered before they are written.
const WRITE_BUFFER: usize = 4 * 1024;
/// The most a socket's unwritten frames may take before a send waits.
const MAX_WRITE_BUFFER: usize = 64 * 1024;

/// The same bounds for a socket upgraded by the server's own handshake
/// ([`crate::transport::upgrade`]).
pub fn config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(limits.ws_max_message))
        .max_frame_size(Some(limits.ws_max_message))
}

/// The close frame answering a read error, with a reason the client can show; `None` when the
/// connection itself failed (nothing can be said on it any more).
pub fn for_error(err: &axum::Error) -> Option<CloseFrame> {
    // axum's error wraps the tungstenite error its WebSocket reads with (the same version).
    let inner = std::error::Error::source(err).and_then(|e| e.downcast_ref::<Error>());
    let (code, reason) = for_tungstenite_error(inner?)?;
    Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    })
}

/// [`for_error`]'s code and reason, for a socket read with tungstenite itself.
pub fn for_tungstenite_error(err: &Error) -> Option<(u16, String)> {
    Some(match err {
        Error::Capacity(CapacityError::MessageTooLong { max_size, .. }) => {
            (1009, format!("message too big: at most {max_size} bytes"))
        }
        Error::Capacity(_) => (1009, "frame too big".to_owned()),
        Error::Utf8(_) => (1007, "text frame is not valid UTF-8".to_owned()),
        Error::Protocol(e) => (1002, truncate(format!("protocol error: {e}"))),
        _ => return None,
    })
}

/// The close frame for a binary message on a socket whose protocol is JSON text.
pub fn binary_refused() -> CloseFrame {
    let (code, reason) = BINARY_REFUSED;
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}

/// The code and reason of [`binary_refused`].
pub const BINARY_REFUSED: (u16, &str) =
    (1003, "unsupported data: this socket takes JSON text frames");

/// Whether `message` is data this kind of socket refuses (binary).
pub fn is_refused(message: &Message) -> bool {
    matches!(message, Message::Binary(_))
}

/// A close reason is at most 123 bytes.
fn truncate(mut reason: String) -> String {
    while reason.len() > 120 {
        reason.pop();
    }
    reason
}
