//! Where each arrow's label sits. A label is written at the middle of its arrow unless that
//! would cover a label already placed (requests from several clients at once cross each other
//! near the server); then it slides along its own arrow to the first free spot, so it still
//! reads as that arrow's. Text written at a place of its own (a phase named beside its
//! activation bar) is left where it is and avoided. Pure, so the placement is unit-tested.

use std::collections::HashMap;

/// Rough width of one character of an arrow label (11.5 px sans-serif) and the label's height.
const CHAR_WIDTH: f64 = 6.3;
const HEIGHT: f64 = 15.0;
/// Spots tried along an arrow, as a fraction of the way from its tail to its head.
const SPOTS: [f64; 7] = [0.5, 0.35, 0.65, 0.22, 0.78, 0.12, 0.88];
/// Height of the buckets placed labels are filed in (at least a label's height).
const BUCKET: f64 = 16.0;

/// An arrow and the text to be written on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    /// Characters in the label.
    pub chars: usize,
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

/// The text's baseline sits this far above the point on the arrow.
pub const ABOVE: f64 = 7.0;

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

/// For each arrow, in order, the fraction of the way along it where its label goes: the first
/// of [`SPOTS`] whose box covers neither a label placed before it nor one of the `fixed` texts
/// (each with its number of characters), or the middle if none is free. Earlier arrows keep
/// their spots when later ones arrive (a growing run does not reshuffle).
pub fn place(fixed: &[(Fixed, usize)], arrows: &[Labelled]) -> Vec<f64> {
    let mut placed: HashMap<i64, Vec<Rect>> = HashMap::new();
    for (f, chars) in fixed {
        let rect = fixed_rect(f, *chars);
        for b in rect.buckets() {
            placed.entry(b).or_default().push(rect);
        }
    }
    let free = |placed: &HashMap<i64, Vec<Rect>>, r: &Rect| {
        r.buckets().all(|b| {
            placed
                .get(&b)
                .is_none_or(|rs| rs.iter().all(|o| !o.hits(r)))
        })
    };
    arrows
        .iter()
        .map(|a| {
            let (at, rect) = match &a.fixed {
                Some(f) => (0.5, fixed_rect(f, a.chars)),
                None => {
                    let on = |t: f64| {
                        centred(
                            a.x1 + t * (a.x2 - a.x1),
                            a.y1 + t * (a.y2 - a.y1) - ABOVE,
                            a.chars,
                        )
                    };
                    SPOTS
                        .iter()
                        .map(|&t| (t, on(t)))
                        .find(|(_, r)| free(&placed, r))
                        .unwrap_or_else(|| (0.5, on(0.5)))
                }
            };
            for b in rect.buckets() {
                placed.entry(b).or_default().push(rect);
            }
            at
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(x1: f64, y1: f64, x2: f64, y2: f64, chars: usize) -> Labelled {
        Labelled {
            x1,
            y1,
            x2,
            y2,
            chars,
            fixed: None,
        }
    }

    #[test]
    fn a_lone_label_sits_in_the_middle() {
        assert_eq!(
            place(&[], &[arrow(0.0, 100.0, 400.0, 120.0, 20)]),
            vec![0.5]
        );
    }

    #[test]
    fn labels_far_apart_all_sit_in_the_middle() {
        let arrows = [
            arrow(0.0, 100.0, 400.0, 110.0, 20),
            arrow(400.0, 200.0, 0.0, 210.0, 20),
            arrow(0.0, 300.0, 400.0, 310.0, 20),
        ];
        assert_eq!(place(&[], &arrows), vec![0.5, 0.5, 0.5]);
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
        assert_eq!(spots[0], 0.5);
        assert_ne!(spots[1], 0.5);
        let rect = |a: &Labelled, t: f64| {
            centred(
                a.x1 + t * (a.x2 - a.x1),
                a.y1 + t * (a.y2 - a.y1) - ABOVE,
                a.chars,
            )
        };
        assert!(!rect(&arrows[0], spots[0]).hits(&rect(&arrows[1], spots[1])));
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
        assert_eq!(spots[0], 0.5);
        assert_ne!(spots[1], 0.5);
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
        assert_eq!(place(&[], &[from_bar]), vec![0.5]);
        let spot = place(&[(queued, 12)], &[from_bar])[0];
        assert!(spot > 0.5, "slid away from the bar: {spot}");
    }

    #[test]
    fn with_no_free_spot_the_label_stays_in_the_middle() {
        let arrows = vec![arrow(0.0, 100.0, 100.0, 100.0, 40); 3];
        assert_eq!(place(&[], &arrows), vec![0.5, 0.5, 0.5]);
    }
}
