//! The Redis broker: a publish is numbered with `INCR` and sent with `PUBLISH` in one script;
//! every instance holds one pattern subscription (`PSUBSCRIBE patternscope:pubsub:*`) and fans
//! what arrives out to its own subscribers, so two or more processes share topics. Losing Redis
//! is logged and noted on the diagram of every run with a subscriber here; the subscription is
//! made again as soon as Redis answers, without a restart.

use std::{future::Future, time::Duration};

use futures_util::{StreamExt, future::BoxFuture};
use redis::{Client, aio::ConnectionManager, aio::ConnectionManagerConfig};

use super::{
    broker::{Broker, BrokerError, Publish},
    topics::{Envelope, Topics},
};

/// Prefix of every Redis key and channel this server uses.
const PREFIX: &str = "patternscope:pubsub";
/// How long start-up waits for Redis before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between attempts to subscribe again after losing Redis.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);
/// Longest a publish waits on Redis before it is refused as unavailable.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Sequence counters of idle topics expire after this long.
const SEQ_TTL_SECONDS: i64 = 3_600;
/// Numbers an envelope and publishes it in one step: KEYS = the topic's counter and channel,
/// ARGV = the counter's time to live and the envelope without its number.
const NUMBER_AND_PUBLISH: &str = r#"
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local envelope = cjson.decode(ARGV[2])
envelope.seq = seq
redis.call('PUBLISH', KEYS[2], cjson.encode(envelope))
return seq
"#;

pub struct RedisBroker {
    topics: Topics,
    /// Commands (the publishing script); reconnects by itself.
    commands: ConnectionManager,
}

fn channel(room: &str, topic: &str) -> String {
    format!("{PREFIX}:{room}:{topic}")
}

impl RedisBroker {
    /// Connects to `url`, failing within a few seconds if Redis does not answer, and starts the
    /// subscription task (it ends when `stopped` completes).
    pub async fn connect(
        url: &str,
        topics: Topics,
        stopped: impl Future<Output = ()> + Send + 'static,
    ) -> Result<RedisBroker, String> {
        let client = Client::open(url).map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connect = async {
            let mut commands = client
                .get_connection_manager_with_config(config)
                .await
                .map_err(|e| e.to_string())?;
            let _: String = redis::cmd("PING")
                .query_async(&mut commands)
                .await
                .map_err(|e| e.to_string())?;
            let subscription = subscribe(&client).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((commands, subscription))
        };
        let (commands, subscription) = tokio::time::timeout(CONNECT_TIMEOUT * 2, connect)
            .await
            .map_err(|_| format!("Redis at {url} did not answer within {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        tokio::spawn(listen(client, subscription, topics.clone(), stopped));
        Ok(RedisBroker { topics, commands })
    }
}

async fn subscribe(client: &Client) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(format!("{PREFIX}:*")).await?;
    Ok(pubsub)
}

/// Fans every message Redis delivers out to this instance's subscribers; subscribes again
/// whenever the connection is lost.
async fn listen(
    client: Client,
    mut subscription: redis::aio::PubSub,
    topics: Topics,
    stopped: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(stopped);
    loop {
        {
            let mut messages = subscription.on_message();
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    message = messages.next() => match message {
                        Some(message) => {
                            let payload: Vec<u8> = message.get_payload().unwrap_or_default();
                            match serde_json::from_slice::<Envelope>(&payload) {
                                Ok(envelope) => { topics.fan_out(&envelope); }
                                Err(e) => tracing::warn!(cause = %e, "unreadable message on Redis"),
                            }
                        }
                        None => break,
                    },
                }
            }
        }
        tracing::error!("lost the Redis subscription: reconnecting");
        topics.note_all("lost Redis: messages from other instances stop; reconnecting");
        subscription = loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(RECONNECT_EVERY) => {}
            }
            match subscribe(&client).await {
                Ok(s) => break s,
                Err(e) => tracing::debug!(cause = %e, "Redis still unreachable"),
            }
        };
        tracing::info!("Redis subscription restored");
        topics.note_all("Redis is back: subscribed again");
    }
}

impl Broker for RedisBroker {
    fn engine(&self) -> &'static str {
        "redis"
    }

    fn topics(&self) -> &Topics {
        &self.topics
    }

    fn publish<'a>(&'a self, message: Publish<'a>) -> BoxFuture<'a, Result<u64, BrokerError>> {
        // Bounded: while Redis is away the connection manager keeps retrying, and a publisher
        // must hear "unavailable" promptly rather than wait on it.
        Box::pin(async move {
            tokio::time::timeout(PUBLISH_TIMEOUT, self.publish_now(message))
                .await
                .unwrap_or_else(|_| {
                    Err(BrokerError::Unavailable(format!(
                        "Redis did not answer within {PUBLISH_TIMEOUT:?}"
                    )))
                })
        })
    }
}

impl RedisBroker {
    async fn publish_now(&self, message: Publish<'_>) -> Result<u64, BrokerError> {
        {
            self.topics
                .check(message.room, message.topic, message.owner)?;
            let unavailable = |e: redis::RedisError| BrokerError::Unavailable(e.to_string());
            let mut commands = self.commands.clone();
            let key = format!("{PREFIX}:seq:{}:{}", message.room, message.topic);
            // Numbered by the script, which Redis runs whole: publishes reach every instance in
            // the order of their numbers (an `INCR` and a later `PUBLISH` could be overtaken by
            // another instance's pair, and a subscriber resuming after the higher number would
            // miss the lower one).
            let unnumbered = Envelope {
                room: message.room.to_owned(),
                topic: message.topic.to_owned(),
                seq: 0,
                text: message.text,
                publisher: message.publisher.to_owned(),
                published_by: self.topics.instance().to_owned(),
                owner: message.owner,
            };
            let payload = serde_json::to_string(&unnumbered).expect("envelopes serialize");
            let seq: u64 = redis::cmd("EVAL")
                .arg(NUMBER_AND_PUBLISH)
                .arg(2)
                .arg(&key)
                .arg(channel(message.room, message.topic))
                .arg(SEQ_TTL_SECONDS)
                .arg(payload)
                .query_async(&mut commands)
                .await
                .map_err(unavailable)?;
            Ok(seq)
        }
    }
}
