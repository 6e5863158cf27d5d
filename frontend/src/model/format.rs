//! How the page writes things in short: sizes, durations, and a message's text on its arrow.
//! Shared by the diagram, the inspector, the waterfall, the metrics and the exports. Pure.

use protocol::trace::{Kind, Transport};

use super::merge::Drawn;

/// A byte count as a person reads it: `512 B`, `2.3 kB`, `1.25 MB`.
pub fn human_bytes(b: u64) -> String {
    match b {
        0..1_000 => format!("{b} B"),
        1_000..1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        _ => format!("{:.2} MB", b as f64 / 1e6),
    }
}

/// A duration in µs as a person reads it: `0.25 ms`, `120 ms`, `12.5 s`.
pub fn human_us(us: i64) -> String {
    if us.abs() < 1_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else if us.abs() < 10_000_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else {
        format!("{:.1} s", us as f64 / 1e6)
    }
}

/// The short text drawn on an arrow; the full label is in `data-label` and the tooltip.
pub fn display_label(d: &Drawn) -> String {
    let mut parts = Vec::new();
    match d.kind {
        // A datagram or a database message: its label is already short, not an HTTP line.
        Kind::Request | Kind::Response
            if matches!(d.transport, Transport::Udp | Transport::Tcp) =>
        {
            parts.push(truncate(&d.label, 40))
        }
        Kind::Request => {
            // "POST /api/echo?process_ms=200&run=…" → "POST /api/echo"
            let head = d.label.split('?').next().unwrap_or(&d.label);
            parts.push(head.to_owned());
        }
        // "200 OK /api/echo?…" → "200 OK"; a hop inside the server answers in words ("ack
        // job #3 · tag 2"), kept whole.
        Kind::Response if starts_with_status(&d.label) => {
            let status: Vec<&str> = d.label.splitn(3, ' ').take(2).collect();
            parts.push(status.join(" "));
        }
        _ => parts.push(truncate(&d.label, 40)),
    }
    if let Some(b) = d.bytes {
        parts.push(human_bytes(b));
    }
    let timed =
        matches!(d.kind, Kind::Request | Kind::Response) && d.transport != Transport::Internal;
    if let (Some(recv), true) = (d.recv_us, timed) {
        parts.push(human_us(recv - d.sent_us));
    }
    parts.join(" · ")
}

/// Whether `label` starts with an HTTP status code ("404 Not Found …").
fn starts_with_status(label: &str) -> bool {
    let code = label.split(' ').next().unwrap_or("");
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())
}

/// `s` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::merge::{merge, tests::exchange};

    #[test]
    fn labels_are_short_and_carry_size_and_time() {
        let (mut b, s) = exchange("1", 0, 50_000, 0);
        b[0].label = "POST /api/echo?process_ms=50&run=x&rid=1".into();
        b[1].label = "200 OK /api/echo?process_ms=50&run=x&rid=1".into();
        b[1].bytes = Some(2_300);
        let drawn = merge(&b, &s, None);
        assert_eq!(display_label(&drawn[0]), "POST /api/echo · 1 ms");
        assert_eq!(display_label(&drawn[1]), "200 OK · 2.3 kB · 1 ms");
        let mut ack = drawn[1].clone();
        ack.label = "ack job #3 · tag 2".into();
        (ack.bytes, ack.transport) = (None, protocol::trace::Transport::Internal);
        assert_eq!(display_label(&ack), "ack job #3 · tag 2");
    }
}
