//! The views: what the reader sees and works. The frame every demo shares, the trace view (its
//! toolbar, playback, sequence diagram, inspector and waterfall), the HAR page, the job controls, the
//! link control and the settings kept in the URL.
//!
//! May import [`crate::model`] and [`crate::recording`]; never [`crate::demos`].

pub(crate) mod demo_frame;
mod diagram;
pub(crate) mod har_page;
mod inspector;
pub(crate) mod job_controls;
mod link_control;
mod playback;
pub(crate) mod share;
pub(crate) mod trace_view;
mod waterfall;
