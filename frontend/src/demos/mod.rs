//! One module per demo; each is a component built on [`crate::views::demo_frame::DemoFrame`].
//!
//! May import everything below: [`crate::model`], [`crate::recording`], [`crate::views`].

pub mod compare;
pub mod long_polling;
pub mod multiplexing;
pub mod pubsub;
pub mod push;
pub mod request_response;
pub mod short_polling;
pub mod sidecar;
pub mod sse;
pub mod stateful_stateless;
pub mod sync_async;
pub mod upload;
