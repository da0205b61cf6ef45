//! `kvsim floor`: a sweep of scenarios, each run in every timing asked for, and each run's
//! messages against the classic floor (`checks::score::message_floor`) with the margin the
//! replica is held to. The sweep in `configs/floor/` spans what the classic floor must
//! survive: 3 to 7 replicas, 10 to 300 requests a second, gets from none to nine in ten,
//! drops up to 20%, the default fraction and 0.25.

use std::path::Path;

use super::{Progress, Reports, SuiteError, check_runnable, find_configs, load, write_json};

use crate::report::Row;
use crate::report::floor_table::{FloorRun, HEADER, floor_line, floor_summary};
use crate::run::{self, Options, pick_seed};
use crate::scenario::config::Config;
use crate::scenario::timing::Timing;

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
