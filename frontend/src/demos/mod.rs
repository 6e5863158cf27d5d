//! One module per demo; each is a component built on [`crate::views::demo_frame::DemoFrame`].
//!
//! May import everything below: [`crate::model`], [`crate::recording`], [`crate::views`].

pub(crate) mod chunks;
pub(crate) mod compare;
pub(crate) mod long_polling;
pub(crate) mod multiplexing;
pub(crate) mod protocols;
pub(crate) mod pubsub;
pub(crate) mod push;
pub(crate) mod queue;
pub(crate) mod request_response;
pub(crate) mod rest_graphql;
pub(crate) mod short_polling;
pub(crate) mod sidecar;
pub(crate) mod sse;
pub(crate) mod stateful_stateless;
pub(crate) mod sync_async;
pub(crate) mod upload;
