//! The broker interface both engines implement: take a publish, number it, and get it to every
//! subscriber of its topic on every instance sharing the broker. Subscribers live in the
//! instance they are connected to ([`Topics`]); the engine decides how a publish reaches them.

use futures_util::future::BoxFuture;

use super::topics::{Refused, Topics};
use crate::server::client::ClientId;

/// Why a publish did not go through.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BrokerError {
    /// A bound was reached (too many topics, say).
    #[error("{0}")]
    Refused(String),
    /// The engine cannot be reached now (Redis is down); the server keeps trying.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

impl From<Refused> for BrokerError {
    fn from(Refused::Full(why): Refused) -> Self {
        BrokerError::Refused(why)
    }
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Publish<'a> {
    /// The room's key (see [`super::topics::room_key`]).
    pub room: &'a str,
    pub topic: &'a str,
    pub text: String,
    /// The publisher's lifeline.
    pub publisher: &'a str,
    /// The client publishing: a room the publish makes counts against its share.
    pub owner: Option<ClientId>,
}

/// A publish/subscribe broker engine.
pub trait Broker: Send + Sync + 'static {
    /// `memory` or `redis`.
    fn engine(&self) -> &'static str;
    /// The subscribers connected to this instance; subscribing goes through it.
    fn topics(&self) -> &Topics;
    /// Publishes `message`; resolves to its sequence number in the topic once the engine has
    /// taken it (delivery to subscribers follows, on every instance).
    fn publish<'a>(&'a self, message: Publish<'a>) -> BoxFuture<'a, Result<u64, BrokerError>>;
}
