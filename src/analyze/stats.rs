//! Pure statistics for the analyser. Every function documents its method and
//! what it does with degenerate input (too few points, zero variance, ties).
//! Callers pass finite numbers; NaN handling is the analyser's job.

use std::cmp::Ordering;

/// Median of `xs` (the mean of the two middle values when the length is even).
/// Returns NaN for an empty slice. O(n) on average (quickselect on a copy).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    median_in_place(&mut v)
}

/// Like [`median`], but reorders `v` instead of copying it.
pub fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    let (lower, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let hi = *m;
    if n % 2 == 1 {
        hi
    } else {
        // The largest of the lower half is the other middle value.
        let lo = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    }
}

/// The median of the `n` values `values()` yields, exactly as [`median`] computes it. Up to
/// `STREAM_ABOVE` values it copies them (quicker); above, it does not hold them: radix
/// selection on the bits of their total order, 16 bits a pass (four passes find the middle
/// value, one more the other middle when `n` is even). The analyser's medians over a
/// month-long recording take a 512 KiB table, not a copy of the series. `values` must yield
/// the same `n` values on every call.
pub fn median_streamed<I: Iterator<Item = f64>>(n: usize, values: impl Fn() -> I) -> f64 {
    if n <= STREAM_ABOVE {
        return median_in_place(&mut values().collect::<Vec<f64>>());
    }
    median_by_selection(n, values)
}

/// Series longer than this (8 MiB of `f64`) are not copied for a median.
pub const STREAM_ABOVE: usize = 1 << 20;

fn median_by_selection<I: Iterator<Item = f64>>(n: usize, values: impl Fn() -> I) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    let (hi, equal_below) = select_streamed(mid, &values);
    if n % 2 == 1 {
        return hi;
    }
    // The other middle value is the largest below `hi`, unless a copy of `hi` ranks below it.
    let lo = if equal_below {
        hi
    } else {
        let hi_key = order_key(hi);
        values()
            .filter(|&x| order_key(x) < hi_key)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    (lo + hi) / 2.0
}

/// A `u64` that sorts as `f64::total_cmp` sorts the value.
fn order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// The `rank`-th smallest (from 0) of the values, and whether a value equal to it ranks below
/// it.
fn select_streamed<I: Iterator<Item = f64>>(
    mut rank: usize,
    values: &impl Fn() -> I,
) -> (f64, bool) {
    const BITS: u32 = 16;
    let mut counts = vec![0usize; 1 << BITS];
    let (mut prefix, mut mask) = (0u64, 0u64);
    for pass in 0..64 / BITS {
        let shift = 64 - BITS * (pass + 1);
        counts.iter_mut().for_each(|c| *c = 0);
        for key in values().map(order_key).filter(|k| k & mask == prefix) {
            counts[((key >> shift) & 0xffff) as usize] += 1;
        }
        let mut digit = 0;
        while rank >= counts[digit] {
            rank -= counts[digit];
            digit += 1;
        }
        prefix |= (digit as u64) << shift;
        mask |= 0xffff << shift;
    }
    (from_order_key(prefix), rank > 0)
}

/// Complementary error function, `erfc(x)`.
///
/// Method: the Chebyshev-fitted approximation `erfcc` of Press, Teukolsky,
/// Vetterling & Flannery, *Numerical Recipes* (2nd ed., 1992), §6.2, with a
/// fractional error below 1.2e-7 everywhere. A fractional (not absolute) bound
/// matters here: p-values far in the tail keep their order of magnitude.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Standard normal cumulative distribution function, Φ(z) = erfc(−z/√2)/2,
/// via [`erfc`] (so the lower tail keeps its relative accuracy).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Count inversions (pairs i < j with `v[i] > v[j]`, strictly) by merge sort,
/// sorting `v` ascending as a side effect. Equal values are not inversions.
/// O(n log n): the counting step of Knight (1966), "A computer method for
/// calculating Kendall's tau with ungrouped data", JASA 61(314).
fn count_inversions(v: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mut buf = v.to_vec();
    let mut inversions = 0u64;
    // Bottom-up merge sort, alternating between `v` and `buf`.
    let mut width = 1;
    let mut src_is_v = true;
    while width < n {
        {
            let (src, dst): (&[f64], &mut [f64]) = if src_is_v {
                (&*v, &mut buf[..])
            } else {
                (&buf[..], &mut *v)
            };
            let mut start = 0;
            while start < n {
                let mid = (start + width).min(n);
                let end = (start + 2 * width).min(n);
                let (mut i, mut j, mut k) = (start, mid, start);
                while i < mid && j < end {
                    // Take from the left on ties: equal values are not inversions.
                    if src[i].total_cmp(&src[j]) != Ordering::Greater {
                        dst[k] = src[i];
                        i += 1;
                    } else {
                        dst[k] = src[j];
                        j += 1;
                        // Every element left in the left run is greater than src[j].
                        inversions += (mid - i) as u64;
                    }
                    k += 1;
                }
                dst[k..k + (mid - i)].copy_from_slice(&src[i..mid]);
                k += mid - i;
                dst[k..k + (end - j)].copy_from_slice(&src[j..end]);
                start = end;
            }
        }
        src_is_v = !src_is_v;
        width *= 2;
    }
    if !src_is_v {
        v.copy_from_slice(&buf);
    }
    inversions
}

/// Sizes of the groups of equal values in a sorted slice (only groups of 2 or more).
fn tie_groups(sorted: &[f64]) -> Vec<u64> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        if j - i > 1 {
            groups.push((j - i) as u64);
        }
        i = j;
    }
    groups
}

/// The Mann–Kendall statistic of a series taken in time order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannKendall {
    pub n: usize,
    /// S = Σ_{i<j} sign(x_j − x_i): positive for an upward trend.
    pub s: i64,
    /// Var(S) under H0 (no trend, independent data), corrected for ties.
    pub var_s: f64,
}

/// Mann–Kendall S and its tie-corrected variance (Mann 1945; Kendall 1975).
///
/// S counts rising pairs minus falling pairs. With time strictly ordered,
/// falling pairs are the inversions of `x`, counted in O(n log n) by merge
/// sort (Knight 1966); rising = all pairs − tied pairs − falling. The variance
/// is `[n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18`, t running over tie-group sizes.
///
/// Degenerate input: n < 2 gives S = 0 and Var = 0; all values equal gives
/// S = 0 and Var = 0 (the p-value functions then answer 1).
pub fn mann_kendall(x: &[f64]) -> MannKendall {
    let n = x.len();
    if n < 2 {
        return MannKendall {
            n,
            s: 0,
            var_s: 0.0,
        };
    }
    let mut v = x.to_vec();
    let falling = count_inversions(&mut v);
    let ties = tie_groups(&v);
    let nn = n as u64;
    let pairs = nn * (nn - 1) / 2;
    let tied_pairs: u64 = ties.iter().map(|t| t * (t - 1) / 2).sum();
    let rising = pairs - tied_pairs - falling;
    let s = rising as i64 - falling as i64;
    let nf = n as f64;
    let tie_term: f64 = ties
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * (t - 1.0) * (2.0 * t + 5.0)
        })
        .sum();
    let var_s = ((nf * (nf - 1.0) * (2.0 * nf + 5.0) - tie_term) / 18.0).max(0.0);
    MannKendall { n, s, var_s }
}

/// Normal-approximation z score of S with the continuity correction:
/// z = (S − 1)/√Var for S > 0, (S + 1)/√Var for S < 0, 0 for S = 0.
/// Var(S) ≤ 0 (no information) gives z = 0.
pub fn mk_z(s: i64, var_s: f64) -> f64 {
    if var_s <= 0.0 || s == 0 {
        return 0.0;
    }
    let sd = var_s.sqrt();
    if s > 0 {
        (s as f64 - 1.0) / sd
    } else {
        (s as f64 + 1.0) / sd
    }
}

/// Two-sided p-value of a z score: P(|Z| ≥ |z|) = erfc(|z|/√2).
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// Fractional ranks (1-based; tied values share their mean rank). O(n log n).
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        let mean_rank = (i + j + 1) as f64 / 2.0; // mean of (i+1)..=j
        for &k in &idx[i..j] {
            r[k] = mean_rank;
        }
        i = j;
    }
    r
}

/// Sample autocorrelation of `x` at lag `k` (the usual biased estimator,
/// Σ(x_t − x̄)(x_{t+k} − x̄) / Σ(x_t − x̄)²). Zero variance or k ≥ n gives 0.
pub fn autocorrelation(x: &[f64], k: usize) -> f64 {
    let n = x.len();
    if k >= n {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let den: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
    if den <= 0.0 {
        return 0.0;
    }
    let num: f64 = (0..n - k).map(|t| (x[t] - mean) * (x[t + k] - mean)).sum();
    num / den
}

/// Hamed & Rao (1998) variance-inflation factor n/n* for the Mann–Kendall
/// test on autocorrelated data ("A modified Mann–Kendall trend test for
/// autocorrelated data", J. Hydrology 204).
///
/// Method: remove the Theil–Sen trend (slope per index step), rank the
/// residuals, and sum the autocorrelations ρ_k of those ranks that are
/// significant at 5% (ρ_k > 1.96/√n, see below):
/// `n/n* = 1 + 2/(n(n−1)(n−2)) · Σ (n−k)(n−k−1)(n−k−2) ρ_k`.
///
/// Deviations from the paper, on purpose, both conservative: only positive
/// significant lags are summed (in short persistent series the rank
/// autocorrelation swings negative at middle lags and cancels the real
/// persistence at short lags), and the factor is clamped to at least 1, so
/// negative autocorrelation (e.g. a sawtooth aliased by the windows) never
/// makes the test *more* confident than for independent data. Lags go up to
/// `max_lag` (O(n·max_lag)). n < 3 gives 1.
pub fn hamed_rao_factor(x: &[f64], max_lag: usize) -> f64 {
    let idx: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
    hamed_rao_factor_at(&idx, x, max_lag)
}

/// [`hamed_rao_factor`] for points taken at times `t` (ascending): the trend removed is
/// the Theil–Sen slope per unit of time, so unevenly spaced points (windows of 2 and 3
/// samples in turn, a gap left by a heap dump) leave no pattern in the residuals that
/// the spacing alone made. Evenly spaced times give the same factor as by index.
pub fn hamed_rao_factor_at(t: &[f64], x: &[f64], max_lag: usize) -> f64 {
    let n = x.len().min(t.len());
    if n < 3 {
        return 1.0;
    }
    let (t, x) = (&t[..n], &x[..n]);
    let beta = theil_sen_slope(t, x);
    let beta = if beta.is_finite() { beta } else { 0.0 };
    let detrended: Vec<f64> = x.iter().zip(t).map(|(v, ti)| v - beta * ti).collect();
    hamed_rao_factor_of_residuals(&detrended, max_lag)
}

/// The Hamed–Rao factor of residuals whose trend is already removed (by whatever fit): the
/// rank autocorrelations, the lags and the deviations of [`hamed_rao_factor`]. n < 3 gives 1.
pub fn hamed_rao_factor_of_residuals(residuals: &[f64], max_lag: usize) -> f64 {
    let n = residuals.len();
    if n < 3 {
        return 1.0;
    }
    let r = ranks(residuals);
    let nf = n as f64;
    let bound = 1.96 / nf.sqrt();
    let mut sum = 0.0;
    for k in 1..=max_lag.min(n - 1) {
        let rho = autocorrelation(&r, k);
        if rho > bound {
            let m = (n - k) as f64;
            sum += m * (m - 1.0) * (m - 2.0) * rho;
        }
    }
    let factor = 1.0 + 2.0 * sum / (nf * (nf - 1.0) * (nf - 2.0));
    if factor.is_finite() {
        factor.max(1.0)
    } else {
        1.0
    }
}

/// Population variance (mean of squared deviations from the mean). Fewer than 1 value gives 0.
fn variance(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n
}

/// The standard deviation of the slow part of `residuals` (a series with its trend removed,
/// in time order): `√max(0, Var(r) − Var(Δr)/2)`.
///
/// Method: split the residuals into white noise (variance σ²_e) and a slow wander (variance
/// σ²_w, lag-one autocorrelation φ close to 1). Then Var(r) = σ²_e + σ²_w, while the changes
/// between neighbours see all of the white noise twice and hardly any of the wander:
/// Var(Δr) = 2σ²_e + 2σ²_w(1 − φ). Half the second taken from the first leaves σ²_w·φ, the
/// wander's share (the variogram at lag one against its sill; Matheron 1962, von Neumann
/// 1941 for the ratio of the two). White noise alone gives about 0, however loud; a wander
/// slow against the spacing gives its amplitude, less what the trend fit absorbed of it.
/// Fewer than 3 values, or no wander beyond the noise, gives 0.
pub fn wander_sd(residuals: &[f64]) -> f64 {
    if residuals.len() < 3 {
        return 0.0;
    }
    let changes: Vec<f64> = residuals.windows(2).map(|w| w[1] - w[0]).collect();
    let excess = variance(residuals) - 0.5 * variance(&changes);
    if excess.is_finite() && excess > 0.0 {
        excess.sqrt()
    } else {
        0.0
    }
}

/// The closest non-decreasing sequence to `x` in least squares (isotonic regression), by
/// pool-adjacent-violators (Ayer, Brunk, Ewing, Reid & Silverman 1955; Barlow et al. 1972,
/// *Statistical Inference under Order Restrictions*): runs that fall are pooled into their
/// mean. O(n). Any monotone trend, straight or not, is what it fits; what is left is what
/// no monotone trend explains.
pub fn isotonic_increasing(x: &[f64]) -> Vec<f64> {
    let mut blocks: Vec<(f64, usize)> = Vec::with_capacity(x.len()); // (mean, length)
    for &v in x {
        let (mut mean, mut len) = (v, 1usize);
        while let Some(&(before, before_len)) = blocks.last() {
            if before <= mean {
                break;
            }
            blocks.pop();
            let total = before_len + len;
            mean = (before * before_len as f64 + mean * len as f64) / total as f64;
            len = total;
        }
        blocks.push((mean, len));
    }
    blocks
        .iter()
        .flat_map(|&(mean, len)| std::iter::repeat_n(mean, len))
        .collect()
}

/// The outcome of the modified Mann–Kendall test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrendTest {
    pub mk: MannKendall,
    /// Hamed–Rao variance-inflation factor applied (≥ 1).
    pub inflation: f64,
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Mann–Kendall trend test with the Hamed & Rao (1998) autocorrelation
/// correction: Var*(S) = Var(S) · n/n*, then the continuity-corrected normal
/// approximation. Fewer than 3 points, or no variance, gives p = 1.
pub fn trend_test(x: &[f64]) -> TrendTest {
    let idx: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
    trend_test_at(&idx, x)
}

/// [`trend_test`] for points taken at times `t` (ascending): the same S, with the
/// autocorrelation correction computed on the residuals from the trend in time
/// ([`hamed_rao_factor_at`]).
pub fn trend_test_at(t: &[f64], x: &[f64]) -> TrendTest {
    let mk = mann_kendall(x);
    if x.len() < 3 || t.len() != x.len() || mk.var_s <= 0.0 {
        return TrendTest {
            mk,
            inflation: 1.0,
            z: 0.0,
            p_value: 1.0,
        };
    }
    let inflation = hamed_rao_factor_at(t, x, x.len() - 1);
    let z = mk_z(mk.s, mk.var_s * inflation);
    TrendTest {
        mk,
        inflation,
        z,
        p_value: two_sided_p(z),
    }
}

/// [`trend_test_at`] whose autocorrelation correction does not count a curved trend as
/// persistence: the Hamed–Rao factor is the smaller of the one on the residuals from the
/// Theil–Sen line and the one on the residuals from the isotonic (monotone) fit in the
/// direction of S. A leak that starts late, or a rise that bends, leaves residuals from a
/// straight line that move together (the test then lost its nerve on long runs); a monotone
/// fit leaves them independent. Wander, which goes down as well as up, stays persistent
/// around either fit.
pub fn trend_test_monotone_at(t: &[f64], x: &[f64]) -> TrendTest {
    let line = trend_test_at(t, x);
    if line.p_value >= 1.0 || line.mk.s == 0 {
        return line;
    }
    let sign = if line.mk.s > 0 { 1.0 } else { -1.0 };
    let signed: Vec<f64> = x.iter().map(|v| sign * v).collect();
    let fit = isotonic_increasing(&signed);
    let residuals: Vec<f64> = signed.iter().zip(&fit).map(|(v, f)| v - f).collect();
    let monotone = hamed_rao_factor_of_residuals(&residuals, residuals.len() - 1);
    if monotone >= line.inflation {
        return line;
    }
    let z = mk_z(line.mk.s, line.mk.var_s * monotone);
    TrendTest {
        mk: line.mk,
        inflation: monotone,
        z,
        p_value: two_sided_p(z),
    }
}

/// How well a rise that levels off explains the points, against a straight line: the
/// saturating curve `a + c·(1 − e^(−(t − t₀)/τ))` (c > 0, τ from 2% to 200% of the span on
/// a grid, a and c by least squares for each τ) against the least-squares line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Saturation {
    /// (SSE of the line − SSE of the curve) / (SSE of the curve / (n − 3)): the F statistic
    /// of the extra parameter (τ searched, so larger than F(1, n − 3) under a line).
    pub f: f64,
    /// The curve's slope at the last point over the line's slope: near 0 when it levelled off.
    pub end_share: f64,
    /// The Hamed–Rao factor of the curve's residuals: above 1 when what the curve leaves
    /// moves together (wander), which makes `f` look larger than the evidence is.
    pub persistence: f64,
}

/// [`Saturation`] of `y` at times `t` (ascending). `None` with fewer than 6 points, no span,
/// a line that does not rise, or a perfect fit. O(n) per τ, 26 values of τ.
pub fn saturation(t: &[f64], y: &[f64]) -> Option<Saturation> {
    let n = t.len().min(y.len());
    if n < 6 {
        return None;
    }
    let (t, y) = (&t[..n], &y[..n]);
    let t0 = t[0];
    let span = t[n - 1] - t0;
    if span.is_nan() || span <= 0.0 {
        return None;
    }
    // Least squares of y on x: (slope, SSE).
    let fit = |x: &mut dyn Iterator<Item = f64>| {
        let xs: Vec<f64> = x.collect();
        let nf = n as f64;
        let mx = xs.iter().sum::<f64>() / nf;
        let my = y.iter().sum::<f64>() / nf;
        let sxx: f64 = xs.iter().map(|a| (a - mx) * (a - mx)).sum();
        let sxy: f64 = xs.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let sse: f64 = xs
            .iter()
            .zip(y)
            .map(|(a, b)| (b - my - slope * (a - mx)).powi(2))
            .sum();
        (slope, sse)
    };
    let (line_slope, line_sse) = fit(&mut t.iter().map(|ti| ti - t0));
    if line_slope.is_nan() || line_slope <= 0.0 {
        return None;
    }
    let curve = |tau: f64| t.iter().map(move |ti| 1.0 - (-(ti - t0) / tau).exp());
    let mut best: Option<(f64, f64, f64)> = None; // (SSE, c, τ)
    let mut share = 0.02;
    while share <= 2.0 {
        let tau = share * span;
        let (c, sse) = fit(&mut curve(tau));
        if c > 0.0 && best.is_none_or(|b| sse < b.0) {
            best = Some((sse, c, tau));
        }
        share *= 1.2;
    }
    let (sse, c, tau) = best?;
    let sigma2 = sse / (n as f64 - 3.0);
    if sigma2.is_nan() || sigma2 <= 0.0 {
        return None;
    }
    // The curve's residuals: y less c·x, centred (the intercept does not change the ranks).
    let residuals: Vec<f64> = curve(tau).zip(y).map(|(x, yi)| yi - c * x).collect();
    Some(Saturation {
        f: (line_sse - sse) / sigma2,
        end_share: c / tau * (-span / tau).exp() / line_slope,
        persistence: hamed_rao_factor_of_residuals(&residuals, n - 1),
    })
}

/// The slopes (y_j − y_i)/(t_j − t_i) of all pairs i < j with t_i ≠ t_j: O(m²).
fn pairwise_slopes(t: &[f64], y: &[f64]) -> Vec<f64> {
    let n = t.len().min(y.len());
    let mut slopes = Vec::with_capacity(n.saturating_sub(1) * n / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dt = t[j] - t[i];
            if dt != 0.0 {
                slopes.push((y[j] - y[i]) / dt);
            }
        }
    }
    slopes
}

/// Theil–Sen slope (Theil 1950; Sen 1968): the median of the slopes
/// (y_j − y_i)/(t_j − t_i) over all pairs with t_i ≠ t_j. O(m²) time and
/// memory, so call it on aggregated points only (the analyser passes at most
/// a few hundred window minima). Fewer than 2 distinct times gives NaN.
pub fn theil_sen_slope(t: &[f64], y: &[f64]) -> f64 {
    let mut slopes = pairwise_slopes(t, y);
    median_in_place(&mut slopes)
}

/// Theil–Sen line: the slope above and the intercept median(y_i − slope·t_i)
/// (Sen 1968), returned as `(slope, intercept)`. NaN when the slope is.
pub fn theil_sen(t: &[f64], y: &[f64]) -> (f64, f64) {
    let slope = theil_sen_slope(t, y);
    if !slope.is_finite() {
        return (f64::NAN, f64::NAN);
    }
    let mut res: Vec<f64> = t.iter().zip(y).map(|(ti, yi)| yi - slope * ti).collect();
    (slope, median_in_place(&mut res))
}

/// Confidence interval of the Theil–Sen slope from the order statistics of the
/// pairwise slopes (Sen 1968; Gilbert 1987, *Statistical Methods for
/// Environmental Pollution Monitoring*, §16.5.1): with N pairwise slopes and
/// C = z·√(Var(S)·inflation), the bounds are the M1-th and (M2+1)-th smallest
/// slopes, M1 = (N − C)/2, M2 = (N + C)/2 (rounded outwards, clamped to the range).
/// `z` is the two-sided normal quantile (1.645 for 90%). Var(S) is the
/// tie-corrected Mann–Kendall variance of `y`; `inflation` (≥ 1) widens it for
/// autocorrelation. Fewer than 2 slopes gives (NaN, NaN).
pub fn theil_sen_ci(t: &[f64], y: &[f64], z: f64, inflation: f64) -> (f64, f64) {
    let n = t.len().min(y.len());
    let mut slopes = pairwise_slopes(t, y);
    if slopes.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    slopes.sort_by(f64::total_cmp);
    let big_n = slopes.len() as f64;
    let c = z * (mann_kendall(&y[..n]).var_s * inflation.max(1.0)).sqrt();
    let m1 = ((big_n - c) / 2.0).floor();
    let m2 = ((big_n + c) / 2.0).ceil();
    let last = slopes.len() - 1;
    // 1-based order statistics M1 and M2 + 1, as 0-based indices.
    let lo = (m1 - 1.0).clamp(0.0, last as f64) as usize;
    let hi = m2.clamp(0.0, last as f64) as usize;
    (slopes[lo], slopes[hi])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Brute-force S, for cross-checking the merge-sort count.
    fn s_naive(x: &[f64]) -> i64 {
        let mut s = 0;
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                s += match x[j].partial_cmp(&x[i]).unwrap() {
                    Ordering::Greater => 1,
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                };
            }
        }
        s
    }

    #[test]
    fn median_by_selection_is_the_median() {
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let cases: Vec<Vec<f64>> = vec![
            vec![],
            vec![7.0],
            vec![4.0, 1.0, 3.0, 2.0],
            vec![5.0, 5.0, 5.0, 5.0],
            vec![1.0, 2.0, 2.0, 3.0],
            vec![-0.0, 0.0, -1.5, 2.5, f64::INFINITY, f64::NEG_INFINITY],
            (0..1001).map(|_| (next() % 50) as f64 - 25.0).collect(),
            (0..1000)
                .map(|_| (next() % 1_000_000) as f64 * 4096.0)
                .collect(),
            (0..1000)
                .map(|_| f64::from_bits(next() >> 2) * if next() % 2 == 0 { 1.0 } else { -1.0 })
                .collect(),
        ];
        for xs in cases {
            let want = median(&xs);
            let got = median_by_selection(xs.len(), || xs.iter().copied());
            assert!(
                want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()),
                "{xs:?}: {got} != {want}"
            );
        }
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[5.0, 5.0, 5.0, 5.0]), 5.0);
    }

    #[test]
    fn mk_monotone_without_ties() {
        // n = 5, increasing: S = 10; Var = 5·4·15/18 = 16.667.
        let mk = mann_kendall(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(mk.s, 10);
        assert!(close(mk.var_s, 50.0 / 3.0, 1e-12));
        let mk = mann_kendall(&[5.0, 4.0, 3.0, 2.0, 1.0]);
        assert_eq!(mk.s, -10);
    }

    #[test]
    fn mk_by_hand_with_ties() {
        // x = [1, 2, 2, 3]: pairs (i<j) signs: 1-2 +, 1-2 +, 1-3 +, 2-2 0, 2-3 +, 2-3 + => S = 5.
        // Var = [4·3·13 − 2·1·9]/18 = (156 − 18)/18 = 7.6667.
        let mk = mann_kendall(&[1.0, 2.0, 2.0, 3.0]);
        assert_eq!(mk.s, 5);
        assert!(close(mk.var_s, 138.0 / 18.0, 1e-12));

        // x = [3, 1, 3, 2, 1]: by hand S = (−1 0 −1 −1) + (+1 +1 0) + (−1 −1) + (−1) = −4.
        // Ties: two 3s and two 1s: Var = [5·4·15 − 2·(2·1·9)]/18 = (300 − 36)/18 = 14.6667.
        let mk = mann_kendall(&[3.0, 1.0, 3.0, 2.0, 1.0]);
        assert_eq!(mk.s, -4);
        assert!(close(mk.var_s, 264.0 / 18.0, 1e-12));
    }

    #[test]
    fn mk_degenerate() {
        assert_eq!(mann_kendall(&[]).s, 0);
        assert_eq!(mann_kendall(&[1.0]).var_s, 0.0);
        let flat = mann_kendall(&[2.0; 6]);
        assert_eq!(flat.s, 0);
        assert_eq!(flat.var_s, 0.0);
        let t = trend_test(&[2.0; 6]);
        assert_eq!(t.p_value, 1.0);
        assert_eq!(trend_test(&[1.0, 2.0]).p_value, 1.0);
    }

    #[test]
    fn mk_merge_sort_matches_brute_force() {
        // Deterministic pseudo-random vectors with many ties, odd and even lengths.
        let mut state = 12345u64;
        for n in [2usize, 3, 7, 16, 33, 100, 257] {
            let x: Vec<f64> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 7) as f64
                })
                .collect();
            assert_eq!(mann_kendall(&x).s, s_naive(&x), "n = {n}");
        }
    }

    #[test]
    fn mk_p_value_by_hand() {
        // n = 10 increasing: S = 45, Var = 10·9·25/18 = 125, z = 44/√125 = 3.9355,
        // two-sided p = 8.30e-5.
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let mk = mann_kendall(&x);
        assert_eq!(mk.s, 45);
        assert!(close(mk.var_s, 125.0, 1e-12));
        let z = mk_z(mk.s, mk.var_s);
        assert!(close(z, 44.0 / 125f64.sqrt(), 1e-12));
        assert!(close(two_sided_p(z), 8.30e-5, 0.02e-5));
        assert_eq!(mk_z(0, 10.0), 0.0);
        assert!(close(mk_z(-3, 4.0), -1.0, 1e-12));
    }

    #[test]
    fn normal_cdf_known_values() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.0), 0.841_344_746, 1e-7));
        assert!(close(normal_cdf(-1.959_963_985), 0.025, 1e-7));
        assert!(close(normal_cdf(2.575_829_304), 0.995, 1e-7));
        // Lower tail keeps relative accuracy: Φ(−6) = 9.8659e-10.
        assert!((normal_cdf(-6.0) / 9.865_876_45e-10 - 1.0).abs() < 1e-6);
        assert!(close(erfc(0.0), 1.0, 1e-7));
        assert!(close(erfc(1.0), 0.157_299_207, 1e-7));
        assert!(close(erfc(-1.0), 1.842_700_793, 1e-7));
        assert!(erfc(f64::NAN).is_nan());
    }

    #[test]
    fn theil_sen_by_hand() {
        // Points (0,0),(1,1),(2,2),(3,10): slopes 1,1,10/3,1,4.5,8 -> median of
        // [1,1,1,3.33,4.5,8] = (1+3.33)/2 = 2.1667.
        let (t, y) = ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 10.0]);
        assert!(close(theil_sen_slope(&t, &y), 13.0 / 6.0, 1e-12));
        // Exact line y = 2t + 1 with one outlier: slope stays 2, intercept 1.
        let t: Vec<f64> = (0..7).map(f64::from).collect();
        let mut y: Vec<f64> = t.iter().map(|v| 2.0 * v + 1.0).collect();
        y[3] = 100.0;
        let (b, a) = theil_sen(&t, &y);
        assert!(close(b, 2.0, 1e-12));
        assert!(close(a, 1.0, 1e-12));
        // Degenerate: one point, or all times equal.
        assert!(theil_sen_slope(&[1.0], &[1.0]).is_nan());
        assert!(theil_sen_slope(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert!(theil_sen(&[1.0, 1.0], &[1.0, 2.0]).0.is_nan());
    }

    #[test]
    fn ranks_with_ties() {
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), vec![1.0, 4.0, 2.5, 2.5]);
    }

    #[test]
    fn autocorrelation_by_hand() {
        // x = [1, 2, 3, 4]: mean 2.5, den = 5, lag 1 num = (−1.5·−0.5)+(−0.5·0.5)+(0.5·1.5) = 1.25.
        assert!(close(
            autocorrelation(&[1.0, 2.0, 3.0, 4.0], 1),
            0.25,
            1e-12
        ));
        assert_eq!(autocorrelation(&[1.0, 1.0, 1.0], 1), 0.0);
        assert_eq!(autocorrelation(&[1.0, 2.0], 5), 0.0);
    }

    #[test]
    fn hamed_rao_inflates_for_persistent_series() {
        // A slow square wave around a flat level: strongly autocorrelated residuals.
        let x: Vec<f64> = (0..40)
            .map(|i| if (i / 10) % 2 == 0 { 0.0 } else { 1.0 } + 0.001 * ((i * 7 % 5) as f64))
            .collect();
        assert!(hamed_rao_factor(&x, 39) > 1.5);
        // Independent-looking data: little or no inflation.
        let mut state = 99u64;
        let iid: Vec<f64> = (0..40)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64
            })
            .collect();
        let f = hamed_rao_factor(&iid, 39);
        assert!((1.0..1.5).contains(&f), "{f}");
        assert_eq!(hamed_rao_factor(&[1.0, 2.0], 1), 1.0);
    }

    #[test]
    fn wander_sd_by_hand() {
        // A slow square wave [1,1,1,1,-1,-1,-1,-1]: Var = 1; changes [0,0,0,-2,0,0,0] have
        // mean -2/7 and Var 4/7 - 4/49 = 24/49; 1 - 12/49 = 37/49.
        let square = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
        assert!(close(wander_sd(&square), 37f64.sqrt() / 7.0, 1e-12));
        // Alternating noise: Var = 1, changes +-2 (Var about 4): no wander at all.
        let alternating: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert_eq!(wander_sd(&alternating), 0.0);
        // Independent noise of standard deviation 2.9 gives a third of that at most (its
        // lag-one autocovariance, about 0.4 from 400 values); a little noise on a slow wave gives
        // about the wave's amplitude (a sine of amplitude 1 has standard deviation 0.71).
        let white: Vec<f64> = noise(400, 3).iter().map(|u| 10.0 * (u - 0.5)).collect();
        assert!(wander_sd(&white) < 1.0, "{}", wander_sd(&white));
        let wave: Vec<f64> = noise(400, 5)
            .iter()
            .enumerate()
            .map(|(i, u)| (i as f64 / 40.0).sin() + 0.3 * (u - 0.5))
            .collect();
        assert!(
            (0.6..0.8).contains(&wander_sd(&wave)),
            "{}",
            wander_sd(&wave)
        );
        assert_eq!(wander_sd(&[5.0; 10]), 0.0);
        assert_eq!(wander_sd(&[1.0, 2.0]), 0.0);
    }

    #[test]
    fn isotonic_pools_what_falls() {
        assert_eq!(isotonic_increasing(&[]), Vec::<f64>::new());
        assert_eq!(isotonic_increasing(&[1.0, 2.0, 3.0]), vec![1.0, 2.0, 3.0]);
        // 3, 1 pool to 2; then 2, 2, 4
        assert_eq!(isotonic_increasing(&[3.0, 1.0, 4.0]), vec![2.0, 2.0, 4.0]);
        // a later violator pools back across earlier blocks: 1, (5, 2, 2) -> 3, 3, 3
        assert_eq!(
            isotonic_increasing(&[1.0, 5.0, 2.0, 2.0]),
            vec![1.0, 3.0, 3.0, 3.0]
        );
        assert_eq!(isotonic_increasing(&[4.0, 3.0, 2.0]), vec![3.0, 3.0, 3.0]);
    }

    /// A leak that starts halfway, clean: its residuals from a straight line move together
    /// (a V), which the line's Hamed–Rao factor took for persistence; the monotone fit sees
    /// independent noise and the test keeps its power. A slow wave does not gain from it.
    /// Uniform pseudo-noise in [0, 1), deterministic.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn a_late_rise_is_not_persistence() {
        let t: Vec<f64> = (0..40).map(f64::from).collect();
        let uniform = noise(40, 7);
        let noise = |i: usize| 0.3 * uniform[i];
        let late: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &ti)| (ti - 20.0).max(0.0) + noise(i))
            .collect();
        let line = trend_test_at(&t, &late);
        let monotone = trend_test_monotone_at(&t, &late);
        assert!(line.inflation > 3.0, "{}", line.inflation);
        assert!(monotone.inflation < 1.5, "{}", monotone.inflation);
        assert!(
            monotone.p_value < 1e-6 && line.p_value > 1e-4,
            "{} {}",
            monotone.p_value,
            line.p_value
        );
        let wave: Vec<f64> = t.iter().map(|ti| (ti / 5.0).sin() + 0.05 * ti).collect();
        assert!(trend_test_monotone_at(&t, &wave).inflation > 1.5);
        assert_eq!(trend_test_monotone_at(&t, &[3.0; 40]).p_value, 1.0);
    }

    #[test]
    fn saturation_tells_a_levelling_rise_from_a_line() {
        let t: Vec<f64> = (0..30).map(f64::from).collect();
        let uniform = noise(30, 11);
        let noise = |i: usize| 0.4 * uniform[i] - 0.2;
        let bent: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, ti)| 10.0 * (1.0 - (-ti / 5.0).exp()) + noise(i))
            .collect();
        let s = saturation(&t, &bent).unwrap();
        assert!(s.f > 100.0 && s.end_share < 0.1, "{s:?}");
        let straight: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, ti)| 0.3 * ti + noise(i))
            .collect();
        let s = saturation(&t, &straight).unwrap();
        assert!(s.f < 10.0 || s.end_share > 0.5, "{s:?}");
        // too few points, falling, or flat: nothing to say
        assert!(saturation(&t[..5], &bent[..5]).is_none());
        let falling: Vec<f64> = bent.iter().map(|v| -v).collect();
        assert!(saturation(&t, &falling).is_none());
        assert!(saturation(&t, &[1.0; 30]).is_none());
    }

    #[test]
    fn hamed_rao_in_time_ignores_uneven_spacing() {
        // A straight line sampled at alternating spacings 0.6 s and 0.4 s: by index the
        // residuals alternate (persistence at lag 2); in time they are all zero.
        let t: Vec<f64> = (0..10)
            .map(|i| f64::from(i / 2) + 0.6 * f64::from(i % 2))
            .collect();
        let x: Vec<f64> = t.iter().map(|t| 100.0 + 7.0 * t).collect();
        assert!(hamed_rao_factor(&x, 9) > 1.0);
        assert_eq!(hamed_rao_factor_at(&t, &x, 9), 1.0);
        // evenly spaced, the same as by index
        let even: Vec<f64> = (0..40).map(|i| f64::from(i) * 2.5).collect();
        let wander: Vec<f64> = (0..40).map(|i| (f64::from(i) / 6.0).sin()).collect();
        let by_index = hamed_rao_factor(&wander, 39);
        assert!(by_index > 1.5);
        assert!((hamed_rao_factor_at(&even, &wander, 39) - by_index).abs() < 1e-9);
        assert!(trend_test_at(&t, &x).p_value < trend_test(&x).p_value);
    }
}
