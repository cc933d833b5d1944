//! `memwatch --all`, checked: what it watches (`--user`, `--name`), how it groups
//! (`--group-by`), and the options of a one-target run it cannot take, refused with a reason
//! rather than ignored.

use super::{analysis, check_timing, limits, outputs, prometheus, sampling, signals, usage};
use crate::cli::{MachineArgs, WatchArgs};
use crate::error::Result;
use crate::gate::Limits;
use crate::judge::{AnalysisConfig, SettledUse};
use crate::machine::{Filter, GroupBy};
use crate::options::{GroupByChoice, NamePattern, RuntimeChoice, User};
use crate::report::output::OutputPlan;
use crate::report::prometheus::PrometheusPlan;
use crate::sample::{Metric, Sampling};
use std::ffi::CString;
use std::time::Duration;

/// The shortest `--interval` with `--all`: reading every process takes milliseconds.
const INTERVAL_MIN: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct MachineConfig {
    pub sampling: Sampling,
    pub filter: Filter,
    /// `--user` and `--name` as given, for the summary.
    pub user: Option<String>,
    pub name: Option<String>,
    pub group_by: Option<GroupBy>,
    pub analysis: AnalysisConfig,
    pub limits: Limits,
    pub outputs: OutputPlan,
    pub prometheus: PrometheusPlan,
    pub quiet: bool,
}

/// `name`: `--name`, the filter on process names.
pub fn config(args: &WatchArgs, m: &MachineArgs, name: Option<&str>) -> Result<MachineConfig> {
    refuse_one_target_options(args)?;
    let sampling = sampling(&args.sampling)?;
    if sampling.interval < INTERVAL_MIN {
        return Err(usage(format!(
            "--interval '{}' is too short for --all: reading every process takes milliseconds; \
             the least is 100ms",
            args.sampling.interval
        )));
    }
    let analysis = analysis(&args.analysis);
    if analysis.settled == SettledUse::Always
        || !matches!(analysis.metric, Metric::Rss | Metric::Anon)
    {
        return Err(usage(format!(
            "--metric {}: --all reads each process's statm, which has rss and anon: give \
             --metric rss (the default) or anon",
            args.analysis.metric
        )));
    }
    let limits = limits(&args.gate)?;
    let mut outputs = outputs(&args.output, &args.gate)?;
    outputs.check()?;
    let prometheus = prometheus(&args.prometheus, &outputs)?;
    let uid = m.user.as_ref().map(uid_of).transpose()?;
    let name_filter = name
        .map(|n| n.parse::<NamePattern>().map(|p| p.0))
        .transpose()
        .map_err(usage)?;
    // Each process is judged after its own warm-up: a run too short for one is refused.
    check_timing(&sampling, &analysis)?;
    Ok(MachineConfig {
        sampling,
        filter: Filter {
            uid,
            name: name_filter,
        },
        user: m.user.as_ref().map(User::to_string),
        name: name.map(str::to_string),
        group_by: m.group_by.map(|g| match g {
            GroupByChoice::Name => GroupBy::Name,
            GroupByChoice::Cgroup => GroupBy::Cgroup,
        }),
        analysis,
        limits,
        outputs,
        prometheus,
        quiet: args.display.quiet,
    })
}

/// The options that act on one target (its children, its runtime, its signals) or compare
/// one run (a baseline, a JUnit case), refused with what to do instead.
fn refuse_one_target_options(args: &WatchArgs) -> Result<()> {
    let why = if args.sampling.pss {
        Some("--pss reads smaps_rollup, a walk of a process's page tables: not for every process")
    } else if args.sampling.tree {
        Some(
            "--tree follows what one process starts; --all watches every process already: \
              to judge services, give --group-by name or --group-by cgroup",
        )
    } else if args
        .runtime
        .runtime
        .is_some_and(|r| r != RuntimeChoice::None)
        || args.runtime.gc_every.is_some()
        || args.runtime.heap_snapshots.is_some()
    {
        Some("--runtime asks one process's runtime for its heap: watch that process with --pid")
    } else if args.gate.baseline.is_some() {
        Some("--baseline compares one target's run with an earlier one: watch it with --pid or run")
    } else if args.gate.junit.is_some() {
        Some("--junit reports one target: with --all, summary.json has every process's verdict")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(usage(format!("{why} (not with --all)")));
    }
    let plan = signals(&args.signals, args.sampling.duration.map(|d| d.0))?;
    if plan.sends() || plan.dump_dir.is_some() {
        return Err(usage(
            "--signal-every, --signal-at, --signal-at-end and --dump-dir act on one target: \
             --all signals no process (not with --all)"
                .into(),
        ));
    }
    Ok(())
}

/// The id of user `user`, from the system's user database.
fn uid_of(user: &User) -> Result<u32> {
    let name = match user {
        User::Id(id) => return Ok(*id),
        User::Name(name) => name,
    };
    let c = CString::new(name.as_str()).map_err(|_| usage(format!("--user '{name}': bad name")))?;
    // SAFETY: getpwnam_r writes into our passwd and buffer; `found` points at `pwd` or is null.
    let uid = unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        (rc == 0 && !found.is_null()).then_some(pwd.pw_uid)
    };
    uid.ok_or_else(|| {
        usage(format!(
            "--user '{name}': no such user on this machine (give a name from /etc/passwd, or \
             a numeric id)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_by_name_and_id() {
        assert_eq!(uid_of(&User::Name("root".into())).ok(), Some(0));
        assert_eq!(uid_of(&User::Id(4242)).ok(), Some(4242));
        let e = uid_of(&User::Name("no-such-user-mw".into()))
            .expect_err("unknown")
            .to_string();
        assert!(
            e.contains("'no-such-user-mw'") && e.contains("no such user"),
            "{e}"
        );
    }
}
