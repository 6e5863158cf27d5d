//! Query strings and headers the server reads: the echo, long-poll and upload queries (as
//! axum's `Query` parses them, with serde_urlencoded), a `Content-Type` choosing the echo
//! format, and the run id check every traced request makes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{
    echo::{EchoQuery, Format},
    job::WaitQuery,
    trace::RunId,
    upload::{ChunkQuery, WholeQuery, validate_name, validate_sha256},
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_urlencoded::from_str::<EchoQuery>(text);
    let _ = serde_urlencoded::from_str::<WaitQuery>(text);
    let _ = serde_urlencoded::from_str::<ChunkQuery>(text);
    if let Ok(q) = serde_urlencoded::from_str::<WholeQuery>(text) {
        let _ = validate_name(&q.name);
        let _ = validate_sha256(&q.sha256);
    }
    let _ = Format::from_content_type(text);
    let _ = RunId::is_valid(text);
});
