//! Reporters: everything that turns samples and an analysis into output for people and tools.

pub mod chart;
pub mod ci;
pub mod csv;
pub mod input;
pub mod live;
pub mod output;
pub mod summary;
