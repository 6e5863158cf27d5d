//! Frame throttling: the diagram is redrawn at most once per animation frame, however many
//! messages and clock ticks arrive in between. A stream brings both halves of each message
//! separately, so redrawing on each would lay the whole diagram out several times per frame.
//!
//! Every diagram on the page shares one animation-frame callback, which first runs the reads
//! asked for with [`before_next_frame`] (measuring a scroll box, scrolling it) and only then
//! redraws the diagrams. The page is then laid out once per frame however many diagrams it
//! shows: with a callback each, every diagram measured its box after the one before had
//! changed the DOM, and the compare page's four lanes made the browser lay it out four times a
//! frame (290–360 ms of forced style and layout in a 3 s run; 15–20 ms now).

use std::{cell::RefCell, mem};

use leptos::prelude::*;

use crate::views::playback::Shown;

/// What the page's next animation frame does, and whether it has been asked for.
#[derive(Default)]
struct Next {
    reads: Vec<Box<dyn FnOnce()>>,
    redraws: Vec<Frames>,
    requested: bool,
}

thread_local! {
    static NEXT: RefCell<Next> = RefCell::default();
}

/// Runs `read` at the start of the next animation frame, before any diagram is redrawn: the
/// page is then laid out as the last frame drew it, so measuring costs no extra layout, and
/// scrolling does not make the browser lay out again before it reads the next box.
pub(super) fn before_next_frame(read: impl FnOnce() + 'static) {
    NEXT.with_borrow_mut(|n| n.reads.push(Box::new(read)));
    ask_for_frame();
}

/// [`before_next_frame`] unless `pending` says a read is waiting already: at most one waits.
/// `pending` is cleared when the read runs.
pub(super) fn once_before_next_frame(pending: StoredValue<bool>, read: impl FnOnce() + 'static) {
    if pending.get_value() {
        return;
    }
    pending.set_value(true);
    before_next_frame(move || {
        pending.try_set_value(false);
        read();
    });
}

fn ask_for_frame() {
    let ask = NEXT.with_borrow_mut(|n| !mem::replace(&mut n.requested, true));
    if ask {
        request_animation_frame(on_frame);
    }
}

fn on_frame() {
    let (reads, redraws) = NEXT.with_borrow_mut(|n| {
        n.requested = false;
        (mem::take(&mut n.reads), mem::take(&mut n.redraws))
    });
    for read in reads {
        read();
    }
    for frames in redraws {
        frames.pending.try_set_value(false);
        frames.count.try_update(|n| *n += 1);
    }
}

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
        NEXT.with_borrow_mut(|n| n.redraws.push(self));
        ask_for_frame();
    }
}
