//! `--native`: the target's page faults sampled with their stacks beside the ticks. The
//! events and their reader thread start with the run's parts; a tick only looks at what
//! the reader has counted (never blocks); at the end, the sampling stops while the target
//! still runs (which pages it still holds is read from it) and goes into the result.

use super::part::{Flow, TickIn, TickPart};
use super::{Sinks, WatchResult};
use crate::error::Result;
use crate::native::{NativeOptions, NativeRun, NativeWatch};
use crate::target::Target;
use std::time::Instant;

pub struct Native {
    watch: Option<NativeWatch>,
    /// Why there is no watch, in one line (said once, at the start).
    problem: Option<String>,
    origin: Instant,
    lost_said: bool,
}

impl Native {
    /// Opens the events; a refusal (no perf events, not allowed) is one line, and the run
    /// goes on without them.
    pub fn start(
        target: &Target,
        options: &NativeOptions,
        t0: Instant,
        sinks: &mut Sinks<'_>,
    ) -> Native {
        let (watch, problem) = match NativeWatch::start(target.pid, options) {
            Ok(w) => (Some(w), None),
            Err(e) => {
                super::note(sinks, &e.to_string());
                (None, Some(e.to_string()))
            }
        };
        Native {
            watch,
            problem,
            origin: t0,
            lost_said: false,
        }
    }
}

impl TickPart for Native {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        if let Some(w) = &self.watch
            && !self.lost_said
            && let (_, lost) = w.poll()
            && lost > 0
        {
            self.lost_said = true;
            t.note(
                "native: page faults came faster than memwatch could read their stacks: \
                 samples are being lost (the shares will be approximate; --native=N samples \
                 one fault in N)",
            );
        }
        Ok(Flow::Go)
    }

    fn finish(self: Box<Self>, result: &mut WatchResult) {
        result.native = Some(NativeRun {
            data: self.watch.map(NativeWatch::stop),
            problem: self.problem,
            origin: self.origin,
        });
    }
}
