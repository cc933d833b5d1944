//! memwatch: finds memory growth in running Linux processes.
//!
//! Data flows one way: target -> sampler -> samples (a `Recording`) -> analyser -> reporters.

pub mod analyze;
pub mod error;
pub mod recording;
pub mod report;
pub mod sample;

pub use error::{Error, Result};
pub use recording::{Event, EventKind, Recording};
