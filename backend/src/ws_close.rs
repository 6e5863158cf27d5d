//! Close codes for what a client can do wrong on any of the server's WebSockets: a message or
//! frame over the limit (1009), a text frame that is not UTF-8 (1007), a binary frame on a socket
//! that speaks JSON text (1003), and any other protocol error (1002).

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error};

/// The close frame answering a read error, with a reason the client can show; `None` when the
/// connection itself failed (nothing can be said on it any more).
pub fn for_error(err: &axum::Error) -> Option<CloseFrame> {
    // axum's error wraps the tungstenite error its WebSocket reads with (the same version).
    let inner = std::error::Error::source(err).and_then(|e| e.downcast_ref::<Error>());
    let (code, reason) = match inner {
        Some(Error::Capacity(CapacityError::MessageTooLong { max_size, .. })) => {
            (1009, format!("message too big: at most {max_size} bytes"))
        }
        Some(Error::Capacity(_)) => (1009, "frame too big".to_owned()),
        Some(Error::Utf8(_)) => (1007, "text frame is not valid UTF-8".to_owned()),
        Some(Error::Protocol(e)) => (1002, truncate(format!("protocol error: {e}"))),
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    })
}

/// The close frame for a binary message on a socket whose protocol is JSON text.
pub fn binary_refused() -> CloseFrame {
    CloseFrame {
        code: 1003,
        reason: Utf8Bytes::from_static("unsupported data: this socket takes JSON text frames"),
    }
}

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
