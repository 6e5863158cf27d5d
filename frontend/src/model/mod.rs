//! The model: what the page knows and works out, with no browser in it. The patterns taught, the
//! merge of both observers' records, the diagram's geometry, windowing and label placement, the
//! exports, the metrics, the phase names and how sizes and times are written. Pure functions of
//! plain data, unit-tested natively.
//!
//! Imports nothing from the rest of the crate (not [`crate::recording`], not [`crate::views`]);
//! everything else may import it.

pub mod catalog;
pub mod export;
pub mod format;
pub mod labels;
pub mod layout;
pub mod merge;
pub mod metrics;
pub mod phases;
pub mod window;
