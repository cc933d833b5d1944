//! The whole machine's series and verdicts (`--all`): one *unit* per process, or per group of
//! processes with `--group-by` (their sum); each with its bounded series (`compact.rs`), the
//! analyser's latest judgement of it, and the figures the live view and the exporters show;
//! and the order they are shown in, the units whose memory grows fastest first.
//!
//! A unit is judged once it has enough samples after its own warm-up (the analyser's rule,
//! on its own clock: the warm-up is a share of the time it has been watched), and again every
//! `JUDGE_EVERY_S`, within a budget of CPU time per tick: units that are due wait for the next
//! tick when it is spent, so a thousand processes never cost more than the budget. A series
//! that has not moved by a byte since it was judged stable is not judged again (the analyser
//! would say the same).

use crate::analyze::{self, Analysis, MIN_SAMPLES, Pattern, Thresholds, Verdict, Warmup};
use crate::compact::CompactSeries;
use crate::sample::{MemStatus, Metric};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A judged unit is judged again this often.
pub const JUDGE_EVERY_S: f64 = 10.0;
/// The top of the ranking is judged first each tick, whatever the budget.
const TOP_FIRST: usize = 3;
/// Units that have ended are kept for the summary only if they were judged, and at most this
/// many (the oldest stable ones go first).
const ENDED_MAX: usize = 1000;

/// What a unit is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitKey {
    Process {
        pid: i32,
        start_time: u64,
    },
    /// A group (`--group-by`): its name or cgroup path.
    Group(String),
}

/// The analyser's latest word on a unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub pattern: Pattern,
    /// `None` when the analyser had no slope (too few samples, or inconclusive).
    pub slope_bytes_per_s: Option<f64>,
    pub p_value: Option<f64>,
    /// When it was judged, seconds on the run's clock.
    pub at_s: f64,
}

impl Judgement {
    fn of(a: &Analysis, at_s: f64) -> Judgement {
        Judgement {
            verdict: a.verdict,
            pattern: a.pattern,
            slope_bytes_per_s: a.slope_bytes_per_s,
            p_value: a.p_value,
            at_s,
        }
    }

    pub fn headline(&self) -> analyze::Headline {
        analyze::Headline {
            verdict: self.verdict,
            pattern: self.pattern,
            slope_bytes_per_s: self.slope_bytes_per_s,
            p_value: self.p_value,
            samples_analysed: 0,
            warmup_s: 0.0,
        }
    }
}

/// One process, or one group, and its series.
#[derive(Debug)]
pub struct Unit {
    pub key: UnitKey,
    pub name: String,
    /// Processes in it now (1 for a process while it lives; a group's live members).
    pub members: u32,
    /// Every process it has had.
    pub members_seen: u32,
    /// Its memory at the last tick it had any.
    pub now: MemStatus,
    pub series: CompactSeries,
    pub judged: Option<Judgement>,
    /// When it ended (its last process did), seconds on the run's clock.
    pub ended_s: Option<f64>,
    /// The analysis when it ended, kept for the summary (`None` until then, and for units
    /// that were never judged); boxed: most units never end during a run.
    pub last_analysis: Option<Box<Analysis>>,
    next_judge_s: f64,
    /// This tick's sum, while the tick is being read.
    acc: Option<MemStatus>,
}

impl Unit {
    fn new(key: UnitKey, name: String) -> Unit {
        Unit {
            key,
            name,
            members: 0,
            members_seen: 0,
            now: MemStatus::default(),
            series: CompactSeries::new(),
            judged: None,
            ended_s: None,
            last_analysis: None,
            next_judge_s: f64::NEG_INFINITY,
            acc: None,
        }
    }

    pub fn pid(&self) -> Option<i32> {
        match self.key {
            UnitKey::Process { pid, .. } => Some(pid),
            UnitKey::Group(_) => None,
        }
    }

    pub fn is_live(&self) -> bool {
        self.ended_s.is_none()
    }

    pub fn is_growing(&self) -> bool {
        self.judged.is_some_and(|j| j.verdict == Verdict::Growing)
    }

    /// Bytes gained since it was first read (negative when it shrank).
    pub fn growth_bytes(&self) -> i64 {
        self.series.last_bytes() as i64 - self.series.first_bytes() as i64
    }

    /// How long it has been watched, seconds.
    pub fn watched_s(&self) -> f64 {
        let d = self.series.last_s() - self.series.first_s();
        if d.is_finite() { d } else { 0.0 }
    }

    /// What the ranking goes by: judged growing first, by slope; then the rest by how fast
    /// they gained since first read.
    fn rank_key(&self) -> (bool, f64) {
        match self.judged {
            Some(j) if j.verdict == Verdict::Growing => (true, j.slope_bytes_per_s.unwrap_or(0.0)),
            _ => (
                false,
                self.growth_bytes() as f64 / self.watched_s().max(1.0),
            ),
        }
    }
}

/// Counts for the live view's first line and the exporters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Units being watched now.
    pub live: usize,
    /// Of those, judged (enough samples after their warm-up).
    pub judged: usize,
    pub growing: usize,
    /// Processes seen over the run.
    pub processes_seen: u64,
}

/// Every unit of the run.
pub struct Board {
    units: Vec<Option<Unit>>,
    free: Vec<u32>,
    groups: HashMap<String, u32>,
    grouped: bool,
    metric: Metric,
    thresholds: Thresholds,
    /// Live units, fastest growers first (after `rank`).
    order: Vec<u32>,
    cursor: usize,
    /// A unit was judged in this tick's round (the budget lets at least one through).
    judged_now: bool,
    ended: usize,
    processes_seen: u64,
    t: Vec<f64>,
    v: Vec<f64>,
}

impl Board {
    /// `metric` is judged (RSS or anon: what statm gives); `grouped`: units are groups.
    pub fn new(metric: Metric, thresholds: Thresholds, grouped: bool) -> Board {
        Board {
            units: Vec::new(),
            free: Vec::new(),
            groups: HashMap::new(),
            grouped,
            metric,
            thresholds,
            order: Vec::new(),
            cursor: 0,
            judged_now: false,
            ended: 0,
            processes_seen: 0,
            t: Vec::with_capacity(crate::compact::CAP + 1),
            v: Vec::with_capacity(crate::compact::CAP + 1),
        }
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn unit(&self, id: u32) -> Option<&Unit> {
        self.units.get(id as usize).and_then(Option::as_ref)
    }

    fn unit_mut(&mut self, id: u32) -> Option<&mut Unit> {
        self.units.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Every unit, live or ended.
    pub fn units(&self) -> impl Iterator<Item = (u32, &Unit)> {
        self.units
            .iter()
            .enumerate()
            .filter_map(|(i, u)| u.as_ref().map(|u| (i as u32, u)))
    }

    /// Live units, fastest growers first, as of the last `rank`.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    fn insert(&mut self, unit: Unit) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.units[id as usize] = Some(unit);
                id
            }
            None => {
                self.units.push(Some(unit));
                (self.units.len() - 1) as u32
            }
        }
    }

    /// A process found: its own unit, or its group's. Returns the unit it feeds.
    pub fn add_process(
        &mut self,
        pid: i32,
        start_time: u64,
        name: &str,
        group: Option<&str>,
    ) -> u32 {
        self.processes_seen += 1;
        let id = match (self.grouped, group) {
            (true, Some(g)) => self.group_unit(g),
            _ => self.insert(Unit::new(
                UnitKey::Process { pid, start_time },
                name.to_string(),
            )),
        };
        if let Some(u) = self.unit_mut(id) {
            u.members += 1;
            u.members_seen += 1;
        }
        id
    }

    /// The live unit of group `key`, made if there is none.
    fn group_unit(&mut self, key: &str) -> u32 {
        if let Some(&id) = self.groups.get(key)
            && self.unit(id).is_some_and(Unit::is_live)
        {
            return id;
        }
        let id = self.insert(Unit::new(UnitKey::Group(key.to_string()), key.to_string()));
        self.groups.insert(key.to_string(), id);
        id
    }

    /// A process was renamed (it exec'd right after it was found): its unit says the new
    /// name, or with groups by name it moves to the new name's group. Returns its unit now.
    pub fn rename(&mut self, unit: u32, name: &str, group: Option<&str>) -> u32 {
        match (self.grouped, group) {
            (true, Some(g)) => {
                if self.unit(unit).is_some_and(|u| u.name == g) {
                    return unit;
                }
                self.leave(unit, f64::NAN);
                let id = self.group_unit(g);
                if let Some(u) = self.unit_mut(id) {
                    u.members += 1;
                    u.members_seen += 1;
                }
                id
            }
            _ => {
                if let Some(u) = self.unit_mut(unit) {
                    u.name = name.to_string();
                }
                unit
            }
        }
    }

    /// A process's reading at this tick, into its unit's sum.
    pub fn add_sample(&mut self, unit: u32, mem: &MemStatus) {
        if let Some(u) = self.unit_mut(unit) {
            u.acc = Some(match u.acc {
                None => *mem,
                Some(a) => MemStatus {
                    rss: a.rss + mem.rss,
                    vsz: a.vsz + mem.vsz,
                    anon: a.anon.zip(mem.anon).map(|(x, y)| x + y),
                    ..MemStatus::default()
                },
            });
        }
    }

    /// A process ended at `at_s`: its unit ends with it (a group, with its last member).
    pub fn process_ended(&mut self, unit: u32, at_s: f64) {
        self.leave(unit, at_s);
    }

    fn leave(&mut self, id: u32, at_s: f64) {
        let Some(u) = self.unit_mut(id) else { return };
        u.members = u.members.saturating_sub(1);
        if u.members > 0 {
            return;
        }
        let at = if at_s.is_finite() {
            at_s
        } else {
            u.series.last_s()
        };
        u.ended_s = Some(at);
        self.end_unit(id);
    }

    /// A unit has ended: judged once more and kept for the summary, or let go.
    fn end_unit(&mut self, id: u32) {
        if let Some(Unit {
            key: UnitKey::Group(name),
            ..
        }) = self.unit(id)
            && self.groups.get(name) == Some(&id)
        {
            let name = name.clone();
            self.groups.remove(&name);
        }
        let analysis = self.analyse(id);
        let Some(u) = self.unit_mut(id) else { return };
        let judged = analysis
            .as_ref()
            .is_some_and(|a| a.verdict != Verdict::Inconclusive);
        if !judged {
            self.units[id as usize] = None;
            self.free.push(id);
            return;
        }
        if let Some(mut a) = analysis {
            u.judged = Some(Judgement::of(&a, u.series.last_s()));
            a.floor = Vec::new(); // the points are drawn from the series, when it is kept
            if a.verdict != Verdict::Growing {
                u.series = CompactSeries::new(); // only growers are drawn
            }
            u.last_analysis = Some(Box::new(a));
        }
        self.ended += 1;
        if self.ended > ENDED_MAX {
            self.let_go_oldest_ended();
        }
    }

    fn let_go_oldest_ended(&mut self) {
        let oldest = self
            .units()
            .filter(|(_, u)| !u.is_live() && !u.is_growing())
            .min_by(|a, b| {
                a.1.ended_s
                    .unwrap_or(0.0)
                    .total_cmp(&b.1.ended_s.unwrap_or(0.0))
            })
            .map(|(id, _)| id);
        if let Some(id) = oldest {
            self.units[id as usize] = None;
            self.free.push(id);
            self.ended -= 1;
        }
    }

    /// The tick is read: each live unit's sum goes into its series.
    pub fn end_tick(&mut self, t_s: f64) {
        let metric = self.metric;
        for u in self.units.iter_mut().flatten() {
            if let Some(sum) = u.acc.take() {
                u.now = sum;
                let value = match metric {
                    Metric::Anon => sum.anon.unwrap_or(sum.rss),
                    Metric::Vsz => sum.vsz,
                    _ => sum.rss,
                };
                u.series.push(t_s, value);
            }
        }
    }

    /// Judges the units that are due: the top of the last ranking first (a fast grower is
    /// called growing as soon as it can be), then round the board from where the last tick
    /// stopped, until `budget` of CPU time is spent (at least one unit is judged).
    pub fn judge_due(&mut self, now_s: f64, budget: Duration) {
        let started = Instant::now();
        for rank in 0..TOP_FIRST.min(self.order.len()) {
            let id = self.order[rank];
            self.judge_if_due(id, now_s);
        }
        let n = self.units.len();
        for _ in 0..n {
            if self.judged_now && started.elapsed() >= budget {
                break;
            }
            self.cursor = (self.cursor + 1) % n;
            self.judge_if_due(self.cursor as u32, now_s);
        }
        self.judged_now = false;
    }

    /// Judges unit `id` if it is due and can be judged.
    fn judge_if_due(&mut self, id: u32, now_s: f64) {
        let Some(u) = self.unit(id) else { return };
        if !u.is_live() || u.next_judge_s > now_s {
            return;
        }
        let settled =
            u.series.is_constant() && u.judged.is_some_and(|j| j.verdict == Verdict::Stable);
        if settled {
            if let Some(u) = self.unit_mut(id) {
                u.next_judge_s = now_s + JUDGE_EVERY_S;
            }
            return;
        }
        if !self.judgeable(u) {
            return; // looked at again next tick: a binary search
        }
        let judged = self.analyse(id).map(|a| Judgement::of(&a, now_s));
        if let Some(u) = self.unit_mut(id) {
            u.judged = judged.or(u.judged);
            u.next_judge_s = now_s + JUDGE_EVERY_S;
        }
        self.judged_now = true;
    }

    /// Whether the unit has enough points after its own warm-up for the analyser to decide.
    fn judgeable(&self, u: &Unit) -> bool {
        let s = &u.series;
        if s.len() < MIN_SAMPLES {
            return false;
        }
        let duration = s.last_s() - s.first_s();
        let warmup = match self.thresholds.warmup {
            Warmup::Auto => analyze::auto_warmup_s(duration),
            Warmup::Fixed(w) => w,
        };
        s.points_from(s.first_s() + warmup) >= MIN_SAMPLES
    }

    /// The analyser on a unit's points, with the first, last and peak of its samples (the
    /// points are floors: their peak is not the series').
    fn analyse(&mut self, id: u32) -> Option<Analysis> {
        let u = self.units.get(id as usize)?.as_ref()?;
        if u.series.is_empty() {
            return None;
        }
        u.series.fill(&mut self.t, &mut self.v);
        let mut a = analyze::analyze(&self.t, &self.v, &[], &self.thresholds);
        a.start_bytes = u.series.first_bytes() as f64;
        a.end_bytes = u.series.last_bytes() as f64;
        a.peak_bytes = u.series.peak_bytes() as f64;
        a.samples = u.series.samples() as usize;
        Some(a)
    }

    /// Sorts the live units, fastest growers first.
    pub fn rank(&mut self) {
        self.order.clear();
        for (i, u) in self.units.iter().enumerate() {
            if u.as_ref()
                .is_some_and(|u| u.is_live() && !u.series.is_empty())
            {
                self.order.push(i as u32);
            }
        }
        let units = &self.units;
        let key = |id: &u32| units[*id as usize].as_ref().map(Unit::rank_key);
        self.order.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            match (ka, kb) {
                (Some((ga, ra)), Some((gb, rb))) => gb.cmp(&ga).then(rb.total_cmp(&ra)),
                _ => std::cmp::Ordering::Equal,
            }
        });
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            processes_seen: self.processes_seen,
            ..Counts::default()
        };
        for u in self.units.iter().flatten().filter(|u| u.is_live()) {
            c.live += 1;
            if let Some(j) = u.judged {
                c.judged += 1;
                c.growing += usize::from(j.verdict == Verdict::Growing);
            }
        }
        c
    }

    /// The run is over: every unit judged on all it has (live ones included), for the
    /// summary; those the analyser could not decide on are left out. Fastest growers first.
    pub fn finish(&mut self, end_s: f64) -> Vec<(u32, Analysis)> {
        let mut out = Vec::new();
        for id in 0..self.units.len() as u32 {
            let Some(u) = self.unit(id) else { continue };
            let analysis = if u.is_live() {
                self.analyse(id)
            } else {
                u.last_analysis.as_deref().cloned()
            };
            if let Some(a) = analysis.filter(|a| a.verdict != Verdict::Inconclusive) {
                if let Some(u) = self.unit_mut(id) {
                    u.judged = Some(Judgement::of(&a, end_s));
                }
                out.push((id, a));
            }
        }
        out.sort_by(|a, b| {
            let growing = |x: &Analysis| x.verdict == Verdict::Growing;
            growing(&b.1).cmp(&growing(&a.1)).then({
                let slope = |x: &Analysis| x.slope_bytes_per_s.unwrap_or(f64::NEG_INFINITY);
                slope(&b.1).total_cmp(&slope(&a.1))
            })
        });
        out
    }

    /// Bytes the board holds for its units (series included), for the benchmark's note.
    pub fn bytes_held(&self) -> usize {
        self.units.capacity() * std::mem::size_of::<Option<Unit>>()
            + self
                .units
                .iter()
                .flatten()
                .map(|u| {
                    u.series.bytes_held() - std::mem::size_of::<CompactSeries>() + u.name.capacity()
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn mem(rss: u64) -> MemStatus {
        MemStatus {
            rss,
            vsz: 2 * rss,
            anon: Some(rss / 2),
            ..MemStatus::default()
        }
    }

    /// Ticks a board of a leaking, a steady and a shrinking process for `secs` seconds.
    fn three(secs: u32) -> (Board, [u32; 3]) {
        let mut b = Board::new(Metric::Rss, Thresholds::default(), false);
        let ids = [
            b.add_process(10, 1, "leaky", None),
            b.add_process(11, 1, "steady", None),
            b.add_process(12, 1, "shrinks", None),
        ];
        for s in 0..secs {
            let t = f64::from(s);
            b.add_sample(ids[0], &mem(50 * MIB + u64::from(s) * MIB));
            b.add_sample(ids[1], &mem(80 * MIB + u64::from(s % 3) * 4096));
            b.add_sample(ids[2], &mem(200 * MIB - u64::from(s) * 64 * 4096));
            b.end_tick(t);
            b.judge_due(t, Duration::from_secs(1));
        }
        b.rank();
        (b, ids)
    }

    #[test]
    fn units_are_judged_after_their_warm_up_and_ranked_growers_first() {
        // 15 s: the 10 s warm-up leaves 5 samples, not enough
        let (b, _) = three(15);
        assert_eq!(b.counts().judged, 0);
        let (b, ids) = three(30);
        let c = b.counts();
        assert_eq!(
            (c.live, c.judged, c.growing, c.processes_seen),
            (3, 3, 1, 3)
        );
        assert_eq!(b.order()[0], ids[0], "the leak first");
        let leaky = b.unit(ids[0]).expect("unit");
        let j = leaky.judged.expect("judged");
        assert_eq!(j.verdict, Verdict::Growing);
        let slope = j.slope_bytes_per_s.expect("a growing unit has a slope");
        assert!((slope - MIB as f64).abs() < 0.01 * MIB as f64);
        assert_eq!(
            b.unit(ids[1]).and_then(|u| u.judged).map(|j| j.verdict),
            Some(Verdict::Stable)
        );
        // the shrinking one gains least: last
        assert_eq!(b.order()[2], ids[2]);
    }

    #[test]
    fn groups_sum_their_members_and_end_with_the_last() {
        let mut b = Board::new(Metric::Rss, Thresholds::default(), true);
        let w1 = b.add_process(20, 1, "php-fpm", Some("php-fpm"));
        let w2 = b.add_process(21, 1, "php-fpm", Some("php-fpm"));
        let other = b.add_process(22, 1, "nginx", Some("nginx"));
        assert_eq!(w1, w2);
        assert_ne!(w1, other);
        b.add_sample(w1, &mem(10 * MIB));
        b.add_sample(w2, &mem(12 * MIB));
        b.add_sample(other, &mem(5 * MIB));
        b.end_tick(0.0);
        let g = b.unit(w1).expect("group");
        assert_eq!((g.now.rss, g.members, g.members_seen), (22 * MIB, 2, 2));
        assert_eq!(g.now.anon, Some(11 * MIB));
        assert_eq!(g.pid(), None);
        b.process_ended(w1, 1.0);
        assert!(b.unit(w1).is_some_and(Unit::is_live), "one member left");
        b.process_ended(w2, 1.0);
        // ended before it could be judged: let go
        assert!(b.unit(w1).is_none());
        assert_eq!(b.counts().live, 1);
        // a new worker makes a new group unit
        let w3 = b.add_process(23, 1, "php-fpm", Some("php-fpm"));
        assert!(b.unit(w3).is_some_and(|u| u.is_live() && u.members == 1));
    }

    #[test]
    fn a_process_renamed_after_exec_moves_to_its_group() {
        let mut b = Board::new(Metric::Rss, Thresholds::default(), true);
        let sh = b.add_process(30, 1, "sh", Some("sh"));
        let node = b.rename(sh, "node", Some("node"));
        assert_eq!(b.unit(node).map(|u| u.name.as_str()), Some("node"));
        assert!(
            b.units().all(|(_, u)| u.name != "sh"),
            "the empty 'sh' group is let go"
        );
        // a new 'sh' is a group of its own, not the slot the old one had
        let sh2 = b.add_process(31, 1, "sh", Some("sh"));
        assert_ne!(sh2, node);
        assert_eq!(
            b.unit(node).map(|u| (u.name.as_str(), u.members)),
            Some(("node", 1))
        );
        let mut p = Board::new(Metric::Rss, Thresholds::default(), false);
        let one = p.add_process(31, 1, "sh", None);
        assert_eq!(p.rename(one, "node", None), one);
        assert_eq!(p.unit(one).map(|u| u.name.as_str()), Some("node"));
    }

    #[test]
    fn an_ended_grower_is_kept_with_its_series_and_finish_orders_by_slope() {
        let (mut b, ids) = three(40);
        b.process_ended(ids[0], 40.0);
        let leaky = b.unit(ids[0]).expect("kept: it was judged");
        assert!(!leaky.is_live() && leaky.series.samples() == 40);
        assert!(leaky.last_analysis.is_some());
        b.process_ended(ids[1], 40.0);
        assert!(
            b.unit(ids[1]).is_some_and(|u| u.series.is_empty()),
            "a stable one keeps no series"
        );
        let all = b.finish(40.0);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].0, ids[0]);
        assert_eq!(all[0].1.verdict, Verdict::Growing);
        assert_eq!(all[0].1.peak_bytes, (50 * MIB + 39 * MIB) as f64);
        assert_eq!(all[0].1.samples, 40);
        assert_eq!(b.counts().live, 1);
    }

    #[test]
    fn judging_stops_at_the_budget_and_goes_on_next_tick() {
        let mut b = Board::new(Metric::Rss, Thresholds::default(), false);
        let ids: Vec<u32> = (0..50)
            .map(|i| b.add_process(100 + i, 1, "w", None))
            .collect();
        for s in 0..30u64 {
            for (k, &id) in ids.iter().enumerate() {
                b.add_sample(id, &mem(MIB * (10 + k as u64) + s * 8192 * (k as u64 % 3)));
            }
            b.end_tick(s as f64);
        }
        b.judge_due(29.0, Duration::ZERO);
        assert_eq!(b.counts().judged, 1, "a zero budget judges one and stops");
        for tick in 0..50 {
            b.judge_due(29.0 + f64::from(tick) * 0.01, Duration::ZERO);
        }
        assert_eq!(b.counts().judged, 50);
    }
}

#[cfg(test)]
mod sizes {
    use super::*;

    /// docs/machine.md states what `--all` keeps per process, in bytes: this keeps it true.
    #[test]
    fn per_process_state_in_bytes() {
        let proc = std::mem::size_of::<crate::machine::Proc>();
        let unit = std::mem::size_of::<Option<Unit>>();
        let point_cap = crate::compact::CAP * 8;
        eprintln!("Proc {proc} B, Unit {unit} B, series points at most {point_cap} B");
        assert!(proc <= 80, "Proc is {proc} bytes: update docs/machine.md");
        assert!(unit <= 448, "Unit is {unit} bytes: update docs/machine.md");
        assert_eq!(point_cap, 2048);
        // a series full to the brim holds its points and no more
        let mut s = CompactSeries::new();
        for i in 0..100_000u64 {
            s.push(i as f64, i * 4096);
        }
        assert!(s.bytes_held() <= std::mem::size_of::<CompactSeries>() + point_cap);
    }
}
