//! Integration tests: the built `memwatch` binary against real processes.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod gate;
mod heap;
mod heap_leaks;
mod honest;
mod honest_figures;
mod machine;
mod managed_heap;
mod native;
mod node;
mod node_security;
mod prometheus;
mod regressions;
mod report_input;
mod runtime;
mod security;
mod services;
mod shape;
mod spine;
mod util;
mod verdict;
