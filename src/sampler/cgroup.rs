//! `--cgroup` (or the cgroup memwatch makes for `run --tree`): the memory cgroup read on
//! every tick, also while a followed target is absent (the container is still there).

use super::WatchResult;
use super::part::{AbsentIn, Flow, TickIn, TickPart};
use crate::cgroup::series::{CgroupReader, CgroupReading, Location};
use crate::error::Result;

pub struct Cgroup {
    reader: Option<CgroupReader>,
    last: Option<CgroupReading>,
    /// Why reading stopped, said once.
    lost: Option<String>,
}

impl Cgroup {
    pub fn new(location: &Location, sinks: &mut super::Sinks<'_>) -> Cgroup {
        let reader = match CgroupReader::open(location.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                super::note(
                    sinks,
                    &format!(
                        "cannot read the cgroup {} ({e}): it is not recorded",
                        location.path
                    ),
                );
                None
            }
        };
        Cgroup {
            reader,
            last: None,
            lost: None,
        }
    }

    fn read(&mut self, slot: &mut Option<CgroupReading>, sinks: &mut super::Sinks<'_>) {
        let Some(reader) = &mut self.reader else {
            return;
        };
        match reader.read() {
            Ok(r) => {
                *slot = Some(r);
                self.last = Some(r);
            }
            Err(e) => {
                // Removed (the service's unit stopped): unknown from now on, never 0.
                let why = format!(
                    "the cgroup {} can no longer be read ({e}): its memory is unknown from here",
                    reader.location.path
                );
                super::note(sinks, &why);
                self.lost = Some(why);
                self.reader = None;
            }
        }
    }
}

impl TickPart for Cgroup {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        self.read(t.cgroup, t.sinks);
        Ok(Flow::Go)
    }

    fn absent_tick(&mut self, t: &mut AbsentIn<'_, '_>) -> Result<()> {
        self.read(t.cgroup, t.sinks);
        Ok(())
    }

    fn finish(self: Box<Self>, result: &mut WatchResult) {
        result.cgroup_last = self.last;
        result.cgroup_lost = self.lost;
    }
}
