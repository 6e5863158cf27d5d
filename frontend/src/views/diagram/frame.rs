//! Frame throttling: the diagram is redrawn at most once per animation frame, however many
//! messages and clock ticks arrive in between. A stream brings both halves of each message
//! separately, so redrawing on each would lay the whole diagram out several times per frame.

use leptos::prelude::*;

use crate::views::playback::Shown;

/// The diagram's frames: a count that moves once per animation frame in which something changed.
/// `Copy`: both fields are reactive handles.
#[derive(Clone, Copy)]
pub(super) struct Frames {
    count: RwSignal<u64>,
    /// A frame is requested and has not come yet.
    pending: StoredValue<bool>,
}

impl Frames {
    /// Frames that come after each change to `trace`, `now_us` or `compact`.
    pub(super) fn new(trace: Shown, now_us: Signal<i64>, compact: Signal<bool>) -> Frames {
        let frames = Frames {
            count: RwSignal::new(0u64),
            pending: StoredValue::new(false),
        };
        Effect::new(move |_| {
            trace.track();
            now_us.track();
            compact.track();
            frames.request();
        });
        frames
    }

    /// Subscribes the calling memo or effect to the frames.
    pub(super) fn track(self) {
        self.count.track();
    }

    /// Asks for a frame, unless one is asked for already.
    pub(super) fn request(self) {
        if self.pending.get_value() {
            return;
        }
        // A hidden page paints no frames: it is brought up to date at once.
        if document().hidden() {
            self.count.update(|n| *n += 1);
            return;
        }
        self.pending.set_value(true);
        request_animation_frame(move || {
            self.pending.try_set_value(false);
            self.count.try_update(|n| *n += 1);
        });
    }
}
