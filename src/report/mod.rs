//! Reporters: everything that turns samples and an analysis into output for people and
//! tools. Streamed as samples come (`csv`, `live`: `sampler::SampleSink`), or written once at
//! the end (`end`: summary.json, chart, CI outputs; `text`: the end-of-run text on stderr).
//! `output` checks every destination before a run starts; `input` reads recordings back for
//! `memwatch report`. `--all` has its own streamed consumers (`sampler::machine::MachineSink`):
//! the ranked view (`table`), the CSV a tick at a time (`batch_csv`), and its chart of the top
//! growers (`growers`); the Prometheus exporter (`prometheus`, served by `http`) takes both
//! kinds of ticks.

pub mod batch_csv;
pub mod chart;
pub mod ci;
pub mod csv;
pub mod end;
pub mod growers;
pub mod http;
pub mod input;
pub mod live;
pub mod native;
pub mod output;
pub mod prometheus;
pub mod services;
pub mod summary;
pub mod table;
pub mod text;
