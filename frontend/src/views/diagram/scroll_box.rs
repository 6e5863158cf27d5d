//! Windowing in the page: the diagram's scroll box, measured against the drawing (at most once
//! per animation frame after a scroll or a resize, before any diagram is redrawn) to keep the
//! window, the band of rows drawn ([`crate::model::window`] picks them), and scrolled as little
//! as needed to show a row.

use leptos::{html, prelude::*, svg};
use wasm_bindgen::{JsCast, closure::Closure};

use super::frame::once_before_next_frame;
use crate::model::window::{self as windowing, Span, Viewport};

/// The scroll box and the drawing in it. `Copy`: every field is a reactive handle or a flag.
#[derive(Clone, Copy)]
pub(super) struct ScrollBox {
    pub(super) scroller: NodeRef<html::Div>,
    pub(super) drawing: NodeRef<svg::Svg>,
    /// The band of the drawing near what the box shows: the rows in it are drawn.
    pub(super) span: RwSignal<Span>,
    /// The drawing's size in its own units, (width, height).
    size: Memo<(f64, f64)>,
    /// A measuring is asked for at the next animation frame.
    pending: StoredValue<bool>,
    /// Everything is drawn (an export's drawing): no window to keep.
    whole: bool,
}

impl ScrollBox {
    /// The box of a drawing `size` big; measured again when it or the box is resized.
    pub(super) fn new(size: Memo<(f64, f64)>, whole: bool) -> ScrollBox {
        let scroll_box = ScrollBox {
            scroller: NodeRef::<html::Div>::new(),
            drawing: NodeRef::<svg::Svg>::new(),
            span: RwSignal::new(if whole { Span::ALL } else { Span::FIRST }),
            size,
            pending: StoredValue::new(false),
            whole,
        };
        let scroller = scroll_box.scroller;
        // A resize of the box (the page's, a lane's) changes the drawing's scale and what fits.
        let resizes = StoredValue::new_local(None::<(web_sys::ResizeObserver, Closure<dyn Fn()>)>);
        Effect::new(move |_| {
            let Some(div) = scroller.get() else { return };
            if whole || resizes.with_value(Option::is_some) {
                return;
            }
            let callback = Closure::<dyn Fn()>::new(move || scroll_box.schedule_window());
            if let Ok(observer) = web_sys::ResizeObserver::new(callback.as_ref().unchecked_ref()) {
                observer.observe(&div);
                resizes.set_value(Some((observer, callback)));
            }
        });
        on_cleanup(move || {
            if let Some((observer, _)) = resizes.try_update_value(Option::take).flatten() {
                observer.disconnect();
            }
        });
        Effect::new(move |_| {
            size.track();
            scroll_box.schedule_window();
        });
        scroll_box
    }

    /// Where the box shows the drawing now; `None` before both are in the DOM.
    pub(super) fn measure(self) -> Option<Viewport> {
        let div = self.scroller.try_get_untracked().flatten()?;
        let svg = self.drawing.try_get_untracked().flatten()?;
        let (outer, inner) = (
            div.get_bounding_client_rect(),
            svg.get_bounding_client_rect(),
        );
        let scroll_top = f64::from(div.scroll_top());
        Some(Viewport {
            scroll_top,
            client_height: f64::from(div.client_height()),
            origin: inner.top() - outer.top() - f64::from(div.client_top()) + scroll_top,
            scale: inner.width() / self.size.try_with_untracked(|s| s.0)?,
        })
    }

    /// Measures the box and moves the window to what it shows.
    fn update_window(self) {
        if let Some(v) = self.measure() {
            let now = windowing::window(&v);
            if self.span.try_get_untracked().is_some_and(|was| was != now) {
                self.span.set(now);
            }
        }
    }

    /// Moves the window at the next animation frame (after a scroll or a resize).
    pub(super) fn schedule_window(self) {
        if !self.whole {
            once_before_next_frame(self.pending, move || self.update_window());
        }
    }

    /// Scrolls the box as little as needed to show the band `y1..y2` of the drawing, and draws
    /// the rows there before the next paint.
    pub(super) fn scroll_to_show(self, y1: f64, y2: f64) {
        let Some(v) = self.measure() else { return };
        if let (Some(top), Some(div)) = (
            windowing::reveal(&v, y1, y2),
            self.scroller.try_get_untracked().flatten(),
        ) {
            div.set_scroll_top(top.round() as i32);
            self.update_window();
        }
    }
}
