//! The inspector: the clicked message's whole exchange in HTTP anatomy (start line, headers,
//! blank line, body), with sizes and timings; a hand-off inside the process shows its whole
//! label and says nothing went on a wire. Bodies are shown as text, never as HTML.

use leptos::prelude::*;
use protocol::trace::{Detail, Kind, Phase, Transport};

use super::playback::Shown;
use crate::model::{
    format::{human_bytes, human_us},
    merge::Drawn,
};

/// A message as it looked on the wire: start line, headers, a blank line, the body.
pub fn anatomy(detail: &Detail) -> String {
    let mut out = String::new();
    out.push_str(&detail.start_line);
    out.push('\n');
    for h in &detail.headers {
        out.push_str(&h.name);
        out.push_str(": ");
        out.push_str(&h.value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&detail.body);
    if detail.body_truncated {
        out.push_str(&format!(
            "\n… (cut here; the whole body is {} bytes)",
            detail.body_bytes
        ));
    }
    out
}

/// What the trace cut of the message when it was recorded, as the inspector says it
/// ("headers truncated: 8.1 kB of 412.0 kB kept"); `None` when nothing was.
pub fn cut_note(detail: &Detail) -> Option<String> {
    let mut notes = Vec::new();
    if detail.headers_truncated {
        notes.push(format!(
            "headers truncated: {} of {} kept",
            human_bytes(detail.headers_kept_bytes()),
            human_bytes(detail.headers_bytes)
        ));
    }
    if detail.body_truncated {
        notes.push(format!(
            "body truncated: {} of {} kept",
            human_bytes(detail.body.len() as u64),
            human_bytes(detail.body_bytes)
        ));
    }
    (!notes.is_empty()).then(|| notes.join(" · "))
}

/// A shell command that sends the same HTTP request again: `curl` with its method, headers
/// (less the ones curl or the browser set by themselves) and body, each quoted for a POSIX shell.
pub fn curl_command(origin: &str, detail: &Detail) -> Option<String> {
    let mut parts = detail.start_line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    if !target.starts_with('/') {
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut cmd = format!("curl -X {method} {}", quote(&format!("{origin}{target}")));
    const SKIP: [&str; 4] = ["host", "content-length", "connection", "accept-encoding"];
    for h in detail
        .headers
        .iter()
        .filter(|h| !SKIP.contains(&h.name.to_ascii_lowercase().as_str()))
    {
        cmd.push_str(&format!(
            " -H {}",
            quote(&format!("{}: {}", h.name, h.value))
        ));
    }
    if !detail.body.is_empty() && !detail.body_truncated {
        cmd.push_str(&format!(" --data-binary {}", quote(&detail.body)));
    }
    Some(cmd)
}

/// The messages of the clicked one's exchange, request first.
pub fn exchange_of<'a>(trace: &'a [Drawn], key: &str) -> Vec<&'a Drawn> {
    let Some(clicked) = trace.iter().find(|d| d.key == key) else {
        return Vec::new();
    };
    match &clicked.request_id {
        Some(rid) => {
            let mut parts: Vec<&Drawn> = trace
                .iter()
                .filter(|d| d.request_id.as_ref() == Some(rid))
                .collect();
            parts.sort_by_key(|d| (d.kind != Kind::Request, d.sent_us));
            parts
        }
        None => vec![clicked],
    }
}

fn phase_rows(phases: &[Phase]) -> impl IntoView + use<> {
    phases
        .iter()
        .map(|p| view! { <tr><th scope="row">{p.name.clone()}</th><td>{human_us(p.dur_us)}</td></tr> })
        .collect_view()
}

/// When the message was sent and received; one not received is still travelling while the run
/// is live, and was never received once it has ended (say, an event written just before Stop
/// closed its stream).
fn timing(d: &Drawn, live: bool) -> String {
    let sent = human_us(d.sent_us);
    match d.recv_us {
        Some(r) => format!(
            "sent at {sent} · received at {} · took {}",
            human_us(r),
            human_us(r - d.sent_us)
        ),
        None if live => format!("sent at {sent} · still travelling"),
        None => format!("sent at {sent} · never received: the run ended first"),
    }
}

/// How the message travelled: its size on the wire and over what, or that it never left the
/// process (a hand-off to a worker, a broker or a note: no bytes on any wire).
fn carried(d: &Drawn) -> String {
    if d.transport == Transport::Internal {
        return format!(
            "{} → {} inside the process: nothing on the wire",
            d.from.0, d.to.0
        );
    }
    format!(
        "{} on the wire · body {} · {} → {} over {}{}",
        d.bytes.map(human_bytes).unwrap_or_else(|| "?".into()),
        human_bytes(d.detail.body_bytes),
        d.from.0,
        d.to.0,
        d.transport.as_str(),
        d.connection
            .map(|c| format!(" · connection :{c}"))
            .unwrap_or_default(),
    )
}

/// What the inspector shows of a message: its anatomy on the wire, or, for one with none (an
/// internal hand-off or a note), its whole label, which the arrow shows cut short.
fn shown_text(d: &Drawn) -> String {
    let x = &d.detail;
    if x.start_line.is_empty() && x.headers.is_empty() && x.body.is_empty() {
        d.label.clone()
    } else {
        anatomy(x)
    }
}

fn part(d: &Drawn, clicked: bool, live: bool) -> impl IntoView + use<> {
    let heading = match d.kind {
        Kind::Request => "Request".to_owned(),
        Kind::Response => "Response".to_owned(),
        k => k.as_str().to_owned(),
    };
    let timing = timing(d, live);
    let size = carried(d);
    let cut = cut_note(&d.detail)
        .map(|note| view! { <p class="meta cut" data-testid="cut-note">{note}</p> });
    let server_phases = (!d.server_phases.is_empty()).then(|| {
        view! {
            <table class="phases">
                <caption>"Server-Timing (server's phases)"</caption>
                {phase_rows(&d.server_phases)}
            </table>
        }
    });
    let browser_phases = (!d.detail.phases.is_empty()).then(|| {
        view! {
            <table class="phases">
                <caption>"Resource Timing (browser's view)"</caption>
                {phase_rows(&d.detail.phases)}
            </table>
        }
    });
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    let curl = (d.kind == Kind::Request && d.detail.body.len() < 2_000)
        .then(|| curl_command(&origin, &d.detail))
        .flatten()
        .map(|cmd| {
            let shown = cmd.clone();
            let copy = move |_| {
                if let Some(w) = web_sys::window() {
                    let _ = w.navigator().clipboard().write_text(&cmd);
                }
            };
            view! {
                <details class="curl">
                    <summary>"Copy as curl"</summary>
                    <pre data-testid="curl">{shown}</pre>
                    <button type="button" class="small" on:click=copy>"Copy"</button>
                </details>
            }
        });
    view! {
        <section class="part" class:clicked=clicked>
            <h3>{heading}</h3>
            <p class="meta">{timing}</p>
            <p class="meta">{size}</p>
            {cut}
            <pre class="anatomy" data-testid="anatomy">{shown_text(d)}</pre>
            {curl}
            {server_phases}
            {browser_phases}
        </section>
    }
}

#[component]
pub fn Inspector(
    trace: Shown,
    selected: RwSignal<Option<String>>,
    /// Whether what is shown is a live run or an earlier moment of one (paused, replaying): a
    /// message not received is still travelling then; at the end of a finished run it never
    /// arrived (its connection closed first).
    #[prop(into)]
    running: Signal<bool>,
) -> impl IntoView {
    let body = move || {
        let key = selected.get()?;
        trace.with(|t| {
            let parts = exchange_of(t, &key);
            (!parts.is_empty()).then(|| {
                let parts = parts
                    .into_iter()
                    .map(|d| part(d, d.key == key, running.get()))
                    .collect_view();
                view! { <div data-testid="inspector">{parts}</div> }
            })
        })
    };
    view! {
        <aside class="inspector" aria-live="polite" aria-label="Message inspector">
            <div class="inspector-head">
                <h2>"Inspector"</h2>
                <Show when=move || selected.with(Option::is_some)>
                    <button class="small" on:click=move |_| selected.set(None)>"Close"</button>
                </Show>
            </div>
            {move || body().map(|v| v.into_any()).unwrap_or_else(|| {
                view! { <p class="hint">"Click an arrow in the diagram to see that exchange as it was on the wire."</p> }.into_any()
            })}
        </aside>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::trace::Header;

    #[test]
    fn a_hand_off_inside_the_process_shows_its_label_and_no_wire() {
        let (b, s) = crate::model::merge::tests::exchange("1", 0, 1_000, 0);
        let mut work = crate::model::merge::merge(&b, &s, None)[0].clone();
        work.transport = Transport::Internal;
        work.kind = Kind::Work;
        work.detail = Detail::default();
        work.label = "SHA-256 of photo.bmp: d82b4dc5142c13cb9f0e".into();
        assert_eq!(shown_text(&work), work.label);
        assert!(timing(&work, false).contains("received at"));
        work.recv_us = None;
        assert!(timing(&work, true).ends_with("still travelling"));
        assert!(timing(&work, false).ends_with("never received: the run ended first"));
        assert!(carried(&work).ends_with("inside the process: nothing on the wire"));

        let mut request = crate::model::merge::merge(&b, &s, None)[0].clone();
        request.transport = Transport::Http1;
        request.detail.start_line = "GET / HTTP/1.1".into();
        assert!(shown_text(&request).starts_with("GET / HTTP/1.1\n"));
        assert!(carried(&request).contains("on the wire · body"));
    }

    #[test]
    fn curl_repeats_the_request_with_shell_quoting() {
        let d = Detail {
            start_line: "POST /api/echo?process_ms=5&run=r&rid=1 HTTP/1.1".into(),
            headers: vec![
                Header {
                    name: "host".into(),
                    value: "x".into(),
                },
                Header {
                    name: "content-type".into(),
                    value: "application/json".into(),
                },
            ],
            body: r#"{"customer":"O'Brien"}"#.into(),
            body_bytes: 22,
            ..Detail::default()
        };
        assert_eq!(
            curl_command("http://127.0.0.1:8080", &d).unwrap(),
            r#"curl -X POST 'http://127.0.0.1:8080/api/echo?process_ms=5&run=r&rid=1' -H 'content-type: application/json' --data-binary '{"customer":"O'\''Brien"}'"#
        );
        let not_http = Detail {
            start_line: String::new(),
            ..Detail::default()
        };
        assert_eq!(curl_command("http://x", &not_http), None);
    }

    #[test]
    fn anatomy_has_start_line_headers_blank_line_body() {
        let d = Detail {
            start_line: "HTTP/1.1 200 OK".into(),
            headers: vec![Header {
                name: "content-type".into(),
                value: "application/json".into(),
            }],
            body: "{\"a\":1}".into(),
            body_bytes: 7,
            ..Detail::default()
        };
        assert_eq!(
            anatomy(&d),
            "HTTP/1.1 200 OK\ncontent-type: application/json\n\n{\"a\":1}"
        );
        let cut = Detail {
            body_truncated: true,
            body_bytes: 9_999,
            ..d
        };
        assert!(anatomy(&cut).ends_with("the whole body is 9999 bytes)"));
    }

    #[test]
    fn what_was_cut_when_recorded_is_said() {
        let whole = Detail::of_body("ok".into());
        assert_eq!(cut_note(&whole), None);
        let headers = vec![
            Header {
                name: "x-a".into(),
                value: "a".repeat(996),
            };
            8
        ];
        let cut = Detail {
            headers,
            headers_truncated: true,
            headers_bytes: 412_000,
            ..Detail::default()
        };
        assert_eq!(
            cut_note(&cut).unwrap(),
            "headers truncated: 8.0 kB of 412.0 kB kept"
        );
        let both = Detail {
            body: "b".repeat(4096),
            body_bytes: 100_000,
            body_truncated: true,
            ..cut
        };
        assert!(
            cut_note(&both)
                .unwrap()
                .ends_with(" · body truncated: 4.1 kB of 100.0 kB kept")
        );
    }
}
