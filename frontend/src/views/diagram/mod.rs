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

mod arrow;
mod bar;
mod follow;
mod frame;
mod heads;
mod keyboard;
mod legend;
mod parts;
mod scroll_box;

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;
use protocol::trace::Actor;

use self::{
    arrow::{ArrowView, MessageArrow, arrow_view, labelled},
    bar::{ActivationBar, phase_label, phase_title},
    follow::follow,
    frame::Frames,
    heads::{ActorHead, HEADS_HEIGHT},
    legend::Legend,
    parts::{Views, at_key, set_all},
    scroll_box::ScrollBox,
};
use crate::{
    model::{
        format::human_us,
        labels::{self, Fixed, Labelled, Spot},
        layout::{self, BarGeo, Geometry, Options},
        window as windowing,
    },
    views::playback::Shown,
};

#[component]
pub(super) fn SequenceDiagram(
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
    // Redrawn at most once per animation frame (`frame`).
    let frames = Frames::new(trace, now_us, compact);
    let actors = Memo::new(move |_| {
        frames.track();
        trace.with_untracked(|t| layout::actors(t, &preferred))
    });
    // What is drawn: the layout on whole pixels, and each part of it separately, so a part is
    // redrawn only when it visibly changed.
    let geometry: Memo<Geometry> = Memo::new(move |_| {
        frames.track();
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

    // The window: the band of the drawing near what the scroll box shows (`scroll_box`); the box
    // follows the selection, the playhead and a live run's end (`follow`).
    let scroll_box = ScrollBox::new(size, whole);
    let span = scroll_box.span;
    follow(
        scroll_box,
        frames,
        geometry,
        selected,
        reveal_latest,
        growing,
        whole,
    );

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
        frames.track();
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
        scroll_box.schedule_window();
        if let Some(div) = scroll_box.scroller.try_get_untracked().flatten() {
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
            node_ref=scroll_box.scroller on:scroll=move |_| on_scroll()>
            {pinned_heads}
            <svg
                node_ref=scroll_box.drawing
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
