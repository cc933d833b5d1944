//! A spawned command's orphans (memwatch is their subreaper) reaped once a second, so a
//! command that keeps starting background processes leaves no zombies until the end.

use super::part::{Flow, TickIn, TickPart};
use crate::error::Result;
use std::time::{Duration, Instant};

const REAP_EVERY: Duration = Duration::from_secs(1);

pub struct Reaper {
    next: Instant,
}

impl Reaper {
    pub fn new(t0: Instant) -> Reaper {
        Reaper {
            next: t0 + REAP_EVERY,
        }
    }
}

impl TickPart for Reaper {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        if t.now >= self.next {
            let load_pid = t.shared.load_pid.unwrap_or(0);
            crate::tree::reap_orphans(&[t.target.pid, load_pid]);
            self.next = t.now + REAP_EVERY;
        }
        Ok(Flow::Go)
    }
}
