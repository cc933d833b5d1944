//! PSS and USS from smaps_rollup (`--pss`), at their own interval: a page-table walk that
//! costs with the target's size. Read right after the status they go with.

use super::part::{Flow, TickIn, TickPart};
use crate::error::Result;
use std::time::{Duration, Instant};

pub struct Pss {
    every: Duration,
    next: Instant,
}

impl Pss {
    pub fn new(every: Duration, t0: Instant) -> Pss {
        Pss { every, next: t0 }
    }
}

impl TickPart for Pss {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        if t.now >= self.next {
            self.next = t.now + self.every;
            if let Ok(Some((pss, uss))) = t.reader.read_smaps() {
                t.samples[0].pss = Some(pss);
                t.samples[0].uss = Some(uss);
            }
        }
        Ok(Flow::Go)
    }
}
