//! The queue demo's wire types: a run's queues and consumers, a published job, and the server's
//! report of what the broker delivered, what was acknowledged and what the pulling lane polled.

use serde::{Deserialize, Serialize};

/// Which broker a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The queue inside the server: no other process needed.
    #[default]
    Embedded,
    /// A real RabbitMQ, when the server was started with `--amqp-url`.
    Rabbitmq,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Embedded => "embedded",
            Engine::Rabbitmq => "rabbitmq",
        }
    }
}

/// `POST /api/queue/run`: the run's queues (one pushed to consumers, one pulled) and its actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueSpec {
    #[serde(default)]
    pub engine: Engine,
    /// Competing consumers the push queue delivers to, 1 to [`QueueSpec::MAX_CONSUMERS`].
    pub consumers: u8,
    /// Unacknowledged messages the broker may push to one consumer at once (`basic.qos`).
    pub prefetch: u16,
    /// How long a consumer (and the puller) works on one job, ms.
    pub work_ms: u32,
    /// The consumer (1-based) that works [`SLOW_FACTOR`] times slower; 0: none.
    #[serde(default)]
    pub slow: u8,
    /// The consumer (1-based) killed in the middle of its second job; 0: none.
    #[serde(default)]
    pub kill: u8,
    /// How often the pulling consumer asks "anything for me?" (`basic.get`), ms.
    pub poll_ms: u32,
}

/// A slow consumer takes this many times as long per job.
pub const SLOW_FACTOR: u32 = 4;

impl QueueSpec {
    pub const MAX_CONSUMERS: u8 = 4;
    pub const MAX_PREFETCH: u16 = 10;
    pub const MAX_WORK_MS: u32 = 2_000;
    pub const MIN_POLL_MS: u32 = 50;
    pub const MAX_POLL_MS: u32 = 5_000;

    pub fn validate(&self) -> Result<(), String> {
        let range = |name: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between {lo} and {hi}, got {v}"))
            }
        };
        let consumers = u64::from(Self::MAX_CONSUMERS);
        range("consumers", self.consumers.into(), 1, consumers)?;
        range(
            "prefetch",
            self.prefetch.into(),
            1,
            Self::MAX_PREFETCH.into(),
        )?;
        range("work_ms", self.work_ms.into(), 0, Self::MAX_WORK_MS.into())?;
        range(
            "poll_ms",
            self.poll_ms.into(),
            Self::MIN_POLL_MS.into(),
            Self::MAX_POLL_MS.into(),
        )?;
        range("slow", self.slow.into(), 0, self.consumers.into())?;
        range("kill", self.kill.into(), 0, self.consumers.into())?;
        if self.kill != 0 && self.consumers < 2 {
            return Err("kill needs at least 2 consumers: one must be left to take over".into());
        }
        Ok(())
    }
}

/// The answer to `POST /api/queue/run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueStarted {
    pub spec: QueueSpec,
    /// The queue the consumers are pushed from, and the one the puller polls.
    pub push_queue: String,
    pub pull_queue: String,
    /// Jobs one run may publish.
    pub max_jobs: u32,
}

/// The answer to `POST /api/queue/publish`: the job was put on both queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobPublished {
    /// The job's number in the run, from 1.
    pub job: u32,
}

/// What `GET /api/queue/report` says about one run: counted by the server as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueReport {
    pub engine: Engine,
    pub published: u32,
    /// The push lane: the broker delivers, the consumers acknowledge.
    pub push: LaneReport,
    /// The pull lane: the puller asks (`basic.get`) on an interval.
    pub pull: LaneReport,
    /// Both lanes acknowledged every published job.
    pub done: bool,
}

/// One lane's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaneReport {
    /// Requests the consumers made to the broker: `basic.consume` once per consumer (push), or
    /// one `basic.get` per poll (pull).
    pub requests: u32,
    /// Polls that found the queue empty (pull only).
    pub empty_polls: u32,
    /// Messages handed to a consumer, redeliveries included.
    pub deliveries: u32,
    /// Of those, deliveries the broker marked redelivered.
    pub redelivered: u32,
    pub acks: u32,
    /// Jobs acknowledged per consumer, by lifeline (`consumer-1`, …, `puller`).
    pub per_consumer: Vec<ConsumerCount>,
    /// From publish to the first delivery of each job, ms.
    pub latency_avg_ms: f64,
    pub latency_max_ms: f64,
}

/// Jobs one consumer acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerCount {
    pub consumer: String,
    pub acks: u32,
}

/// `GET /api/queue/info`: the engines this server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueInfo {
    pub engines: Vec<Engine>,
}

/// The message a job travels as, on either engine (RabbitMQ carries it as the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> QueueSpec {
        QueueSpec {
            engine: Engine::Embedded,
            consumers: 2,
            prefetch: 2,
            work_ms: 100,
            slow: 0,
            kill: 1,
            poll_ms: 200,
        }
    }

    #[test]
    fn a_spec_in_range_passes_and_each_bound_names_its_field() {
        assert_eq!(spec().validate(), Ok(()));
        let cases: [(QueueSpec, &str); 7] = [
            (
                QueueSpec {
                    consumers: 0,
                    ..spec()
                },
                "consumers",
            ),
            (
                QueueSpec {
                    consumers: 5,
                    ..spec()
                },
                "consumers",
            ),
            (
                QueueSpec {
                    prefetch: 0,
                    ..spec()
                },
                "prefetch",
            ),
            (
                QueueSpec {
                    work_ms: 2_001,
                    ..spec()
                },
                "work_ms",
            ),
            (
                QueueSpec {
                    poll_ms: 10,
                    ..spec()
                },
                "poll_ms",
            ),
            (QueueSpec { slow: 3, ..spec() }, "slow"),
            (
                QueueSpec {
                    consumers: 1,
                    slow: 0,
                    ..spec()
                },
                "kill",
            ),
        ];
        for (bad, field) in cases {
            let err = bad.validate().unwrap_err();
            assert!(err.starts_with(field), "{err}");
        }
    }

    #[test]
    fn the_engine_is_lowercase_on_the_wire_and_embedded_by_default() {
        let json = serde_json::to_string(&spec()).unwrap();
        assert!(json.contains("\"engine\":\"embedded\""), "{json}");
        let parsed: QueueSpec =
            serde_json::from_str(r#"{"consumers":2,"prefetch":1,"work_ms":0,"poll_ms":100}"#)
                .unwrap();
        assert_eq!(parsed.engine, Engine::Embedded);
        assert_eq!((parsed.slow, parsed.kill), (0, 0));
    }
}
