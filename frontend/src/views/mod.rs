//! The views: what the reader sees and works. The frame every demo shares, the trace view (its
//! toolbar, playback, sequence diagram, inspector and waterfall), the job controls and the
//! settings kept in the URL.
//!
//! May import [`crate::model`] and [`crate::recording`]; never [`crate::demos`].

pub mod demo_frame;
pub mod diagram;
pub mod inspector;
pub mod job_controls;
pub mod playback;
pub mod share;
pub mod trace_view;
pub mod waterfall;
