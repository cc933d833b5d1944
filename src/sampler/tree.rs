//! `--tree`: the target's descendants read beside it, and their sum, the series judged.

use super::WatchResult;
use super::part::{Flow, TickIn, TickPart};
use crate::error::Result;
use crate::sample::Sample;
use crate::sample::members::{self, Members};
use crate::target::Target;
use std::path::Path;
use std::time::Instant;

pub struct Tree {
    members: Members,
    /// The members' samples of a tick (reused).
    read: Vec<Sample>,
}

impl Tree {
    pub fn new(target: &Target, with_smaps: bool, t0: Instant) -> Tree {
        Tree {
            members: Members::new(target.pid, &target.name, Path::new("/proc"), with_smaps, t0),
            read: Vec::new(),
        }
    }
}

impl TickPart for Tree {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        let base = &t.samples[0];
        self.members
            .sample(t.now, base, base.pss.is_some(), &mut self.read);
        t.samples.extend_from_slice(&self.read);
        *t.total = Some(members::total(t.samples));
        Ok(Flow::Go)
    }

    fn finish(self: Box<Self>, result: &mut WatchResult) {
        result.tree = Some(self.members.into_growth());
    }
}
