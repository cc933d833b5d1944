//! The runtime probe's readings (`--runtime`), drained each tick without blocking: the
//! managed heap into the target's sample, snapshots as dump events, and every probe event
//! kept for the summary, with words for the live line.

use super::WatchResult;
use super::part::{Flow, TickIn, TickPart};
use crate::error::Result;
use crate::recording::{DUMP_FAILED, Event, EventKind};
use crate::runtime::{Probe, ProbeEvent, Reading};
use crate::sample::ManagedHeap;

pub struct Readings<'a> {
    probe: &'a mut Probe,
    /// Every probe event, with the time it was seen.
    seen: Vec<(f64, ProbeEvent)>,
    /// This tick's words for people, with their events (reused).
    notes: Vec<(String, ProbeEvent)>,
}

impl<'a> Readings<'a> {
    pub fn new(probe: &'a mut Probe) -> Readings<'a> {
        Readings {
            probe,
            seen: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl TickPart for Readings<'_> {
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        let at = t.elapsed_s();
        let (heap, events, notes) = (&mut t.samples[0].heap, &mut *t.events, &mut self.notes);
        self.probe.drain(|r| absorb(r, at, heap, events, notes));
        for (text, event) in self.notes.drain(..) {
            if !text.is_empty() {
                super::note(t.sinks, &text);
            }
            self.seen.push((at, event));
        }
        Ok(Flow::Go)
    }

    fn finish(self: Box<Self>, result: &mut WatchResult) {
        result.runtime = self.seen;
    }
}

/// One runtime reading into this tick: its figures into the sample (the latest of each
/// kind wins), a snapshot's start and end as dump events (its writing period is left out
/// of the analysis like a signalled heap dump), and every probe event, with words for the
/// live line, into `notes`. GCs are not events: the heap-after-GC column marks them.
fn absorb(
    r: Reading,
    elapsed_s: f64,
    heap: &mut ManagedHeap,
    events: &mut Vec<Event>,
    notes: &mut Vec<(String, ProbeEvent)>,
) {
    if r.heap_after_gc_bytes.is_some() {
        heap.after_gc = r.heap_after_gc_bytes;
        heap.external = r.external_bytes;
    }
    if r.heap_used_bytes.is_some() {
        heap.used = r.heap_used_bytes;
    }
    for e in r.events {
        let kind = match &e {
            ProbeEvent::DumpStarted { path } => {
                Some(EventKind::DumpStart(path.display().to_string()))
            }
            ProbeEvent::Snapshot { path, .. } => Some(EventKind::Dump(path.display().to_string())),
            // Ends the dump period like a complete one (recording.rs `dump_periods`).
            ProbeEvent::DumpFailed { path, .. } => {
                Some(EventKind::Other(format!("{DUMP_FAILED}{}", path.display())))
            }
            // A snapshot not taken is part of the run's story, in the CSV and summary.json.
            ProbeEvent::Histogram { .. }
            | ProbeEvent::DumpSkipped { .. }
            | ProbeEvent::Attached { .. }
            | ProbeEvent::Failed { .. }
            | ProbeEvent::Closed { .. } => Some(EventKind::Other(e.key())),
            _ => None,
        };
        if let Some(kind) = kind {
            events.push(Event { elapsed_s, kind });
        }
        let quiet = matches!(e, ProbeEvent::Gc { .. } | ProbeEvent::DumpStarted { .. });
        let text = if quiet { String::new() } else { e.describe() };
        notes.push((text, e));
    }
}
