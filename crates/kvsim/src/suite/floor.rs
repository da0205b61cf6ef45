//! `kvsim floor`: a sweep of scenarios, each run in every timing asked for, and each run's
//! messages against the classic floor (`score::message_floor`) with the margin the
//! replica is held to. The sweep in `configs/floor/` spans what the classic floor must
//! survive: 3 to 7 replicas, 10 to 300 requests a second, gets from none to nine in ten,
//! drops up to 20%, the default fraction and 0.25.

use std::fmt::Write as _;
use std::path::Path;

use super::{Progress, Reports, SuiteError, check_runnable, find_configs, load, write_json};

use crate::config::Config;
use crate::report::Row;
use crate::run::{self, Options, Outcome, pick_seed};
use crate::score::message_floor;
use crate::timing::Timing;

/// One run of the sweep, as its line shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorRun {
    pub scenario: String,
    pub timing: Timing,
    pub replicas: usize,
    pub requests_per_s: f64,
    pub mix: f64,
    pub drops: f64,
    pub fraction: f64,
    pub put_oks: u64,
    pub messages: u64,
    pub floor: f64,
    /// The checks it failed (the floor's own included), by their classic names.
    pub failed: Vec<&'static str>,
}

impl FloorRun {
    pub fn of(cfg: &Config, timing: Timing, o: &Outcome) -> FloorRun {
        FloorRun {
            scenario: cfg.name.clone(),
            timing,
            replicas: cfg.replicas,
            requests_per_s: cfg.requests as f64 / cfg.lifetime_s,
            mix: cfg.mix,
            drops: cfg.drops,
            fraction: cfg.tests.appends_batched_frac,
            put_oks: o.extra.put_oks,
            messages: o.stats.total_msgs,
            floor: message_floor(cfg),
            failed: o.failed_checks(),
        }
    }

    /// Messages over the floor (infinite for a floor of 0).
    pub fn ratio(&self) -> f64 {
        if self.floor > 0.0 {
            self.messages as f64 / self.floor
        } else {
            f64::INFINITY
        }
    }
}

const HEADER: &str = "scenario                       timing   replicas  req/s   mix  drops  fraction  puts ok  messages     floor  x floor  checks";

/// The line of one run.
pub fn floor_line(r: &FloorRun) -> String {
    let checks = if r.failed.is_empty() {
        "pass".to_string()
    } else {
        format!("FAIL {}", r.failed.join(" "))
    };
    format!(
        "{:<30} {:<8} {:>8} {:>6.0} {:>5.2} {:>6.2} {:>9.2} {:>8} {:>9} {:>9.0} {:>8.2}  {checks}",
        r.scenario,
        r.timing.name(),
        r.replicas,
        r.requests_per_s,
        r.mix,
        r.drops,
        r.fraction,
        r.put_oks,
        r.messages,
        r.floor,
        r.ratio()
    )
}

/// The closing lines: the lowest ratio, and the runs under `margin` or failing a check.
pub fn floor_summary(runs: &[FloorRun], margin: f64) -> String {
    let mut out = String::new();
    let lowest = runs.iter().min_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    if let Some(r) = lowest {
        let _ = writeln!(
            out,
            "lowest messages / floor: {:.2} ({}, {} timing)",
            r.ratio(),
            r.scenario,
            r.timing.name()
        );
    }
    let under: Vec<&FloorRun> = runs.iter().filter(|r| r.ratio() < margin).collect();
    let failed = runs.iter().filter(|r| !r.failed.is_empty()).count();
    let _ = writeln!(
        out,
        "{} of {} runs at least {margin} x their floor; {} of {} passed every check",
        runs.len() - under.len(),
        runs.len(),
        runs.len() - failed,
        runs.len()
    );
    for r in under {
        let _ = writeln!(
            out,
            "under {margin} x floor: {} ({} timing): {} messages, floor {:.0}",
            r.scenario,
            r.timing.name(),
            r.messages,
            r.floor
        );
    }
    out
}

/// `kvsim floor [DIR]`: every scenario under `dir`, once per timing in `timings`, a line
/// per run as it ends, then the summary. `Ok(true)` when every run passed its checks with
/// at least `margin` times its floor.
pub fn floor(
    dir: &Path,
    timings: &[Timing],
    margin: f64,
    opts: &Options,
    reports: Reports<'_>,
    progress: &mut impl Progress,
) -> Result<bool, SuiteError> {
    if opts.history_csv.is_some() || reports.html.is_some() || reports.html_dir.is_some() {
        return Err(SuiteError::Input(
            "floor writes --json only (--html, --html-dir and --history take other commands)"
                .into(),
        ));
    }
    if opts.stand_in.is_some() {
        return Err(SuiteError::Input(
            "floor measures the replica's messages; a stand-in sends none between replicas".into(),
        ));
    }
    let paths = find_configs(dir)
        .map_err(|e| SuiteError::Input(format!("cannot read {}: {e}", dir.display())))?;
    if paths.is_empty() {
        return Err(SuiteError::Input(format!(
            "no *.json scenarios under {}",
            dir.display()
        )));
    }
    let configs = paths
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    for cfg in &configs {
        check_runnable(cfg, opts)?;
    }
    let total_s: f64 = configs.iter().map(Config::total_s).sum::<f64>() * timings.len() as f64;
    progress.start(configs.len() * timings.len());
    progress.println(&format!(
        "kvsim floor: {} scenarios in {} timing(s), about {total_s:.0} s; the floor is requests x replicas x (1 - mix) x (1 - fraction), wanted at least {margin} x",
        configs.len(),
        timings.len()
    ));
    progress.println(HEADER);
    let mut runs = Vec::new();
    let mut rows = Vec::new();
    for cfg in &configs {
        for &timing in timings {
            let opts = Options {
                timing: Some(timing),
                ..opts.clone()
            };
            let seed = pick_seed(cfg, &opts);
            progress.running(&format!(
                "{} ({} timing, seed {seed})",
                cfg.name,
                timing.name()
            ));
            let outcome = progress
                .suspend(|| run::run(cfg, &opts, seed))
                .map_err(|e| SuiteError::Run(format!("{}: {e}", cfg.name)))?;
            let r = FloorRun::of(cfg, timing, &outcome);
            progress.println(&floor_line(&r));
            progress.finished_one();
            runs.push(r);
            if reports.json.is_some() {
                rows.push(Row {
                    scenario: format!("{} [{} timing]", cfg.name, timing.name()),
                    outcome: Ok(outcome),
                });
            }
        }
    }
    progress.finish();
    print!("{}", floor_summary(&runs, margin));
    write_json(reports.json, &rows)?;
    Ok(runs
        .iter()
        .all(|r| r.failed.is_empty() && r.ratio() >= margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &str, timing: Timing, messages: u64, floor: f64) -> FloorRun {
        FloorRun {
            scenario: scenario.into(),
            timing,
            replicas: 5,
            requests_per_s: 300.0,
            mix: 0.0,
            drops: 0.0,
            fraction: 0.25,
            put_oks: 3000,
            messages,
            floor,
            failed: if (messages as f64) < floor {
                vec!["total_msgs"]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn the_summary_names_the_lowest_run_and_those_under_the_margin() {
        let runs = [
            run("a", Timing::Exact, 15_000, 10_000.0),
            run("a", Timing::Classic, 11_000, 10_000.0),
            run("b", Timing::Classic, 9_000, 10_000.0),
        ];
        let text = floor_summary(&runs, 1.2);
        assert!(
            text.contains("lowest messages / floor: 0.90 (b, classic timing)"),
            "{text}"
        );
        assert!(
            text.contains("1 of 3 runs at least 1.2 x their floor; 2 of 3 passed every check"),
            "{text}"
        );
        assert!(
            text.contains("under 1.2 x floor: a (classic timing): 11000 messages, floor 10000")
        );
        assert!(text.contains("under 1.2 x floor: b (classic timing)"));
        let line = floor_line(&runs[2]);
        assert!(line.starts_with("b "), "{line}");
        assert!(line.contains(" 0.90  FAIL total_msgs"), "{line}");
        assert_eq!(
            floor_line(&runs[0]).split_whitespace().count(),
            HEADER.split_whitespace().count() - 2,
            "a column per heading (`puts ok` and `x floor` are two words each)"
        );
    }
}
