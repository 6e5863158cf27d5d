//! Export and import of a run: Mermaid `sequenceDiagram` text to paste into notes, the diagram
//! as a standalone SVG file, and the run's raw trace (both observers' messages) as JSON, which imports back and redraws the same
//! diagram without a server. Pure functions, unit-tested natively.

use protocol::{
    link::Link,
    trace::{Actor, Kind, Message},
};
use serde::{Deserialize, Serialize};

use super::{format::display_label, merge::Drawn};

/// A saved run: everything the merge needs to draw it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceFile {
    /// Format version, bumped on incompatible change.
    pub version: u32,
    /// The demo's slug.
    pub demo: String,
    pub browser: Vec<Message>,
    pub server: Vec<Message>,
    /// The clock-offset guess the page used (server µs − browser µs), for runs with no
    /// request/response pair to estimate it from.
    #[serde(default)]
    pub clock_hint: Option<i64>,
    /// The link the server shaped the run to (`local` in files saved before there were links).
    #[serde(default)]
    pub link: Link,
}

impl TraceFile {
    pub const VERSION: u32 = 1;

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("trace files serialize")
    }

    pub fn from_json(text: &str) -> Result<TraceFile, String> {
        let file: TraceFile =
            serde_json::from_str(text).map_err(|e| format!("not a Patternscope trace: {e}"))?;
        if file.version != Self::VERSION {
            return Err(format!(
                "trace format {} is not supported (expected {})",
                file.version,
                Self::VERSION
            ));
        }
        Ok(file)
    }

    /// The clock offset to draw this file with until a request/response pair gives a better one:
    /// the one it was saved with; for a file saved without one, the guess that the server's first
    /// record came at the browser's first (never the offset of the session importing it, which
    /// says nothing of the file's clocks). `None` when the file has no server records.
    pub fn clock_guess(&self) -> Option<i64> {
        let first = |records: &[Message]| {
            records
                .iter()
                .flat_map(|m| [m.sent_us, m.recv_us])
                .flatten()
                .min()
        };
        self.clock_hint
            .or_else(|| Some(first(&self.server)? - first(&self.browser).unwrap_or(0)))
    }
}

/// Text Mermaid would misread, as its numeric entity codes: `#` starts an entity, `;` ends a
/// statement, `<`/`>` can be taken as markup; line breaks become spaces.
pub fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#60;"),
            '>' => out.push_str("#62;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The trace as a Mermaid `sequenceDiagram`: one participant per lifeline (aliased, since
/// names such as `client-1` would collide with arrow syntax), one line per message, the arrow
/// style by kind so the paste reads like the page.
pub fn to_mermaid(trace: &[Drawn], lifelines: &[Actor]) -> String {
    let id = |a: &Actor| {
        format!(
            "p{}",
            lifelines
                .iter()
                .position(|l| l == a)
                .unwrap_or(lifelines.len())
        )
    };
    let mut out = String::from("sequenceDiagram\n");
    for (i, a) in lifelines.iter().enumerate() {
        out.push_str(&format!(
            "    participant p{i} as {}\n",
            mermaid_escape(&a.0)
        ));
    }
    for d in trace {
        let text = mermaid_escape(&display_label(d));
        if d.from == d.to {
            out.push_str(&format!("    Note over {}: {text}\n", id(&d.from)));
            continue;
        }
        let arrow = match d.kind {
            Kind::Request | Kind::Connect => "->>",
            Kind::Response => "-->>",
            Kind::Push | Kind::Event | Kind::Publish | Kind::Deliver => "-)",
            Kind::Close => "-x",
            Kind::Note | Kind::Work => "->>",
        };
        out.push_str(&format!(
            "    {}{arrow}{}: {text}\n",
            id(&d.from),
            id(&d.to)
        ));
    }
    out
}

/// The diagram's stylesheet, embedded in exported SVG files so they look like the page.
const DIAGRAM_CSS: &str = include_str!("../../diagram.css");

/// A serialized diagram `<svg>` made into a file that stands alone: an XML declaration, the
/// diagram's stylesheet inside (animations off, a background), and a title.
pub fn standalone_svg(svg: &str, title: &str) -> String {
    let root_end = svg.find('>').map(|i| i + 1).unwrap_or(0);
    let (open, rest) = svg.split_at(root_end);
    let open = if open.contains("xmlns=") {
        open.to_owned()
    } else {
        open.replacen("<svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"", 1)
    };
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{open}<title>{title}</title>\
         <style><![CDATA[\n{DIAGRAM_CSS}\n:root {{ background: var(--panel); font-family: system-ui, sans-serif; }}\n\
         .draw {{ animation: none !important; }}\n]]></style>{rest}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::merge::{merge, tests::exchange};
    use protocol::trace::Transport;

    #[test]
    fn escaping_covers_what_mermaid_misreads() {
        assert_eq!(mermaid_escape("a#b;c<d>e\nf"), "a#35;b#59;c#60;d#62;e f");
        assert_eq!(
            mermaid_escape("GET /api/jobs?run=x&rid=1"),
            "GET /api/jobs?run=x&rid=1"
        );
    }

    #[test]
    fn every_kind_gets_its_arrow_and_participants_are_aliased() {
        let (b, s) = exchange("1", 0, 1_000, 0);
        let base = merge(&b, &s, None)[0].clone();
        let lifelines = vec![Actor::browser(), Actor::server(), Actor::new("client-1")];
        let trace: Vec<Drawn> = Kind::ALL
            .iter()
            .map(|&kind| {
                let mut d = base.clone();
                d.kind = kind;
                d.transport = Transport::WebSocket;
                d.label = format!("{} #1; <b>", kind.as_str());
                if matches!(kind, Kind::Note | Kind::Work) {
                    d.to = d.from.clone();
                } else {
                    d.to = Actor::new("client-1");
                }
                d
            })
            .collect();
        let text = to_mermaid(&trace, &lifelines);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "sequenceDiagram");
        assert_eq!(lines[3], "    participant p2 as client-1");
        let arrows: Vec<&str> = lines[4..]
            .iter()
            .map(|l| l.split(':').next().unwrap().trim())
            .collect();
        assert_eq!(
            arrows,
            [
                "p0->>p2",
                "p0-->>p2",
                "p0-)p2",
                "p0-)p2",
                "p0->>p2",
                "p0-xp2",
                "p0-)p2",
                "p0-)p2",
                "Note over p0",
                "Note over p0"
            ]
        );
        assert!(text.contains("request #35;1#59; #60;b#62;"), "{text}");
        // Nothing raw is left in the message texts: every `#` and `;` belongs to an entity.
        for line in &lines[4..] {
            let message = line.split_once(':').map(|(_, t)| t).unwrap_or("");
            let bare = ["#35;", "#59;", "#60;", "#62;"]
                .iter()
                .fold(message.to_owned(), |t, e| t.replace(e, ""));
            assert!(!bare.contains(['<', '>', ';', '#']), "{line}");
        }
    }

    #[test]
    fn a_standalone_svg_carries_its_namespace_style_and_title() {
        let svg = standalone_svg(
            r#"<svg class="sequence-diagram" width="10" height="10"><g data-testid="message"></g></svg>"#,
            "Patternscope: a<b",
        );
        assert!(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class="));
        assert!(svg.contains("<title>Patternscope: a&lt;b</title>"));
        assert!(
            svg.contains(".message .line"),
            "the diagram's rules are inside"
        );
        assert!(svg.contains("animation: none"));
        assert!(
            svg.trim_end()
                .ends_with(r#"<g data-testid="message"></g></svg>"#)
        );
        assert_eq!(svg.matches("xmlns=").count(), 1);
        // Already namespaced (as XMLSerializer writes it): left alone.
        let again = standalone_svg(r#"<svg xmlns="http://www.w3.org/2000/svg"></svg>"#, "t");
        assert_eq!(again.matches("xmlns=").count(), 1);
    }

    #[test]
    fn a_file_without_a_clock_hint_starts_the_server_with_the_browser() {
        let (b, s) = exchange("1", 5_000, 50_000, 123_000);
        let mut file = TraceFile {
            version: TraceFile::VERSION,
            demo: "pubsub".into(),
            browser: b,
            server: s,
            clock_hint: Some(7),
            link: Link::ThreeG,
        };
        assert_eq!(file.clock_guess(), Some(7), "the saved hint first");
        file.clock_hint = None;
        // The server's first record: the request arriving, at 5 ms + 1 ms + the skew.
        let first_server = 6_000 + 123_000;
        assert_eq!(file.clock_guess(), Some(first_server - 5_000));
        file.browser.clear();
        assert_eq!(file.clock_guess(), Some(first_server), "at the run's start");
        file.server.clear();
        assert_eq!(file.clock_guess(), None);
    }

    #[test]
    fn json_round_trip_redraws_the_same_diagram() {
        let (b, s) = exchange("1", 0, 50_000, 123_000);
        let file = TraceFile {
            version: TraceFile::VERSION,
            demo: "request-response".into(),
            browser: b,
            server: s,
            clock_hint: Some(7),
            link: Link::ThreeG,
        };
        let back = TraceFile::from_json(&file.to_json()).unwrap();
        assert_eq!(back, file);
        assert_eq!(
            merge(&back.browser, &back.server, back.clock_hint),
            merge(&file.browser, &file.server, file.clock_hint)
        );
        assert!(TraceFile::from_json("{}").is_err());
        let mut future = file;
        future.version = 99;
        assert!(
            TraceFile::from_json(&future.to_json())
                .unwrap_err()
                .contains("not supported")
        );
    }
}
