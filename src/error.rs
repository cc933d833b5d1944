//! Typed errors of the library. The binary adds context and maps them to exit codes.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("no process with PID {pid}: check the PID with 'ps -p {pid}'")]
    NoSuchProcess { pid: i32 },
    #[error("may not read /proc/{pid}/{file}: run memwatch as the process's user or as root")]
    PermissionDenied { pid: i32, file: &'static str },
    #[error("PID {pid} ({name}) is {what}: it has no memory to sample")]
    NoMemory {
        pid: i32,
        name: String,
        what: &'static str,
    },
    #[error("{}", crate::signal::not_caught_message(*pid, name, *signal))]
    SignalNotCaught { pid: i32, name: String, signal: i32 },
    #[error("cannot parse {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot run '{program}': {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot write '{}': {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Heap(#[from] crate::heap::HeapError),
    /// The command line as clap refused it (or help/version to print).
    #[error("{0}")]
    Cli(clap::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
