//! The embedded broker: a publish is numbered and fanned out to this process's subscribers at
//! once, in one step. Needs nothing; serves one instance only.

use futures_util::future::BoxFuture;

use super::{
    broker::{Broker, BrokerError, Publish},
    topics::{Envelope, Topics},
};

pub struct MemoryBroker {
    topics: Topics,
}

impl MemoryBroker {
    pub fn new(topics: Topics) -> MemoryBroker {
        MemoryBroker { topics }
    }
}

impl Broker for MemoryBroker {
    fn engine(&self) -> &'static str {
        "memory"
    }

    fn topics(&self) -> &Topics {
        &self.topics
    }

    fn publish<'a>(&'a self, message: Publish<'a>) -> BoxFuture<'a, Result<u64, BrokerError>> {
        Box::pin(async move {
            let seq =
                self.topics
                    .publish_here(message.room, message.topic, message.owner, |seq| Envelope {
                        room: message.room.to_owned(),
                        topic: message.topic.to_owned(),
                        seq,
                        text: message.text,
                        publisher: message.publisher.to_owned(),
                        published_by: self.topics.instance().to_owned(),
                        owner: message.owner,
                    })?;
            Ok(seq)
        })
    }
}
