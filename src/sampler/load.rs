//! The `--load` command: started once the target is ready; when it has ended (and
//! `--cooldown` passed), the run is over.

use super::part::{Flow, TickIn, TickPart};
use super::{StopReason, WatchResult};
use crate::error::{Error, Result};
use crate::load::{LoadPlan, LoadRunner};
use std::time::Instant;

pub struct Load {
    runner: LoadRunner,
    done: bool,
}

impl Load {
    pub fn new(plan: &LoadPlan, t0: Instant) -> Load {
        Load {
            runner: LoadRunner::new(plan, t0),
            done: false,
        }
    }
}

impl TickPart for Load {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        if !self.done {
            let elapsed_s = t.elapsed_s();
            let tick = self
                .runner
                .tick(t.now, elapsed_s, t.events)
                .map_err(|e| Error::Usage(e.to_string()))?;
            if let Some(note) = tick.note {
                t.note(&note);
            }
            self.done = tick.over;
        }
        t.shared.load_pid = self.runner.pid();
        Ok(if self.done {
            Flow::Over(StopReason::LoadFinished)
        } else {
            Flow::Go
        })
    }

    fn finish(self: Box<Self>, result: &mut WatchResult) {
        result.load = Some(self.runner.finish());
    }
}
