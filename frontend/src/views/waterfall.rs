//! The timing waterfall: one row per HTTP exchange of the run, like the Network tab's Timing view
//! but for the whole run at once. The browser's phases come from Resource Timing (queued,
//! connecting, stalled, waiting for the first byte, download); the server's phases from its
//! `Server-Timing` header, mapped onto the browser's clock and drawn inside the wait they explain.
//! `rows` is pure and unit-tested; `Waterfall` draws them.

use std::collections::HashMap;

use leptos::prelude::*;
use protocol::trace::{Actor, Kind, Phase, RequestId, Transport};

use super::playback::Shown;
use crate::model::{
    format::{display_label, human_us, truncate},
    merge::Drawn,
    metrics::is_client,
    phases::{BROWSER_PHASES, HAR_PHASES, is_browser_phase},
};

/// One HTTP exchange, start to finish, on the browser's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The request's key in the trace, to select it in the diagram.
    pub key: String,
    pub label: String,
    /// Full request label (the URL), for the tooltip.
    pub url: String,
    pub transport: Transport,
    pub start_us: i64,
    pub end_us: i64,
    pub browser: Vec<Phase>,
    pub server: Vec<Phase>,
}

/// The run's finished HTTP exchanges in the order they started.
pub fn rows(trace: &[Drawn]) -> Vec<Row> {
    // Each answer by its request id and the client it went to: one pass, not one per request.
    let answers: HashMap<(&RequestId, &Actor), &Drawn> = trace
        .iter()
        .filter(|d| d.kind == Kind::Response)
        .filter_map(|d| Some(((d.request_id.as_ref()?, &d.to), d)))
        .collect();
    let mut out: Vec<Row> = trace
        .iter()
        .filter(|d| d.kind == Kind::Request && is_client(&d.from))
        .filter(|d| matches!(d.transport, Transport::Http1 | Transport::H2))
        .filter_map(|req| {
            let resp = answers.get(&(req.request_id.as_ref()?, &req.from))?;
            let end_us = resp.recv_us?;
            let browser = resp
                .detail
                .phases
                .iter()
                .filter(|p| is_browser_phase(&p.name) && p.dur_us > 0)
                .cloned()
                .collect();
            Some(Row {
                key: req.key.clone(),
                label: display_label(req),
                url: req.label.clone(),
                transport: resp.transport,
                start_us: req.sent_us,
                end_us: end_us.max(req.sent_us),
                browser,
                server: resp.server_phases.clone(),
            })
        })
        .collect();
    out.sort_by_key(|r| r.start_us);
    out
}

/// Rows drawn at most.
pub const MAX_ROWS: usize = 400;
const WIDTH: f64 = 760.0;
const LABEL_W: f64 = 230.0;
const ROW_H: f64 = 22.0;
const TOP: f64 = 20.0;
/// Width of the time part of a row, right of the labels and left of the totals.
const TIME_W: f64 = WIDTH - LABEL_W - 70.0;

/// The waterfall of the shown trace; clicking a row selects its request in the diagram.
#[component]
pub fn Waterfall(
    trace: Shown,
    selected: RwSignal<Option<String>>,
    /// Unfolded at first.
    open: bool,
) -> impl IntoView {
    // A big trace (a HAR file of thousands of entries) draws its first rows only: every row is
    // a few SVG elements, and thousands of them froze the page for seconds.
    let every = Memo::new(move |_| trace.with(rows));
    let all =
        Memo::new(move |_| every.with(|r| r.iter().take(MAX_ROWS).cloned().collect::<Vec<_>>()));
    let more = move || every.with(Vec::len).saturating_sub(MAX_ROWS);
    let end = Memo::new(move |_| {
        all.with(|rows| rows.iter().map(|r| r.end_us).max().unwrap_or(1).max(1))
    });
    // Times are drawn in µs inside each row's time group, which the style sheet scales by this
    // one property: a run that grows rescales every row with one style change, and only a new
    // or changed row is built (each row was rebuilt on every message: the page fell behind its
    // own uploads).
    let scale = move || format!("{}", TIME_W / end.get() as f64);
    let height = move || TOP + ROW_H * all.with(Vec::len) as f64 + 6.0;
    let indexed = move || all.get().into_iter().enumerate().collect::<Vec<_>>();
    let drawing = move || {
        view! {
            <svg class="waterfall-svg" width=WIDTH height=height viewBox=move || format!("0 0 {WIDTH} {}", height())
                style:--wf-scale=scale role="img"
                aria-label=move || format!("Timing waterfall of {} requests", all.with(Vec::len))>
                <text class="wf-axis" x=LABEL_W y=12>"0"</text>
                <text class="wf-axis" x=LABEL_W + TIME_W y=12 text-anchor="end">{move || human_us(end.get())}</text>
                <For each=indexed key=row_key let:((i, r))>
                    <WaterfallRow row=r y=TOP + ROW_H * i as f64 selected=selected/>
                </For>
            </svg>
        }
    };
    view! {
        <Show when=move || all.with(|r| !r.is_empty())>
            <details class="waterfall" data-testid="waterfall" open=open>
                <summary>{move || if std::ptr::eq(legend(&all.read()), &HAR_PHASES) {
                    "Timing waterfall (the HAR file's timings)"
                } else {
                    "Timing waterfall (Resource Timing + Server-Timing)"
                }}</summary>
                <div class="waterfall-scroll" tabindex="0" role="region" aria-label="Timing waterfall">{drawing}</div>
                <Show when=move || more() != 0>
                    <p class="hint" data-testid="waterfall-more">
                        {move || format!("The first {MAX_ROWS} requests are drawn; {} more are not (filter to see them).", more())}
                    </p>
                </Show>
                <div class="legend" aria-label="Waterfall legend">
                    {move || legend(&all.read())
                        .iter()
                        .map(|p| {
                            let class = format!("swatch wf-{}", p.replace(' ', "-"));
                            view! { <span><span class=class></span>{*p}</span> }
                        })
                        .collect_view()}
                    <span><span class="swatch thin phase-process"></span>"server's own phases (Server-Timing), inside the wait"</span>
                </div>
            </details>
        </Show>
    }
}

/// The phase names the rows use: a HAR file's, or Resource Timing's.
fn legend(rows: &[Row]) -> &'static [&'static str] {
    let from_har = rows.iter().any(|r| {
        r.browser
            .iter()
            .any(|p| HAR_PHASES.contains(&p.name.as_str()))
    });
    if from_har {
        &HAR_PHASES
    } else {
        &BROWSER_PHASES
    }
}

/// What makes a row's drawing: its place, and what it shows (the server's phases may arrive after
/// the row first appears).
fn row_key((i, r): &(usize, Row)) -> (usize, String, usize, usize, i64) {
    (*i, r.key.clone(), r.browser.len(), r.server.len(), r.end_us)
}

/// One exchange: its label, its phases on the run's time scale, its total; a click selects it.
#[component]
fn WaterfallRow(row: Row, y: f64, selected: RwSignal<Option<String>>) -> impl IntoView {
    let total = row.end_us - row.start_us;
    let browser = row
        .browser
        .iter()
        .map(|p| {
            let class = format!("wf-{}", p.name.replace(' ', "-"));
            view! {
                <rect class=class data-phase=p.name.clone() x=p.start_us y=5 width=p.dur_us height=12>
                    <title>{format!("{} {}", p.name, human_us(p.dur_us))}</title>
                </rect>
            }
        })
        .collect_view();
    let server = row
        .server
        .iter()
        .map(|p| {
            view! {
                <rect class=format!("wf-server phase phase-{}", p.name) data-phase=format!("server {}", p.name)
                    x=p.start_us y=8 width=p.dur_us height=6>
                    <title>{format!("server: {} {}", p.name, human_us(p.dur_us))}</title>
                </rect>
            }
        })
        .collect_view();
    let key = row.key.clone();
    let key_sel = row.key.clone();
    view! {
        <g class="wf-row" data-testid="waterfall-row" data-label=row.url.clone()
            data-total-us=total.to_string()
            class:selected=move || selected.with(|s| s.as_deref() == Some(key_sel.as_str()))
            on:click=move |_| selected.set(Some(key.clone()))>
            <title>{format!("{} ({}) {}", row.url, row.transport.as_str(), human_us(total))}</title>
            <rect class="wf-band" x=0 y=y width=WIDTH height=ROW_H></rect>
            <text class="wf-label" x=4 y=y + 15.0>{truncate(&row.label, 34)}</text>
            <g transform=format!("translate({LABEL_W} {y})")>
                <g class="wf-time">
                    <line class="wf-span" x1=row.start_us y1=11 x2=row.end_us y2=11></line>
                    {browser}
                    {server}
                </g>
            </g>
            <text class="wf-total" x=WIDTH - 4.0 y=y + 15.0 text-anchor="end">{human_us(total)}</text>
        </g>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        merge::{merge, tests::exchange},
        phases::{DOWNLOAD, HANDED_TO_PAGE, QUEUED, WAITING},
    };
    use protocol::trace::Detail;

    fn phase(name: &str, start_us: i64, dur_us: i64) -> Phase {
        Phase {
            name: name.into(),
            start_us,
            dur_us,
        }
    }

    #[test]
    fn each_exchange_is_a_row_with_browser_and_server_phases() {
        let (mut b, mut s) = exchange("1", 0, 100_000, 0);
        let (b2, s2) = exchange("2", 5_000, 10_000, 0);
        b[1].detail = Some(Detail {
            phases: vec![
                phase(QUEUED, 0, 200),
                phase("connecting", 200, 0),
                phase(WAITING, 200, 101_000),
                phase(DOWNLOAD, 101_200, 800),
                phase(HANDED_TO_PAGE, 102_500, 0),
            ],
            ..Default::default()
        });
        s[1].detail = Some(Detail {
            phases: vec![phase("process", 1_000, 100_000)],
            ..Default::default()
        });
        b.extend(b2);
        s.extend(s2);
        let rows = rows(&merge(&b, &s, None));
        assert_eq!(rows.len(), 2);
        let names: Vec<&str> = rows[0].browser.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [QUEUED, WAITING, DOWNLOAD],
            "empty and non-network phases left out"
        );
        assert_eq!(rows[0].server.len(), 1);
        assert_eq!((rows[0].start_us, rows[0].end_us), (0, 102_000));
        assert_eq!(
            rows[1].start_us, 5_000,
            "rows in the order requests started"
        );
    }

    #[test]
    fn unanswered_requests_have_no_row_yet() {
        let (b, s) = exchange("1", 0, 100_000, 0);
        assert!(rows(&merge(&b[..1], &s[..1], None)).is_empty());
    }
}
