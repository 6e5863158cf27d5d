//! The queue engine interface both brokers implement (the embedded one and RabbitMQ): declare a
//! run's queues, publish a job to both, push deliveries to a consumer within its prefetch, hand
//! one message to a pulling consumer (`basic.get`), take acknowledgements, and requeue what a
//! dead consumer held, marked redelivered.

use futures_util::future::BoxFuture;

/// Why the broker did not do what was asked.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EngineError {
    /// The broker cannot be reached or refused the operation (RabbitMQ down, a channel closed).
    #[error("queue broker unavailable: {0}")]
    Unavailable(String),
}

/// A queue engine: makes each run's queues.
pub trait Engine: Send + Sync + 'static {
    fn kind(&self) -> protocol::queue::Engine;
    /// Declares the run's two queues (pushed and pulled) and what routes a publish to both.
    fn open<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Box<dyn RunQueues>, EngineError>>;
}

/// One run's queues: `push` delivers to consumers, `pull` answers `basic.get`. Every job
/// published goes to both, so the two lanes work on the same jobs.
pub trait RunQueues: Send + Sync + 'static {
    /// The push queue's and the pull queue's names on the broker.
    fn names(&self) -> (String, String);
    /// Puts job `job` on both queues.
    fn publish(&self, job: u32) -> BoxFuture<'_, Result<(), EngineError>>;
    /// Starts a consumer of the push queue called `consumer`, with at most `prefetch`
    /// unacknowledged messages pushed to it at once (`basic.qos` + `basic.consume`).
    fn consume<'a>(
        &'a self,
        consumer: &'a str,
        prefetch: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Subscription>, EngineError>>;
    /// Asks the pull queue for one message (`basic.get`): `None` when it is empty.
    fn get(&self) -> BoxFuture<'_, Result<Option<Delivery>, EngineError>>;
    /// Deletes the queues (the run is over); errors are only logged.
    fn delete(&self) -> BoxFuture<'_, ()>;
}

/// A consumer's subscription: the broker pushes into it.
pub trait Subscription: Send {
    /// The next message the broker pushed; `None` once the subscription has ended.
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>>;
    /// The consumer dies: its channel closes without acknowledging what it holds, which the
    /// broker puts back on the queue (marked redelivered) for the others.
    fn kill(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// One message handed to a consumer.
pub struct Delivery {
    /// The broker's delivery tag (per channel on RabbitMQ, per consumer embedded).
    pub tag: u64,
    /// The broker delivered it before to a consumer that did not acknowledge it.
    pub redelivered: bool,
    pub job: u32,
    /// The exchange it was published to, as the broker says (empty: the embedded queue's own).
    pub exchange: String,
    /// The message body as the broker carried it.
    pub body: String,
    /// Acknowledges it to the broker.
    pub ack: Box<dyn Ack>,
}

/// The handle that acknowledges one delivery.
pub trait Ack: Send + Sync {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), EngineError>>;
}
