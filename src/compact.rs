//! One series in bounded memory, for `--all`, where a thousand processes are watched for as
//! long as the machine runs. Points are (seconds since the series' first sample as `f32`,
//! 4 KiB units as `u32`: exact for page-sized memory up to 16 TiB), 8 bytes each, at most
//! `CAP` of them: 2 KiB a series at most. When the points are full, neighbours are merged
//! pairwise into the lower one, and from then on each point is the lowest of `stride`
//! samples (a stride that doubles each time).
//!
//! The analyser judges the floor: the lowest sample of each of 10 to 40 time windows. A point
//! here is the lowest sample of its stretch, so each window's lowest point is its lowest
//! sample (exactly when the stretches fall inside windows, to within one stretch at their
//! edges), and a series never holds fewer than `CAP / 2` points once it has that many
//! samples: at least 3 in each window. Up to `CAP` samples, every sample is a point. The first,
//! last and highest sample are kept exactly beside the points.

/// The most points a series holds.
pub const CAP: usize = 256;
/// Values are counted in these.
const UNIT: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    t: f32,
    v: u32,
}

/// A bounded series of byte values (memory sizes) over time.
#[derive(Clone, Debug)]
pub struct CompactSeries {
    /// Run time of the first sample, seconds: the points' time is relative to it.
    origin_s: f64,
    points: Vec<Point>,
    /// Samples per point now.
    stride: u32,
    /// The lowest of the samples since the last point, and how many.
    pending: Option<Point>,
    pending_n: u32,
    samples: u64,
    first: u64,
    last: u64,
    last_s: f64,
    peak: u64,
    low: u64,
}

impl CompactSeries {
    /// An empty series; it takes memory only as samples come.
    pub fn new() -> CompactSeries {
        CompactSeries {
            origin_s: f64::NAN,
            points: Vec::new(),
            stride: 1,
            pending: None,
            pending_n: 0,
            samples: 0,
            first: 0,
            last: 0,
            last_s: f64::NAN,
            peak: 0,
            low: u64::MAX,
        }
    }

    /// Appends a sample: `bytes` at `t_s` seconds on the run's clock. No allocation once the
    /// points have reached `CAP`.
    pub fn push(&mut self, t_s: f64, bytes: u64) {
        if self.samples == 0 {
            self.origin_s = t_s;
            self.first = bytes;
        }
        self.samples += 1;
        self.last = bytes;
        self.last_s = t_s;
        self.peak = self.peak.max(bytes);
        self.low = self.low.min(bytes);
        let p = Point {
            t: (t_s - self.origin_s) as f32,
            v: u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX),
        };
        self.pending = Some(match self.pending {
            Some(q) if q.v <= p.v => q,
            _ => p,
        });
        self.pending_n += 1;
        if self.pending_n >= self.stride
            && let Some(p) = self.pending.take()
        {
            self.pending_n = 0;
            if self.points.len() == CAP {
                self.halve();
            }
            if self.points.capacity() == 0 {
                self.points.reserve_exact(16);
            }
            self.points.push(p);
        }
    }

    /// Merges neighbouring points into the lower one: half as many, each twice the stretch.
    fn halve(&mut self) {
        let n = self.points.len() / 2;
        for i in 0..n {
            let (a, b) = (self.points[2 * i], self.points[2 * i + 1]);
            self.points[i] = if b.v < a.v { b } else { a };
        }
        self.points.truncate(n);
        self.stride *= 2;
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Points held (the pending one included).
    pub fn len(&self) -> usize {
        self.points.len() + usize::from(self.pending.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// Every sample had the same value.
    pub fn is_constant(&self) -> bool {
        self.samples > 0 && self.low == self.peak
    }

    pub fn first_s(&self) -> f64 {
        self.origin_s
    }

    pub fn last_s(&self) -> f64 {
        self.last_s
    }

    pub fn first_bytes(&self) -> u64 {
        self.first
    }

    pub fn last_bytes(&self) -> u64 {
        self.last
    }

    pub fn peak_bytes(&self) -> u64 {
        self.peak
    }

    /// Samples per point now (1 until the series first filled up).
    pub fn stride(&self) -> u32 {
        self.stride
    }

    /// Points at or after `t_s` on the run's clock.
    pub fn points_from(&self, t_s: f64) -> usize {
        let rel = t_s - self.origin_s;
        let held = self.points.len() - self.points.partition_point(|p| f64::from(p.t) < rel);
        held + usize::from(self.pending.is_some_and(|p| f64::from(p.t) >= rel))
    }

    /// The points as run-clock seconds and bytes, into `t` and `v` (cleared first): what the
    /// analyser and the chart take.
    pub fn fill(&self, t: &mut Vec<f64>, v: &mut Vec<f64>) {
        t.clear();
        v.clear();
        for p in self.points.iter().chain(self.pending.iter()) {
            t.push(self.origin_s + f64::from(p.t));
            v.push((u64::from(p.v) * UNIT) as f64);
        }
    }

    /// Bytes of memory this series holds.
    pub fn bytes_held(&self) -> usize {
        std::mem::size_of::<Self>() + self.points.capacity() * std::mem::size_of::<Point>()
    }
}

impl Default for CompactSeries {
    fn default() -> Self {
        CompactSeries::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_a_point_until_the_series_fills() {
        let mut s = CompactSeries::new();
        for i in 0..CAP as u64 {
            s.push(10.0 + i as f64, (100 + i) * 4096);
        }
        assert_eq!((s.len(), s.stride(), s.samples()), (CAP, 1, CAP as u64));
        let (mut t, mut v) = (Vec::new(), Vec::new());
        s.fill(&mut t, &mut v);
        assert_eq!(t[0], 10.0);
        assert_eq!(v[0], 100.0 * 4096.0);
        assert_eq!(t[CAP - 1], 10.0 + (CAP - 1) as f64);
        assert_eq!(s.first_s(), 10.0);
        assert_eq!(s.points_from(10.0 + 200.0), CAP - 200);
    }

    #[test]
    fn a_full_series_keeps_the_floor_in_bounded_memory() {
        // a sawtooth: 0..9 pages above a rising floor, one sample a second for a day
        let mut s = CompactSeries::new();
        let n = 86_400u64;
        for i in 0..n {
            let floor = 1000 + i / 100;
            s.push(i as f64, (floor + i % 10) * 4096);
        }
        assert!(s.len() <= CAP && s.len() >= CAP / 2, "{}", s.len());
        assert!(s.stride() >= (n / CAP as u64) as u32);
        assert!(s.bytes_held() <= std::mem::size_of::<CompactSeries>() + CAP * 8);
        assert_eq!(s.first_bytes(), 1000 * 4096);
        assert_eq!(s.last_bytes(), (1000 + (n - 1) / 100 + 9) * 4096);
        assert_eq!(s.peak_bytes(), s.last_bytes());
        let (mut t, mut v) = (Vec::new(), Vec::new());
        s.fill(&mut t, &mut v);
        // each point is the floor of its stretch: the sawtooth's bottom, never its top
        for (&ti, &vi) in t.iter().zip(&v) {
            let floor_there = (1000 + ti as u64 / 100) * 4096;
            assert!(
                vi <= floor_there as f64 + 4096.0,
                "{ti}: {vi} over {floor_there}"
            );
            assert!(vi + (s.stride() as f64 / 100.0 + 1.0) * 4096.0 >= floor_there as f64);
        }
        assert!(t.windows(2).all(|w| w[0] < w[1]), "in time order");
        // and the analyser reads the same trend off it as off the raw samples
        let th = crate::analyze::Thresholds::default();
        let compact = crate::analyze::analyze(&t, &v, &[], &th);
        let raw_t: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let raw_v: Vec<f64> = (0..n)
            .map(|i| ((1000 + i / 100 + i % 10) * 4096) as f64)
            .collect();
        let raw = crate::analyze::analyze(&raw_t, &raw_v, &[], &th);
        assert_eq!(compact.verdict, raw.verdict);
        let (Some(compact_slope), Some(raw_slope)) =
            (compact.slope_bytes_per_s, raw.slope_bytes_per_s)
        else {
            panic!("both judged: {compact:?} vs {raw:?}");
        };
        let rel = (compact_slope - raw_slope).abs() / raw_slope;
        assert!(rel < 0.05, "{compact_slope} vs {raw_slope}");
    }

    #[test]
    fn constant_and_empty() {
        let mut s = CompactSeries::new();
        assert!(s.is_empty() && !s.is_constant());
        assert_eq!(s.len(), 0);
        s.push(0.0, 8192);
        s.push(1.0, 8192);
        assert!(s.is_constant());
        s.push(2.0, 4096);
        assert!(!s.is_constant());
        // a value that is no whole page is rounded up, never down to 0
        let mut odd = CompactSeries::new();
        odd.push(0.0, 1);
        let (mut t, mut v) = (Vec::new(), Vec::new());
        odd.fill(&mut t, &mut v);
        assert_eq!(v, [4096.0]);
    }
}
