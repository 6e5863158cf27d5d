//! Where each arrow's label sits. A label is written at the middle of its arrow unless that
//! would cover a label already placed (requests from several clients at once cross each other
//! near the server); then it slides along its own arrow to the first free spot, so it still
//! reads as that arrow's; failing that it goes under the arrow instead of over it (a short
//! arrow has little room to slide), and failing that it is shortened to its first part; in a
//! crowd with no room even for that, only a mark (`…`) says that the arrow has a label, and with
//! no room for the mark nothing is written: never over another label (the whole label is always
//! in the arrow's tooltip and in the inspector). Text written at a place of its own (a phase
//! named beside its activation bar, a note beside its loop) is left where it is and avoided, even
//! by labels placed before it arrived. Pure, so the placement is unit-tested.

use std::collections::HashMap;

/// Rough width of one character of an arrow label (11.5 px sans-serif) and the label's height.
const CHAR_WIDTH: f64 = 6.3;
const HEIGHT: f64 = 15.0;
/// Spots tried along an arrow, as a fraction of the way from its tail to its head: the middle,
/// then outwards in steps of `1 / SPOT_STEPS` on either side, up to `SPOT_STEPS * 2 / 5` steps.
const SPOT_STEPS: usize = 25;
/// Height of the buckets placed labels are filed in (at least a label's height).
const BUCKET: f64 = 16.0;

/// An arrow and the text to be written on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    /// Characters in the label, and in its short form.
    pub chars: usize,
    pub short_chars: usize,
    /// A message to itself: its label has one place (beside the loop), taken as it is.
    pub fixed: Option<Fixed>,
}

/// A label written at a point of its own rather than along an arrow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixed {
    pub x: f64,
    /// The text's baseline.
    pub y: f64,
    /// Written to the left of `x` (text-anchor end) rather than to its right.
    pub leftwards: bool,
}

/// The text's baseline sits this far above the point on the arrow, or this far below it.
const ABOVE: f64 = 7.0;
const BELOW: f64 = 14.0;

/// How much of a label is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The whole label.
    Whole,
    /// Its first part ([`short_form`]).
    Short,
    /// Only [`MARK`]: the arrow has a label, to be read in its tooltip or the inspector.
    Mark,
    /// Nothing: no room even for the mark.
    Off,
}

/// What is written for a label with no room even for its short form.
pub const MARK: &str = "…";
/// The mark's width, in characters of [`CHAR_WIDTH`], with a little room on either side.
const MARK_CHARS: usize = 2;

/// Where a label goes on its arrow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spot {
    /// The fraction of the way from the arrow's tail to its head.
    pub along: f64,
    /// Written under the arrow rather than over it.
    pub below: bool,
    pub form: Form,
}

impl Spot {
    /// The middle, over the arrow: where a label goes when nothing is in the way.
    pub const MIDDLE: Spot = Spot {
        along: 0.5,
        below: false,
        form: Form::Whole,
    };

    /// The text written at this spot for `label`.
    pub fn text(self, label: &str) -> &str {
        match self.form {
            Form::Whole => label,
            Form::Short => short_form(label),
            Form::Mark => MARK,
            Form::Off => "",
        }
    }
}

/// A label's short form: its first part, before the size and the time (`"GET /a · 5 B · 3 ms"` →
/// `"GET /a"`).
pub fn short_form(label: &str) -> &str {
    label.split(" · ").next().unwrap_or(label)
}

/// The point a label at `spot` on the arrow from (x1, y1) to (x2, y2) is centred on: x, and the
/// text's baseline.
pub fn anchor(x1: f64, y1: f64, x2: f64, y2: f64, spot: Spot) -> (f64, f64) {
    let t = spot.along;
    let y = y1 + t * (y2 - y1);
    (
        x1 + t * (x2 - x1),
        if spot.below { y + BELOW } else { y - ABOVE },
    )
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Rect {
    fn hits(&self, o: &Rect) -> bool {
        self.left < o.right && o.left < self.right && self.top < o.bottom && o.top < self.bottom
    }

    fn buckets(&self) -> std::ops::RangeInclusive<i64> {
        (self.top / BUCKET).floor() as i64..=(self.bottom / BUCKET).floor() as i64
    }
}

/// The box of a label centred at `x` with its baseline at `y`.
fn centred(x: f64, y: f64, chars: usize) -> Rect {
    let half = chars as f64 * CHAR_WIDTH / 2.0;
    Rect {
        left: x - half,
        right: x + half,
        top: y - HEIGHT + 3.0,
        bottom: y + 3.0,
    }
}

fn fixed_rect(f: &Fixed, chars: usize) -> Rect {
    let width = chars as f64 * CHAR_WIDTH;
    let (left, right) = if f.leftwards {
        (f.x - width, f.x)
    } else {
        (f.x, f.x + width)
    };
    Rect {
        left,
        right,
        top: f.y - HEIGHT + 3.0,
        bottom: f.y + 3.0,
    }
}

/// The fractions tried along an arrow, nearest the middle first: 0.5, 0.46, 0.54, … 0.1, 0.9.
fn along() -> impl Iterator<Item = f64> + Clone {
    let step = 1.0 / SPOT_STEPS as f64;
    std::iter::once(0.5).chain((1..=SPOT_STEPS * 2 / 5).flat_map(move |k| {
        let d = k as f64 * step;
        [0.5 - d, 0.5 + d]
    }))
}

/// The spots tried, in order: every fraction [`along`] over the arrow, then under it; then the
/// same with the short form, then with the mark.
fn spots() -> impl Iterator<Item = Spot> {
    [Form::Whole, Form::Short, Form::Mark]
        .into_iter()
        .flat_map(|form| [(false, form), (true, form)])
        .flat_map(|(below, form)| along().map(move |along| Spot { along, below, form }))
}

impl Labelled {
    /// Characters written in `form`.
    fn chars_in(&self, form: Form) -> usize {
        match form {
            Form::Whole => self.chars,
            Form::Short => self.short_chars,
            Form::Mark => MARK_CHARS,
            Form::Off => 0,
        }
    }
}

/// Labels placed so far, filed by the horizontal bands they cross.
#[derive(Default)]
struct Placed(HashMap<i64, Vec<Rect>>);

impl Placed {
    fn add(&mut self, r: Rect) {
        for b in r.buckets() {
            self.0.entry(b).or_default().push(r);
        }
    }

    /// `r` covers none of the placed labels.
    fn free(&self, r: &Rect) -> bool {
        r.buckets().all(|b| {
            self.0
                .get(&b)
                .is_none_or(|rs| rs.iter().all(|o| !o.hits(r)))
        })
    }
}

/// For each arrow, in order, where its label goes: the first of [`spots`] (over the arrow, nearest
/// its middle first; then under it; then both again with the short form, then with the mark)
/// whose box covers neither a label placed before it nor one of the `fixed` texts (each with its
/// number of characters) nor a loop's note ([`Labelled::fixed`], taken first, each as it is);
/// if every spot covers something, nowhere ([`Form::Off`]). Earlier arrows keep their spots when
/// later ones arrive (a growing run does not reshuffle), unless a later loop's note takes one.
pub fn place(fixed: &[(Fixed, usize)], arrows: &[Labelled]) -> Vec<Spot> {
    let mut placed = Placed::default();
    for (f, chars) in fixed {
        placed.add(fixed_rect(f, *chars));
    }
    for a in arrows {
        if let Some(f) = &a.fixed {
            placed.add(fixed_rect(f, a.chars));
        }
    }
    arrows
        .iter()
        .map(|a| {
            if a.fixed.is_some() {
                return Spot::MIDDLE;
            }
            let on = |spot: Spot| {
                let (x, y) = anchor(a.x1, a.y1, a.x2, a.y2, spot);
                centred(x, y, a.chars_in(spot.form))
            };
            match spots()
                .map(|spot| (spot, on(spot)))
                .find(|(_, r)| placed.free(r))
            {
                Some((spot, rect)) => {
                    placed.add(rect);
                    spot
                }
                None => Spot {
                    form: Form::Off,
                    ..Spot::MIDDLE
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arrow whose label's short form is half as long as the label.
    fn arrow(x1: f64, y1: f64, x2: f64, y2: f64, chars: usize) -> Labelled {
        Labelled {
            x1,
            y1,
            x2,
            y2,
            chars,
            short_chars: chars / 2,
            fixed: None,
        }
    }

    fn rect_at(a: &Labelled, spot: Spot) -> Rect {
        let (x, y) = anchor(a.x1, a.y1, a.x2, a.y2, spot);
        centred(x, y, a.chars_in(spot.form))
    }

    fn over(along: f64) -> Spot {
        Spot {
            along,
            ..Spot::MIDDLE
        }
    }

    fn close(a: Spot, b: Spot) -> bool {
        a.below == b.below && a.form == b.form && (a.along - b.along).abs() < 1e-9
    }

    #[test]
    fn a_lone_label_sits_in_the_middle() {
        assert_eq!(
            place(&[], &[arrow(0.0, 100.0, 400.0, 120.0, 20)]),
            vec![Spot::MIDDLE]
        );
    }

    #[test]
    fn labels_far_apart_all_sit_in_the_middle() {
        let arrows = [
            arrow(0.0, 100.0, 400.0, 110.0, 20),
            arrow(400.0, 200.0, 0.0, 210.0, 20),
            arrow(0.0, 300.0, 400.0, 310.0, 20),
        ];
        assert_eq!(place(&[], &arrows), vec![Spot::MIDDLE; 3]);
    }

    /// Two clients' requests to the server at the same moment from either side cross: the
    /// second label moves along its own arrow, off the first one.
    #[test]
    fn a_label_that_would_cover_another_slides_along_its_arrow() {
        let arrows = [
            arrow(600.0, 100.0, 200.0, 160.0, 30),
            arrow(800.0, 90.0, 200.0, 180.0, 30),
        ];
        let spots = place(&[], &arrows);
        assert_eq!(spots[0], Spot::MIDDLE);
        assert!(!spots[1].below && spots[1].along != 0.5, "{:?}", spots[1]);
        assert!(!rect_at(&arrows[0], spots[0]).hits(&rect_at(&arrows[1], spots[1])));
    }

    #[test]
    fn earlier_labels_keep_their_spots_when_later_arrows_arrive() {
        let first = [
            arrow(600.0, 100.0, 200.0, 160.0, 30),
            arrow(800.0, 90.0, 200.0, 180.0, 30),
        ];
        let mut more = first.to_vec();
        more.push(arrow(700.0, 95.0, 200.0, 170.0, 30));
        assert_eq!(place(&[], &first)[..], place(&[], &more)[..2]);
    }

    #[test]
    fn a_note_beside_a_loop_is_never_moved_but_others_avoid_it() {
        let note = Labelled {
            fixed: Some(Fixed {
                x: 242.0,
                y: 104.0,
                leftwards: false,
            }),
            ..arrow(200.0, 100.0, 200.0, 100.0, 20)
        };
        // An arrow whose middle label would sit on the note's text.
        let across = arrow(100.0, 105.0, 500.0, 117.0, 20);
        let spots = place(&[], &[note, across]);
        assert_eq!(spots[0], Spot::MIDDLE);
        assert_ne!(spots[1], Spot::MIDDLE);
        // The same when the note comes after the arrow (the page noted something while a
        // request was on its way): the arrow's label moves off the note.
        let spots = place(&[], &[across, note]);
        assert_eq!(spots[1], Spot::MIDDLE);
        assert!(!rect_at(&across, spots[0]).hits(&fixed_rect(&note.fixed.unwrap(), note.chars)));
    }

    #[test]
    fn a_phase_named_beside_a_bar_is_avoided() {
        let queued = Fixed {
            x: 470.0,
            y: 104.0,
            leftwards: false,
        };
        // A short arrow from that bar whose middle label would sit on the phase's name.
        let from_bar = arrow(460.0, 110.0, 700.0, 110.0, 20);
        assert_eq!(place(&[], &[from_bar]), vec![Spot::MIDDLE]);
        let spot = place(&[(queued, 12)], &[from_bar])[0];
        assert!(
            !spot.below && spot.along > 0.5,
            "slid away from the bar: {spot:?}"
        );
    }

    #[test]
    fn spots_go_out_from_the_middle_to_a_tenth_of_either_end_then_under_then_short_then_a_mark() {
        let s: Vec<Spot> = spots().collect();
        assert_eq!(s.len(), 126);
        assert_eq!(s[0], Spot::MIDDLE);
        assert!(close(s[1], over(0.46)) && close(s[2], over(0.54)));
        assert!(close(s[19], over(0.1)) && close(s[20], over(0.9)));
        let tier = |i: usize| &s[i * 21..(i + 1) * 21];
        assert!(tier(1).iter().all(|s| s.below && s.form == Form::Whole));
        assert!(tier(2).iter().all(|s| !s.below && s.form == Form::Short));
        assert!(tier(3).iter().all(|s| s.below && s.form == Form::Short));
        assert!(tier(4).iter().all(|s| !s.below && s.form == Form::Mark));
        assert!(tier(5).iter().all(|s| s.below && s.form == Form::Mark));
        assert_eq!(s[21].along, 0.5);
    }

    #[test]
    fn each_form_writes_its_text() {
        let label = "GET /a · 5 B · 3 ms";
        let at = |form| {
            Spot {
                form,
                ..Spot::MIDDLE
            }
            .text(label)
        };
        assert_eq!(at(Form::Whole), label);
        assert_eq!(at(Form::Short), "GET /a");
        assert_eq!(at(Form::Mark), MARK);
        assert_eq!(at(Form::Off), "");
    }

    #[test]
    fn the_short_form_is_the_first_part() {
        assert_eq!(
            short_form("GET /api/pubsub/ws · 544 B · 53 ms"),
            "GET /api/pubsub/ws"
        );
        assert_eq!(short_form("subscribed news · 51 B"), "subscribed news");
        assert_eq!(short_form("hello"), "hello");
    }

    /// A crowd the wide steps of the first placement (0.5, 0.35, 0.65, 0.22, …) found no room in,
    /// as when three subscribers connect at once on a slow machine: the finer steps find the gap.
    #[test]
    fn a_gap_between_the_wide_steps_is_found() {
        // Text everywhere on the arrow's line but between x = 115 and x = 200.
        let before = Fixed {
            x: 115.0,
            y: 93.0,
            leftwards: true,
        };
        let after = Fixed {
            x: 200.0,
            y: 93.0,
            leftwards: false,
        };
        let crowd = [(before, 19), (after, 32)];
        let a = arrow(0.0, 100.0, 400.0, 100.0, 10);
        let spot = place(&crowd, &[a])[0];
        assert!(!spot.below, "{spot:?}");
        assert!(
            crowd
                .iter()
                .all(|(f, n)| !fixed_rect(f, *n).hits(&rect_at(&a, spot))),
            "found the gap: {spot:?}"
        );
        // The wide steps alone all cover something.
        for t in [0.5, 0.35, 0.65, 0.22, 0.78, 0.12, 0.88] {
            assert!(
                crowd
                    .iter()
                    .any(|(f, n)| fixed_rect(f, *n).hits(&rect_at(&a, over(t)))),
                "{t}"
            );
        }
    }

    /// Seen on a busy machine: a subscriber's "subscribe" crosses the broker's lifeline near
    /// the broker's short "subscribed" answer, whose arrow is shorter than its label. There is no
    /// room over it anywhere along it: the label goes under it.
    #[test]
    fn a_short_arrow_with_no_room_over_it_takes_its_label_under_it() {
        let subscribe = arrow(464.0, 238.0, 244.0, 290.0, 21);
        let subscribed = arrow(360.0, 264.0, 464.0, 264.0, 22);
        let spots = place(&[], &[subscribe, subscribed]);
        assert_eq!(spots[0], Spot::MIDDLE);
        assert!(spots[1].below, "{:?}", spots[1]);
        assert!(!rect_at(&subscribe, spots[0]).hits(&rect_at(&subscribed, spots[1])));
    }

    #[test]
    fn with_no_free_spot_the_label_is_left_off() {
        let arrows = vec![arrow(0.0, 100.0, 100.0, 100.0, 40); 3];
        let spots = place(&[], &arrows);
        assert_eq!(spots[0], Spot::MIDDLE);
        assert_eq!(
            spots[1],
            Spot {
                below: true,
                ..Spot::MIDDLE
            }
        );
        // Over and under are taken from end to end, even for the short form (20 characters,
        // 126 px) and the mark: the third is left off, and takes no room from a fourth.
        assert_eq!(spots[2].form, Form::Off, "{:?}", spots[2]);
        let mut with_room = arrows.clone();
        with_room.push(arrow(0.0, 300.0, 400.0, 300.0, 10));
        assert_eq!(place(&[], &with_room)[3], Spot::MIDDLE);
    }

    #[test]
    fn a_label_with_no_room_even_shortened_gets_a_mark() {
        // Two 63 px labels over and under the middle of a 100 px arrow leave only its ends free:
        // too little for a third label's short form (126 px), enough for the mark.
        let arrows = [
            arrow(0.0, 100.0, 100.0, 100.0, 10),
            arrow(0.0, 100.0, 100.0, 100.0, 10),
            arrow(0.0, 100.0, 100.0, 100.0, 40),
        ];
        let spots = place(&[], &arrows);
        assert!(
            spots[1].below && spots[1].form == Form::Whole,
            "{:?}",
            spots[1]
        );
        assert_eq!(spots[2].form, Form::Mark, "{:?}", spots[2]);
        let [a, b, c] = [0, 1, 2].map(|i| rect_at(&arrows[i], spots[i]));
        assert!(!c.hits(&a) && !c.hits(&b));
    }

    #[test]
    fn a_label_with_no_room_whole_is_shortened() {
        // Over and under the middle of an 800 px arrow taken by two labels 378 px long: a third
        // as long fits nowhere along it, its short form (50 px) does.
        let first = arrow(0.0, 100.0, 800.0, 100.0, 60);
        let mut third = first;
        third.short_chars = 8;
        let arrows = [first, first, third];
        let spots = place(&[], &arrows);
        assert!(
            spots[1].below && spots[1].form == Form::Whole,
            "{:?}",
            spots[1]
        );
        assert_eq!(spots[2].form, Form::Short, "{:?}", spots[2]);
        let [a, b, c] = [0, 1, 2].map(|i| rect_at(&arrows[i], spots[i]));
        assert!(!c.hits(&a) && !c.hits(&b));
    }
}
