//! Scroll-follow: the diagram's scroll box brings into view what the reader is after: a message
//! selected elsewhere (the waterfall, the keyboard), the latest row after the playhead moved, and
//! while the run is live its end, like a log being tailed.

use leptos::prelude::*;

use super::{
    frame::{Frames, before_next_frame, once_before_next_frame},
    scroll_box::ScrollBox,
};
use crate::model::{layout::Geometry, window as windowing};

/// How far below the view (CSS px) the end followed at the frame before may be and still count
/// as followed: the box was scrolled to show it, so only rounding moves it; a reader's scroll
/// (a wheel step is about 100 px) moves it further.
const FOLLOW_SLACK_PX: f64 = 24.0;

/// Keeps `scroll_box` following the `selected` message, the latest row when `reveal_latest`
/// changes, and the end of a `growing` run; nothing when the diagram is drawn `whole`.
pub(super) fn follow(
    scroll_box: ScrollBox,
    frames: Frames,
    geometry: Memo<Geometry>,
    selected: RwSignal<Option<String>>,
    reveal_latest: Signal<u64>,
    growing: Signal<bool>,
    whole: bool,
) {
    // A message selected elsewhere (the waterfall, the keyboard) is scrolled to.
    Effect::new(move |_| {
        let Some(key) = selected.get() else { return };
        if whole {
            return;
        }
        let row = geometry
            .with_untracked(|g| g.arrows.iter().find(|a| a.key == key).map(|a| (a.y1, a.y2)));
        if let Some((y1, y2)) = row {
            scroll_box.scroll_to_show(y1, y2);
        }
    });
    // A moved playhead: once the diagram is drawn at the new moment (the frame after next, when
    // its new height is in the DOM), its latest row is scrolled into view.
    let reveal_pending = StoredValue::new(false);
    Effect::new(move |was: Option<u64>| {
        let now = reveal_latest.get();
        if !whole && was.is_some_and(|was| was != now) {
            reveal_pending.set_value(true);
            frames.request();
        }
        now
    });
    Effect::new(move |_| {
        frames.track();
        if !reveal_pending.get_value() {
            return;
        }
        reveal_pending.set_value(false);
        before_next_frame(move || {
            let row = geometry.try_with_untracked(|g| windowing::latest_row(&g.arrows));
            if let Some(Some((y1, y2))) = row {
                scroll_box.scroll_to_show(y1, y2);
            }
        });
    });

    // While the run is live the box follows its end, like a log being tailed: when the end drawn
    // at the frame before was in view (or it is the run's first), the new end is scrolled into
    // view. A reader who scrolled away from the end, to read an earlier exchange, stays there
    // until they scroll back to it. Checked at the start of the next frame, when what this frame
    // drew is laid out (`frame`); one check at a time, since a hidden page redraws without
    // frames and would otherwise queue one per redraw until it is shown again.
    let followed_end = StoredValue::new(None::<f64>);
    let check_pending = StoredValue::new(false);
    Effect::new(move |_| {
        frames.track();
        if whole || !growing.get_untracked() {
            followed_end.set_value(None);
            return;
        }
        once_before_next_frame(check_pending, move || {
            follow_end(scroll_box, geometry, followed_end)
        });
    });
}

/// Scrolls the latest row into view if the end followed before is still in view.
fn follow_end(
    scroll_box: ScrollBox,
    geometry: Memo<Geometry>,
    followed_end: StoredValue<Option<f64>>,
) {
    let Some(Some((y1, y2))) = geometry.try_with_untracked(|g| windowing::latest_row(&g.arrows))
    else {
        return;
    };
    let Some(v) = scroll_box.measure() else {
        return;
    };
    let following = followed_end
        .try_get_value()
        .flatten()
        .is_none_or(|was| windowing::end_in_view(&v, was, FOLLOW_SLACK_PX));
    if following {
        scroll_box.scroll_to_show(y1, y2);
    }
    followed_end.try_set_value(Some(y2));
}
