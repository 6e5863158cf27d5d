//! Trace → diagram geometry: lifeline columns, arrow coordinates, activation bars and a time
//! axis. A pure function of the merged trace, so it is unit-tested natively.
//!
//! Time runs down the page. The scale fits the whole run (at least [`Options::fit_us`] of it) into
//! [`Options::target_height`], so a short run is drawn large and a run of seconds still fits;
//! consecutive distinct instants are kept at least [`Options::min_step`] apart so labels of
//! near-simultaneous messages stay readable, which stretches, never shrinks, the real gaps.
//! A long quiet stretch (nothing sent or received for at least [`Options::fold_over_us`] and a
//! fifth of the run) is folded to a fixed height and marked, so a minute-long run with a few
//! bursts stays readable; the scale then fits the unfolded time.

use std::collections::HashMap;

use protocol::trace::{Actor, Kind};

use super::merge::Drawn;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub width: f64,
    /// Height the whole run is scaled to fill.
    pub target_height: f64,
    /// The shortest span the scale fits, so a 2 ms run is not blown up to full height.
    pub fit_us: i64,
    pub min_step: f64,
    pub top: f64,
    pub left: f64,
    /// One row per instant instead of time to scale.
    pub compact: bool,
    /// Quiet stretches at least this long (and a fifth of the run) are folded.
    pub fold_over_us: i64,
}

/// Width of the box at the head of a lifeline, with its name.
pub const HEAD_WIDTH: f64 = 104.0;
/// The narrowest column a lifeline gets: its head and a gap. With more lifelines than fit
/// [`Options::width`] this way, the diagram is drawn wider instead (and scrolls sideways).
pub const MIN_COLUMN: f64 = HEAD_WIDTH + 12.0;

/// Height of a folded quiet stretch.
pub const FOLD_HEIGHT: f64 = 40.0;

impl Default for Options {
    fn default() -> Self {
        Options {
            width: 760.0,
            target_height: 420.0,
            fit_us: 400_000,
            min_step: 26.0,
            top: 56.0,
            left: 64.0,
            compact: false,
            fold_over_us: 2_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub width: f64,
    pub height: f64,
    pub lifelines: Vec<LifelineGeo>,
    /// Same order as the trace.
    pub arrows: Vec<ArrowGeo>,
    pub bars: Vec<BarGeo>,
    pub ticks: Vec<Tick>,
    pub folds: Vec<Fold>,
}

impl Geometry {
    /// The same geometry with every coordinate on a whole pixel. While a run grows, its scale
    /// moves everything by fractions of a pixel at each tick; drawing from this copy, the page
    /// only touches what moved visibly. Rounds in place: no copy of every arrow per frame.
    pub fn whole_pixels(mut self) -> Geometry {
        let px = f64::round;
        self.width = px(self.width);
        self.height = px(self.height);
        for l in &mut self.lifelines {
            l.x = px(l.x);
        }
        for a in &mut self.arrows {
            (a.x1, a.y1, a.x2, a.y2) = (px(a.x1), px(a.y1), px(a.x2), px(a.y2));
        }
        for b in &mut self.bars {
            (b.x, b.y1, b.y2) = (px(b.x), px(b.y1), px(b.y2));
            for s in &mut b.segments {
                (s.y1, s.y2) = (px(s.y1), px(s.y2));
            }
        }
        for t in &mut self.ticks {
            t.y = px(t.y);
        }
        for f in &mut self.folds {
            (f.y1, f.y2) = (px(f.y1), px(f.y2));
        }
        self
    }
}

/// A quiet stretch drawn shorter than to scale, between `y1` and `y2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    pub y1: f64,
    pub y2: f64,
    /// How long the stretch really was.
    pub quiet_us: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LifelineGeo {
    pub actor: Actor,
    pub x: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArrowGeo {
    pub key: String,
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    /// Still travelling: drawn to where it would be now.
    pub in_flight: bool,
}

/// Why an actor is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BarStyle {
    /// Working on a request (the receiver, between request arrival and response).
    #[default]
    Busy,
    /// Waiting for an answer (the sender, between sending and receiving the response).
    Waiting,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarGeo {
    pub key: String,
    pub x: f64,
    pub y1: f64,
    pub y2: f64,
    pub style: BarStyle,
    /// Still open at the current time.
    pub open: bool,
    pub segments: Vec<SegmentGeo>,
    /// 0 for the first bar at a time on its lifeline; overlapping bars (concurrent requests)
    /// step right one lane each, so each stays visible. `x` already includes the step.
    pub lane: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentGeo {
    pub name: String,
    pub y1: f64,
    pub y2: f64,
    pub dur_us: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub y: f64,
    pub label: String,
}

/// The lifelines to draw: `preferred` first, then any other actor in order of appearance.
pub fn actors(trace: &[Drawn], preferred: &[Actor]) -> Vec<Actor> {
    let mut out: Vec<Actor> = preferred.to_vec();
    // Neighbouring messages mostly share their ends: the last one found is tried first.
    let mut last = 0;
    for d in trace {
        for a in [&d.from, &d.to] {
            if out.get(last) == Some(a) {
                continue;
            }
            match out.iter().position(|known| known == a) {
                Some(at) => last = at,
                None => {
                    last = out.len();
                    out.push(a.clone());
                }
            }
        }
    }
    out
}

/// Piecewise-linear map from time (µs) to y, with a minimum step between distinct instants.
#[derive(Debug, Clone)]
pub struct TimeAxis {
    anchors: Vec<(i64, f64)>,
    px_per_us: f64,
    folds: Vec<Fold>,
    /// The time drawn to scale: the run without its folded stretches.
    unfolded_us: i64,
}

impl TimeAxis {
    pub fn new(mut instants: Vec<i64>, opts: &Options) -> TimeAxis {
        instants.push(0);
        instants.sort_unstable();
        instants.dedup();
        let run = instants.last().copied().unwrap_or(0);
        let folded =
            |gap: i64| !opts.compact && gap >= opts.fold_over_us && gap.saturating_mul(5) >= run;
        let folded_us: i64 = instants
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&gap| folded(gap))
            .sum();
        let unfolded_us = run - folded_us;
        let px_per_us = if opts.compact {
            0.0
        } else {
            opts.target_height / unfolded_us.max(opts.fit_us) as f64
        };
        let mut anchors = Vec::with_capacity(instants.len());
        let mut folds = Vec::new();
        let mut prev: Option<(i64, f64)> = None;
        for t in instants {
            let y = match prev {
                None => opts.top,
                Some((pt, py)) if folded(t - pt) => {
                    folds.push(Fold {
                        y1: py,
                        y2: py + FOLD_HEIGHT,
                        quiet_us: t - pt,
                    });
                    py + FOLD_HEIGHT
                }
                Some((pt, py)) => py + ((t - pt) as f64 * px_per_us).max(opts.min_step),
            };
            anchors.push((t, y));
            prev = Some((t, y));
        }
        TimeAxis {
            anchors,
            px_per_us,
            folds,
            unfolded_us,
        }
    }

    /// Whether `y` falls inside a folded stretch.
    fn in_fold(&self, y: f64) -> bool {
        self.folds.iter().any(|f| y > f.y1 + 0.5 && y < f.y2 - 0.5)
    }

    pub fn y(&self, t: i64) -> f64 {
        let i = self.anchors.partition_point(|&(at, _)| at <= t);
        if i == 0 {
            let (t0, y0) = self.anchors[0];
            return y0 - (t0 - t) as f64 * self.px_per_us;
        }
        let (ta, ya) = self.anchors[i - 1];
        match self.anchors.get(i) {
            Some(&(tb, yb)) => ya + (yb - ya) * (t - ta) as f64 / (tb - ta) as f64,
            None => ya + (t - ta) as f64 * self.px_per_us,
        }
    }

    pub fn last_y(&self) -> f64 {
        self.anchors.last().map(|a| a.1).unwrap_or(0.0)
    }
}

/// Lays out `trace` at time `now_us` (used for whatever is still in flight or held).
pub fn layout(trace: &[Drawn], lifelines: &[Actor], now_us: i64, opts: &Options) -> Geometry {
    let columns = lifelines.len().max(1) as f64;
    let column = ((opts.width - opts.left) / columns).max(MIN_COLUMN);
    let width = opts.width.max(opts.left + column * columns);
    let x_of: HashMap<&Actor, f64> = lifelines
        .iter()
        .enumerate()
        .map(|(i, a)| (a, opts.left + column * (i as f64 + 0.5)))
        .collect();
    let x = |a: &Actor| x_of.get(a).copied().unwrap_or(opts.left);

    let responses: HashMap<(&str, &Actor), &Drawn> = trace
        .iter()
        .filter(|d| d.kind == Kind::Response)
        .filter_map(|d| Some(((d.request_id.as_ref()?.0.as_str(), &d.from), d)))
        .collect();
    let open = trace.iter().any(|d| d.recv_us.is_none())
        || trace.iter().any(|d| {
            d.kind == Kind::Request
                && d.request_id
                    .as_ref()
                    .is_some_and(|rid| !responses.contains_key(&(rid.0.as_str(), &d.to)))
        });

    let mut instants: Vec<i64> = trace
        .iter()
        .flat_map(|d| [Some(d.sent_us), d.recv_us])
        .flatten()
        .collect();
    if open {
        instants.push(now_us);
    }
    let axis = TimeAxis::new(instants, opts);

    const BAR_HALF: f64 = 6.0;
    let arrows = trace
        .iter()
        .map(|d| {
            let (xf, xt) = (x(&d.from), x(&d.to));
            let dir = if xt >= xf { 1.0 } else { -1.0 };
            ArrowGeo {
                key: d.key.clone(),
                x1: xf + dir * BAR_HALF,
                y1: axis.y(d.sent_us),
                x2: xt - dir * BAR_HALF,
                y2: axis.y(d.recv_us.unwrap_or(now_us.max(d.sent_us))),
                in_flight: d.recv_us.is_none(),
            }
        })
        .collect();

    // The last time anything travelled under each exchange's id (`{rid}-…`: its events,
    // frames, hops), by `rid`: every id counts for each of its prefixes that ends before a `-`.
    // One pass; asked per request, it made a 40,000-message trace take seconds.
    let mut last_under: HashMap<&str, i64> = HashMap::new();
    for d in trace
        .iter()
        .filter(|d| d.transport != protocol::trace::Transport::Internal)
    {
        let Some(id) = d.request_id.as_ref().map(|r| r.0.as_str()) else {
            continue;
        };
        let at = d.recv_us.unwrap_or(d.sent_us);
        for (i, _) in id.match_indices('-') {
            let last = last_under.entry(&id[..i]).or_insert(at);
            *last = (*last).max(at);
        }
    }

    let mut bars = Vec::new();
    for req in trace
        .iter()
        .filter(|d| d.kind == Kind::Request && d.from != d.to)
    {
        let Some(rid) = &req.request_id else { continue };
        let resp = responses.get(&(rid.0.as_str(), &req.to));
        let busy_from = req.recv_us.unwrap_or(now_us);
        let busy_to = resp.map(|r| r.sent_us).unwrap_or(now_us).max(busy_from);
        if req.recv_us.is_some() {
            let segments = resp
                .map(|r| {
                    r.server_phases
                        .iter()
                        .map(|p| {
                            let start = p.start_us.clamp(busy_from, busy_to);
                            let end = (p.start_us + p.dur_us).clamp(start, busy_to);
                            SegmentGeo {
                                name: p.name.clone(),
                                y1: axis.y(start),
                                y2: axis.y(end),
                                dur_us: p.dur_us,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            bars.push(BarGeo {
                key: format!("busy-{}", req.key),
                x: x(&req.to),
                y1: axis.y(busy_from),
                y2: axis.y(busy_to),
                style: BarStyle::Busy,
                open: resp.is_none(),
                segments,
                lane: 0,
            });
        }
        if req.transport == protocol::trace::Transport::Internal {
            // The server hands work to its worker and carries on: it does not wait.
            continue;
        }
        // A stream or socket stays held after its response: until the last event or frame
        // that travelled under this exchange's id (`{rid}-…`).
        let held_until = last_under.get(rid.0.as_str()).copied();
        let done = resp
            .and_then(|r| r.recv_us)
            .map(|end| held_until.map_or(end, |h| h.max(end)));
        bars.push(BarGeo {
            key: format!("wait-{}", req.key),
            x: x(&req.from),
            y1: axis.y(req.sent_us),
            y2: axis.y(done.unwrap_or(now_us).max(req.sent_us)),
            style: BarStyle::Waiting,
            open: done.is_none(),
            segments: Vec::new(),
            lane: 0,
        });
    }

    stack_overlapping(&mut bars, column * LANES_SPREAD);

    let end_us = trace
        .iter()
        .flat_map(|d| [Some(d.sent_us), d.recv_us])
        .flatten()
        .max()
        .unwrap_or(0);
    let end_us = if open { end_us.max(now_us) } else { end_us };
    let ticks = ticks(&axis, end_us);
    let height = axis.last_y().max(axis.y(end_us)) + 48.0;
    let folds = axis.folds.clone();
    Geometry {
        width,
        height,
        lifelines: lifelines
            .iter()
            .map(|a| LifelineGeo {
                actor: a.clone(),
                x: x(a),
            })
            .collect(),
        arrows,
        bars,
        ticks,
        folds,
    }
}

/// Width of one lane of overlapping bars.
pub const LANE_STEP: f64 = 8.0;
/// The share of a column that one lifeline's lanes may spread over, right of the lifeline: many
/// at once (64 streams on one connection) are drawn closer together rather than across the next
/// lifeline.
const LANES_SPREAD: f64 = 0.4;

/// Moves bars that overlap in time on one lifeline into lanes side by side, [`LANE_STEP`] apart,
/// or closer when that would spread them over more than `max_spread`.
fn stack_overlapping(bars: &mut [BarGeo], max_spread: f64) {
    let mut order: Vec<usize> = (0..bars.len()).collect();
    order.sort_by(|&a, &b| bars[a].y1.total_cmp(&bars[b].y1));
    let key = |bar: &BarGeo| (bar.x.round() as i64, bar.style == BarStyle::Busy);
    // Per (lifeline x, style): where each lane is busy until.
    let mut lanes: HashMap<(i64, bool), Vec<f64>> = HashMap::new();
    for i in order {
        let bar = &mut bars[i];
        let ends = lanes.entry(key(bar)).or_default();
        let lane = ends
            .iter()
            .position(|&end| end <= bar.y1 + 0.5)
            .unwrap_or(ends.len());
        if lane == ends.len() {
            ends.push(bar.y2);
        } else {
            ends[lane] = bar.y2;
        }
        bar.lane = lane;
    }
    for bar in bars {
        let count = lanes.get(&key(bar)).map_or(1, Vec::len);
        let step = if count > 1 {
            LANE_STEP.min(max_spread / (count - 1) as f64)
        } else {
            LANE_STEP
        };
        bar.x += bar.lane as f64 * step;
    }
}

/// Time labels at a round interval (about eight over the time drawn to scale), skipping ones that
/// would overlap or fall inside a fold.
fn ticks(axis: &TimeAxis, end_us: i64) -> Vec<Tick> {
    const STEPS_MS: [i64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000];
    let end_ms = (end_us / 1_000).max(1);
    let scaled_ms = (axis.unfolded_us / 1_000).clamp(1, end_ms);
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| scaled_ms / s <= 8)
        .unwrap_or(10_000);
    let mut out: Vec<Tick> = Vec::new();
    let mut t = 0;
    while t <= end_ms + step {
        let y = axis.y(t * 1_000);
        if !axis.in_fold(y) && out.last().is_none_or(|last| y - last.y >= 18.0) {
            let label = if t >= 1_000 && step >= 100 {
                format!("{:.1} s", t as f64 / 1000.0)
            } else {
                format!("{t} ms")
            };
            out.push(Tick { y, label });
        }
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::merge::{merge, tests::exchange};

    fn two() -> Vec<Actor> {
        vec![Actor::browser(), Actor::server()]
    }

    #[test]
    fn whole_pixels_rounds_every_coordinate_and_keeps_the_rest() {
        let (b, s) = exchange("1", 0, 1_000, 0);
        let trace = merge(&b, &s, None);
        let g = layout(&trace, &two(), 0, &Options::default());
        let w = g.clone().whole_pixels();
        assert_eq!(w.arrows.len(), g.arrows.len());
        for (a, r) in g.arrows.iter().zip(&w.arrows) {
            assert_eq!(r.key, a.key);
            assert_eq!(r.y2, a.y2.round());
            assert!((r.y1 - a.y1).abs() <= 0.5);
        }
        assert_eq!(w.height, g.height.round());
        assert_eq!(w.lifelines.len(), 2);
        assert!(w.lifelines.iter().all(|l| l.x.fract() == 0.0));
        assert_eq!(w.clone().whole_pixels(), w, "already whole");
    }

    #[test]
    fn lifelines_are_evenly_spaced_and_extra_actors_appended() {
        let (b, s) = exchange("1", 0, 1_000, 0);
        let mut trace = merge(&b, &s, None);
        trace[0].to = Actor::new("worker");
        let actors = actors(&trace, &two());
        assert_eq!(
            actors,
            vec![Actor::browser(), Actor::server(), Actor::new("worker")]
        );
        let g = layout(&trace, &actors, 0, &Options::default());
        let xs: Vec<f64> = g.lifelines.iter().map(|l| l.x).collect();
        assert!((xs[1] - xs[0] - (xs[2] - xs[1])).abs() < 1e-9);
    }

    /// Nine lifelines (pub/sub with six subscribers) would leave each under 80 px, and their
    /// 104 px heads would cover each other: the diagram is drawn wider instead.
    #[test]
    fn many_lifelines_widen_the_diagram_rather_than_crowd_it() {
        let (b, s) = exchange("1", 0, 1_000, 0);
        let trace = merge(&b, &s, None);
        let few = layout(&trace, &two(), 0, &Options::default());
        assert_eq!(few.width, Options::default().width);
        let many: Vec<Actor> = (0..9).map(|i| Actor::new(&format!("a{i}"))).collect();
        let g = layout(&trace, &many, 0, &Options::default());
        let xs: Vec<f64> = g.lifelines.iter().map(|l| l.x).collect();
        assert!(
            xs.windows(2)
                .all(|w| (w[1] - w[0] - MIN_COLUMN).abs() < 1e-9),
            "{xs:?}"
        );
        assert_eq!(g.width, Options::default().left + 9.0 * MIN_COLUMN);
        assert!(xs[8] + HEAD_WIDTH / 2.0 <= g.width, "the last head fits");
    }

    #[test]
    fn actors_come_in_order_of_first_appearance_whatever_repeats() {
        let (b, s) = exchange("1", 0, 1_000, 0);
        let one = merge(&b, &s, None).remove(0);
        let ends = [
            ("a", "b"),
            ("a", "b"),
            ("c", "a"),
            ("b", "d"),
            ("d", "d"),
            ("e", "c"),
        ];
        let trace: Vec<Drawn> = ends
            .iter()
            .map(|(from, to)| Drawn {
                from: Actor::new(from),
                to: Actor::new(to),
                ..one.clone()
            })
            .collect();
        let names: Vec<String> = actors(&trace, &[Actor::new("d")])
            .into_iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(names, ["d", "a", "b", "c", "e"]);
    }

    #[test]
    fn arrows_point_from_sender_to_receiver_and_down_in_time() {
        let (b, s) = exchange("1", 0, 200_000, 0);
        let g = layout(&merge(&b, &s, None), &two(), 0, &Options::default());
        let (req, resp) = (&g.arrows[0], &g.arrows[1]);
        assert!(req.x1 < req.x2, "browser is left of server");
        assert!(resp.x1 > resp.x2, "response goes back left");
        assert!(req.y2 > req.y1 && resp.y1 > req.y2 && resp.y2 > resp.y1);
        assert!(!req.in_flight && !resp.in_flight);
    }

    #[test]
    fn time_is_to_scale_beyond_the_minimum_step() {
        let opts = Options::default();
        let (b, s) = exchange("1", 0, 1_000_000, 0);
        let g = layout(&merge(&b, &s, None), &two(), 0, &opts);
        let busy = g.bars.iter().find(|b| b.style == BarStyle::Busy).unwrap();
        let span = 1_002_000.0; // the run's last instant: the response's arrival
        let px_per_us = opts.target_height / span;
        assert!(
            (busy.y2 - busy.y1 - 1_000_000.0 * px_per_us).abs() < 1.0,
            "a 1 s hold is drawn 1 s tall"
        );
        // 1 ms hops are stretched to the minimum step so labels do not collide.
        assert!((g.arrows[0].y2 - g.arrows[0].y1 - opts.min_step).abs() < 1e-9);
    }

    #[test]
    fn long_runs_shrink_the_scale_to_fit() {
        let opts = Options::default();
        let (b, s) = exchange("1", 0, 10_000_000, 0);
        let g = layout(&merge(&b, &s, None), &two(), 0, &opts);
        assert!(g.height < opts.top + opts.target_height + 4.0 * opts.min_step + 48.0);
    }

    #[test]
    fn open_exchanges_extend_to_now() {
        let (b, s) = exchange("1", 0, 500_000, 0);
        // Request sent and arrived, nothing back yet.
        let trace = merge(&b[..1], &s[..1], None);
        let g1 = layout(&trace, &two(), 100_000, &Options::default());
        let g2 = layout(&trace, &two(), 400_000, &Options::default());
        let busy = |g: &Geometry| {
            g.bars
                .iter()
                .find(|b| b.style == BarStyle::Busy)
                .unwrap()
                .clone()
        };
        assert!(busy(&g1).open);
        assert!(
            busy(&g2).y2 > busy(&g1).y2,
            "held activation grows with time"
        );
    }

    #[test]
    fn server_phases_split_the_busy_bar_in_order() {
        let (b, mut s) = exchange("1", 0, 300_000, 0);
        let phases = [
            ("parse", 1_000, 1_000),
            ("process", 2_000, 250_000),
            ("serialize", 252_000, 1_000),
        ];
        s[1].detail = Some(protocol::trace::Detail {
            phases: phases
                .iter()
                .map(|&(n, start, dur)| protocol::trace::Phase {
                    name: n.into(),
                    start_us: start,
                    dur_us: dur,
                })
                .collect(),
            ..Default::default()
        });
        let g = layout(&merge(&b, &s, None), &two(), 0, &Options::default());
        let busy = g.bars.iter().find(|b| b.style == BarStyle::Busy).unwrap();
        let names: Vec<&str> = busy.segments.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["parse", "process", "serialize"]);
        assert!(busy.segments.windows(2).all(|w| w[0].y2 <= w[1].y1 + 1e-9));
        assert!(
            busy.segments
                .iter()
                .all(|s| s.y1 >= busy.y1 - 1e-9 && s.y2 <= busy.y2 + 1e-9)
        );
    }

    #[test]
    fn concurrent_exchanges_stack_their_bars_side_by_side() {
        let (mut b, mut s) = exchange("1", 0, 300_000, 0);
        let (b2, s2) = exchange("2", 10_000, 300_000, 0);
        let (b3, s3) = exchange("3", 400_000, 10_000, 0);
        b.extend(b2.into_iter().chain(b3));
        s.extend(s2.into_iter().chain(s3));
        let g = layout(&merge(&b, &s, None), &two(), 0, &Options::default());
        let busy: Vec<&BarGeo> = g
            .bars
            .iter()
            .filter(|b| b.style == BarStyle::Busy)
            .collect();
        assert_eq!(
            busy.iter().map(|b| b.lane).collect::<Vec<_>>(),
            [0, 1, 0],
            "the third starts after both ended"
        );
        assert!((busy[1].x - busy[0].x - LANE_STEP).abs() < 1e-9);
    }

    #[test]
    fn many_at_once_stay_within_their_lifelines_column() {
        let (mut b, mut s) = (Vec::new(), Vec::new());
        for i in 0..64 {
            let (bi, si) = exchange(&i.to_string(), i * 1_000, 300_000, 0);
            b.extend(bi);
            s.extend(si);
        }
        let opts = Options::default();
        let g = layout(&merge(&b, &s, None), &two(), 0, &opts);
        let column = ((opts.width - opts.left) / 2.0).max(MIN_COLUMN);
        for style in [BarStyle::Busy, BarStyle::Waiting] {
            let xs: Vec<f64> = g
                .bars
                .iter()
                .filter(|b| b.style == style)
                .map(|b| b.x)
                .collect();
            assert_eq!(xs.len(), 64);
            let lifeline = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let widest = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert!(
                widest - lifeline <= column * LANES_SPREAD + 1e-9,
                "{style:?}: {}",
                widest - lifeline
            );
            assert!(
                widest - lifeline > column * LANES_SPREAD / 2.0,
                "still side by side"
            );
        }
    }

    #[test]
    fn a_stream_is_held_until_its_last_event() {
        let (mut b, s) = exchange("2", 0, 1_000, 0);
        let mut event = crate::model::merge::tests::message(
            protocol::trace::Observer::Browser,
            Kind::Event,
            "2-e1",
            None,
            Some(900_000),
        );
        event.from = Actor::server();
        event.to = Actor::browser();
        event.transport = protocol::trace::Transport::Sse;
        b.push(event);
        let g = layout(&merge(&b, &s, None), &two(), 0, &Options::default());
        let held = g
            .bars
            .iter()
            .find(|b| b.style == BarStyle::Waiting)
            .unwrap();
        let axis_end = g.arrows.iter().map(|a| a.y2).fold(0.0, f64::max);
        assert!(
            (held.y2 - axis_end).abs() < 1e-9,
            "held to the event's arrival"
        );
    }

    #[test]
    fn compact_gives_every_instant_one_row() {
        let (b, s) = exchange("1", 0, 5_000_000, 0);
        let opts = Options {
            compact: true,
            ..Options::default()
        };
        let g = layout(&merge(&b, &s, None), &two(), 0, &opts);
        let busy = g.bars.iter().find(|b| b.style == BarStyle::Busy).unwrap();
        assert!(
            (busy.y2 - busy.y1 - opts.min_step).abs() < 1e-9,
            "a 5 s hold is one row"
        );
    }

    #[test]
    fn a_long_quiet_stretch_is_folded_and_the_rest_keeps_its_scale() {
        let opts = Options::default();
        // A 30 s hold: request out at once, answer 30 s later.
        let (b, s) = exchange("1", 0, 30_000_000, 0);
        let g = layout(&merge(&b, &s, None), &two(), 0, &opts);
        assert_eq!(g.folds.len(), 1);
        let fold = &g.folds[0];
        assert!(fold.quiet_us >= 29_000_000);
        assert!((fold.y2 - fold.y1 - FOLD_HEIGHT).abs() < 1e-9);
        assert!(g.height < opts.top + 4.0 * opts.min_step + FOLD_HEIGHT + 48.0 + 1.0);
        assert!(
            g.ticks
                .iter()
                .all(|t| t.y <= fold.y1 + 0.5 || t.y >= fold.y2 - 0.5),
            "no time label inside the fold"
        );
    }

    #[test]
    fn gaps_that_are_a_small_share_of_the_run_stay_to_scale() {
        let opts = Options::default();
        // Ten exchanges 3 s apart: every gap is long, none is a fifth of the run.
        let (mut b, mut s) = (Vec::new(), Vec::new());
        for i in 0..10 {
            let (bi, si) = exchange(&i.to_string(), i * 3_000_000, 1_000, 0);
            b.extend(bi);
            s.extend(si);
        }
        let g = layout(&merge(&b, &s, None), &two(), 0, &opts);
        assert!(g.folds.is_empty());
        let compact = layout(
            &merge(&b, &s, None),
            &two(),
            0,
            &Options {
                compact: true,
                ..opts
            },
        );
        assert!(compact.folds.is_empty());
    }

    #[test]
    fn ticks_are_increasing_and_spaced() {
        let (b, s) = exchange("1", 0, 3_000_000, 0);
        let g = layout(&merge(&b, &s, None), &two(), 0, &Options::default());
        assert!(g.ticks.len() >= 3);
        assert!(g.ticks.windows(2).all(|w| w[1].y - w[0].y >= 18.0));
        assert_eq!(g.ticks[0].label, "0 ms");
    }
}
