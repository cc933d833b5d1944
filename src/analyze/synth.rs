//! Seeded synthetic memory series, for tests and the benchmark (not for users).
//!
//! Own tiny PRNG (splitmix64, Steele, Lea & Flood 2014) and Box–Muller normal
//! deviates, so the series are reproducible across platforms and need no crate.
//! Values are rounded to whole 4 KiB pages, like RSS.

use super::Verdict;

/// splitmix64 generator: small, fast, statistically fine for test data.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    spare_normal: Option<f64>,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            spare_normal: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal deviate by the Box–Muller transform (Box & Muller 1958).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // 1 − u is in (0, 1], so the log is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// The slow part of a series, as a function of time (fractions are of `base_bytes`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Flat,
    /// Rises by `growth` over the whole run, steadily.
    Linear {
        growth: f64,
    },
    /// Flat until `start_s`, then rises by `growth` by the end.
    LateLeak {
        start_s: f64,
        growth: f64,
    },
    /// Rises by `growth` in `count` equal steps spread over the run, never released.
    Steps {
        count: usize,
        growth: f64,
    },
    /// Rises by `growth` over the first `climb_s` (fast, then slowing), then flat.
    Plateau {
        climb_s: f64,
        growth: f64,
    },
    /// Jumps up by `height` at `at_s` for `width_s`, then is released.
    Spike {
        at_s: f64,
        width_s: f64,
        height: f64,
    },
    /// Sine of `amplitude` and `period_s` around a flat level.
    Oscillation {
        period_s: f64,
        amplitude: f64,
    },
    /// Falls by `drop` over the run, steadily.
    Shrinking {
        drop: f64,
    },
    /// Rises in steps every `every_s` (a forced GC that lets the heap grow), each smaller than
    /// the one before, towards `growth`: `growth × (1 − e^(−t/tau_s))` at each step. A heap
    /// settling in, concave, levelling off.
    Saturating {
        every_s: f64,
        tau_s: f64,
        growth: f64,
    },
    /// Rises by `growth` over the run in equal steps every `every_s`, never released.
    Staircase {
        every_s: f64,
        growth: f64,
    },
}

/// A GC-like sawtooth: the heap climbs by `amplitude` over about `period_s`, then falls back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sawtooth {
    pub amplitude: f64,
    pub period_s: f64,
    /// Each cycle lasts `period_s` times a factor drawn from `1 ± jitter`: 0.3 for a GC
    /// driven by an uneven load; close to 0 for a steady allocation rate, whose cycles can
    /// beat against the sampling interval (aliasing).
    pub jitter: f64,
}

/// The usual jitter of a GC cycle's length.
pub const GC_JITTER: f64 = 0.3;

/// Everything that defines one synthetic series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    pub duration_s: f64,
    pub hz: f64,
    pub base_bytes: f64,
    pub shape: Shape,
    pub sawtooth: Option<Sawtooth>,
    /// Standard deviation of white noise, fraction of `base_bytes`.
    pub white: f64,
    /// AR(1) wander: stationary standard deviation (fraction) and correlation time (s).
    pub ar1: Option<(f64, f64)>,
    pub seed: u64,
}

fn shape_at(shape: Shape, t: f64, duration: f64) -> f64 {
    match shape {
        Shape::Flat => 0.0,
        Shape::Linear { growth } => growth * t / duration,
        Shape::LateLeak { start_s, growth } => {
            if t <= start_s {
                0.0
            } else {
                growth * (t - start_s) / (duration - start_s).max(1e-9)
            }
        }
        Shape::Steps { count, growth } => {
            let count = count.max(1);
            // Steps at (k + 0.5)/count of the run, k = 0..count.
            let done = ((t / duration * count as f64) - 0.5).floor() + 1.0;
            growth * done.clamp(0.0, count as f64) / count as f64
        }
        Shape::Plateau { climb_s, growth } => {
            let x = (t / climb_s).min(1.0);
            growth * (1.0 - (1.0 - x) * (1.0 - x))
        }
        Shape::Spike {
            at_s,
            width_s,
            height,
        } => {
            if t >= at_s && t < at_s + width_s {
                height
            } else {
                0.0
            }
        }
        Shape::Oscillation {
            period_s,
            amplitude,
        } => amplitude * (std::f64::consts::TAU * t / period_s).sin(),
        Shape::Shrinking { drop } => -drop * t / duration,
        Shape::Saturating {
            every_s,
            tau_s,
            growth,
        } => {
            let stepped = (t / every_s).floor() * every_s;
            growth * (1.0 - (-stepped / tau_s).exp())
        }
        Shape::Staircase { every_s, growth } => {
            let steps = (duration / every_s).floor().max(1.0);
            growth * (t / every_s).floor().min(steps) / steps
        }
    }
}

/// A generated series: times (s, from 0) and values (bytes).
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub time_s: Vec<f64>,
    pub values: Vec<f64>,
}

/// Generate the series `spec` describes. Deterministic in `spec.seed`.
pub fn generate(spec: &Spec) -> Series {
    let mut rng = Rng::new(spec.seed);
    let n = (spec.duration_s * spec.hz).round() as usize + 1;
    let dt = 1.0 / spec.hz;
    let mut series = Series {
        time_s: Vec::with_capacity(n),
        values: Vec::with_capacity(n),
    };
    let mut ar = 0.0;
    let (ar_sd, ar_tau) = spec.ar1.unwrap_or((0.0, 1.0));
    let phi = (-dt / ar_tau.max(1e-9)).exp();
    let innovation = ar_sd * (1.0 - phi * phi).sqrt();
    if spec.ar1.is_some() {
        ar = ar_sd * rng.normal();
    }
    // Sawtooth state: position within the current cycle and that cycle's length.
    let cycle = |rng: &mut Rng, s: Sawtooth| s.period_s * rng.range(1.0 - s.jitter, 1.0 + s.jitter);
    let mut cycle_len = spec.sawtooth.map_or(1.0, |s| cycle(&mut rng, s));
    let mut cycle_pos = rng.range(0.0, cycle_len);
    for i in 0..n {
        let t = i as f64 * dt;
        let mut frac = shape_at(spec.shape, t, spec.duration_s);
        if let Some(st) = spec.sawtooth {
            frac += st.amplitude * cycle_pos / cycle_len;
            cycle_pos += dt;
            if cycle_pos >= cycle_len {
                cycle_pos -= cycle_len;
                cycle_len = cycle(&mut rng, st);
                cycle_pos = cycle_pos.min(cycle_len * 0.5);
            }
        }
        if spec.ar1.is_some() {
            frac += ar;
            ar = phi * ar + innovation * rng.normal();
        }
        frac += spec.white * rng.normal();
        let bytes = (spec.base_bytes * (1.0 + frac)).max(4096.0);
        series.time_s.push(t);
        series.values.push((bytes / 4096.0).round() * 4096.0);
    }
    series
}

/// The catalogue of cases the integration test and the calibration run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// White noise around a flat level.
    Flat,
    /// GC sawtooth over a flat floor.
    SawtoothFlat,
    /// GC sawtooth whose floor rises.
    SawtoothRising,
    /// Steady leak with noise.
    Linear,
    /// Flat for a while, then a leak.
    LateLeak,
    /// Growth in steps that are never released.
    Steps,
    /// Growth during the warm-up, then flat (with a sawtooth half the time).
    WarmupPlateau,
    /// One transient spike, released.
    Spike,
    /// AR(1) wander with a long correlation time around a flat level.
    Ar1Wander,
    /// Slow oscillation, period at most a third of the run.
    Oscillation,
    /// Memory going down.
    Shrinking,
    /// The motivating leak: ~50 MB Node.js service, +10% over the run, GC sawtooth of a few MB.
    NodeLeak,
    /// The same service fixed: climbs for ~20 s (or the first sixth of the run), then flat.
    NodeFixed,
    /// A slow leak of a few % per hour.
    SlowLeak,
    /// A handful of samples only.
    TooFew,
    /// A service's daily load cycle: a GC sawtooth on a floor that swings with the load,
    /// once a day (a third of the run at most), with slow wander; no net trend.
    DailyCycle,
    /// A cache that fills slowly after the warm-up (over the first 25-40% of the run, by
    /// 10-30%), then stays: not sustained, so stable.
    SlowPlateau,
    /// A flat GC sawtooth of steady cycles (2 to 5 samples each) whose period is close to a
    /// multiple of the sampling interval: the phase the samples catch drifts by a beat that
    /// is half to four times the analysed window, so the troughs the floor sees rise or fall
    /// by up to one sample's climb (aliasing).
    AliasedSawtooth,
    /// The same aliased sawtooth over a leak as large as the other leaks.
    AliasedLeak,
    /// A flat level that wanders as a strongly autocorrelated AR(1) process: 0.5-1.5% standard
    /// deviation, a correlation time of 2.5% to 25% of the run (one to ten floor windows and
    /// more: the autocorrelation of the floor itself is strong).
    Ar1Strong,
    /// A leak as large as the other leaks, wandering with the same correlation times at 2%
    /// to 6% of the leak's size (a leak that rises 8% wanders by about ±0.3%).
    Ar1Leak,
    /// RSS of a heap settling in under forced GCs: steps every twelfth to sixteenth of the
    /// run, each smaller than the last, rising over the analysed window by as much as a leak
    /// and levelling off by the end (concave, saturating).
    Saturating,
    /// A leak of the same size in equal steps at the same pace: never levels off.
    SteppedLeak,
}

impl Case {
    pub const ALL: [Case; 22] = [
        Case::Flat,
        Case::SawtoothFlat,
        Case::SawtoothRising,
        Case::Linear,
        Case::LateLeak,
        Case::Steps,
        Case::WarmupPlateau,
        Case::Spike,
        Case::Ar1Wander,
        Case::Oscillation,
        Case::Shrinking,
        Case::NodeLeak,
        Case::NodeFixed,
        Case::SlowLeak,
        Case::TooFew,
        Case::DailyCycle,
        Case::AliasedSawtooth,
        Case::AliasedLeak,
        Case::Ar1Strong,
        Case::Ar1Leak,
        Case::Saturating,
        Case::SteppedLeak,
    ];
    /// Cases only long runs can tell: on a 10-minute run a cache filling for 3 minutes
    /// and a leak look alike; over days, the later half shows it stopped.
    pub const LONG_RUNS_ONLY: [Case; 1] = [Case::SlowPlateau];

    /// The verdict the analyser must reach with default thresholds.
    pub fn expected(self) -> Verdict {
        match self {
            Case::SawtoothRising
            | Case::Linear
            | Case::LateLeak
            | Case::Steps
            | Case::NodeLeak
            | Case::SlowLeak
            | Case::AliasedLeak
            | Case::Ar1Leak
            | Case::SteppedLeak => Verdict::Growing,
            Case::TooFew => Verdict::Inconclusive,
            _ => Verdict::Stable,
        }
    }

    /// The spec of this case for a run of `duration_s` at `hz`, with white
    /// noise `white` (fraction of the level); other parameters drawn from `seed`.
    pub fn spec(self, duration_s: f64, hz: f64, white: f64, seed: u64) -> Spec {
        let mut rng =
            Rng::new(seed ^ 0xA5A5_5A5A_0F0F_F0F0 ^ (self as u64).wrapping_mul(0x1000_0001));
        let base_bytes = (rng.range(30.0, 500.0) * 1_048_576.0).round();
        let gc_period = rng
            .range(duration_s / 40.0, duration_s / 10.0)
            .clamp(3.0, 300.0);
        let sawtooth = Some(Sawtooth {
            amplitude: rng.range(0.02, 0.08),
            period_s: gc_period,
            jitter: GC_JITTER,
        });
        // The default automatic warm-up is a fifth of the run, at least 10 s, at most 10 min.
        let warmup = (0.2 * duration_s).clamp(10.0, 600.0);
        // The least rise the default gates call growth: 2% of the floor, and 1%/h over at
        // most 10 hours (10%). Leaks are drawn from 2.5 to 6 times that.
        let least = ((duration_s - warmup) / 3600.0 * 0.01).clamp(0.02, 0.10);
        let leak_scale = least / 0.02;
        let growth = rng.range(0.05, 0.12) * leak_scale;
        let mut spec = Spec {
            duration_s,
            hz,
            base_bytes,
            shape: Shape::Flat,
            sawtooth: None,
            white,
            ar1: None,
            seed: rng.next_u64(),
        };
        match self {
            Case::Flat => {}
            Case::SawtoothFlat => spec.sawtooth = sawtooth,
            Case::SawtoothRising => {
                spec.sawtooth = sawtooth;
                spec.shape = Shape::Linear { growth };
            }
            Case::Linear => spec.shape = Shape::Linear { growth },
            Case::LateLeak => {
                let start_s = rng.range(0.3, 0.5) * duration_s;
                spec.shape = Shape::LateLeak { start_s, growth };
            }
            Case::Steps => {
                let count = 3 + (rng.next_u64() % 4) as usize;
                spec.shape = Shape::Steps { count, growth };
            }
            Case::WarmupPlateau => {
                let climb_s = rng.range(0.5, 1.5) * warmup;
                spec.shape = Shape::Plateau {
                    climb_s,
                    growth: rng.range(0.05, 0.3),
                };
                if rng.uniform() < 0.5 {
                    spec.sawtooth = sawtooth;
                }
            }
            Case::Spike => {
                let at_s = rng.range(0.3, 0.7) * duration_s;
                let width_s = rng.range(0.02, 0.08) * duration_s;
                spec.shape = Shape::Spike {
                    at_s,
                    width_s,
                    height: rng.range(0.1, 0.3),
                };
            }
            Case::Ar1Wander => {
                let tau = rng.range(duration_s / 30.0, duration_s / 10.0);
                spec.ar1 = Some((rng.range(0.005, 0.015), tau));
            }
            Case::Oscillation => {
                let period_s = rng.range(duration_s / 6.0, duration_s / 3.0);
                spec.shape = Shape::Oscillation {
                    period_s,
                    amplitude: rng.range(0.02, 0.05),
                };
            }
            Case::Shrinking => {
                spec.shape = Shape::Shrinking {
                    drop: rng.range(0.05, 0.2),
                };
                if rng.uniform() < 0.5 {
                    spec.sawtooth = sawtooth;
                }
            }
            Case::NodeLeak | Case::NodeFixed => {
                spec.base_bytes = (rng.range(45.0, 55.0) * 1_048_576.0).round();
                // "A few MB" of GC sawtooth every few seconds (capped for long runs).
                let amp_bytes = rng.range(1.0, 4.0) * 1_048_576.0;
                let period_s = rng.range(3.0, 10.0).max(duration_s / 100.0);
                spec.sawtooth = Some(Sawtooth {
                    amplitude: amp_bytes / spec.base_bytes,
                    period_s,
                    jitter: GC_JITTER,
                });
                if self == Case::NodeLeak {
                    spec.shape = Shape::Linear {
                        growth: rng.range(0.08, 0.12) * leak_scale,
                    };
                } else {
                    let climb_s = rng
                        .range(15.0, 22.0)
                        .max(duration_s / 6.0)
                        .min(0.9 * warmup);
                    spec.shape = Shape::Plateau {
                        climb_s,
                        growth: rng.range(0.08, 0.12),
                    };
                }
            }
            Case::SlowLeak => {
                // A few % per hour (but at least 5% over the run, so short runs still see it);
                // on runs of days and weeks, 15% to 60% over the run: hundredths of a %/h.
                let pct_per_hour = rng.range(2.0, 5.0);
                let mut growth = (pct_per_hour / 100.0 * duration_s / 3600.0).max(0.05);
                if rng.uniform() < 0.5 {
                    spec.sawtooth = sawtooth;
                }
                if duration_s > 86_400.0 {
                    growth = rng.range(0.15, 0.6);
                }
                spec.shape = Shape::Linear { growth };
            }
            Case::SlowPlateau => {
                spec.shape = Shape::Plateau {
                    climb_s: rng.range(0.25, 0.4) * duration_s,
                    growth: rng.range(0.1, 0.3),
                };
                if rng.uniform() < 0.5 {
                    spec.sawtooth = sawtooth;
                }
            }
            Case::DailyCycle => {
                spec.shape = Shape::Oscillation {
                    period_s: 86_400.0_f64.min(duration_s / 3.0),
                    amplitude: rng.range(0.03, 0.10),
                };
                spec.sawtooth = sawtooth;
                let tau = rng.range(duration_s / 30.0, duration_s / 10.0);
                spec.ar1 = Some((rng.range(0.002, 0.006), tau));
            }
            Case::AliasedSawtooth | Case::AliasedLeak => {
                let dt = 1.0 / hz;
                let per_cycle = 2.0 + (rng.next_u64() % 4) as f64;
                // The samples' phase in the cycle drifts by `dt` once a beat.
                let beat_s = rng.range(0.5, 4.0) * (duration_s - warmup);
                let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                // The floor can drift by one sample's climb, amplitude / samples a cycle:
                // 1% to 3% of the level; under a leak, a tenth to a third of its rise.
                let climb = if self == Case::AliasedLeak {
                    spec.shape = Shape::Linear { growth };
                    rng.range(0.1, 1.0 / 3.0) * growth * (duration_s - warmup) / duration_s
                } else {
                    rng.range(0.01, 0.03)
                };
                spec.sawtooth = Some(Sawtooth {
                    amplitude: climb * per_cycle,
                    period_s: per_cycle * dt * (1.0 + sign * dt / beat_s),
                    jitter: rng.range(0.0, 0.005),
                });
            }
            Case::Ar1Strong => {
                let tau = rng.range(0.025, 0.25) * duration_s;
                spec.ar1 = Some((rng.range(0.005, 0.015), tau));
            }
            Case::Ar1Leak => {
                let tau = rng.range(0.025, 0.25) * duration_s;
                spec.ar1 = Some((rng.range(0.02, 0.06) * growth, tau));
                spec.shape = Shape::Linear { growth };
            }
            Case::Saturating | Case::SteppedLeak => {
                let every_s = rng.range(1.0 / 16.0, 1.0 / 12.0) * duration_s;
                if self == Case::Saturating {
                    // As much rise after the warm-up as a leak's, most of it early.
                    let tau_s = rng.range(0.1, 0.25) * duration_s;
                    let left = |t: f64| (-t / tau_s).exp();
                    let in_window = left(warmup) - left(duration_s);
                    spec.shape = Shape::Saturating {
                        every_s,
                        tau_s,
                        growth: growth * (duration_s - warmup) / duration_s / in_window,
                    };
                } else {
                    spec.shape = Shape::Staircase { every_s, growth };
                }
            }
            Case::TooFew => {
                // 4 to 9 samples over the whole run.
                let n = 4.0 + (rng.next_u64() % 6) as f64;
                spec.hz = (n - 1.0) / duration_s;
                spec.shape = Shape::Linear { growth };
            }
        }
        spec
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_roughly_normal() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| a.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn generate_has_expected_length_and_pages() {
        let spec = Case::NodeLeak.spec(120.0, 10.0, 0.005, 1);
        let s = generate(&spec);
        assert_eq!(s.time_s.len(), 1201);
        assert_eq!(s.values.len(), 1201);
        assert!(s.values.iter().all(|v| v % 4096.0 == 0.0));
    }
}
