//! Pause, step, scrub and replay: the diagram can show the run as it was at any moment, live or
//! saved, because it draws a trace. `at_time` is the pure part; `Playback` holds the moment.

use leptos::prelude::*;

use crate::merge::Drawn;

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

/// The moment shown: `None` follows the live run; `Some(t)` freezes (or replays) at `t` µs.
#[derive(Clone, Copy)]
pub struct Playback {
    pub view: RwSignal<Option<i64>>,
    pub speed: RwSignal<f64>,
    pub replaying: RwSignal<bool>,
}

impl Playback {
    /// A playback whose replay advances on its own timer (cleared with the component).
    pub fn new(trace: Memo<Vec<Drawn>>) -> Playback {
        let playback = Playback {
            view: RwSignal::new(None),
            speed: RwSignal::new(1.0),
            replaying: RwSignal::new(false),
        };
        let timer = gloo_timers::callback::Interval::new(50, move || {
            if !playback.replaying.get_untracked() {
                return;
            }
            let end = trace.with_untracked(|t| instants(t).last().copied().unwrap_or(0));
            let next = playback.view.get_untracked().unwrap_or(0)
                + (50_000.0 * playback.speed.get_untracked()) as i64;
            if next >= end {
                playback.replaying.set(false);
                playback.view.set(None);
            } else {
                playback.view.set(Some(next));
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
    }

    pub fn replay(&self) {
        self.view.set(Some(0));
        self.replaying.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{merge, tests::exchange};

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
