//! One module per demo; each is a component built on [`crate::demo_frame::DemoFrame`].

pub mod request_response;
