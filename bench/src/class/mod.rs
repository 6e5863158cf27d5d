//! A class behind a TLS reverse proxy (issue 16, `make bench-class`): thirty learners, each from
//! its own loopback address, run every demo's real request sequence at a human pace, first alone,
//! then beside two abusers and a slowloris; every run is checked against the server's trace,
//! and the server's memory is sampled throughout.
//!
//! # Layout
//! - [`tls`]: connections from a chosen source address, through TLS trusting the proxy's
//!   self-signed certificate; HTTP clients and WebSockets on them.
//! - [`trace_watch`]: a learner's trace socket, noting which halves of which request the server
//!   recorded.
//! - [`learner`]: the demos' request sequences and what makes a run complete.
//! - [`abuse`]: the abusers and the slowloris.
//! - [`memory`]: the server's resident memory, sampled every second.

pub mod abuse;
pub mod learner;
pub mod memory;
pub mod tls;
pub mod trace_watch;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use learner::{Demo, Learner, Outcome, RunReport};

/// The source address of learner `n` (from 127.0.0.10 up).
pub fn learner_address(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + n as u8))
}

/// Every learner runs demos for `length`: learner `n` starts at demo `n` of the menu and goes
/// through them in turn, pausing 2 to 5 s after each run as a person reading the diagram would.
/// A run started before the end is finished.
pub async fn class_for(learners: &[Arc<Learner>], length: Duration) -> Vec<RunReport> {
    let end = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, learner) in learners.iter().enumerate() {
        let learner = Arc::clone(learner);
        tasks.spawn(async move {
            let mut reports = Vec::new();
            // Spread the first runs over the first two seconds, as people press Run.
            tokio::time::sleep(Duration::from_millis(67 * n as u64)).await;
            let mut k = n;
            while Instant::now() < end {
                let demo = Demo::ALL[k % Demo::ALL.len()];
                k += 1;
                reports.push(learner.run(demo).await);
                let pause = Duration::from_millis(2_000 + rand::random::<u64>() % 3_000);
                let left = end.saturating_duration_since(Instant::now());
                tokio::time::sleep(pause.min(left)).await;
            }
            reports
        });
    }
    let mut all = Vec::new();
    while let Some(reports) = tasks.join_next().await {
        all.extend(reports.unwrap_or_default());
    }
    all
}

/// One demo's runs in one phase.
#[derive(Debug, Default, Clone)]
pub struct DemoFigures {
    pub runs: usize,
    pub complete: usize,
    pub trace_missing: usize,
    pub throttled: usize,
    pub failed: usize,
    /// Durations of the runs whose sequence succeeded, sorted.
    pub took: Vec<Duration>,
    /// The first failure seen, to tell what went wrong.
    pub example: Option<String>,
}

impl DemoFigures {
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        crate::stats::percentile(&self.took, p)
    }
}

/// Figures per demo of one phase's runs.
pub fn by_demo(reports: &[RunReport]) -> BTreeMap<Demo, DemoFigures> {
    let mut out: BTreeMap<Demo, DemoFigures> = BTreeMap::new();
    for r in reports {
        let f = out.entry(r.demo).or_default();
        f.runs += 1;
        let problem = match &r.outcome {
            Outcome::Complete => {
                f.complete += 1;
                f.took.push(r.took);
                None
            }
            Outcome::TraceMissing(why) => {
                f.trace_missing += 1;
                f.took.push(r.took);
                Some(why.clone())
            }
            Outcome::Throttled(why) => {
                f.throttled += 1;
                Some(why.clone())
            }
            Outcome::Failed(why) => {
                f.failed += 1;
                Some(why.clone())
            }
        };
        if f.example.is_none() {
            f.example = problem;
        }
    }
    for f in out.values_mut() {
        f.took.sort();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(demo: Demo, ms: u64, outcome: Outcome) -> RunReport {
        RunReport {
            demo,
            took: Duration::from_millis(ms),
            outcome,
        }
    }

    #[test]
    fn learners_have_addresses_of_their_own() {
        assert_eq!(learner_address(0).to_string(), "127.0.0.10");
        assert_eq!(learner_address(29).to_string(), "127.0.0.39");
    }

    #[test]
    fn only_runs_with_their_whole_trace_are_complete() {
        let figures = by_demo(&[
            report(Demo::Sse, 300, Outcome::Complete),
            report(Demo::Sse, 100, Outcome::Complete),
            report(Demo::Sse, 200, Outcome::TraceMissing("rid 2".into())),
            report(Demo::Sse, 5, Outcome::Throttled("429".into())),
            report(Demo::Push, 7, Outcome::Failed("closed".into())),
        ]);
        let sse = &figures[&Demo::Sse];
        assert_eq!(
            (sse.runs, sse.complete, sse.trace_missing, sse.throttled),
            (4, 2, 1, 1)
        );
        // Timed: the runs whose sequence succeeded, sorted; the refused one is not.
        assert_eq!(sse.took, [100, 200, 300].map(Duration::from_millis));
        assert_eq!(sse.example.as_deref(), Some("rid 2"));
        let push = &figures[&Demo::Push];
        assert_eq!((push.runs, push.complete, push.failed), (1, 0, 1));
        assert!(push.percentile(99.0).is_none());
    }
}
