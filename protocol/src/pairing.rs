//! Request ids that pair both observers' records of one hop: the page and the server each make
//! the id of a frame, an event, a close or a hop inside the server from the exchange's `rid`
//! with the same function here, so their records meet without either formatting one by hand.

/// One server-sent event or server-pushed frame of exchange `rid`: `{rid}-e{n}` (`n` is the
/// event id, or the count of frames the server sent). An event id need not be a number (a
/// pub/sub stream of several topics names each topic's position).
pub fn event(rid: &str, n: impl std::fmt::Display) -> String {
    format!("{rid}-e{n}")
}

/// The `n`-th text frame the client sent on WebSocket `rid`: `{rid}-c{n}`.
pub fn client_frame(rid: &str, n: u32) -> String {
    format!("{rid}-c{n}")
}

/// The closing handshake of WebSocket `rid`: `{rid}-close`.
pub fn close(rid: &str) -> String {
    format!("{rid}-close")
}

/// The `n`-th ping the server sent on WebSocket `rid`: `{rid}-p{n}`.
pub fn ping(rid: &str, n: u32) -> String {
    format!("{rid}-p{n}")
}

/// The answer to the `n`-th ping on WebSocket `rid`: `{rid}-q{n}`.
pub fn pong(rid: &str, n: u32) -> String {
    format!("{rid}-q{n}")
}

/// An EventSource reconnection carrying `Last-Event-ID: last`: `{rid}-r{last}`.
pub fn reconnect(rid: &str, last: impl std::fmt::Display) -> String {
    format!("{rid}-r{last}")
}

/// The events an EventSource lost after `Last-Event-ID: last` (drawn by the page): `{rid}-lost{last}`.
pub fn lost(rid: &str, last: impl std::fmt::Display) -> String {
    format!("{rid}-lost{last}")
}

/// An EventSource that gave up (drawn by the page): `{rid}-closed`.
pub fn closed(rid: &str) -> String {
    format!("{rid}-closed")
}

/// A hop inside the server on behalf of exchange `rid` (to a worker, a store, an instance):
/// `{rid}-{hop}`. A request and its response share `hop`, so the receiver's bar spans them.
pub fn hop(rid: &str, hop: &str) -> String {
    format!("{rid}-{hop}")
}

/// Message `seq` a publisher's request `rid` put on a topic: `{rid}-pub{seq}`.
pub fn published(rid: &str, seq: u64) -> String {
    format!("{rid}-pub{seq}")
}

/// Item `item` the multiplexing proxy forwarded for request `rid`: `{rid}-i{item}`.
pub fn item(rid: &str, item: u32) -> String {
    format!("{rid}-i{item}")
}

/// A note the broker wrote at server time `at_us` for exchange `rid`: `{rid}-note{at_us}`.
pub fn note(rid: &str, at_us: i64) -> String {
    format!("{rid}-note{at_us}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_shape() {
        assert_eq!(event("7", 3), "7-e3");
        assert_eq!(client_frame("7", 3), "7-c3");
        assert_eq!(close("7"), "7-close");
        assert_eq!(ping("7", 2), "7-p2");
        assert_eq!(pong("7", 2), "7-q2");
        assert_eq!(reconnect("7", 4), "7-r4");
        assert_eq!(lost("7", 4), "7-lost4");
        assert_eq!(closed("7"), "7-closed");
        assert_eq!(hop("7", "work"), "7-work");
        assert_eq!(published("7", 9), "7-pub9");
        assert_eq!(item("7", 5), "7-i5");
        assert_eq!(note("7", 120), "7-note120");
    }

    #[test]
    fn kinds_of_one_exchange_never_collide() {
        let ids = [
            event("r", 1),
            client_frame("r", 1),
            close("r"),
            ping("r", 1),
            pong("r", 1),
            reconnect("r", 1),
            lost("r", 1),
            closed("r"),
            published("r", 1),
            item("r", 1),
            note("r", 1),
        ];
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert!(ids.iter().all(|id| id.starts_with("r-")));
    }
}
