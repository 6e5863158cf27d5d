//! The push demo's WebSocket frames: one enum per direction. Every frame is a JSON text frame.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    job::{JobId, JobUpdate},
    trace::Kind,
};

/// A JSON text frame of a pushing socket (the push demo's, a pub/sub subscriber's), and how
/// both observers draw it, so their records of one frame pair up.
pub trait Frame: Serialize + DeserializeOwned {
    /// The short text the diagram draws.
    fn summary(&self) -> String;
    /// For a frame the server sends: its kind and the server-side lifeline it leaves from.
    fn drawn_as(&self) -> (Kind, &'static str) {
        (Kind::Push, "server")
    }
}

/// What a client sends on `/api/push/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Push me this job's progress as it happens.
    Follow { job: JobId },
    /// Put me in a chat room under a display name; everyone there is told. No `room` (or an
    /// empty one): the room of the run the socket was opened with (`run=…`).
    Join {
        #[serde(default)]
        room: String,
        name: String,
    },
    /// Say something to my room.
    Say { text: String },
}

/// What the server pushes on `/api/push/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A followed job advanced.
    Progress { update: JobUpdate },
    /// Something happened that nobody asked about, such as someone joining the room.
    Notice { text: String },
    /// A line said in the room.
    Chat {
        room: String,
        from: String,
        text: String,
    },
    /// A frame was refused; the socket stays open.
    Error { error: String },
}

/// Longest room or display name.
pub const MAX_NAME: usize = 40;
/// Longest chat line.
pub const MAX_TEXT: usize = 500;

/// Whether `s` is an acceptable room or display name: 1 to `MAX_NAME` of `[A-Za-z0-9 _-]`.
pub fn is_valid_name(s: &str) -> bool {
    !s.trim().is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b' ')
}

impl Frame for ClientFrame {
    fn summary(&self) -> String {
        match self {
            ClientFrame::Follow { job } => format!("follow {}", job.0),
            ClientFrame::Join { room, name } if room.is_empty() => {
                format!("join this run's room as {name}")
            }
            ClientFrame::Join { room, name } => format!("join {room} as {name}"),
            ClientFrame::Say { text } => {
                format!("say: {}", text.chars().take(24).collect::<String>())
            }
        }
    }
}

impl Frame for ServerFrame {
    fn summary(&self) -> String {
        match self {
            ServerFrame::Progress { update } => {
                format!("progress {}/{}", update.version, update.steps)
            }
            ServerFrame::Notice { text } => format!("notice: {text}"),
            ServerFrame::Chat { from, text, .. } => {
                format!("chat {from}: {}", text.chars().take(24).collect::<String>())
            }
            ServerFrame::Error { error } => {
                format!("error: {}", error.chars().take(30).collect::<String>())
            }
        }
    }
}

/// Bytes of a WebSocket frame carrying `payload` bytes: its header, plus the 4-byte mask every
/// client-to-server frame has.
pub fn frame_bytes(payload: usize, from_server: bool) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (header + payload + if from_server { 0 } else { 4 }) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_without_a_room_is_for_the_run_s_room() {
        let join: ClientFrame = serde_json::from_str(r#"{"type":"join","name":"ada"}"#).unwrap();
        assert_eq!(
            join,
            ClientFrame::Join {
                room: String::new(),
                name: "ada".into()
            }
        );
        assert_eq!(join.summary(), "join this run's room as ada");
    }
}
