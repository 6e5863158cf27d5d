//! The server's resident memory, sampled once a second from `/proc/<pid>/status` while the
//! class runs, each sample tagged with the phase it was taken in.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::server::resident_bytes_of;

/// The samples so far and the phase new ones belong to.
#[derive(Debug, Default)]
struct Samples {
    phase: &'static str,
    taken: Vec<(&'static str, u64)>,
}

/// A sampler running in its own task until dropped.
pub struct RssSampler {
    pid: u32,
    samples: Arc<Mutex<Samples>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let samples = Arc::new(Mutex::new(Samples {
            phase: "start",
            taken: Vec::new(),
        }));
        let shared = Arc::clone(&samples);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Some(rss) = resident_bytes_of(pid) {
                    let mut s = shared.lock().expect("samples lock");
                    let phase = s.phase;
                    s.taken.push((phase, rss));
                }
            }
        });
        RssSampler { pid, samples, task }
    }

    /// Tags the samples from now on with `phase`.
    pub fn phase(&self, phase: &'static str) {
        self.samples.lock().expect("samples lock").phase = phase;
    }

    /// Resident memory now.
    pub fn now(&self) -> Option<u64> {
        resident_bytes_of(self.pid)
    }

    /// The highest sample of `phase`.
    pub fn peak(&self, phase: &str) -> Option<u64> {
        let s = self.samples.lock().expect("samples lock");
        s.taken
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, rss)| *rss)
            .max()
    }

    /// The highest sample of all.
    pub fn overall_peak(&self) -> Option<u64> {
        let s = self.samples.lock().expect("samples lock");
        s.taken.iter().map(|(_, rss)| *rss).max()
    }
}
