//! `--tree` (and `--all-matches`): the processes the target started (or that match its
//! pattern) read beside it, and their sum, the `total` series; with a PSS total, every
//! process's PSS read in turn (see `sample::members`).

use super::WatchResult;
use super::part::{Flow, TickIn, TickPart};
use crate::error::Result;
use crate::sample::Sample;
use crate::sample::members::{self, Members, PssSpread, Scope};
use crate::target::Target;
use std::path::Path;
use std::time::Instant;

pub struct Tree {
    members: Members,
    /// The members' samples of a tick (reused).
    read: Vec<Sample>,
    /// `--pss` without a PSS total: every member's PSS when the target's is read.
    with_smaps: bool,
    spread: bool,
}

impl Tree {
    pub fn new(
        target: &Target,
        scope: Scope,
        with_smaps: bool,
        spread: Option<PssSpread>,
        t0: Instant,
    ) -> Tree {
        Tree {
            members: Members::new(
                target.pid,
                &target.name,
                Path::new("/proc"),
                scope,
                with_smaps,
                spread,
                t0,
            ),
            read: Vec::new(),
            with_smaps,
            spread: spread.is_some(),
        }
    }
}

impl TickPart for Tree {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        if t.target.pid != self.members.root() {
            // --follow: a new life, a new root.
            self.members.set_root(t.target.pid, &t.target.name, t.now);
        }
        let base = &mut t.samples[0];
        let smaps_due = self.with_smaps && !self.spread && base.pss.is_some();
        let pss = self
            .members
            .sample(t.now, base, t.reader, smaps_due, &mut self.read);
        t.samples.extend_from_slice(&self.read);
        let mut total = members::total(t.samples);
        if self.spread {
            // Each process's latest PSS, summed: unknown until every one has a reading.
            (total.pss, total.uss) = (pss.map(|p| p.0), pss.map(|p| p.1));
        }
        *t.total = Some(total);
        Ok(Flow::Go)
    }

    fn finish(self: Box<Self>, result: &mut WatchResult) {
        result
            .tree
            .get_or_insert_with(Vec::new)
            .extend(self.members.into_growth());
    }
}
