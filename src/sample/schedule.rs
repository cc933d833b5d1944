//! The deadline schedule: sample k is due at t0 + k x interval, so there is no drift. When a
//! sample is late the schedule skips to the next deadline still ahead and counts the misses,
//! rather than firing a burst to catch up.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Schedule {
    start: Instant,
    interval: Duration,
    /// Index of the deadline the next sample serves (0 = the first sample, at `start`).
    next: u64,
    missed: u64,
}

impl Schedule {
    pub fn new(start: Instant, interval: Duration) -> Schedule {
        assert!(!interval.is_zero(), "interval must be positive");
        Schedule {
            start,
            interval,
            next: 0,
            missed: 0,
        }
    }

    /// The instant the next sample is due.
    pub fn next_deadline(&self) -> Instant {
        self.start
            + self
                .interval
                .saturating_mul(u32::try_from(self.next).unwrap_or(u32::MAX))
    }

    /// Call when a sample has been taken at `now`: the sample serves the latest deadline
    /// that has passed; deadlines before it that got no sample are counted as missed.
    pub fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let latest_passed = (elapsed / self.interval.as_nanos()) as u64;
        let served = latest_passed.max(self.next);
        self.missed += served - self.next;
        self.next = served + 1;
    }

    pub fn missed(&self) -> u64 {
        self.missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_time_samples_miss_nothing_and_do_not_drift() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(t0, ms(100));
        assert_eq!(s.next_deadline(), t0);
        s.advance(t0);
        assert_eq!(s.next_deadline(), t0 + ms(100));
        // sampled a little after each deadline: the next deadline stays on the grid
        s.advance(t0 + ms(103));
        assert_eq!(s.next_deadline(), t0 + ms(200));
        s.advance(t0 + ms(201));
        assert_eq!(s.next_deadline(), t0 + ms(300));
        assert_eq!(s.missed(), 0);
    }

    #[test]
    fn a_late_sample_skips_ahead_and_counts_misses() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(t0, ms(100));
        s.advance(t0);
        s.advance(t0 + ms(100)); // sample 1 on time
        s.advance(t0 + ms(450)); // sample 2 due at 200 taken at 450: 300 and 400 missed
        assert_eq!(s.missed(), 2);
        assert_eq!(s.next_deadline(), t0 + ms(500));
    }

    #[test]
    fn early_wakeup_does_not_skip_backwards() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(t0, ms(100));
        s.advance(t0);
        s.advance(t0 + ms(99));
        assert_eq!(s.next_deadline(), t0 + ms(200));
        assert_eq!(s.missed(), 0);
    }
}
