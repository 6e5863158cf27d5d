//! The sequence diagram: an SVG drawn from the merged trace through the pure [`layout`].
//!
//! Each message is a `<g data-testid="message">` keyed by its stable key, so a message already
//! drawn keeps its element: it animates once, when it first appears (drawn from sender to
//! receiver over its real duration, stretched to at least a quarter second so it can be seen),
//! and afterwards only moves when the layout rescales.

use leptos::prelude::*;
use protocol::trace::{Actor, Kind, Transport};

use crate::{
    layout::{self, BarStyle, Geometry, Options},
    merge::Drawn,
    metrics::{human_bytes, human_us},
};

/// The short text drawn on an arrow; the full label is in `data-label` and the tooltip.
pub fn display_label(d: &Drawn) -> String {
    let mut parts = Vec::new();
    match d.kind {
        Kind::Request => {
            // "POST /api/echo?process_ms=200&run=…" → "POST /api/echo"
            let head = d.label.split('?').next().unwrap_or(&d.label);
            parts.push(head.to_owned());
        }
        Kind::Response => {
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

/// `s` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// How long the first drawing of an arrow takes, in ms: its real duration, at least 250 ms.
fn draw_ms(d: &Drawn) -> f64 {
    d.recv_us
        .map(|r| (r - d.sent_us) as f64 / 1000.0)
        .unwrap_or(250.0)
        .clamp(250.0, 4_000.0)
}

#[component]
pub fn SequenceDiagram(
    trace: Memo<Vec<Drawn>>,
    /// Lifelines drawn even before anything happens, left to right.
    preferred: Vec<Actor>,
    now_us: Signal<i64>,
    selected: RwSignal<Option<String>>,
    /// One row per instant instead of time to scale.
    #[prop(optional, into)]
    compact: Signal<bool>,
) -> impl IntoView {
    let actors = Memo::new(move |_| trace.with(|t| layout::actors(t, &preferred)));
    let geometry: Memo<Geometry> = Memo::new(move |_| {
        trace.with(|t| {
            layout::layout(
                t,
                &actors.get(),
                now_us.get(),
                &Options {
                    compact: compact.get(),
                    ..Options::default()
                },
            )
        })
    });

    let lifelines = move || {
        geometry.with(|g| {
            g.lifelines
                .iter()
                .map(|l| {
                    let name = l.actor.0.clone();
                    let actor = name.clone();
                    view! {
                        <g class="lifeline" data-testid="lifeline" data-actor=actor>
                            <rect class="actor-box" x=l.x - 52.0 y=8 width=104 height=30 rx=6></rect>
                            <text class="actor-name" x=l.x y=28 text-anchor="middle">{name}</text>
                            <line class="lifeline-line" x1=l.x y1=38 x2=l.x y2=g.height - 8.0></line>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    let ticks = move || {
        geometry.with(|g| {
            g.ticks
                .iter()
                .map(|t| {
                    view! {
                        <g class="tick">
                            <line x1=44 y1=t.y x2=g.width y2=t.y></line>
                            <text x=40 y=t.y + 4.0 text-anchor="end">{t.label.clone()}</text>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    // A folded quiet stretch: a band with torn edges and how long it really was.
    let folds = move || {
        geometry.with(|g| {
            g.folds
                .iter()
                .map(|f| {
                    let zigzag = |y: f64| {
                        let mut d = format!("M 44 {y}");
                        let mut x = 44.0;
                        let mut up = true;
                        while x < g.width {
                            x += 8.0;
                            d.push_str(&format!(" L {x} {}", if up { y - 3.0 } else { y + 3.0 }));
                            up = !up;
                        }
                        d
                    };
                    let text = format!("{} quiet, folded", human_us(f.quiet_us));
                    view! {
                        <g class="fold" data-testid="fold" data-quiet-us=f.quiet_us.to_string()>
                            <rect x=44 y=f.y1 + 6.0 width=g.width - 44.0 height=f.y2 - f.y1 - 12.0></rect>
                            <path d=zigzag(f.y1 + 6.0)></path>
                            <path d=zigzag(f.y2 - 6.0)></path>
                            <text class="fold-label" x=g.width - 8.0 y=(f.y1 + f.y2) / 2.0 + 4.0 text-anchor="end">{text}</text>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    let bars = move || {
        geometry.with(|g| {
            g.bars
                .iter()
                .map(|b| {
                    // One class string: this list is rebuilt in place, where a separate
                    // `class:open` would be lost when the element's `class` is rewritten.
                    let class = format!(
                        "bar {}{}",
                        match b.style {
                            BarStyle::Busy => "busy",
                            BarStyle::Waiting => "waiting",
                        },
                        if b.open { " open" } else { "" }
                    );
                    let (x, w) = match b.style {
                        BarStyle::Busy => (b.x - 6.0, 12.0),
                        BarStyle::Waiting => (b.x - 3.0, 6.0),
                    };
                    let height = (b.y2 - b.y1).max(2.0);
                    let segments = b
                        .segments
                        .iter()
                        .map(|s| {
                            let title = format!("{} {}", s.name, human_us(s.dur_us));
                            // Named beside the bar where there is room; always in the tooltip.
                            let named = (b.lane == 0 && s.y2 - s.y1 >= 12.0).then(|| {
                                view! {
                                    <text class="phase-label" x=x + w + 4.0 y=(s.y1 + s.y2) / 2.0 + 4.0>{title.clone()}</text>
                                }
                            });
                            view! {
                                <rect class=format!("phase phase-{}", s.name) x=x y=s.y1 width=w height=(s.y2 - s.y1).max(2.0)>
                                    <title>{title}</title>
                                </rect>
                                {named}
                            }
                        })
                        .collect_view();
                    let title = match b.style {
                        BarStyle::Busy => "working on the request",
                        BarStyle::Waiting => "waiting for the answer",
                    };
                    view! {
                        <g class=class data-testid="activation">
                            <rect x=x y=b.y1 width=w height=height><title>{title}</title></rect>
                            {segments}
                        </g>
                    }
                })
                .collect_view()
        })
    };

    view! {
        <div class="diagram-scroll" tabindex="0" role="region" aria-label="Sequence diagram">
            <svg
                data-testid="sequence-diagram"
                class="sequence-diagram"
                role="group"
                aria-label="Sequence diagram of this run"
                width=move || geometry.with(|g| g.width)
                height=move || geometry.with(|g| g.height)
                viewBox=move || geometry.with(|g| format!("0 0 {} {}", g.width, g.height))
            >
                <defs>
                    <marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="head"></path>
                    </marker>
                    <marker id="head-open" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10" class="head-open"></path>
                    </marker>
                </defs>
                {ticks}
                {lifelines}
                {folds}
                {bars}
                <For each=move || trace.get() key=|d| d.key.clone() let:d>
                    <MessageArrow d=d geometry=geometry trace=trace selected=selected/>
                </For>
                <Show when=move || trace.with(Vec::is_empty)>
                    <text class="empty-hint" x=move || geometry.with(|g| g.width / 2.0) y=120 text-anchor="middle">
                        "Press Run: each real exchange will be drawn here as it happens."
                    </text>
                </Show>
            </svg>
            <Legend/>
        </div>
    }
}

/// What the line styles and colours mean (kind is shown by line style, not colour alone).
#[component]
fn Legend() -> impl IntoView {
    view! {
        <div class="legend" aria-label="Legend">
            <span><span class="dash"></span>"request"</span>
            <span><span class="dash response"></span>"response"</span>
            <span><span class="dash error"></span>"error (4xx/5xx)"</span>
            // Colours come from classes, not `style` attributes: the Content-Security-Policy
            // allows no inline style (see backend/src/security.rs).
            <span><span class="swatch busy"></span>"server busy"</span>
            <span><span class="swatch phase-parse"></span>"parse"</span>
            <span><span class="swatch phase-process"></span>"process"</span>
            <span><span class="swatch phase-serialize"></span>"serialize"</span>
            <span><span class="swatch queued"></span>"queued"</span>
            <span><span class="swatch waiting"></span>"browser waiting"</span>
            <span>"Time runs down, to scale; gaps under one row are stretched so labels stay readable, long quiet stretches folded (torn band)."</span>
        </div>
    }
}

#[component]
fn MessageArrow(
    d: Drawn,
    geometry: Memo<Geometry>,
    trace: Memo<Vec<Drawn>>,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let key = d.key.clone();
    let key_for_geo = key.clone();
    let arrow = Memo::new(move |_| {
        geometry.with(|g| g.arrows.iter().find(|a| a.key == key_for_geo).cloned())
    });
    let key_for_now = key.clone();
    // The message as merged now: transport, label and times may improve as the other half arrives.
    let current =
        Memo::new(move |_| trace.with(|t| t.iter().find(|m| m.key == key_for_now).cloned()));
    let grow = {
        let g = geometry
            .with_untracked(|g| g.arrows.iter().find(|a| a.key == key).map(|a| a.x2 >= a.x1));
        if g.unwrap_or(true) {
            "grow-right"
        } else {
            "grow-left"
        }
    };
    // Set through the CSSOM (`style:`), which the Content-Security-Policy allows, not as a
    // `style` attribute, which it refuses.
    let duration = format!("{:.0}ms", draw_ms(&d));
    let kind = d.kind.as_str();
    let key_click = key.clone();
    let key_sel = key.clone();
    let select = move || selected.set(Some(key_click.clone()));
    let select_key = select.clone();
    let x1 = move || arrow.with(|a| a.as_ref().map(|a| a.x1).unwrap_or(0.0));
    let y1 = move || arrow.with(|a| a.as_ref().map(|a| a.y1).unwrap_or(0.0));
    let x2 = move || arrow.with(|a| a.as_ref().map(|a| a.x2).unwrap_or(0.0));
    let y2 = move || arrow.with(|a| a.as_ref().map(|a| a.y2).unwrap_or(0.0));
    let self_message = d.from == d.to;
    let label = move || current.with(|c| c.as_ref().map(display_label).unwrap_or_default());
    let full = move || current.with(|c| c.as_ref().map(|c| c.label.clone()).unwrap_or_default());
    let is_error = move || {
        current.with(|c| {
            c.as_ref()
                .is_some_and(|c| c.status.is_some_and(|s| s >= 400) || c.kind == Kind::Note)
        })
    };
    let in_flight = move || arrow.with(|a| a.as_ref().is_some_and(|a| a.in_flight));
    let path = move || {
        if self_message {
            format!("M {} {} h 36 v 14 h -30", x1(), y1())
        } else {
            format!("M {} {} L {} {}", x1(), y1(), x2(), y2())
        }
    };
    // A note on a lifeline near the right edge is written to its left, so it is not cut off.
    let near_right = move || self_message && geometry.with(|g| x1() > g.width * 0.6);
    let text_x = move || {
        if near_right() {
            x1() - 8.0
        } else if self_message {
            x1() + 42.0
        } else {
            (x1() + x2()) / 2.0
        }
    };
    let text_y = move || {
        if self_message {
            y1() + 4.0
        } else {
            (y1() + y2()) / 2.0 - 7.0
        }
    };
    let anchor = move || {
        if near_right() {
            "end"
        } else if self_message {
            "start"
        } else {
            "middle"
        }
    };
    view! {
        <g
            data-testid="message"
            class=format!("message kind-{kind}")
            class:error=is_error
            class:in-flight=in_flight
            class:selected=move || selected.with(|s| s.as_deref() == Some(key_sel.as_str()))
            data-kind=kind
            data-from=d.from.0.clone()
            data-to=d.to.0.clone()
            data-transport=move || current.with(|c| c.as_ref().map(|c| c.transport.as_str()).unwrap_or(""))
            data-label=full
            tabindex="0"
            role="button"
            aria-label=move || format!("{}: {}", kind, full())
            on:click=move |_| select()
            on:keydown=move |ev| {
                if ev.key() == "Enter" || ev.key() == " " {
                    ev.prevent_default();
                    select_key();
                }
            }
        >
            <title>{full}</title>
            <path class="hit" d=path></path>
            <g class=format!("draw {grow}") style:animation-duration=duration>
                <path class="line" d=path marker-end=if kind == "response" { "url(#head-open)" } else { "url(#head)" }></path>
                <text class="label" x=text_x y=text_y text-anchor=anchor>{label}</text>
            </g>
        </g>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{merge, tests::exchange};

    #[test]
    fn labels_are_short_and_carry_size_and_time() {
        let (mut b, s) = exchange("1", 0, 50_000, 0);
        b[0].label = "POST /api/echo?process_ms=50&run=x&rid=1".into();
        b[1].label = "200 OK /api/echo?process_ms=50&run=x&rid=1".into();
        b[1].bytes = Some(2_300);
        let drawn = merge(&b, &s, None);
        assert_eq!(display_label(&drawn[0]), "POST /api/echo · 1 ms");
        assert_eq!(display_label(&drawn[1]), "200 OK · 2.3 kB · 1 ms");
    }
}
