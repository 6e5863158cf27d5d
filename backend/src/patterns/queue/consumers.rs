//! The run's consumers, actors inside the server with lifelines of their own: competing
//! consumers the broker pushes to (each works through what it was pushed, one job at a time,
//! and acknowledges it; one may be slow, one may die in the middle of a job), and the puller,
//! which asks the pull queue for a job on an interval. Every delivery, ack, poll and death is a
//! hop on the run's trace and a count in its [`Tally`].

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use protocol::{
    pairing,
    queue::{ConsumerCount, LaneReport, QueueReport, SLOW_FACTOR},
    trace::{Detail, Header, Kind},
};
use tokio::sync::watch;

use super::engine::{Delivery, RunQueues, Subscription};
use crate::trace::{Hop, Tracer, server_now_us};

/// The broker's lifeline.
pub const QUEUE: &str = "queue";
/// The pulling consumer's lifeline.
pub const PULLER: &str = "puller";
/// Polls one run's puller makes at most; then it stops (and says so on the diagram).
pub const MAX_POLLS: u32 = 1_000;

/// What happened in one run, counted as it happened. Cheap to clone; `changed` ticks at every
/// ack, for the report that waits until every job is done.
#[derive(Clone)]
pub struct Tally {
    counts: Arc<Mutex<Counts>>,
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct Counts {
    engine: protocol::queue::Engine,
    published: u32,
    /// When each job was published (server clock, µs), by job.
    published_at: HashMap<u32, i64>,
    push: Lane,
    pull: Lane,
}

#[derive(Default)]
struct Lane {
    requests: u32,
    empty_polls: u32,
    deliveries: u32,
    redelivered: u32,
    acks: u32,
    per_consumer: BTreeMap<String, u32>,
    acked_jobs: BTreeSet<u32>,
    /// Publish to first delivery, µs, by job.
    latency_us: HashMap<u32, i64>,
}

impl Lane {
    fn report(&self) -> LaneReport {
        let n = self.latency_us.len().max(1) as f64;
        let sum: i64 = self.latency_us.values().sum();
        let max = self.latency_us.values().copied().max().unwrap_or(0);
        LaneReport {
            requests: self.requests,
            empty_polls: self.empty_polls,
            deliveries: self.deliveries,
            redelivered: self.redelivered,
            acks: self.acks,
            per_consumer: self
                .per_consumer
                .iter()
                .map(|(consumer, &acks)| ConsumerCount {
                    consumer: consumer.clone(),
                    acks,
                })
                .collect(),
            latency_avg_ms: sum as f64 / n / 1_000.0,
            latency_max_ms: max as f64 / 1_000.0,
        }
    }
}

/// Which lane a count is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Push,
    Pull,
}

impl Tally {
    pub fn new(engine: protocol::queue::Engine) -> Tally {
        Tally {
            counts: Arc::new(Mutex::new(Counts {
                engine,
                ..Counts::default()
            })),
            changed: watch::channel(0).0,
        }
    }

    fn update<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        let out = f(&mut self.counts.lock().expect("tally lock poisoned"));
        self.changed.send_modify(|n| *n += 1);
        out
    }

    /// Numbers the next job and notes when it was published; `None` past `max_jobs`.
    pub fn next_job(&self, max_jobs: u32) -> Option<u32> {
        self.update(|c| {
            (c.published < max_jobs).then(|| {
                c.published += 1;
                c.published_at.insert(c.published, server_now_us());
                c.published
            })
        })
    }

    fn lane(c: &mut Counts, which: Which) -> &mut Lane {
        match which {
            Which::Push => &mut c.push,
            Which::Pull => &mut c.pull,
        }
    }

    fn request(&self, which: Which, empty: bool) {
        self.update(|c| {
            let lane = Tally::lane(c, which);
            lane.requests += 1;
            lane.empty_polls += u32::from(empty);
        });
    }

    fn delivered(&self, which: Which, d: &Delivery) {
        let now = server_now_us();
        self.update(|c| {
            let published = c.published_at.get(&d.job).copied();
            let lane = Tally::lane(c, which);
            lane.deliveries += 1;
            lane.redelivered += u32::from(d.redelivered);
            if let Some(at) = published {
                lane.latency_us.entry(d.job).or_insert(now - at);
            }
        });
    }

    fn acked(&self, which: Which, consumer: &str, job: u32) {
        self.update(|c| {
            let lane = Tally::lane(c, which);
            lane.acks += 1;
            *lane.per_consumer.entry(consumer.to_owned()).or_default() += 1;
            lane.acked_jobs.insert(job);
        });
    }

    /// The figures now.
    pub fn report(&self) -> QueueReport {
        let c = self.counts.lock().expect("tally lock poisoned");
        let all = |lane: &Lane| (1..=c.published).all(|job| lane.acked_jobs.contains(&job));
        QueueReport {
            engine: c.engine,
            published: c.published,
            push: c.push.report(),
            pull: c.pull.report(),
            done: c.published > 0 && all(&c.push) && all(&c.pull),
        }
    }

    /// The report once every published job is acknowledged on both lanes, or after `wait`.
    pub async fn report_when_done(&self, wait: Duration) -> QueueReport {
        let mut changed = self.changed.subscribe();
        let _ = tokio::time::timeout(wait, async {
            loop {
                if self.report().done {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        self.report()
    }
}

/// What a consumer of the push queue needs.
pub struct ConsumerSpec {
    /// Its lifeline: `consumer-1`, …
    pub name: String,
    pub prefetch: u16,
    pub work: Duration,
    pub slow: bool,
    /// Dies in the middle of its second job.
    pub doomed: bool,
}

/// A hop id unique in the run: `{rid}-{what}`.
fn id(rid: &str, what: String) -> String {
    pairing::hop(rid, &what)
}

/// What the broker's frame carried, for the inspector: `basic.deliver` or `basic.get-ok`, its
/// fields, and the message body.
fn delivery_detail(method: &str, d: &Delivery) -> Detail {
    let field = |name: &str, value: String| Header {
        name: name.into(),
        value,
    };
    let exchange = if d.exchange.is_empty() {
        "(the embedded queue)".to_owned()
    } else {
        d.exchange.clone()
    };
    Detail {
        start_line: method.into(),
        headers: vec![
            field("delivery-tag", d.tag.to_string()),
            field("redelivered", d.redelivered.to_string()),
            field("exchange", exchange),
        ],
        ..Detail::of_body(d.body.clone())
    }
}

fn delivery_label(verb: &str, d: &Delivery) -> String {
    let again = if d.redelivered { " · redelivered" } else { "" };
    format!("{verb} job #{} · tag {}{again}", d.job, d.tag)
}

/// One competing consumer, from `basic.consume` until it dies or its run ends (the task is
/// aborted). The broker pushes into its subscription while it works: deliveries are drawn
/// when they arrive, and wait in its buffer until it is free.
pub async fn consume(queues: Arc<dyn RunQueues>, spec: ConsumerSpec, tracer: Tracer, tally: Tally) {
    let name = spec.name.as_str();
    let mut subscription = match queues.consume(name, spec.prefetch).await {
        Ok(s) => s,
        Err(e) => {
            tracer.record(|rid| {
                Hop::note(name, id(rid, format!("{name}-failed"))).label(format!("{e}"))
            });
            return;
        }
    };
    tally.request(Which::Push, false);
    tracer.record(|rid| {
        Hop::new(
            Kind::Connect,
            name,
            QUEUE,
            id(rid, format!("{name}-consume")),
        )
        .label(format!("basic.consume (prefetch {})", spec.prefetch))
    });
    let work = if spec.slow {
        spec.work * SLOW_FACTOR
    } else {
        spec.work
    };
    let mut buffered: VecDeque<Delivery> = VecDeque::new();
    let mut working: Option<Delivery> = None;
    let mut started = 0u32;
    let done_at = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(done_at);
    loop {
        if working.is_none()
            && let Some(next) = buffered.pop_front()
        {
            started += 1;
            if spec.doomed && started == 2 {
                die(
                    subscription,
                    &next,
                    buffered.len(),
                    (name, work),
                    &tracer,
                    &tally,
                )
                .await;
                return;
            }
            tracer.record(|rid| {
                Hop::new(
                    Kind::Work,
                    name,
                    name,
                    id(rid, format!("{name}-work-{}", next.tag)),
                )
                .label(format!(
                    "work on job #{} ({} ms)",
                    next.job,
                    work.as_millis()
                ))
            });
            done_at.as_mut().reset(tokio::time::Instant::now() + work);
            working = Some(next);
        }
        tokio::select! {
            pushed = subscription.next() => {
                let Some(d) = pushed else { return };
                pushed_to(name, &d, &tracer, &tally);
                buffered.push_back(d);
            }
            _ = &mut done_at, if working.is_some() => {
                let d = working.take().expect("working");
                ack(d, name, Which::Push, &tracer, &tally).await;
            }
        }
    }
}

/// Draws and counts a delivery the broker pushed to consumer `name`.
fn pushed_to(name: &str, d: &Delivery, tracer: &Tracer, tally: &Tally) {
    tally.delivered(Which::Push, d);
    tracer.record(|rid| {
        Hop::new(
            Kind::Deliver,
            QUEUE,
            name,
            id(rid, format!("{name}-d{}", d.tag)),
        )
        .label(delivery_label("deliver", d))
        .detail(delivery_detail("basic.deliver", d))
    });
}

/// Acknowledges `d` to the broker, and draws and counts it.
async fn ack(d: Delivery, name: &str, which: Which, tracer: &Tracer, tally: &Tally) {
    let (job, tag) = (d.job, d.tag);
    match d.ack.ack().await {
        Ok(()) => {
            tally.acked(which, name, job);
            tracer.record(|rid| {
                Hop::new(
                    Kind::Response,
                    name,
                    QUEUE,
                    id(rid, format!("{name}-a{tag}")),
                )
                .label(format!("ack job #{job} · tag {tag}"))
            });
        }
        Err(e) => tracer.record(|rid| {
            Hop::note(name, id(rid, format!("{name}-a{tag}-failed")))
                .label(format!("ack of job #{job} failed: {e}"))
        }),
    }
}

/// The consumer dies halfway through `current`: its channel closes with `current` and every
/// buffered delivery unacknowledged (what the broker pushes meanwhile included), and the broker
/// requeues them for the others.
async fn die(
    mut subscription: Box<dyn Subscription>,
    current: &Delivery,
    mut unacked: usize,
    consumer: (&str, Duration),
    tracer: &Tracer,
    tally: &Tally,
) {
    let (name, work) = consumer;
    tracer.record(|rid| {
        Hop::new(
            Kind::Work,
            name,
            name,
            id(rid, format!("{name}-work-{}", current.tag)),
        )
        .label(format!(
            "work on job #{} ({} ms)",
            current.job,
            work.as_millis()
        ))
    });
    let halfway = tokio::time::sleep(work / 2);
    tokio::pin!(halfway);
    loop {
        tokio::select! {
            pushed = subscription.next() => {
                let Some(d) = pushed else { break };
                pushed_to(name, &d, tracer, tally);
                unacked += 1;
            }
            _ = &mut halfway => break,
        }
    }
    unacked += 1;
    tracer.record(|rid| {
        Hop::new(Kind::Close, name, QUEUE, id(rid, format!("{name}-killed"))).label(format!(
            "killed mid job #{}: channel closed, {unacked} unacked",
            current.job
        ))
    });
    subscription.kill().await;
}

/// The pulling consumer: `basic.get` every `every` while the queue is empty, at once again
/// after a job (so an idle queue costs one empty poll per interval), each job worked on for
/// `work` and acknowledged. Stops after [`MAX_POLLS`].
pub async fn pull(
    queues: Arc<dyn RunQueues>,
    every: Duration,
    work: Duration,
    tracer: Tracer,
    tally: Tally,
) {
    tracer.record(|rid| {
        Hop::new(Kind::Connect, PULLER, QUEUE, id(rid, "puller-open".into())).label(format!(
            "open channel (basic.get every {} ms)",
            every.as_millis()
        ))
    });
    for poll in 1..=MAX_POLLS {
        let asked = server_now_us();
        let got = queues.get().await;
        let answered = server_now_us();
        let hop = |rid: &str| id(rid, format!("poll{poll}"));
        tracer.record(|rid| {
            Hop::new(Kind::Request, PULLER, QUEUE, hop(rid))
                .label("basic.get".into())
                .at(crate::trace::HopTime::Span(asked, asked))
        });
        match got {
            Ok(Some(d)) => {
                tally.request(Which::Pull, false);
                tally.delivered(Which::Pull, &d);
                tracer.record(|rid| {
                    Hop::new(Kind::Response, QUEUE, PULLER, hop(rid))
                        .label(delivery_label("get-ok", &d))
                        .detail(delivery_detail("basic.get-ok", &d))
                        .at(crate::trace::HopTime::Span(answered, answered))
                });
                tracer.record(|rid| {
                    Hop::new(
                        Kind::Work,
                        PULLER,
                        PULLER,
                        id(rid, format!("puller-work-{poll}")),
                    )
                    .label(format!(
                        "work on job #{} ({} ms)",
                        d.job,
                        work.as_millis()
                    ))
                });
                tokio::time::sleep(work).await;
                ack(d, PULLER, Which::Pull, &tracer, &tally).await;
            }
            Ok(None) => {
                tally.request(Which::Pull, true);
                tracer.record(|rid| {
                    Hop::new(Kind::Response, QUEUE, PULLER, hop(rid))
                        .label("get-empty".into())
                        .at(crate::trace::HopTime::Span(answered, answered))
                });
                tokio::time::sleep(every).await;
            }
            Err(e) => {
                tracer.record(|rid| {
                    Hop::note(PULLER, id(rid, format!("poll{poll}-failed"))).label(e.to_string())
                });
                tokio::time::sleep(every).await;
            }
        }
    }
    tracer.record(|rid| {
        Hop::note(PULLER, id(rid, "puller-stopped".into()))
            .label(format!("stopped after {MAX_POLLS} polls"))
    });
}
