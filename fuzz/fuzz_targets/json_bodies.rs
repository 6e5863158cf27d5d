//! JSON request bodies of the main endpoints, parsed and validated as the handlers do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{
    job::JobSpec, pubsub::PublishRequest, pubsub::TickerSpec, sidecar::SidecarSpec,
    stateful_stateless::ClusterSpec, upload::NewUpload,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<JobSpec>(data) {
        let _ = spec.validate();
    }
    if let Ok(publish) = serde_json::from_slice::<PublishRequest>(data) {
        let _ = protocol::push::is_valid_name(&publish.topic);
    }
    if let Ok(ticker) = serde_json::from_slice::<TickerSpec>(data) {
        let _ = ticker.validate();
    }
    if let Ok(upload) = serde_json::from_slice::<NewUpload>(data) {
        let _ = upload.validate();
    }
    if let Ok(sidecar) = serde_json::from_slice::<SidecarSpec>(data) {
        let _ = sidecar.validate();
    }
    let _ = serde_json::from_slice::<ClusterSpec>(data);
});
