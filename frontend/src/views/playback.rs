//! Pause, step, scrub and replay: the diagram can show the run as it was at any moment, live or
//! saved, because it draws a trace. `at_time` is the pure part; `Playback` holds the moment.
//! A reader who asked the system for reduced motion gets a replay that jumps from one message
//! to the next instead of a continuous sweep.

use leptos::prelude::*;

use crate::model::merge::Drawn;

/// The trace a view of the run draws: the recorded trace itself while the run is followed live
/// and unfiltered (read in place, never copied: a long streamed trace costs nothing to show),
/// otherwise the copy `altered` holds (the run as it was at a paused moment, or filtered).
#[derive(Clone, Copy)]
pub struct Shown {
    pub recorded: ReadSignal<Vec<Drawn>>,
    pub altered: Memo<Option<Vec<Drawn>>>,
}

impl Shown {
    /// Runs `f` on the trace shown, tracking it.
    pub fn with<R>(&self, f: impl FnOnce(&[Drawn]) -> R) -> R {
        self.read(true, f)
    }

    /// Runs `f` on the trace shown, without tracking it.
    pub fn with_untracked<R>(&self, f: impl FnOnce(&[Drawn]) -> R) -> R {
        self.read(false, f)
    }

    /// Tracks the trace shown.
    pub fn track(&self) {
        self.with(|_| ());
    }

    fn read<R>(&self, track: bool, f: impl FnOnce(&[Drawn]) -> R) -> R {
        let mut f = Some(f);
        let mut out = None;
        self.visit(track, &mut |t| out = f.take().map(|f| f(t)));
        out.expect("visit calls back once")
    }

    /// Calls `f` once with the trace shown. One copy of the signal reading for every caller
    /// (a generic one per call site made the bundle grow).
    fn visit(&self, track: bool, f: &mut dyn FnMut(&[Drawn])) {
        let pick = |altered: &Option<Vec<Drawn>>| match altered {
            Some(t) => f(t),
            None if track => self.recorded.with(|t| f(t)),
            None => self.recorded.with_untracked(|t| f(t)),
        };
        if track {
            self.altered.with(pick)
        } else {
            self.altered.with_untracked(pick)
        }
    }
}

/// The trace as it stood at time `t`: what had been sent by then, with anything that had not
/// yet arrived still in flight.
pub fn at_time(trace: &[Drawn], t: i64) -> Vec<Drawn> {
    trace
        .iter()
        .filter(|d| d.sent_us <= t)
        .map(|d| {
            let mut d = d.clone();
            if d.recv_us.is_some_and(|r| r > t) {
                d.recv_us = None;
            }
            d
        })
        .collect()
}

/// Every instant something starts or lands, in order: where stepping stops.
pub fn instants(trace: &[Drawn]) -> Vec<i64> {
    let mut all: Vec<i64> = trace
        .iter()
        .flat_map(|d| [Some(d.sent_us), d.recv_us])
        .flatten()
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Whether the reader asked the system for less motion.
pub fn prefers_reduced_motion() -> bool {
    web_sys::window()
        .and_then(|w| {
            w.match_media("(prefers-reduced-motion: reduce)")
                .ok()
                .flatten()
        })
        .is_some_and(|m| m.matches())
}

/// Replay tick, in ms.
const TICK_MS: u32 = 50;
/// With reduced motion, how long each message stays before the next appears (at 1×), in ms.
const STILL_MS: f64 = 700.0;

/// The moment shown: `None` follows the live run; `Some(t)` freezes (or replays) at `t` µs.
#[derive(Clone, Copy)]
pub struct Playback {
    pub view: RwSignal<Option<i64>>,
    pub speed: RwSignal<f64>,
    pub replaying: RwSignal<bool>,
    /// Counts the reader's moves of the playhead (step, scrub, each replay tick), not pauses:
    /// the diagram scrolls the moment moved to into view.
    pub moved: RwSignal<u64>,
}

impl Playback {
    /// A playback whose replay advances on its own timer (cleared with the component).
    pub fn new(trace: ReadSignal<Vec<Drawn>>) -> Playback {
        let playback = Playback {
            view: RwSignal::new(None),
            speed: RwSignal::new(1.0),
            replaying: RwSignal::new(false),
            moved: RwSignal::new(0),
        };
        let reduced = prefers_reduced_motion();
        let mut still = 0.0;
        let timer = gloo_timers::callback::Interval::new(TICK_MS, move || {
            if !playback.replaying.get_untracked() {
                return;
            }
            let here = playback.view.get_untracked().unwrap_or(0);
            let (end, next) = trace.with_untracked(|t| {
                let all = instants(t);
                let end = all.last().copied().unwrap_or(0);
                let next = if reduced {
                    all.into_iter().find(|&i| i > here).unwrap_or(end)
                } else {
                    here + (f64::from(TICK_MS) * 1000.0 * playback.speed.get_untracked()) as i64
                };
                (end, next)
            });
            if reduced {
                still += f64::from(TICK_MS) * playback.speed.get_untracked();
                if still < STILL_MS {
                    return;
                }
                still = 0.0;
            }
            if next >= end && (!reduced || here >= end) {
                playback.replaying.set(false);
                playback.view.set(None);
            } else {
                playback.view.set(Some(next));
                playback.moved.update(|n| *n += 1);
            }
        });
        let timer = StoredValue::new_local(Some(timer));
        on_cleanup(move || timer.update_value(|t| drop(t.take())));
        playback
    }

    /// Freezes the drawing at `now` (the traffic keeps being recorded).
    pub fn pause(&self, now: i64) {
        self.replaying.set(false);
        self.view.set(Some(now));
    }

    /// Moves the playhead to `t` (the scrub bar), paused there.
    pub fn seek(&self, t: i64) {
        self.pause(t);
        self.moved.update(|n| *n += 1);
    }

    /// Back to following the run.
    pub fn live(&self) {
        self.replaying.set(false);
        self.view.set(None);
    }

    /// Moves to the next (`forward`) or previous instant something happened.
    pub fn step(&self, trace: &[Drawn], now: i64, forward: bool) {
        self.replaying.set(false);
        let here = self.view.get_untracked().unwrap_or(now);
        let all = instants(trace);
        let to = if forward {
            all.into_iter().find(|&t| t > here)
        } else {
            all.into_iter().rev().find(|&t| t < here)
        };
        self.view
            .set(Some(to.unwrap_or(if forward { here } else { 0 })));
        self.moved.update(|n| *n += 1);
    }

    pub fn replay(&self) {
        self.view.set(Some(0));
        self.replaying.set(true);
        self.moved.update(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::merge::{merge, tests::exchange};

    #[test]
    fn the_past_shows_only_what_had_happened() {
        let (b, s) = exchange("1", 0, 100_000, 0);
        let trace = merge(&b, &s, None);
        assert!(at_time(&trace, -1).is_empty());
        let early = at_time(&trace, 500);
        assert_eq!(early.len(), 1, "the request had left");
        assert_eq!(early[0].recv_us, None, "but not yet arrived");
        assert_eq!(at_time(&trace, 1_000_000), trace);
    }

    #[test]
    fn stepping_stops_at_every_instant_in_order() {
        let (b, s) = exchange("1", 0, 100_000, 0);
        let trace = merge(&b, &s, None);
        assert_eq!(instants(&trace), [0, 1_000, 101_000, 102_000]);
    }
}
