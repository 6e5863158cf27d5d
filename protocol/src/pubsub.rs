//! The publish/subscribe demo's wire types: publishing over HTTP, a subscriber's WebSocket frames
//! (one enum per direction), the event stream's events, the server-side ticker, and the bounds.

use serde::{Deserialize, Serialize};

use crate::{push::Frame, trace::Kind};

/// Longest message text a publisher may send (bytes); larger bodies get a 413.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Most messages a topic keeps for replay; a subscriber asks for up to this many.
pub const MAX_HISTORY: u32 = 20;
/// Topics one room (or run) may have at once.
pub const MAX_TOPICS_PER_ROOM: usize = 32;
/// Subscribers one topic may have at once.
pub const MAX_SUBSCRIBERS_PER_TOPIC: usize = 64;
/// Deliveries waiting for one subscriber before the broker drops it as too slow.
pub const SUBSCRIBER_QUEUE: usize = 16;
/// Fastest server-side ticker, messages per second.
pub const MAX_TICKER_RATE: u32 = 20;
/// Longest a ticker runs, seconds.
pub const MAX_TICKER_SECONDS: u32 = 60;

/// `POST /api/pubsub/publish`: hand one message to the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishRequest {
    /// A named room shared with other tabs; none keeps the topic private to this run.
    #[serde(default)]
    pub room: Option<String>,
    pub topic: String,
    pub text: String,
    /// The publisher's lifeline (`browser` unless said otherwise).
    #[serde(default)]
    pub publisher: Option<String>,
}

/// The answer to a publish: the message's number in its topic and who took it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Published {
    pub topic: String,
    pub seq: u64,
    /// The broker engine: `memory` or `redis`.
    pub engine: String,
    /// The server instance that took the publish.
    pub instance: String,
}

/// One message as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub topic: String,
    /// Its number in the topic, from 1; a gap means messages this subscriber did not get.
    pub seq: u64,
    pub text: String,
    /// The lifeline that published it (`browser`, `ticker`).
    pub publisher: String,
    /// The instance that took the publish.
    pub published_by: String,
    /// The instance that delivered it to this subscriber (with Redis, maybe another one).
    pub delivered_by: String,
    /// Sent from the topic's history on subscribing, not live.
    #[serde(default)]
    pub replayed: bool,
}

impl Delivery {
    /// The diagram's label for this delivery, the same on both observers.
    pub fn summary(&self) -> String {
        format!(
            "{}deliver {} #{} via {}",
            if self.replayed { "replay: " } else { "" },
            self.topic,
            self.seq,
            self.delivered_by
        )
    }
}

/// What a subscriber sends on `/api/pubsub/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SubscriberFrame {
    /// Deliver this topic's messages to me from now on, after the last `replay` it kept.
    /// With `prefetch`, at most that many deliveries may be unacknowledged at once (the rest
    /// wait in my bounded queue on the server); without, every delivery counts as acknowledged.
    Subscribe {
        topic: String,
        #[serde(default)]
        replay: u32,
        #[serde(default)]
        prefetch: Option<u32>,
    },
    /// Stop delivering this topic to me.
    Unsubscribe { topic: String },
    /// I have handled every delivery up to the `upto`-th one on this socket.
    Ack { upto: u64 },
}

/// What the broker sends on `/api/pubsub/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BrokerFrame {
    /// A `Subscribe` took effect; `replayed` history messages follow.
    Subscribed {
        topic: String,
        replayed: u32,
    },
    Unsubscribed {
        topic: String,
    },
    /// A message of a subscribed topic.
    Message {
        delivery: Delivery,
    },
    /// A frame was refused; the socket stays open.
    Error {
        error: String,
    },
}

impl Frame for SubscriberFrame {
    fn summary(&self) -> String {
        match self {
            SubscriberFrame::Subscribe { topic, replay, .. } if *replay > 0 => {
                format!("subscribe {topic} (replay {replay})")
            }
            SubscriberFrame::Subscribe { topic, .. } => format!("subscribe {topic}"),
            SubscriberFrame::Unsubscribe { topic } => format!("unsubscribe {topic}"),
            SubscriberFrame::Ack { upto } => format!("ack {upto}"),
        }
    }
}

impl Frame for BrokerFrame {
    fn summary(&self) -> String {
        match self {
            BrokerFrame::Subscribed { topic, .. } => format!("subscribed {topic}"),
            BrokerFrame::Unsubscribed { topic } => format!("unsubscribed {topic}"),
            BrokerFrame::Message { delivery } => delivery.summary(),
            BrokerFrame::Error { error } => {
                format!("error: {}", error.chars().take(30).collect::<String>())
            }
        }
    }

    fn drawn_as(&self) -> (Kind, &'static str) {
        match self {
            BrokerFrame::Message { .. } => (Kind::Deliver, "broker"),
            _ => (Kind::Push, "broker"),
        }
    }
}

/// Names of the events on `/api/pubsub/events`: each delivery is a `message` event whose `id:`
/// counts deliveries on this stream; `dropped` says why the broker gave up on a slow reader.
pub const EVENT_MESSAGE: &str = "message";
pub const EVENT_DROPPED: &str = "dropped";

/// `POST /api/pubsub/ticker`: a publisher inside the server, on the `ticker` lifeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TickerSpec {
    #[serde(default)]
    pub room: Option<String>,
    pub topic: String,
    /// Messages per second, `1..=MAX_TICKER_RATE`.
    pub per_second: u32,
    /// Bytes of text per message, `1..=MAX_MESSAGE_BYTES`.
    pub bytes: u32,
    /// How long it runs, `1..=MAX_TICKER_SECONDS`.
    pub seconds: u32,
}

impl TickerSpec {
    /// Checks every number, naming the first one out of range.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, v: u32, hi: u32| {
            if (1..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between 1 and {hi}, got {v}"))
            }
        };
        check("per_second", self.per_second, MAX_TICKER_RATE)?;
        check("bytes", self.bytes, MAX_MESSAGE_BYTES as u32)?;
        check("seconds", self.seconds, MAX_TICKER_SECONDS)
    }
}

/// The body of a text of `bytes` bytes: a readable counter padded with dots.
pub fn filler_text(label: &str, bytes: usize) -> String {
    let mut text = label.to_owned();
    text.truncate(bytes);
    while text.len() < bytes {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_summarise() {
        let frame = SubscriberFrame::Subscribe {
            topic: "news".into(),
            replay: 3,
            prefetch: None,
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            text,
            r#"{"type":"subscribe","topic":"news","replay":3,"prefetch":null}"#
        );
        assert_eq!(
            serde_json::from_str::<SubscriberFrame>(&text).unwrap(),
            frame
        );
        let short: SubscriberFrame =
            serde_json::from_str(r#"{"type":"subscribe","topic":"news"}"#).unwrap();
        assert_eq!(short.summary(), "subscribe news");
        let delivery = Delivery {
            topic: "news".into(),
            seq: 4,
            text: "hi".into(),
            publisher: "browser".into(),
            published_by: "a".into(),
            delivered_by: "b".into(),
            replayed: false,
        };
        let frame = BrokerFrame::Message { delivery };
        assert_eq!(frame.summary(), "deliver news #4 via b");
        assert_eq!(frame.drawn_as(), (Kind::Deliver, "broker"));
    }

    #[test]
    fn ticker_validation_names_the_parameter() {
        let mut spec = TickerSpec {
            room: None,
            topic: "t".into(),
            per_second: 5,
            bytes: 10,
            seconds: 3,
        };
        assert!(spec.validate().is_ok());
        spec.per_second = 500;
        assert!(spec.validate().unwrap_err().contains("per_second"));
        assert_eq!(filler_text("#1", 5), "#1...");
        assert_eq!(filler_text("#123", 2), "#1");
    }
}

/// `POST /api/pubsub/ticker`: the ticker runs (`ticker` is always `"started"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TickerStarted {
    pub ticker: String,
}

/// `GET /api/pubsub/info`: the broker engine and the instance that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokerInfo {
    /// `memory` or `redis`.
    pub engine: String,
    /// This instance's name.
    pub instance: String,
}
