//! The embedded queue engine: RabbitMQ's consuming semantics in memory, no server needed.
//! Ready messages wait in order; the queue pushes each to the next consumer (round robin) that
//! holds fewer unacknowledged messages than its prefetch; an ack frees a place and the queue
//! pushes again; a consumer that dies puts what it held back at the head, marked redelivered.
//! `basic.get` takes the head for a pulling consumer. A run's queues live as long as the run.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use futures_util::{FutureExt, future::BoxFuture};
use tokio::sync::mpsc;

use super::engine::{Ack, Delivery, Engine, EngineError, RunQueues, Subscription};

/// The embedded engine.
#[derive(Default)]
pub struct EmbeddedEngine;

impl Engine for EmbeddedEngine {
    fn kind(&self) -> protocol::queue::Engine {
        protocol::queue::Engine::Embedded
    }

    fn open<'a>(&'a self, run: &'a str) -> BoxFuture<'a, Result<Box<dyn RunQueues>, EngineError>> {
        let names = super::queue_names(run);
        async move {
            Ok(Box::new(EmbeddedQueues {
                push: Queue::new(),
                pull: Queue::new(),
                names,
            }) as Box<dyn RunQueues>)
        }
        .boxed()
    }
}

struct EmbeddedQueues {
    push: Queue,
    pull: Queue,
    names: (String, String),
}

impl RunQueues for EmbeddedQueues {
    fn names(&self) -> (String, String) {
        self.names.clone()
    }

    fn publish(&self, job: u32) -> BoxFuture<'_, Result<(), EngineError>> {
        self.push.put(job);
        self.pull.put(job);
        async { Ok(()) }.boxed()
    }

    fn consume<'a>(
        &'a self,
        _consumer: &'a str,
        prefetch: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Subscription>, EngineError>> {
        let subscription = self.push.subscribe(prefetch);
        async move { Ok(Box::new(subscription) as Box<dyn Subscription>) }.boxed()
    }

    fn get(&self) -> BoxFuture<'_, Result<Option<Delivery>, EngineError>> {
        let got = self.pull.get();
        async move { Ok(got) }.boxed()
    }

    fn delete(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}

/// A message on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message {
    job: u32,
    redelivered: bool,
}

/// One queue. Cheap to clone.
#[derive(Clone)]
struct Queue(Arc<Mutex<State>>);

/// The channel `basic.get` hands messages out on: consumer number 0.
const GET_CHANNEL: u64 = 0;

#[derive(Default)]
struct State {
    ready: VecDeque<Message>,
    /// Consumers by number, from 1 (0 is the `basic.get` channel).
    consumers: BTreeMap<u64, Consumer>,
    /// Delivered, not yet acknowledged: by (consumer, tag).
    unacked: BTreeMap<(u64, u64), Message>,
    next_consumer: u64,
    /// Tags of the `basic.get` channel.
    get_tags: u64,
    /// The consumer after which the next round-robin turn starts.
    last_served: u64,
}

struct Consumer {
    prefetch: usize,
    held: usize,
    tags: u64,
    pushed: mpsc::UnboundedSender<Delivery>,
}

impl Queue {
    fn new() -> Queue {
        Queue(Arc::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().expect("queue lock poisoned")
    }

    fn put(&self, job: u32) {
        let mut state = self.lock();
        state.ready.push_back(Message {
            job,
            redelivered: false,
        });
        self.dispatch(&mut state);
    }

    fn subscribe(&self, prefetch: u16) -> EmbeddedSubscription {
        let (pushed, deliveries) = mpsc::unbounded_channel();
        let mut state = self.lock();
        state.next_consumer += 1;
        let number = state.next_consumer;
        state.consumers.insert(
            number,
            Consumer {
                prefetch: prefetch.max(1).into(),
                held: 0,
                tags: 0,
                pushed,
            },
        );
        self.dispatch(&mut state);
        EmbeddedSubscription {
            queue: self.clone(),
            number,
            deliveries,
        }
    }

    fn get(&self) -> Option<Delivery> {
        let mut state = self.lock();
        let message = state.ready.pop_front()?;
        state.get_tags += 1;
        let tag = state.get_tags;
        state.unacked.insert((GET_CHANNEL, tag), message);
        Some(self.delivery(GET_CHANNEL, tag, message))
    }

    fn delivery(&self, consumer: u64, tag: u64, message: Message) -> Delivery {
        Delivery {
            tag,
            redelivered: message.redelivered,
            job: message.job,
            exchange: String::new(),
            body: serde_json::to_string(&protocol::queue::JobMessage { job: message.job })
                .expect("serializable"),
            ack: Box::new(EmbeddedAck {
                queue: self.clone(),
                consumer,
                tag,
            }),
        }
    }

    /// Pushes ready messages to consumers with room under their prefetch, round robin.
    fn dispatch(&self, state: &mut State) {
        while !state.ready.is_empty() {
            let next = state
                .consumers
                .range(state.last_served + 1..)
                .chain(state.consumers.range(..=state.last_served))
                .find(|(_, c)| c.held < c.prefetch)
                .map(|(n, _)| *n);
            let Some(number) = next else { return };
            let message = state.ready.pop_front().expect("not empty");
            let consumer = state.consumers.get_mut(&number).expect("found above");
            consumer.held += 1;
            consumer.tags += 1;
            let tag = consumer.tags;
            let delivery = self.delivery(number, tag, message);
            if consumer.pushed.send(delivery).is_err() {
                // Its subscription is gone without being killed: treat it as dead.
                state.ready.push_front(message);
                self.requeue_of(state, number);
                continue;
            }
            state.unacked.insert((number, tag), message);
            state.last_served = number;
        }
    }

    fn ack(&self, consumer: u64, tag: u64) -> Result<(), EngineError> {
        let mut state = self.lock();
        if state.unacked.remove(&(consumer, tag)).is_none() {
            return Err(EngineError::Unavailable(format!(
                "unknown delivery tag {tag}: the channel is closed"
            )));
        }
        if let Some(c) = state.consumers.get_mut(&consumer) {
            c.held -= 1;
        }
        self.dispatch(&mut state);
        Ok(())
    }

    /// Forgets consumer `number` and puts what it held back at the head, in order, redelivered.
    fn requeue_of(&self, state: &mut State, number: u64) {
        state.consumers.remove(&number);
        let held: Vec<(u64, u64)> = state
            .unacked
            .range((number, 0)..=(number, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in held.into_iter().rev() {
            let message = state.unacked.remove(&key).expect("listed above");
            state.ready.push_front(Message {
                redelivered: true,
                ..message
            });
        }
    }

    fn kill(&self, number: u64) {
        let mut state = self.lock();
        self.requeue_of(&mut state, number);
        self.dispatch(&mut state);
    }
}

struct EmbeddedAck {
    queue: Queue,
    consumer: u64,
    tag: u64,
}

impl Ack for EmbeddedAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), EngineError>> {
        let result = self.queue.ack(self.consumer, self.tag);
        async move { result }.boxed()
    }
}

struct EmbeddedSubscription {
    queue: Queue,
    number: u64,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
}

impl Subscription for EmbeddedSubscription {
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        self.deliveries.recv().boxed()
    }

    fn kill(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.queue.kill(self.number);
        async {}.boxed()
    }
}

impl Drop for EmbeddedSubscription {
    /// A consumer that goes away (killed, or its run stopped) gives back what it held.
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        if state.consumers.contains_key(&self.number) {
            self.queue.requeue_of(&mut state, self.number);
            self.queue.dispatch(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn take(sub: &mut EmbeddedSubscription) -> Delivery {
        tokio::time::timeout(std::time::Duration::from_secs(1), sub.deliveries.recv())
            .await
            .expect("a delivery")
            .expect("open")
    }

    #[tokio::test]
    async fn pushes_round_robin_within_each_prefetch_and_acks_free_a_place() {
        let queue = Queue::new();
        let mut one = queue.subscribe(2);
        let mut two = queue.subscribe(1);
        for job in 1..=5 {
            queue.put(job);
        }
        let (a, b, c) = (
            take(&mut one).await,
            take(&mut two).await,
            take(&mut one).await,
        );
        assert_eq!((a.job, b.job, c.job), (1, 2, 3));
        assert!(one.deliveries.try_recv().is_err(), "prefetch 2 reached");
        assert!(two.deliveries.try_recv().is_err(), "prefetch 1 reached");
        assert_eq!(queue.lock().ready.len(), 2);
        b.ack.ack().await.unwrap();
        let d = take(&mut two).await;
        assert_eq!((d.job, d.tag, d.redelivered), (4, 2, false));
    }

    #[tokio::test]
    async fn a_killed_consumers_unacked_messages_go_to_another_marked_redelivered() {
        let queue = Queue::new();
        let mut one = queue.subscribe(2);
        let mut two = queue.subscribe(1);
        for job in 1..=3 {
            queue.put(job);
        }
        let first = take(&mut one).await;
        let second = take(&mut two).await;
        let third = take(&mut one).await;
        assert_eq!((first.job, second.job, third.job), (1, 2, 3));
        first.ack.ack().await.unwrap();
        Box::new(one).kill().await;
        let late = third.ack.ack().await;
        assert!(late.is_err(), "a dead consumer's ack is refused");
        second.ack.ack().await.unwrap();
        let again = take(&mut two).await;
        assert_eq!((again.job, again.redelivered), (3, true));
        assert!(queue.lock().ready.is_empty());
    }

    #[tokio::test]
    async fn get_takes_the_head_or_nothing_and_needs_its_ack() {
        let queue = Queue::new();
        assert!(queue.get().is_none());
        queue.put(7);
        let got = queue.get().expect("one ready");
        assert_eq!((got.job, got.tag), (7, 1));
        assert!(queue.get().is_none());
        assert_eq!(queue.lock().unacked.len(), 1);
        got.ack.ack().await.unwrap();
        assert!(queue.lock().unacked.is_empty());
    }
}
