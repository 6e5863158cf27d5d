//! The lifelines' heads: each actor's name in a box, at the top of the drawing and again in the
//! band pinned to the top of the scroll box.

use leptos::prelude::*;

use crate::model::layout::{self, LifelineGeo};

/// Height of the band the lifelines' heads are drawn in, at the top of the drawing.
pub(super) const HEADS_HEIGHT: f64 = 44.0;

/// A lifeline's head: its actor's name in a box.
#[component]
pub(super) fn ActorHead(l: LifelineGeo) -> impl IntoView {
    view! {
        <rect class="actor-box" x=l.x - layout::HEAD_WIDTH / 2.0 y=8 width=layout::HEAD_WIDTH height=30 rx=6></rect>
        <text class="actor-name" x=l.x y=28 text-anchor="middle">{l.actor.0.clone()}</text>
    }
}
