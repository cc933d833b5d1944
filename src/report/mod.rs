//! Reporters: everything that turns samples and an analysis into output for people and
//! tools. Streamed as samples come (`csv`, `live`: `sampler::SampleSink`), or written once at
//! the end (`end`: summary.json, chart, CI outputs; `text`: the end-of-run text on stderr).
//! `output` checks every destination before a run starts; `input` reads recordings back for
//! `memwatch report`.

pub mod chart;
pub mod ci;
pub mod csv;
pub mod end;
pub mod input;
pub mod live;
pub mod native;
pub mod output;
pub mod services;
pub mod summary;
pub mod text;
