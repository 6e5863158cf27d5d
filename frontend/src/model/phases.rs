//! The names of the phases the page records for each fetch: the browser's, from Resource Timing,
//! and the moment the page's code had the response. Written by the recorder, read by the
//! metrics and the waterfall.

/// Name of the zero-length phase marking when the page's code had a response.
pub const HANDED_TO_PAGE: &str = "handed to the page";
/// The browser's phases of a fetch, from Resource Timing, in order.
pub const QUEUED: &str = "queued";
pub const CONNECTING: &str = "connecting";
pub const STALLED: &str = "stalled";
pub const WAITING: &str = "waiting for first byte";
pub const DOWNLOAD: &str = "download";
pub const BROWSER_PHASES: [&str; 5] = [QUEUED, CONNECTING, STALLED, WAITING, DOWNLOAD];

/// The phases a HAR file gives each exchange, in order (see [`super::har`]).
pub const HAR_PHASES: [&str; 7] = [
    "blocked", "dns", "connect", "tls", HAR_SEND, "wait", "receive",
];
/// The HAR phase in which the request is written to the connection.
pub const HAR_SEND: &str = "send";

/// The phases that start when the request went on the wire (Resource Timing's `requestStart`),
/// after any wait for a connection: the browser's and a HAR file's.
pub const ON_THE_WIRE: [&str; 2] = [WAITING, HAR_SEND];

/// Whether the waterfall draws a phase of this name as the browser's.
pub fn is_browser_phase(name: &str) -> bool {
    BROWSER_PHASES.contains(&name) || HAR_PHASES.contains(&name)
}
