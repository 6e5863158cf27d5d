//! The lifelines' heads: each actor's name in a box, at the top of the drawing and again in the
//! band pinned to the top of the scroll box.

use leptos::prelude::*;

use crate::model::layout::{self, LifelineGeo};

/// Height of the band the lifelines' heads are drawn in, at the top of the drawing.
pub(super) const HEADS_HEIGHT: f64 = 44.0;

/// Room for the name inside the box, and the width of one character of it, near enough.
const NAME_ROOM: f64 = layout::HEAD_WIDTH - 10.0;
const CHAR_WIDTH: f64 = 7.0;

/// The name a head shows: an origin (a HAR's lifeline) without its `http://`, which says
/// little beside a port; the whole name is the head's tooltip.
fn shown_name(actor: &str) -> &str {
    actor.strip_prefix("http://").unwrap_or(actor)
}

/// A lifeline's head: its actor's name in a box, squeezed into it when longer than the box.
#[component]
pub(super) fn ActorHead(l: LifelineGeo) -> impl IntoView {
    let name = shown_name(&l.actor.0).to_owned();
    let squeezed = (name.chars().count() as f64 * CHAR_WIDTH > NAME_ROOM).then_some(NAME_ROOM);
    view! {
        <g class="actor-head">
            <title>{l.actor.0.clone()}</title>
            <rect class="actor-box" x=l.x - layout::HEAD_WIDTH / 2.0 y=8 width=layout::HEAD_WIDTH height=30 rx=6></rect>
            <text class="actor-name" x=l.x y=28 text-anchor="middle"
                textLength=squeezed lengthAdjust=squeezed.map(|_| "spacingAndGlyphs")>{name}</text>
        </g>
    }
}
