//! The RabbitMQ engine (`--amqp-url`): the same queues on a real broker over AMQP 0-9-1 with
//! `lapin`. A run gets a fanout exchange bound to its two queues, so one publish reaches both;
//! each consumer has a channel of its own with `basic.qos` as its prefetch, so the broker's own
//! deliveries (its delivery tags, its redelivered flag) are what the actors see and draw; a
//! consumer killed closes its channel without acking and the broker requeues what it held.
//! The puller asks with `basic.get` on the run's channel. Queues are deleted when the run ends
//! and expire on the broker (`x-expires`) should the server die first.

use std::{sync::Arc, time::Duration};

use futures_util::{FutureExt, StreamExt, future::BoxFuture};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
        BasicQosOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use protocol::queue::JobMessage;

use super::engine::{Ack, Delivery, Engine, EngineError, RunQueues, Subscription};

/// A run's queues and exchange vanish on the broker this long after they were last used, even
/// if the server never deletes them (it died, say).
pub const BROKER_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Messages a run's queue holds at most on the broker (above the run's job limit).
pub const BROKER_MAX_LENGTH: i32 = 200;
/// How long connecting may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn unavailable(e: lapin::Error) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

/// One connection to RabbitMQ, shared by every run (a channel per run and per consumer).
pub struct RabbitEngine {
    connection: Arc<Connection>,
}

impl RabbitEngine {
    /// Connects to `url` (`amqp://user:pass@host:port/vhost`); fails within a few seconds.
    pub async fn connect(url: &str) -> Result<RabbitEngine, String> {
        let connecting = Connection::connect(url, ConnectionProperties::default());
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("no answer from RabbitMQ within {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| format!("cannot connect to RabbitMQ: {e}"))?;
        Ok(RabbitEngine {
            connection: Arc::new(connection),
        })
    }
}

impl Engine for RabbitEngine {
    fn kind(&self) -> protocol::queue::Engine {
        protocol::queue::Engine::Rabbitmq
    }

    fn open<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Box<dyn RunQueues>, EngineError>> {
        async move {
            let channel = self
                .connection
                .create_channel()
                .await
                .map_err(unavailable)?;
            let (push, pull) = super::queue_names(run);
            let exchange = format!("{push}.fanout");
            channel
                .exchange_declare(
                    exchange.clone().into(),
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions {
                        auto_delete: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-expires".into(),
                AMQPValue::LongInt(BROKER_EXPIRY.as_millis() as i32),
            );
            arguments.insert("x-max-length".into(), AMQPValue::LongInt(BROKER_MAX_LENGTH));
            for queue in [&push, &pull] {
                channel
                    .queue_declare(
                        queue.clone().into(),
                        QueueDeclareOptions::default(),
                        arguments.clone(),
                    )
                    .await
                    .map_err(unavailable)?;
                channel
                    .queue_bind(
                        queue.clone().into(),
                        exchange.clone().into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(unavailable)?;
            }
            Ok(Box::new(RabbitQueues {
                connection: self.connection.clone(),
                channel,
                exchange,
                push,
                pull,
            }) as Box<dyn RunQueues>)
        }
        .boxed()
    }
}

struct RabbitQueues {
    connection: Arc<Connection>,
    /// The run's own channel: declares, publishes, `basic.get`s and deletes.
    channel: Channel,
    exchange: String,
    push: String,
    pull: String,
}

impl RunQueues for RabbitQueues {
    fn names(&self) -> (String, String) {
        (self.push.clone(), self.pull.clone())
    }

    fn publish(&self, job: u32) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            let body = serde_json::to_vec(&JobMessage { job }).expect("serializable");
            self.channel
                .basic_publish(
                    self.exchange.clone().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_content_type("application/json".into()),
                )
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .boxed()
    }

    fn consume<'a>(
        &'a self,
        consumer: &'a str,
        prefetch: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Subscription>, EngineError>> {
        async move {
            let channel = self
                .connection
                .create_channel()
                .await
                .map_err(unavailable)?;
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await
                .map_err(unavailable)?;
            let deliveries = channel
                .basic_consume(
                    self.push.clone().into(),
                    consumer.into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
            Ok(Box::new(RabbitSubscription {
                channel,
                deliveries,
            }) as Box<dyn Subscription>)
        }
        .boxed()
    }

    fn get(&self) -> BoxFuture<'_, Result<Option<Delivery>, EngineError>> {
        async move {
            let got = self
                .channel
                .basic_get(self.pull.clone().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?;
            Ok(got.and_then(|message| delivery(message.delivery)))
        }
        .boxed()
    }

    fn delete(&self) -> BoxFuture<'_, ()> {
        async move {
            for queue in [&self.push, &self.pull] {
                if let Err(e) = self
                    .channel
                    .queue_delete(queue.clone().into(), QueueDeleteOptions::default())
                    .await
                {
                    tracing::warn!(%queue, cause = %e, "cannot delete a run's queue");
                }
            }
            // Auto-delete removes the exchange with its last binding; this is belt and braces.
            let _ = self
                .channel
                .exchange_delete(
                    self.exchange.clone().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await;
            let _ = self.channel.close(200, "run over".into()).await;
        }
        .boxed()
    }
}

/// The broker's delivery as the actors see it; a body that is not a job is acked away unseen
/// (none but this server publishes to a run's exchange).
fn delivery(d: lapin::message::Delivery) -> Option<Delivery> {
    let Ok(JobMessage { job }) = serde_json::from_slice(&d.data) else {
        let acker = d.acker;
        tokio::spawn(async move {
            let _ = acker.ack(BasicAckOptions::default()).await;
        });
        return None;
    };
    Some(Delivery {
        tag: d.delivery_tag,
        redelivered: d.redelivered,
        job,
        exchange: d.exchange.to_string(),
        body: String::from_utf8_lossy(&d.data).into_owned(),
        ack: Box::new(RabbitAck(d.acker)),
    })
}

struct RabbitAck(lapin::Acker);

impl Ack for RabbitAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), EngineError>> {
        async move {
            self.0
                .ack(BasicAckOptions::default())
                .await
                .map(|_| ())
                .map_err(unavailable)
        }
        .boxed()
    }
}

struct RabbitSubscription {
    /// The consumer's own channel: closing it is the consumer's death.
    channel: Channel,
    deliveries: lapin::Consumer,
}

impl Subscription for RabbitSubscription {
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        async move {
            loop {
                match self.deliveries.next().await? {
                    Ok(d) => {
                        if let Some(d) = delivery(d) {
                            return Some(d);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(cause = %e, "a queue consumer's channel failed");
                        return None;
                    }
                }
            }
        }
        .boxed()
    }

    fn kill(self: Box<Self>) -> BoxFuture<'static, ()> {
        async move {
            let _ = self.channel.close(200, "consumer killed".into()).await;
        }
        .boxed()
    }
}

impl Drop for RabbitSubscription {
    /// A consumer that goes away without being killed (its run stopped) closes its channel too,
    /// so the broker keeps no consumer of a deleted run.
    fn drop(&mut self) {
        if self.channel.status().connected() {
            let channel = self.channel.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = channel.close(200, "run over".into()).await;
                });
            }
        }
    }
}
