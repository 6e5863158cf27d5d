//! Latency distributions: nearest-rank percentiles over per-subscriber latencies, and over the
//! per-publish latency to the last subscriber (the time until everyone had it).

use std::time::Duration;

/// Nearest-rank percentile `p` (0–100) of `sorted`; `None` when it is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What the subscribers of one publish saw.
#[derive(Debug, Default, Clone)]
pub struct PublishOutcome {
    /// From sending the publish to each subscriber receiving it, in arrival order.
    pub latencies: Vec<Duration>,
    /// Subscribers that had not received it when we stopped waiting.
    pub missing: usize,
}

/// The distribution over every publish of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub publishes: usize,
    /// Per subscriber and publish.
    pub each_p50: Duration,
    pub each_p99: Duration,
    /// Per publish: the latency to its last subscriber.
    pub last_p50: Duration,
    pub last_p99: Duration,
    pub last_max: Duration,
    /// Deliveries that never arrived (over all publishes).
    pub missing: usize,
}

impl Summary {
    /// Summarises `outcomes`; `None` when nothing arrived at all.
    pub fn of(outcomes: &[PublishOutcome]) -> Option<Summary> {
        let mut each: Vec<Duration> = outcomes
            .iter()
            .flat_map(|o| o.latencies.iter().copied())
            .collect();
        each.sort_unstable();
        let mut last: Vec<Duration> = outcomes
            .iter()
            .filter_map(|o| o.latencies.iter().max().copied())
            .collect();
        last.sort_unstable();
        Some(Summary {
            publishes: outcomes.len(),
            each_p50: percentile(&each, 50.0)?,
            each_p99: percentile(&each, 99.0)?,
            last_p50: percentile(&last, 50.0)?,
            last_p99: percentile(&last, 99.0)?,
            last_max: *last.last()?,
            missing: outcomes.iter().map(|o| o.missing).sum(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(ms(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(ms(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(ms(100)));
        assert_eq!(percentile(&[ms(7)], 99.0), Some(ms(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_last_subscriber_is_the_slowest_of_each_publish() {
        let outcomes = [
            PublishOutcome {
                latencies: vec![ms(1), ms(9), ms(3)],
                missing: 0,
            },
            PublishOutcome {
                latencies: vec![ms(2), ms(4), ms(5)],
                missing: 1,
            },
        ];
        let s = Summary::of(&outcomes).unwrap();
        assert_eq!((s.last_p50, s.last_p99, s.last_max), (ms(5), ms(9), ms(9)));
        assert_eq!((s.each_p50, s.each_p99), (ms(3), ms(9)));
        assert_eq!((s.publishes, s.missing), (2, 1));
    }
}
