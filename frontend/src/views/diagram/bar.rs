//! An activation bar: a lifeline working on a request or waiting for its answer, with its phases.

use leptos::prelude::*;

use crate::model::{
    format::human_us,
    labels::Fixed,
    layout::{BarGeo, BarStyle, SegmentGeo},
};

/// An activation bar's left edge and width.
fn bar_x(b: &BarGeo) -> (f64, f64) {
    match b.style {
        BarStyle::Busy => (b.x - 6.0, 12.0),
        BarStyle::Waiting => (b.x - 3.0, 6.0),
    }
}

/// A phase's name and duration, as written beside its bar and in its tooltip.
pub(super) fn phase_title(s: &SegmentGeo) -> String {
    format!("{} {}", s.name, human_us(s.dur_us))
}

/// Where a phase's name is written beside its bar: only on the first lane, and only where the
/// phase is tall enough to carry it.
pub(super) fn phase_label(b: &BarGeo, s: &SegmentGeo) -> Option<Fixed> {
    let (x, w) = bar_x(b);
    (b.lane == 0 && s.y2 - s.y1 >= 12.0).then(|| Fixed {
        x: x + w + 4.0,
        y: (s.y1 + s.y2) / 2.0 + 4.0,
        leftwards: false,
    })
}

/// One activation bar (working on a request, or waiting for its answer) with its phases, each
/// named beside it where there is room and always in its tooltip.
#[component]
pub(super) fn ActivationBar(view: ArcRwSignal<BarGeo>) -> impl IntoView {
    // A handle owned by this bar (the signal itself lives on in the diagram's store).
    let view = RwSignal::from(view);
    // One class string: a separate `class:open` would be lost when the `class` is rewritten.
    let class = move || {
        view.with(|b| {
            format!(
                "bar {}{}",
                match b.style {
                    BarStyle::Busy => "busy",
                    BarStyle::Waiting => "waiting",
                },
                if b.open { " open" } else { "" }
            )
        })
    };
    let x = move || view.with(|b| bar_x(b).0);
    let w = move || view.with(|b| bar_x(b).1);
    let y1 = move || view.with(|b| b.y1);
    let height = move || view.with(|b| (b.y2 - b.y1).max(2.0));
    let title = move || {
        view.with(|b| match b.style {
            BarStyle::Busy => "working on the request",
            BarStyle::Waiting => "waiting for the answer",
        })
    };
    let segments = move || {
        view.with(|b| {
            let (x, w) = bar_x(b);
            b.segments
                .iter()
                .map(|s| {
                    let title = phase_title(s);
                    let named = phase_label(b, s).map(|at| {
                        view! { <text class="phase-label" x=at.x y=at.y>{title.clone()}</text> }
                    });
                    view! {
                        <rect class=format!("phase phase-{}", s.name) x=x y=s.y1 width=w height=(s.y2 - s.y1).max(2.0)>
                            <title>{title}</title>
                        </rect>
                        {named}
                    }
                })
                .collect_view()
        })
    };
    view! {
        <g class=class data-testid="activation">
            <rect x=x y=y1 width=w height=height><title>{title}</title></rect>
            {segments}
        </g>
    }
}
