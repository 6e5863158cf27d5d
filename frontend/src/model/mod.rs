//! The model: what the page knows and works out, with no browser in it. The patterns taught, the
//! merge of both observers' records, the diagram's geometry, windowing and label placement, the
//! exports, the metrics, the phase names, how sizes and times are written, and which server
//! messages a reconnected trace socket repeats. Pure functions of plain data, unit-tested
//! natively.
//!
//! Imports nothing from the rest of the crate (not [`crate::recording`], not [`crate::views`]);
//! everything else may import it.

pub(crate) mod catalog;
pub(crate) mod export;
pub(crate) mod format;
pub(crate) mod har;
pub(crate) mod labels;
pub(crate) mod layout;
pub(crate) mod merge;
pub(crate) mod metrics;
pub(crate) mod phases;
pub(crate) mod resume;
pub(crate) mod window;
