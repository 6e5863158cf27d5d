//! Windowing of the sequence diagram: which of its rows are near enough to the visible part of
//! its scroll box to be in the DOM, and where to scroll to bring a row into view. A thousand SVG
//! groups cost the browser a few hundred milliseconds of style, layout and paint on every
//! change, so the diagram (`views/diagram`) keeps its full height but draws only the messages and
//! bars these functions pick. Pure, unit-tested natively.

use super::layout::{ArrowGeo, BarGeo};

/// Where the diagram's scroll box is, as measured on the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    /// The scroll box's `scrollTop` and `clientHeight`, in CSS px.
    pub scroll_top: f64,
    pub client_height: f64,
    /// Where the drawing's y = 0 is, in CSS px from the top of the scroll box's content.
    pub origin: f64,
    /// CSS px per drawing unit (the SVG is scaled to the box's width).
    pub scale: f64,
}

impl Viewport {
    /// The drawing units at the top and bottom of what is visible now.
    fn visible(&self) -> (f64, f64) {
        let top = (self.scroll_top - self.origin) / self.scale;
        (top, top + self.client_height / self.scale)
    }

    /// Whether this was measured on a laid-out box (a hidden one measures zero).
    fn measured(&self) -> bool {
        self.client_height > 0.0 && self.scale > 0.0 && self.scale.is_finite()
    }
}

/// A band of the drawing, top to bottom, in drawing units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub top: f64,
    pub bottom: f64,
}

impl Span {
    /// The whole drawing (an export, or a box that cannot be measured).
    pub const ALL: Span = Span {
        top: f64::NEG_INFINITY,
        bottom: f64::INFINITY,
    };

    /// Before the box is measured: its first screens, as tall as the tallest box can be.
    pub const FIRST: Span = Span {
        top: f64::NEG_INFINITY,
        bottom: 3.0 * 1_200.0,
    };

    /// Whether anything between `y1` and `y2` (either order) falls inside.
    pub fn overlaps(&self, y1: f64, y2: f64) -> bool {
        y1.max(y2) >= self.top && y1.min(y2) <= self.bottom
    }
}

/// Traces up to this many messages are drawn whole: a few hundred SVG groups cost the browser
/// little, and a run of a demo (which the reader scrolls through, or a test reads) is all there.
pub const DRAWN_WHOLE_UP_TO: usize = 300;

/// The band to draw for a trace of `messages` messages: `span`, or all of it when it is short.
pub fn band_for(span: Span, messages: usize) -> Span {
    if messages <= DRAWN_WHOLE_UP_TO {
        Span::ALL
    } else {
        span
    }
}

/// How far beyond its line an arrow's drawing reaches: the label above it, a self-message's loop
/// and its text below.
const ARROW_REACH: f64 = 24.0;

/// The part of the drawing to keep in the DOM: what is visible plus one screen above and below,
/// widened to whole steps of half a screen, so that scrolling changes it only every half screen
/// (and the rows drawn never trail what is visible, whichever way and however far one frame
/// scrolled, up to one screen).
pub fn window(v: &Viewport) -> Span {
    if !v.measured() {
        return Span::ALL;
    }
    let screen = v.client_height / v.scale;
    let step = (screen / 2.0).max(50.0);
    let (top, bottom) = v.visible();
    Span {
        top: ((top - screen) / step).floor() * step,
        bottom: ((bottom + screen) / step).ceil() * step,
    }
}

/// The arrows to draw: those in `span`, and those whose keys are in `keep` (the selected and
/// the focused one, wherever they are), as indices in `arrows`.
pub fn visible_arrows(arrows: &[ArrowGeo], span: Span, keep: &[Option<String>]) -> Vec<usize> {
    arrows
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            span.overlaps(a.y1.min(a.y2) - ARROW_REACH, a.y1.max(a.y2) + ARROW_REACH)
                || keep.iter().flatten().any(|k| *k == a.key)
        })
        .map(|(i, _)| i)
        .collect()
}

/// The activation bars to draw: those in `span` (a phase's name is written beside its bar,
/// within the bar's height).
pub fn visible_bars(bars: &[BarGeo], span: Span) -> Vec<BarGeo> {
    bars.iter()
        .filter(|b| span.overlaps(b.y1 - 2.0, b.y2 + 2.0))
        .cloned()
        .collect()
}

/// Where the diagram is at its latest moment: the band of the arrow that reaches lowest (time
/// runs down), which is what a replayed or stepped-to moment has just drawn.
pub fn latest_row(arrows: &[ArrowGeo]) -> Option<(f64, f64)> {
    arrows
        .iter()
        .map(|a| (a.y1.min(a.y2), a.y1.max(a.y2)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Whether the drawing's row at `y` is in view or at most `slack` CSS px below it: the reader
/// is looking at a live run's end, so the box follows it as it grows (a reader who scrolled
/// away to read something earlier is left there). An unmeasured (hidden) box counts as
/// following.
pub fn end_in_view(v: &Viewport, y: f64, slack: f64) -> bool {
    if !v.measured() {
        return true;
    }
    let at = v.origin + y * v.scale;
    at >= v.scroll_top && at <= v.scroll_top + v.client_height + slack
}

/// The `scrollTop` that brings the band `y1..y2` (drawing units) into view with a little room
/// around it, moving as little as possible; `None` when it is in view already.
pub fn reveal(v: &Viewport, y1: f64, y2: f64) -> Option<f64> {
    if !v.measured() {
        return None;
    }
    let room = ARROW_REACH * v.scale;
    let top = v.origin + y1.min(y2) * v.scale - room;
    let bottom = v.origin + y1.max(y2) * v.scale + room;
    let (seen_top, seen_bottom) = (v.scroll_top, v.scroll_top + v.client_height);
    if top >= seen_top && bottom <= seen_bottom {
        None
    } else if bottom - top > v.client_height || top < seen_top {
        Some(top.max(0.0))
    } else {
        Some(bottom - v.client_height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layout::BarStyle;

    fn arrow(key: &str, y1: f64, y2: f64) -> ArrowGeo {
        ArrowGeo {
            key: key.into(),
            x1: 100.0,
            y1,
            x2: 300.0,
            y2,
            in_flight: false,
        }
    }

    /// A 700 px box over a drawing at its natural size (1 px a unit), scrolled to `scroll_top`.
    fn at(scroll_top: f64) -> Viewport {
        Viewport {
            scroll_top,
            client_height: 700.0,
            origin: 0.0,
            scale: 1.0,
        }
    }

    #[test]
    fn the_window_is_what_is_seen_and_a_screen_each_side_in_half_screen_steps() {
        let w = window(&at(0.0));
        assert_eq!(
            w,
            Span {
                top: -700.0,
                bottom: 1_400.0
            }
        );
        let w = window(&at(5_000.0));
        assert!(w.top <= 4_300.0 && w.bottom >= 6_400.0, "{w:?}");
        assert!(w.bottom - w.top <= 4.0 * 700.0, "bounded: {w:?}");
        // Scrolling a little does not move it: the list of rows is not rebuilt on every event.
        assert_eq!(window(&at(5_010.0)), w);
        assert_eq!(window(&at(5_049.0)), w);
        // And wherever it is scrolled, what is visible is inside the window.
        for top in (0..20_000).step_by(37) {
            let v = at(top as f64);
            let w = window(&v);
            let (seen_top, seen_bottom) = v.visible();
            assert!(w.top <= seen_top - 700.0 && w.bottom >= seen_bottom + 700.0);
        }
    }

    #[test]
    fn the_window_follows_the_drawings_scale_and_place_in_the_box() {
        // The SVG drawn at half size, 40 px below the top of the box's content.
        let v = Viewport {
            scroll_top: 1_040.0,
            client_height: 500.0,
            origin: 40.0,
            scale: 0.5,
        };
        let w = window(&v);
        // Seen: units 2000..3000; a screen is 1000 units.
        assert!(w.top <= 1_000.0 && w.top > 500.0, "{w:?}");
        assert!(w.bottom >= 4_000.0 && w.bottom < 4_500.0, "{w:?}");
    }

    #[test]
    fn short_traces_are_drawn_whole() {
        let w = window(&at(5_000.0));
        assert_eq!(band_for(w, 0), Span::ALL);
        assert_eq!(band_for(w, DRAWN_WHOLE_UP_TO), Span::ALL);
        assert_eq!(band_for(w, DRAWN_WHOLE_UP_TO + 1), w);
    }

    #[test]
    fn an_unmeasured_box_draws_everything() {
        let hidden = Viewport {
            client_height: 0.0,
            ..at(0.0)
        };
        assert_eq!(window(&hidden), Span::ALL);
        assert_eq!(reveal(&hidden, 5_000.0, 5_010.0), None);
    }

    #[test]
    fn only_rows_near_the_window_are_drawn_and_the_kept_ones_always() {
        // A thousand rows 26 units apart, as the layout's minimum step draws them.
        let arrows: Vec<ArrowGeo> = (0..1_000)
            .map(|i| {
                arrow(
                    &format!("b{i}"),
                    56.0 + 26.0 * i as f64,
                    82.0 + 26.0 * i as f64,
                )
            })
            .collect();
        let top = visible_arrows(&arrows, window(&at(0.0)), &[]);
        assert_eq!(top[0], 0);
        assert!(top.len() < 80, "{}", top.len());
        assert!(top.windows(2).all(|w| w[1] == w[0] + 1), "no gaps");
        let end = window(&at(26_100.0 - 700.0));
        let bottom = visible_arrows(&arrows, end, &[Some("b3".into()), None]);
        assert_eq!(bottom[0], 3, "the kept one, far above");
        assert_eq!(*bottom.last().unwrap(), 999, "the last row");
        assert!(bottom.len() < 90, "{}", bottom.len());
        assert_eq!(
            visible_arrows(&arrows, Span::ALL, &[]).len(),
            1_000,
            "an export draws them all"
        );
        // A long arrow crossing the whole window is drawn though both its ends are outside.
        let long = [arrow("x", 0.0, 50_000.0)];
        assert_eq!(visible_arrows(&long, end, &[]), [0]);
        // A label sits above its arrow: an arrow just below the window still counts.
        let below = [arrow("y", end.bottom + 10.0, end.bottom + 12.0)];
        assert_eq!(visible_arrows(&below, end, &[]), [0]);
    }

    #[test]
    fn bars_are_drawn_where_they_cross_the_window() {
        let bar = |y1: f64, y2: f64| BarGeo {
            key: format!("busy-{y1}"),
            x: 200.0,
            y1,
            y2,
            style: BarStyle::Busy,
            open: false,
            segments: Vec::new(),
            lane: 0,
        };
        let bars = [bar(0.0, 10.0), bar(100.0, 20_000.0), bar(9_000.0, 9_100.0)];
        let w = window(&at(5_000.0));
        let drawn: Vec<f64> = visible_bars(&bars, w).iter().map(|b| b.y1).collect();
        assert_eq!(drawn, [100.0]);
    }

    #[test]
    fn the_latest_row_is_the_lowest_arrow() {
        let arrows = [
            arrow("a", 56.0, 82.0),
            arrow("held", 60.0, 900.0),
            arrow("b", 300.0, 320.0),
        ];
        assert_eq!(latest_row(&arrows), Some((60.0, 900.0)));
        assert_eq!(latest_row(&[]), None);
    }

    #[test]
    fn the_end_is_followed_only_while_it_is_in_view() {
        // 400 px of box over a drawing at half scale, 100 px below the content's top.
        let v = Viewport {
            scroll_top: 0.0,
            client_height: 400.0,
            origin: 100.0,
            scale: 0.5,
        };
        assert!(end_in_view(&v, 500.0, 40.0), "at 350 px: in view");
        assert!(
            end_in_view(&v, 660.0, 40.0),
            "at 430 px: just below, within the slack"
        );
        assert!(
            !end_in_view(&v, 700.0, 40.0),
            "at 450 px: the reader is elsewhere"
        );
        let scrolled_past = Viewport {
            scroll_top: 600.0,
            ..v
        };
        assert!(!end_in_view(&scrolled_past, 500.0, 40.0), "above the view");
        let hidden = Viewport {
            client_height: 0.0,
            ..v
        };
        assert!(end_in_view(&hidden, 10_000.0, 0.0));
    }

    #[test]
    fn revealing_scrolls_as_little_as_needed() {
        let v = at(1_000.0);
        assert_eq!(reveal(&v, 1_200.0, 1_300.0), None, "in view already");
        // Below: scrolled until it is just above the bottom edge.
        let down = reveal(&v, 3_000.0, 3_026.0).unwrap();
        assert!((down + 700.0 - (3_026.0 + ARROW_REACH)).abs() < 1e-9);
        // Above: scrolled until it is just below the top edge.
        let up = reveal(&v, 400.0, 426.0).unwrap();
        assert!((up - (400.0 - ARROW_REACH)).abs() < 1e-9);
        // Taller than the box: its start at the top.
        let tall = reveal(&v, 5_000.0, 9_000.0).unwrap();
        assert!((tall - (5_000.0 - ARROW_REACH)).abs() < 1e-9);
        // Never above the top of the content.
        assert_eq!(reveal(&v, 0.0, 10.0), Some(0.0));
        // The same at another scale and offset: in CSS px.
        let half = Viewport {
            scale: 0.5,
            origin: 40.0,
            ..v
        };
        let down = reveal(&half, 4_000.0, 4_020.0).unwrap();
        assert!((down + 700.0 - (40.0 + 2_010.0 + ARROW_REACH * 0.5)).abs() < 1e-9);
    }
}
