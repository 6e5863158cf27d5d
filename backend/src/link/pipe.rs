//! One direction of a shaped link, as a timing model: a byte handed to it waits for the bytes
//! before it to be sent at the link's rate, travels half the round trip, and a lost packet of
//! it is sent again a retransmission timeout later. Delivery keeps the order bytes were handed
//! over in, as TCP does: what comes after a lost packet waits for it.

use std::time::Duration;

use protocol::link::LinkSpec;
use tokio::time::Instant;

/// Browser to server, or server to browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Up,
    Down,
}

/// A packet's fate: `true` when it is lost (and sent again).
pub type Loss<'a> = &'a mut dyn FnMut(u32) -> bool;

/// One direction's queue: when the link is free to send again, and when its last bytes arrive.
#[derive(Debug, Default)]
pub struct Pipe {
    free_at: Option<Instant>,
    last_arrival: Option<Instant>,
}

impl Pipe {
    /// When `bytes` handed to the link at `now` have all arrived at the far end. `lost` is
    /// asked for each packet whether it is lost, given the link's loss in a thousand.
    pub fn arrival(
        &mut self,
        spec: &LinkSpec,
        way: Way,
        now: Instant,
        bytes: usize,
        lost: Loss<'_>,
    ) -> Instant {
        let rate = match way {
            Way::Up => spec.up_bps,
            Way::Down => spec.down_bps,
        };
        let start = self.free_at.map_or(now, |free| free.max(now));
        let sending = rate.map_or(Duration::ZERO, |bps| {
            Duration::from_nanos((bytes as u64 * 8).saturating_mul(1_000_000_000) / bps.max(1))
        });
        self.free_at = Some(start + sending);
        let mut arrival = start + sending + Duration::from_micros(u64::from(spec.rtt_ms) * 500);
        if spec.loss_per_mille > 0 {
            // At most a thousand packets are asked about: a frame bigger than 1.4 MB is rare
            // here, and one retransmission in it delays it all the same.
            let packets = bytes.div_ceil(LinkSpec::PACKET_BYTES).clamp(1, 1_000);
            let resent = (0..packets).filter(|_| lost(spec.loss_per_mille)).count() as u32;
            arrival += Duration::from_millis(u64::from(spec.retransmit_ms())) * resent.min(3);
        }
        let arrival = self.last_arrival.map_or(arrival, |last| last.max(arrival));
        self.last_arrival = Some(arrival);
        arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::link::Link;

    fn never(_: u32) -> bool {
        false
    }

    #[test]
    fn a_small_message_takes_half_the_round_trip() {
        let spec = Link::ThreeG.spec();
        let now = Instant::now();
        let at = Pipe::default().arrival(&spec, Way::Down, now, 0, &mut never);
        assert_eq!(at - now, Duration::from_millis(150));
    }

    #[test]
    fn bytes_wait_for_the_bytes_before_them_at_the_links_rate() {
        let spec = Link::ThreeG.spec();
        let now = Instant::now();
        let mut pipe = Pipe::default();
        // 200,000 bytes at 1.6 Mbit/s: 1 s on the wire, then 150 ms of travel.
        let first = pipe.arrival(&spec, Way::Down, now, 200_000, &mut never);
        assert_eq!(first - now, Duration::from_millis(1_150));
        // Handed over at the same moment, a small message waits for the big one to be sent.
        let second = pipe.arrival(&spec, Way::Down, now, 0, &mut never);
        assert_eq!(second - now, Duration::from_millis(1_150));
        // Up is slower: 750 kbit/s.
        let up = Pipe::default().arrival(&spec, Way::Up, now, 75_000, &mut never);
        assert_eq!(up - now, Duration::from_millis(950));
    }

    #[test]
    fn a_lost_packet_delays_it_and_everything_after_it() {
        let spec = Link::Lossy.spec();
        let now = Instant::now();
        let mut pipe = Pipe::default();
        let mut first_lost = {
            let mut asked = 0;
            move |per_mille: u32| {
                assert_eq!(per_mille, 50);
                asked += 1;
                asked == 1
            }
        };
        let lost = pipe.arrival(&spec, Way::Down, now, 0, &mut first_lost);
        assert_eq!(lost - now, Duration::from_millis(50 + 300));
        let after = pipe.arrival(&spec, Way::Down, now, 0, &mut never);
        assert_eq!(after, lost, "in order, as TCP delivers");
    }

    #[test]
    fn a_local_link_adds_nothing() {
        let now = Instant::now();
        let at = Pipe::default().arrival(&Link::Local.spec(), Way::Up, now, 1 << 20, &mut never);
        assert_eq!(at, now);
    }
}
