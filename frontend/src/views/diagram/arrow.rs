//! One message's arrow: what it shows, worked out from the merged message and its place in the
//! layout, and the arrow itself, animated once when it first appears, unless
//! [`MAX_DRAWING`] arrows are being drawn already (then it appears drawn).

use std::cell::RefCell;

use leptos::prelude::*;
use protocol::trace::Kind;

use super::keyboard;
use crate::model::{
    format::display_label,
    labels::{self, Fixed, Labelled, Spot},
    layout::ArrowGeo,
    merge::Drawn,
};

/// How long the first drawing of an arrow takes, in ms: its real duration, at least 250 ms.
fn draw_ms(d: &Drawn) -> f64 {
    d.recv_us
        .map(|r| (r - d.sent_us) as f64 / 1000.0)
        .unwrap_or(250.0)
        .clamp(250.0, 4_000.0)
}

/// Arrows whose drawing-in animation may run at once on a page. Each animated arrow is painted
/// anew at every frame until it is drawn (a clip-path animation is not the compositor's); with
/// 50 messages a second arriving that was a dozen repaints a frame and cost frames. Past this,
/// a new arrow appears drawn at once: too many arrive too fast to follow one by one anyway.
pub const MAX_DRAWING: usize = 4;

thread_local! {
    /// When each animation running on the page ends (`performance.now()`, ms).
    static DRAWING_UNTIL: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Whether an arrow whose animation would end `left_ms` from now may animate: there is room
/// among the animations still running (the room is then taken until it ends).
fn may_draw(left_ms: f64) -> bool {
    if left_ms <= 0.0 {
        return true; // already drawn: nothing left to paint
    }
    let now = crate::recording::recorder::perf_now_ms();
    DRAWING_UNTIL.with_borrow_mut(|until| {
        until.retain(|&end| end > now);
        let room = until.len() < MAX_DRAWING;
        if room {
            until.push(now + left_ms);
        }
        room
    })
}

/// What one arrow shows: where it is and what it says.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ArrowView {
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
    /// Still travelling: drawn to where it would be now.
    in_flight: bool,
    /// The short text on the arrow ([`display_label`]) and the full label.
    label: String,
    full: String,
    transport: &'static str,
    /// An error status or a note: drawn in the error style.
    error: bool,
    /// A note on a lifeline near the right edge, written to its left so it is not cut off.
    near_right: bool,
    /// Where its label is written: beside a loop, or along the arrow ([`labels::place`]).
    label_x: f64,
    label_y: f64,
}

/// A message to itself is drawn as a loop with its label beside it, to the loop's left near the
/// right edge (so it is not cut off).
fn loop_label(d: &Drawn, a: &ArrowGeo, width: f64) -> Option<Fixed> {
    (d.from == d.to).then(|| {
        let leftwards = a.x1 > width * 0.6;
        Fixed {
            x: if leftwards { a.x1 - 8.0 } else { a.x1 + 42.0 },
            y: a.y1 + 4.0,
            leftwards,
        }
    })
}

/// The arrow for `d` at `a` with its label, for [`labels::place`].
pub(super) fn labelled(d: &Drawn, a: &ArrowGeo, width: f64) -> Labelled {
    let label = display_label(d);
    Labelled {
        x1: a.x1,
        y1: a.y1,
        x2: a.x2,
        y2: a.y2,
        chars: label.chars().count(),
        short_chars: labels::short_form(&label).chars().count(),
        fixed: loop_label(d, a, width),
    }
}

/// The message `d` as merged now (transport, label and times may improve as the other half
/// arrives) at its place in the layout `a` of a diagram `width` wide.
pub(super) fn arrow_view(d: &Drawn, a: &ArrowGeo, width: f64, label_at: Spot) -> ArrowView {
    let fixed = loop_label(d, a, width);
    let label = display_label(d);
    let (label_x, label_y) = match fixed {
        Some(f) => (f.x, f.y),
        None => labels::anchor(a.x1, a.y1, a.x2, a.y2, label_at),
    };
    ArrowView {
        x1: a.x1,
        y1: a.y1,
        x2: a.x2,
        y2: a.y2,
        in_flight: a.in_flight,
        label: label_at.text(&label).to_owned(),
        full: d.label.clone(),
        transport: d.transport.as_str(),
        error: d.status.is_some_and(|s| s >= 400) || d.kind == Kind::Note,
        near_right: fixed.is_some_and(|f| f.leftwards),
        label_x,
        label_y,
    }
}

#[component]
pub(super) fn MessageArrow(
    d: Drawn,
    view: ArcRwSignal<ArrowView>,
    /// How long ago the message first appeared, in ms: its animation starts that far in.
    age_ms: f64,
    selected: RwSignal<Option<String>>,
    is_selected: Selector<Option<String>>,
    /// The message that has the keyboard focus (kept drawn while it has).
    focused: RwSignal<Option<String>>,
) -> impl IntoView {
    let key = d.key.clone();
    let grow = if view.with_untracked(|a| a.x2 >= a.x1) {
        "grow-right"
    } else {
        "grow-left"
    };
    // Set through the CSSOM (`style:`), which the Content-Security-Policy allows, not as a
    // `style` attribute, which it refuses.
    let draw = draw_ms(&d);
    let animated = may_draw(draw - age_ms.max(0.0));
    let duration = format!("{draw:.0}ms");
    let delay = format!("{:.0}ms", -age_ms.max(0.0));
    let kind = d.kind.as_str();
    let key_click = key.clone();
    let select = move || selected.set(Some(key_click.clone()));
    let select_key = select.clone();
    let (key_focus, key_blur) = (key.clone(), key.clone());
    let self_message = d.from == d.to;
    // A handle owned by this arrow (the signal itself lives on in the diagram's store).
    let view = RwSignal::from(view);
    let x1 = move || view.with(|a| a.x1);
    let y1 = move || view.with(|a| a.y1);
    let x2 = move || view.with(|a| a.x2);
    let y2 = move || view.with(|a| a.y2);
    let label = move || view.with(|a| a.label.clone());
    let full = move || view.with(|a| a.full.clone());
    let is_error = move || view.with(|a| a.error);
    let in_flight = move || view.with(|a| a.in_flight);
    let near_right = move || view.with(|a| a.near_right);
    let transport = move || view.with(|a| a.transport);
    let path = move || {
        if self_message {
            format!("M {} {} h 36 v 14 h -30", x1(), y1())
        } else {
            format!("M {} {} L {} {}", x1(), y1(), x2(), y2())
        }
    };
    let text_x = move || view.with(|a| a.label_x);
    let text_y = move || view.with(|a| a.label_y);
    // No room even for the short form: a mark says there is a label (tooltip, inspector).
    let is_mark = move || view.with(|a| a.label == labels::MARK);
    let anchor = move || {
        if near_right() {
            "end"
        } else if self_message {
            "start"
        } else {
            "middle"
        }
    };
    let key_sel = Some(key.clone());
    let selection = is_selected.clone();
    on_cleanup(move || is_selected.remove(&Some(key)));
    let aria = move || format!("{}: {}", kind, full());
    view! {
        <g
            data-testid="message"
            class=format!("message kind-{kind}")
            class:error=is_error
            class:in-flight=in_flight
            class:selected=move || selection.selected(&key_sel)
            data-kind=kind
            data-from=d.from.0.clone()
            data-to=d.to.0.clone()
            data-transport=transport
            data-label=full
            tabindex="0"
            role="button"
            aria-label=aria
            on:click=move |_| select()
            on:focus=move |_| keyboard::took_focus(focused, &key_focus)
            on:blur=move |_| keyboard::lost_focus(focused, &key_blur)
            on:keydown=move |ev| {
                if keyboard::selects(&ev) {
                    ev.prevent_default();
                    select_key();
                }
            }
        >
            <title>{full}</title>
            <path class="hit" d=path></path>
            <g class=if animated { format!("draw {grow}") } else { String::new() }
                style:animation-duration=duration style:animation-delay=delay>
                <path class="line" d=path marker-end=if kind == "response" { "url(#head-open)" } else { "url(#head)" }></path>
                <text class="label" class:mark=is_mark x=text_x y=text_y text-anchor=anchor>{label}</text>
            </g>
        </g>
    }
}
