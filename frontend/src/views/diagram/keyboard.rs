//! The diagram from the keyboard: every arrow is a button in the tab order. Enter or Space
//! selects the focused arrow, as a click does, and the arrow that has the focus stays drawn
//! while it has it, even scrolled out of the window.

use leptos::prelude::*;

/// Whether `ev` selects the focused arrow: Enter or Space, as on any button.
pub(super) fn selects(ev: &web_sys::KeyboardEvent) -> bool {
    ev.key() == "Enter" || ev.key() == " "
}

/// The arrow `key` took the focus.
pub(super) fn took_focus(focused: RwSignal<Option<String>>, key: &str) {
    focused.set(Some(key.to_owned()));
}

/// The arrow `key` lost the focus: no arrow has it, unless another took it already.
pub(super) fn lost_focus(focused: RwSignal<Option<String>>, key: &str) {
    focused.update(|f| {
        if f.as_deref() == Some(key) {
            *f = None
        }
    });
}
