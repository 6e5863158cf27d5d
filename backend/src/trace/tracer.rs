//! Hops inside the server recorded on behalf of one traced exchange.

use protocol::{
    pairing,
    trace::{Kind, Transport},
};

use super::{
    hub::{Hop, HopTime, TraceHub},
    ids::TraceIds,
};

/// Records hops inside the server (to a worker, a pool thread) on behalf of one traced
/// exchange; does nothing for an untraced one.
#[derive(Clone)]
pub struct InternalHops {
    hub: TraceHub,
    ids: Option<TraceIds>,
}

impl InternalHops {
    pub fn new(hub: &TraceHub, ids: Option<TraceIds>) -> InternalHops {
        InternalHops {
            hub: hub.clone(),
            ids,
        }
    }

    /// Records a hop named `{rid}-{suffix}`: a request and the response that shares its suffix
    /// pair up, and the receiver's activation spans them.
    pub fn record(&self, kind: Kind, from: &str, to: &str, suffix: &str, label: String) {
        if let Some(ids) = &self.ids {
            self.hub.hop(Hop {
                run: &ids.run,
                request_id: pairing::hop(&ids.request.0, suffix),
                from,
                to,
                kind,
                transport: Transport::Internal,
                at: HopTime::Whole,
                label,
                bytes: None,
                body: None,
            });
        }
    }
}
