//! Client→server WebSocket text frames: the trace socket's commands, the push socket's frames
//! and the pub/sub subscriber's frames, parsed as the server parses them (and re-encoded).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{
    pubsub::SubscriberFrame,
    push::{ClientFrame, Frame},
    trace::TraceClientMsg,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = serde_json::from_str::<TraceClientMsg>(text) {
        let TraceClientMsg::Watch { run, .. } = &msg;
        let _ = protocol::trace::RunId::is_valid(&run.0);
        serde_json::to_string(&msg).expect("a parsed command re-encodes");
    }
    if let Ok(frame) = serde_json::from_str::<ClientFrame>(text) {
        let _ = frame.summary();
        serde_json::to_string(&frame).expect("a parsed frame re-encodes");
    }
    if let Ok(frame) = serde_json::from_str::<SubscriberFrame>(text) {
        serde_json::to_string(&frame).expect("a parsed frame re-encodes");
    }
    let _ = protocol::push::is_valid_name(text);
});
