//! The sequence diagram: an SVG drawn from the merged trace through the pure [`layout`].
//!
//! Each message is a `<g data-testid="message">` keyed by its stable key, so a message already
//! drawn keeps its element: it animates once, when it first appears (drawn from sender to
//! receiver over its real duration, stretched to at least a quarter second so it can be seen),
//! and afterwards only moves when the layout rescales.
//!
//! What each arrow shows ([`ArrowView`]) is worked out for all of them in one pass when the trace
//! or the layout changes, and handed to each arrow through its own signal, which is set only
//! when that arrow really changed. So no signal has one subscriber per message: a streamed-in
//! message costs one linear pass, not every arrow re-running (and re-subscribing) against the
//! whole trace, which made a thousand-message diagram freeze.
//!
//! A long diagram (more than [`crate::model::window::DRAWN_WHOLE_UP_TO`] messages) is windowed
//! ([`crate::model::window`]): the SVG keeps its full height (and the
//! lifelines their full length), but only the messages and activation bars near the visible
//! part of its scroll box are in the DOM, plus the selected and the focused message wherever
//! they are. An arrow drawn again after scrolling back takes up its first animation where it
//! would be by now (a negative delay), so the drawing looks the same as if it had stayed.
//! Exports draw the whole diagram ([`SequenceDiagram`]'s `whole`).
//!
//! Labels of the drawn arrows are placed together ([`crate::model::labels`]): one that would cover
//! another slides along its own arrow.

use std::collections::{HashMap, HashSet};

use leptos::{html, prelude::*, svg};
use protocol::trace::{Actor, Kind};
use wasm_bindgen::{JsCast, closure::Closure};

use super::playback::Shown;
use crate::model::{
    format::{display_label, human_us},
    labels::{self, Fixed, Labelled, Spot},
    layout::{self, ArrowGeo, BarGeo, BarStyle, Geometry, LifelineGeo, Options, SegmentGeo},
    merge::Drawn,
    window::{self as windowing, Span, Viewport},
};

/// How long the first drawing of an arrow takes, in ms: its real duration, at least 250 ms.
fn draw_ms(d: &Drawn) -> f64 {
    d.recv_us
        .map(|r| (r - d.sent_us) as f64 / 1000.0)
        .unwrap_or(250.0)
        .clamp(250.0, 4_000.0)
}

#[component]
pub fn SequenceDiagram(
    trace: Shown,
    /// Lifelines drawn even before anything happens, left to right.
    preferred: Vec<Actor>,
    now_us: Signal<i64>,
    selected: RwSignal<Option<String>>,
    /// One row per instant instead of time to scale.
    #[prop(optional, into)]
    compact: Signal<bool>,
    /// The run is live and the diagram keeps growing: its drawing area grows ahead of it.
    #[prop(optional, into)]
    growing: Signal<bool>,
    /// Changes when the reader moves the playhead (step, scrub, replay): the diagram then
    /// scrolls its latest moment into view.
    #[prop(optional, into)]
    reveal_latest: Signal<u64>,
    /// Every message in the DOM, not only those near the view (an export's drawing).
    #[prop(optional)]
    whole: bool,
) -> impl IntoView {
    // The diagram is redrawn at most once per animation frame, however many messages and clock
    // ticks arrive in between: a stream brings both halves of each message separately, so
    // redrawing on each would lay the whole diagram out several times per frame.
    let frame = RwSignal::new(0u64);
    let pending = StoredValue::new(false);
    let request_frame = move || {
        if pending.get_value() {
            return;
        }
        // A hidden page paints no frames: it is brought up to date at once.
        if document().hidden() {
            frame.update(|n| *n += 1);
            return;
        }
        pending.set_value(true);
        request_animation_frame(move || {
            pending.try_set_value(false);
            frame.try_update(|n| *n += 1);
        });
    };
    Effect::new(move |_| {
        trace.track();
        now_us.track();
        compact.track();
        request_frame();
    });
    let actors = Memo::new(move |_| {
        frame.track();
        trace.with_untracked(|t| layout::actors(t, &preferred))
    });
    // What is drawn: the layout on whole pixels, and each part of it separately, so a part is
    // redrawn only when it visibly changed.
    let geometry: Memo<Geometry> = Memo::new(move |_| {
        frame.track();
        trace
            .with_untracked(|t| {
                layout::layout(
                    t,
                    &actors.get(),
                    now_us.get_untracked(),
                    &Options {
                        compact: compact.get_untracked(),
                        ..Options::default()
                    },
                )
            })
            .whole_pixels()
    });
    // Resizing the SVG makes the browser lay out everything in it again (tens of ms with a
    // thousand messages), so while the run grows the area grows ahead of it, in steps.
    let size = Memo::new(move |_| {
        let roomy = growing.get();
        geometry.with(|g| (g.width, if roomy { room_for(g.height) } else { g.height }))
    });
    let tick_geo = Memo::new(move |_| geometry.with(|g| (g.ticks.clone(), g.width)));
    let fold_geo = Memo::new(move |_| geometry.with(|g| (g.folds.clone(), g.width)));

    // The window: the band of the drawing near what the scroll box shows, measured at most once
    // per animation frame after a scroll or a resize.
    let scroller = NodeRef::<html::Div>::new();
    let drawing = NodeRef::<svg::Svg>::new();
    let span = RwSignal::new(if whole { Span::ALL } else { Span::FIRST });
    let measure = move || -> Option<Viewport> {
        let div = scroller.try_get_untracked().flatten()?;
        let svg = drawing.try_get_untracked().flatten()?;
        let (outer, inner) = (
            div.get_bounding_client_rect(),
            svg.get_bounding_client_rect(),
        );
        let scroll_top = f64::from(div.scroll_top());
        Some(Viewport {
            scroll_top,
            client_height: f64::from(div.client_height()),
            origin: inner.top() - outer.top() - f64::from(div.client_top()) + scroll_top,
            scale: inner.width() / size.try_with_untracked(|s| s.0)?,
        })
    };
    let update_window = move || {
        if let Some(v) = measure() {
            let now = windowing::window(&v);
            if span.try_get_untracked().is_some_and(|was| was != now) {
                span.set(now);
            }
        }
    };
    let window_pending = StoredValue::new(false);
    let schedule_window = move || {
        if whole || window_pending.get_value() {
            return;
        }
        window_pending.set_value(true);
        request_animation_frame(move || {
            window_pending.try_set_value(false);
            update_window();
        });
    };
    // A resize of the box (the page's, a lane's) changes the drawing's scale and what fits.
    let resizes = StoredValue::new_local(None::<(web_sys::ResizeObserver, Closure<dyn Fn()>)>);
    Effect::new(move |_| {
        let Some(div) = scroller.get() else { return };
        if whole || resizes.with_value(Option::is_some) {
            return;
        }
        let callback = Closure::<dyn Fn()>::new(schedule_window);
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
        schedule_window();
    });
    // Scrolls the box as little as needed to show the band `y1..y2` of the drawing, and draws
    // the rows there before the next paint.
    let scroll_to_show = move |y1: f64, y2: f64| {
        let Some(v) = measure() else { return };
        if let (Some(top), Some(div)) = (
            windowing::reveal(&v, y1, y2),
            scroller.try_get_untracked().flatten(),
        ) {
            div.set_scroll_top(top.round() as i32);
            update_window();
        }
    };
    // A message selected elsewhere (the waterfall, the keyboard) is scrolled to.
    Effect::new(move |_| {
        let Some(key) = selected.get() else { return };
        if whole {
            return;
        }
        let row = geometry
            .with_untracked(|g| g.arrows.iter().find(|a| a.key == key).map(|a| (a.y1, a.y2)));
        if let Some((y1, y2)) = row {
            scroll_to_show(y1, y2);
        }
    });
    // A moved playhead: once the diagram is drawn at the new moment (the frame after next, when
    // its new height is in the DOM), its latest row is scrolled into view.
    let reveal_pending = StoredValue::new(false);
    Effect::new(move |was: Option<u64>| {
        let now = reveal_latest.get();
        if !whole && was.is_some_and(|was| was != now) {
            reveal_pending.set_value(true);
            request_frame();
        }
        now
    });
    Effect::new(move |_| {
        frame.track();
        if !reveal_pending.get_value() {
            return;
        }
        reveal_pending.set_value(false);
        request_animation_frame(move || {
            let row = geometry.try_with_untracked(|g| windowing::latest_row(&g.arrows));
            if let Some(Some((y1, y2))) = row {
                scroll_to_show(y1, y2);
            }
        });
    });

    // While the run is live the box follows its end, like a log being tailed: when the end drawn
    // at the frame before was in view (or it is the run's first), the new end is scrolled into
    // view. A reader who scrolled away from the end, to read an earlier exchange, stays there
    // until they scroll back to it.
    let followed_end = StoredValue::new(None::<f64>);
    Effect::new(move |_| {
        frame.track();
        if whole || !growing.get_untracked() {
            followed_end.set_value(None);
            return;
        }
        let Some((y1, y2)) = geometry.with_untracked(|g| windowing::latest_row(&g.arrows)) else {
            return;
        };
        let Some(v) = measure() else { return };
        let following = followed_end
            .get_value()
            .is_none_or(|was| windowing::end_in_view(&v, was, FOLLOW_SLACK_PX));
        if following {
            scroll_to_show(y1, y2);
        }
        followed_end.set_value(Some(y2));
    });

    let bar_geo = Memo::new(move |_| {
        let span = span.get();
        geometry
            .with(|g| windowing::visible_bars(&g.bars, windowing::band_for(span, g.arrows.len())))
    });
    // Lifelines stay put while the diagram grows: only their length follows it.
    let lifeline_list = Memo::new(move |_| geometry.with(|g| g.lifelines.clone()));
    let lifelines = move || {
        view! {
            <For each=move || lifeline_list.get() key=|l| (l.actor.clone(), l.x.to_bits()) let:l>
                <g class="lifeline" data-testid="lifeline" data-actor=l.actor.0.clone()>
                    <ActorHead l=l.clone()/>
                    <line class="lifeline-line" x1=l.x y1=38 x2=l.x y2=move || size.with(|s| s.1) - 8.0></line>
                </g>
            </For>
        }
    };
    let ticks = move || {
        tick_geo.with(|(ticks, width)| {
            ticks
                .iter()
                .map(|t| {
                    view! {
                        <g class="tick">
                            <line x1=44 y1=t.y x2=*width y2=t.y></line>
                            <text x=40 y=t.y + 4.0 text-anchor="end">{t.label.clone()}</text>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    // A folded quiet stretch: a band with torn edges and how long it really was.
    let folds = move || {
        fold_geo.with(|(folds, width)| {
            folds
                .iter()
                .map(|f| {
                    let zigzag = |y: f64| {
                        let mut d = format!("M 44 {y}");
                        let mut x = 44.0;
                        let mut up = true;
                        while x < *width {
                            x += 8.0;
                            d.push_str(&format!(" L {x} {}", if up { y - 3.0 } else { y + 3.0 }));
                            up = !up;
                        }
                        d
                    };
                    let text = format!("{} quiet, folded", human_us(f.quiet_us));
                    view! {
                        <g class="fold" data-testid="fold" data-quiet-us=f.quiet_us.to_string()>
                            <rect x=44 y=f.y1 + 6.0 width=*width - 44.0 height=f.y2 - f.y1 - 12.0></rect>
                            <path d=zigzag(f.y1 + 6.0)></path>
                            <path d=zigzag(f.y2 - 6.0)></path>
                            <text class="fold-label" x=*width - 8.0 y=(f.y1 + f.y2) / 2.0 + 4.0 text-anchor="end">{text}</text>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    // Each drawn bar behind its own signal, set only when that bar changed: a frame redraws the
    // bars still open, not every bar in the window (the list was rebuilt in place each frame:
    // a fifth of the main thread while an upload streamed in).
    let bar_views = Views::<BarGeo>::new();
    let bar_keys = Memo::new(move |_| {
        bar_geo.with(|bars| bars.iter().map(|b| b.key.clone()).collect::<Vec<_>>())
    });
    Effect::new(move |_| {
        let changed = bar_geo.with(|bars| bar_views.changed(bars, |b| &b.key, |b| Some(b.clone())));
        set_all(changed);
    });
    let bar = move |key: String| {
        let signal = bar_views.signal(&key, || {
            bar_geo
                .with_untracked(|bars| bars.iter().find(|b| b.key == key).cloned())
                .unwrap_or_default()
        });
        view! { <ActivationBar view=signal/> }
    };

    // The arrows drawn: those in the window, and the selected and focused ones.
    let focused = RwSignal::new(None::<String>);
    let arrow_keys = Memo::new(move |_| {
        let span = span.get();
        let keep = [selected.get(), focused.get()];
        geometry.with(|g| {
            windowing::visible_arrows(&g.arrows, windowing::band_for(span, g.arrows.len()), &keep)
                .into_iter()
                .map(|i| (i, g.arrows[i].key.clone()))
                .collect::<Vec<_>>()
        })
    });
    // Where along its arrow each drawn label goes, worked out for all drawn arrows together,
    // around the phases named beside the drawn bars.
    let label_spots = Memo::new(move |_| {
        let phases: Vec<(Fixed, usize)> = bar_geo.with(|bars| {
            bars.iter()
                .flat_map(|b| {
                    b.segments.iter().filter_map(move |s| {
                        phase_label(b, s).map(|at| (at, phase_title(s).chars().count()))
                    })
                })
                .collect()
        });
        trace.with_untracked(|t| {
            geometry.with(|g| {
                arrow_keys.with(|drawn| {
                    let arrows: Vec<(String, Labelled)> = drawn
                        .iter()
                        .filter_map(|(i, key)| {
                            let d = at_key(t, *i, key, |d| &d.key)?;
                            let a = at_key(&g.arrows, *i, key, |a| &a.key)?;
                            Some((key.clone(), labelled(d, a, g.width)))
                        })
                        .collect();
                    let spots =
                        labels::place(&phases, &arrows.iter().map(|(_, l)| *l).collect::<Vec<_>>());
                    arrows
                        .into_iter()
                        .map(|(key, _)| key)
                        .zip(spots)
                        .collect::<HashMap<String, Spot>>()
                })
            })
        })
    });
    let spot = move |key: &str| {
        label_spots
            .with_untracked(|s| s.get(key).copied())
            .unwrap_or(Spot::MIDDLE)
    };
    // Each drawn arrow's view, behind its own signal; refreshed for all of them in one pass.
    let views = Views::<ArrowView>::new();
    // When each message first appeared (performance.now(), ms): an arrow drawn later, after a
    // scroll, starts its animation that far in.
    let born = StoredValue::new(HashMap::<String, f64>::new());
    Effect::new(move |_| {
        frame.track();
        trace.with_untracked(|t| {
            born.try_update_value(|born| {
                let now = now_ms();
                for d in t {
                    if !born.contains_key(&d.key) {
                        born.insert(d.key.clone(), now);
                    }
                }
                if born.len() > t.len() {
                    let keys: HashSet<&str> = t.iter().map(|d| d.key.as_str()).collect();
                    born.retain(|k, _| keys.contains(k.as_str()));
                }
            })
        });
        // Only the arrows drawn have a view (an arrow's goes with it): the pass is as long as
        // the window, not the trace.
        label_spots.track();
        let changed = trace.with_untracked(|t| {
            geometry.with(|g| {
                arrow_keys.with_untracked(|drawn| {
                    views.changed(
                        drawn,
                        |(_, key)| key,
                        |(i, key)| {
                            let d = at_key(t, *i, key, |d| &d.key)?;
                            let a = at_key(&g.arrows, *i, key, |a| &a.key)?;
                            Some(arrow_view(d, a, g.width, spot(key)))
                        },
                    )
                })
            })
        });
        set_all(changed);
    });
    // The arrow for `d` (at `i` in the trace): its view signal, made now if the pass above has
    // not run since `d` arrived.
    // Whether an arrow is the selected one, told to that arrow alone.
    let is_selected = Selector::new(move || selected.get());
    let arrow = move |(i, key): (usize, String)| {
        let d = trace.with_untracked(|t| at_key(t, i, &key, |d| &d.key).cloned());
        d.map(|d| {
            // Made now if the pass above has not run since `d` arrived; it goes with the arrow,
            // so an arrow out of the window costs nothing per frame.
            let view = views.signal(&key, || {
                geometry
                    .with_untracked(|g| {
                        at_key(&g.arrows, i, &key, |a| &a.key)
                            .map(|a| arrow_view(&d, a, g.width, spot(&key)))
                    })
                    .unwrap_or_default()
            });
            let now = now_ms();
            let age_ms = born
                .try_update_value(|b| now - *b.entry(key.clone()).or_insert(now))
                .unwrap_or(0.0);
            view! { <MessageArrow d=d view=view age_ms=age_ms selected=selected is_selected=is_selected.clone() focused=focused/> }
        })
    };

    // Scrolled down a long diagram, the lifelines' names stay in sight: the same heads, drawn
    // again in a band pinned to the top of the box (over the drawing, letting clicks through).
    let scrolled = RwSignal::new(false);
    let on_scroll = move || {
        schedule_window();
        if let Some(div) = scroller.try_get_untracked().flatten() {
            let now = div.scroll_top() > HEADS_HEIGHT as i32;
            if scrolled.get_untracked() != now {
                scrolled.set(now);
            }
        }
    };
    // The drawing scales to its box, but a diagram drawn wider than usual (many lifelines) is
    // not shrunk: its box scrolls sideways instead, so its text stays readable. Set through the
    // CSSOM (`style:`), which the Content-Security-Policy allows; empty leaves the style sheet's.
    let wide = move || {
        size.with(|(w, _)| {
            if *w > Options::default().width {
                format!("{w}px")
            } else {
                String::new()
            }
        })
    };
    let pinned_heads = (!whole).then(|| {
        view! {
            <div class="lifeline-heads" class:shown=scrolled aria-hidden="true">
                <svg width=move || size.with(|s| s.0) height=HEADS_HEIGHT style:min-width=wide
                    viewBox=move || size.with(|(w, _)| format!("0 0 {w} {HEADS_HEIGHT}"))>
                    <rect class="heads-band" x=0 y=0 width=move || size.with(|s| s.0) height=HEADS_HEIGHT></rect>
                    <For each=move || lifeline_list.get() key=|l| (l.actor.clone(), l.x.to_bits()) let:l>
                        <ActorHead l=l/>
                    </For>
                </svg>
            </div>
        }
    });

    view! {
        <div class="diagram-scroll" tabindex="0" role="region" aria-label="Sequence diagram"
            node_ref=scroller on:scroll=move |_| on_scroll()>
            {pinned_heads}
            <svg
                node_ref=drawing
                data-testid="sequence-diagram"
                class="sequence-diagram"
                role="group"
                aria-label="Sequence diagram of this run"
                data-total-messages=move || geometry.with(|g| g.arrows.len())
                width=move || size.with(|s| s.0)
                height=move || size.with(|s| s.1)
                style:min-width=wide
                viewBox=move || size.with(|(w, h)| format!("0 0 {w} {h}"))
            >
                <defs>
                    <marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="head"></path>
                    </marker>
                    <marker id="head-open" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10" class="head-open"></path>
                    </marker>
                </defs>
                {ticks}
                {lifelines}
                {folds}
                <For each=move || bar_keys.get() key=|key| key.clone() children=bar/>
                <For each=move || arrow_keys.get() key=|(_, key)| key.clone() children=arrow/>
                <Show when=move || trace.with(|t| t.is_empty())>
                    <text class="empty-hint" x=move || size.with(|s| s.0 / 2.0) y=120 text-anchor="middle">
                        "Press Run: each real exchange will be drawn here as it happens."
                    </text>
                </Show>
            </svg>
            <Legend/>
        </div>
    }
}

/// What the line styles and colours mean (kind is shown by line style, not colour alone).
#[component]
fn Legend() -> impl IntoView {
    view! {
        <div class="legend" aria-label="Legend">
            <span><span class="dash"></span>"request"</span>
            <span><span class="dash response"></span>"response"</span>
            <span><span class="dash error"></span>"error (4xx/5xx)"</span>
            // Colours come from classes, not `style` attributes: the Content-Security-Policy
            // allows no inline style (see backend/src/security.rs).
            <span><span class="swatch busy"></span>"server busy"</span>
            <span><span class="swatch phase-parse"></span>"parse"</span>
            <span><span class="swatch phase-process"></span>"process"</span>
            <span><span class="swatch phase-serialize"></span>"serialize"</span>
            <span><span class="swatch queued"></span>"queued"</span>
            <span><span class="swatch waiting"></span>"browser waiting"</span>
            <span>"Time runs down, to scale; gaps under one row are stretched so labels stay readable, long quiet stretches folded (torn band)."</span>
        </div>
    }
}

/// The drawing height for a diagram `height` tall that is still growing: the next step of a
/// ladder rising by a quarter each step, so the area is resized a few times, not on every message.
pub fn room_for(height: f64) -> f64 {
    let mut room: f64 = 600.0;
    while room < height {
        room = (room * 1.25).round();
    }
    room
}

/// The page's clock (`performance.now()`), in ms.
fn now_ms() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or(0.0)
}

/// The item at `i` in `items` if it has `key`, otherwise the one with `key` anywhere.
fn at_key<'a, T>(
    items: &'a [T],
    i: usize,
    key: &str,
    key_of: impl Fn(&T) -> &String,
) -> Option<&'a T> {
    items
        .get(i)
        .filter(|x| key_of(x) == key)
        .or_else(|| items.iter().find(|x| key_of(x) == key))
}

/// How far below the view (CSS px) the end followed at the frame before may be and still count
/// as followed: the box was scrolled to show it, so only rounding moves it; a reader's scroll
/// (a wheel step is about 100 px) moves it further.
const FOLLOW_SLACK_PX: f64 = 24.0;

/// Height of the band the lifelines' heads are drawn in, at the top of the drawing.
const HEADS_HEIGHT: f64 = 44.0;

/// A lifeline's head: its actor's name in a box.
#[component]
fn ActorHead(l: LifelineGeo) -> impl IntoView {
    view! {
        <rect class="actor-box" x=l.x - layout::HEAD_WIDTH / 2.0 y=8 width=layout::HEAD_WIDTH height=30 rx=6></rect>
        <text class="actor-name" x=l.x y=28 text-anchor="middle">{l.actor.0.clone()}</text>
    }
}

/// An activation bar's left edge and width.
fn bar_x(b: &BarGeo) -> (f64, f64) {
    match b.style {
        BarStyle::Busy => (b.x - 6.0, 12.0),
        BarStyle::Waiting => (b.x - 3.0, 6.0),
    }
}

/// A phase's name and duration, as written beside its bar and in its tooltip.
fn phase_title(s: &SegmentGeo) -> String {
    format!("{} {}", s.name, human_us(s.dur_us))
}

/// Where a phase's name is written beside its bar: only on the first lane, and only where the
/// phase is tall enough to carry it.
fn phase_label(b: &BarGeo, s: &SegmentGeo) -> Option<Fixed> {
    let (x, w) = bar_x(b);
    (b.lane == 0 && s.y2 - s.y1 >= 12.0).then(|| Fixed {
        x: x + w + 4.0,
        y: (s.y1 + s.y2) / 2.0 + 4.0,
        leftwards: false,
    })
}

/// The drawn parts of one kind (arrows, bars), each behind a signal of its own by key: a frame
/// sets only the signals whose view changed, and a part's signal goes when the part is no longer
/// drawn.
struct Views<T: Send + Sync + 'static>(StoredValue<HashMap<String, ArcRwSignal<T>>>);

impl<T: Send + Sync + 'static> Clone for Views<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Views<T> {}

impl<T: Clone + PartialEq + Send + Sync + 'static> Views<T> {
    fn new() -> Self {
        Views(StoredValue::new(HashMap::new()))
    }

    /// The signal of the part `key` drawn by the calling view, made from `now` if it has none
    /// yet; it is dropped with that view.
    fn signal(self, key: &str, now: impl FnOnce() -> T) -> ArcRwSignal<T> {
        let signal = self
            .0
            .with_value(|v| v.get(key).cloned())
            .unwrap_or_else(|| {
                let signal = ArcRwSignal::new(now());
                self.0.update_value(|v| {
                    v.insert(key.to_owned(), signal.clone());
                });
                signal
            });
        let key = key.to_owned();
        on_cleanup(move || {
            self.0.try_update_value(|v| v.remove(&key));
        });
        signal
    }

    /// Of `items`, those whose part has a signal showing other than its view now (`now`), with
    /// that view: for [`set_all`], outside the store's lock.
    fn changed<'a, I: 'a>(
        self,
        items: impl IntoIterator<Item = &'a I>,
        key: impl Fn(&'a I) -> &'a str,
        now: impl Fn(&'a I) -> Option<T>,
    ) -> Vec<(ArcRwSignal<T>, T)> {
        self.0
            .try_with_value(|views| {
                items
                    .into_iter()
                    .filter_map(|item| {
                        let signal = views.get(key(item))?;
                        let now = now(item)?;
                        signal
                            .with_untracked(|was| *was != now)
                            .then(|| (signal.clone(), now))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sets each signal to its new view.
fn set_all<T: Send + Sync + 'static>(changed: Vec<(ArcRwSignal<T>, T)>) {
    for (signal, now) in changed {
        signal.set(now);
    }
}

/// One activation bar (working on a request, or waiting for its answer) with its phases, each
/// named beside it where there is room and always in its tooltip.
#[component]
fn ActivationBar(view: ArcRwSignal<BarGeo>) -> impl IntoView {
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

/// What one arrow shows: where it is and what it says.
#[derive(Debug, Clone, Default, PartialEq)]
struct ArrowView {
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
fn labelled(d: &Drawn, a: &ArrowGeo, width: f64) -> Labelled {
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
fn arrow_view(d: &Drawn, a: &ArrowGeo, width: f64, label_at: Spot) -> ArrowView {
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
fn MessageArrow(
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
    let duration = format!("{:.0}ms", draw_ms(&d));
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
            on:focus=move |_| focused.set(Some(key_focus.clone()))
            on:blur=move |_| focused.update(|f| if f.as_deref() == Some(key_blur.as_str()) { *f = None })
            on:keydown=move |ev| {
                if ev.key() == "Enter" || ev.key() == " " {
                    ev.prevent_default();
                    select_key();
                }
            }
        >
            <title>{full}</title>
            <path class="hit" d=path></path>
            <g class=format!("draw {grow}") style:animation-duration=duration style:animation-delay=delay>
                <path class="line" d=path marker-end=if kind == "response" { "url(#head-open)" } else { "url(#head)" }></path>
                <text class="label" class:mark=is_mark x=text_x y=text_y text-anchor=anchor>{label}</text>
            </g>
        </g>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_diagram_is_resized_in_few_steps() {
        assert_eq!(room_for(10.0), 600.0);
        assert_eq!(room_for(600.0), 600.0);
        assert_eq!(room_for(601.0), 750.0);
        let steps: std::collections::BTreeSet<u64> = (0..30_000)
            .step_by(26)
            .map(|h| room_for(h as f64) as u64)
            .collect();
        assert!(steps.len() < 20, "{steps:?}");
        assert!((1..30_000).all(|h| room_for(h as f64) >= h as f64));
    }
}
