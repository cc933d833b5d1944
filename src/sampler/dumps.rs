//! Heap dumps appearing in the dump folder (`--dump-dir`, or the target's working
//! directory) while signals are sent: each one's start and completion as events, and what
//! is being written for the signals that cause them.

use super::WatchResult;
use super::part::{DumpStatus, Flow, Shared, TickIn, TickPart};
use crate::dump::{DumpNews, DumpWatcher};
use crate::error::Result;
use crate::recording::EventKind;
use crate::signal::SignalPlan;
use crate::target::Target;
use std::time::{Duration, Instant};

const SCAN_EVERY: Duration = Duration::from_millis(250);

pub struct Dumps {
    watcher: DumpWatcher,
    next_scan: Option<Instant>,
}

impl Dumps {
    /// Watches the dump folder when the plan sends signals or names one; a folder that
    /// cannot be watched is said, and the run goes on without.
    pub fn new(
        target: &Target,
        plan: &SignalPlan,
        shared: &mut Shared,
        sinks: &mut super::Sinks<'_>,
    ) -> Option<Dumps> {
        if !plan.watches_dumps() {
            return None;
        }
        let dir = match &plan.dump_dir {
            Some(dir) => dir.clone(),
            None => match target.cwd() {
                Ok(dir) => dir,
                Err(e) => {
                    super::note(
                        sinks,
                        &format!(
                            "cannot find the target's working directory ({e}): heap dumps are not watched; give --dump-dir"
                        ),
                    );
                    return None;
                }
            },
        };
        match DumpWatcher::new(dir.clone(), &plan.dump_globs) {
            Ok(watcher) => {
                shared.dumps = Some(DumpStatus {
                    dir,
                    ..DumpStatus::default()
                });
                Some(Dumps {
                    watcher,
                    next_scan: None,
                })
            }
            Err(e) => {
                super::note(
                    sinks,
                    &format!("cannot watch '{}' for heap dumps: {e}", dir.display()),
                );
                None
            }
        }
    }
}

impl TickPart for Dumps {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        if self.next_scan.is_some_and(|next| t.now < next) {
            return Ok(Flow::Go);
        }
        for news in self.watcher.scan(t.elapsed_s(), t.now) {
            t.event(match news {
                DumpNews::Started(p) => EventKind::DumpStart(p.display().to_string()),
                DumpNews::Completed(p) => EventKind::Dump(p.display().to_string()),
            });
        }
        if let Some(status) = t.shared.dumps.as_mut() {
            status.in_progress = self.watcher.in_progress();
            status.seen = self.watcher.dumps.len();
            status.largest = self.watcher.largest();
        }
        self.next_scan = Some(t.now + SCAN_EVERY);
        Ok(Flow::Go)
    }

    fn finish(self: Box<Self>, result: &mut WatchResult) {
        result.dumps = self.watcher.dumps;
    }
}
