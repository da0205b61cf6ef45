//! Suites: what `kvsim <file>`, `all`, `calibrate`, `repeat` and `floor` (`floor`) do
//! between their arguments and their exit status.
//!
//! A suite is one scenario file, or every `*.json` under a folder (the classic suite first,
//! in the classic order). Every file is loaded before any replica starts, so a bad one
//! stops the suite at once; then each scenario runs with its seed, and the suite prints the
//! classic lines, the table, and writes the JSON of every row. This module decides what
//! runs, in what order, and when to stop; the lines and tables themselves are made in
//! `report`. What the caller shows while a long suite runs (the binary's progress bar)
//! comes in through [`Progress`], so the caller decides only how it is drawn.

mod floor;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use floor::floor;

use crate::replicas::stand_in::StandIn;
use crate::report;
use crate::report::headline::{Headline, calibration_table, repeat_summary};
use crate::report::html::{self, HtmlDir};
use crate::report::table::{Row, classic_line};
use crate::run::{self, Options, pick_seed};
use crate::scenario::classic_suite;
use crate::scenario::config::Config;
use crate::scenario::timing::Timing;

/// Why a suite stopped without a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteError {
    /// Bad input, found before any replica started: a scenario file, the scenario folder,
    /// an option.
    Input(String),
    /// A scenario could not be run, or the report not written.
    Run(String),
}

impl SuiteError {
    /// kvsim's exit status for it: 2 for bad input, 3 for a run that failed to run (1 is
    /// a run that ran and failed a check).
    pub fn exit_code(&self) -> u8 {
        match self {
            SuiteError::Input(_) => 2,
            SuiteError::Run(_) => 3,
        }
    }
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuiteError::Input(m) | SuiteError::Run(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SuiteError {}

/// What the caller shows while `all` runs. Only `println` must be given; the rest is for
/// a display that stays on screen between lines (a progress bar).
pub trait Progress {
    /// A line for the user: the suite's opening line, then one per scenario.
    fn println(&mut self, line: &str);
    /// The suite has this many scenarios to run.
    fn start(&mut self, _scenarios: usize) {}
    /// The scenario about to run, described for a status line.
    fn running(&mut self, _status: &str) {}
    /// Runs one scenario. The scenario writes to the terminal itself (warnings, replica
    /// output): a display must stay out of its way until it returns.
    fn suspend<R>(&mut self, run: impl FnOnce() -> R) -> R {
        run()
    }
    /// One more scenario is done.
    fn finished_one(&mut self) {}
    /// Every scenario ran; the table comes next.
    fn finish(&mut self) {}
}

/// Where a suite writes its reports, beyond what it prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reports<'a> {
    /// Every statistic, check and tier.
    pub json: Option<&'a Path>,
    /// One scenario: its page.
    pub html: Option<&'a Path>,
    /// `all`: a page per scenario and an index.
    pub html_dir: Option<&'a Path>,
}

/// Says what a stand-in is, before and after its results, so that nobody takes them for a
/// store's.
fn stand_in_notice(opts: &Options) -> Option<String> {
    opts.stand_in.map(|s| format!("kvsim: {}", s.notice()))
}

/// Every `*.json` under `dir` (subfolders included), the classic suite first in its order.
pub fn find_configs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    let rank = |p: &PathBuf| {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let classic = classic_suite::position(&stem);
        let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
        (dir, classic, p.clone())
    };
    found.sort_by_key(rank);
    Ok(found)
}

fn load(path: &Path) -> Result<Config, SuiteError> {
    Config::load(path).map_err(|e| SuiteError::Input(format!("{}: {e}", path.display())))
}

/// A stand-in keeps nothing on disk: restarting one would only show that.
fn check_runnable(cfg: &Config, opts: &Options) -> Result<(), SuiteError> {
    match opts.stand_in {
        Some(kind) if cfg.durable || opts.durable => Err(SuiteError::Input(format!(
            "scenario {} is durable; stand-in {} has no data dir to restart from",
            cfg.name,
            kind.name()
        ))),
        _ => Ok(()),
    }
}

fn write_json(json: Option<&Path>, rows: &[Row]) -> Result<(), SuiteError> {
    match json {
        Some(path) => report::write_json(path, rows).map_err(SuiteError::Run),
        None => Ok(()),
    }
}

/// `kvsim <file>`: runs one scenario, prints its summary, writes the JSON report and the
/// page if asked. `Ok(passed)` once it ran.
pub fn one(path: &Path, opts: &Options, reports: Reports<'_>) -> Result<bool, SuiteError> {
    if reports.html_dir.is_some() {
        return Err(SuiteError::Input(
            "--html-dir is for `all`; one scenario takes --html FILE".into(),
        ));
    }
    let cfg = load(path)?;
    check_runnable(&cfg, opts)?;
    if let Some(history) = &opts.history_csv {
        // Found out now, not after the run it would record. Its folder is made as
        // `--log-dir`'s is.
        let folder = history.parent().filter(|p| !p.as_os_str().is_empty());
        let created = folder.map_or(Ok(()), std::fs::create_dir_all);
        if let Err(e) = created.and_then(|()| std::fs::File::create(history)) {
            return Err(SuiteError::Input(format!(
                "cannot write {}: {e}",
                history.display()
            )));
        }
    }
    if let Some(page) = reports.html {
        html::check_file(page).map_err(SuiteError::Input)?;
    }
    let opts = &Options {
        page: reports.html.is_some(),
        ..opts.clone()
    };
    let seed = pick_seed(&cfg, opts);
    println!(
        "kvsim: scenario {} with seed {seed}, {} timing; {}",
        cfg.name,
        Timing::resolve(opts.timing, cfg.timing).name(),
        run::placement_for(&cfg, opts).describe()
    );
    let notice = stand_in_notice(opts);
    if let Some(notice) = &notice {
        println!("{notice}");
    }
    let mut outcome = run::run(&cfg, opts, seed).map_err(|e| SuiteError::Run(e.to_string()))?;
    print!("{}", report::summary(&outcome, &cfg));
    if let Some(notice) = &notice {
        println!("{notice}");
    }
    if let (Some(path), Some(page)) = (reports.html, html::run_page(&outcome, &cfg)) {
        html::write_file(path, &page).map_err(SuiteError::Run)?;
        println!("kvsim: page written to {}", path.display());
    }
    outcome.page = None;
    let passed = outcome.passed;
    let rows = [Row {
        scenario: cfg.name.clone(),
        outcome: Ok(outcome),
    }];
    write_json(reports.json, &rows)?;
    Ok(passed)
}

/// The scenario and seed of `calibrate` or `repeat` (`command`), which write no page and no
/// history: those are for one run.
fn load_for_runs(
    command: &str,
    path: &Path,
    opts: &Options,
    reports: Reports<'_>,
) -> Result<(Config, u64), SuiteError> {
    if reports.html.is_some() || reports.html_dir.is_some() || opts.history_csv.is_some() {
        return Err(SuiteError::Input(format!(
            "{command} writes --json only (--html and --history take one run)"
        )));
    }
    let cfg = load(path)?;
    let seed = pick_seed(&cfg, opts);
    Ok((cfg, seed))
}

/// Runs one scenario for `calibrate` or `repeat`.
fn run_quietly(cfg: &Config, opts: &Options, seed: u64) -> Result<run::Outcome, SuiteError> {
    run::run(cfg, opts, seed).map_err(|e| SuiteError::Run(e.to_string()))
}

/// `kvsim calibrate <file>`: the scenario with the `instant` stand-in, then `majority-ack`,
/// then the replica, in one invocation, and a table of the three with the replica's ratios
/// to each stand-in: figures that read the same on any machine. `Ok(passed)`: the
/// replica's run passed.
pub fn calibrate(path: &Path, opts: &Options, reports: Reports<'_>) -> Result<bool, SuiteError> {
    if opts.stand_in.is_some() {
        return Err(SuiteError::Input(
            "calibrate runs the stand-ins itself; leave out --stand-in".into(),
        ));
    }
    let (cfg, seed) = load_for_runs("calibrate", path, opts, reports)?;
    println!(
        "kvsim calibrate: scenario {} with seed {seed}, {} timing; {}",
        cfg.name,
        Timing::resolve(opts.timing, cfg.timing).name(),
        run::placement_for(&cfg, opts).describe()
    );
    let runs: [(String, Option<StandIn>); 3] = [
        ("instant".into(), Some(StandIn::Instant)),
        ("majority-ack".into(), Some(StandIn::MajorityAck)),
        (replica_name(opts), None),
    ];
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (name, stand_in) in runs {
        if let Some(s) = stand_in {
            println!("kvsim: {}", s.notice());
        }
        let o = run_quietly(
            &cfg,
            &Options {
                stand_in,
                ..opts.clone()
            },
            seed,
        )?;
        let h = Headline::of(&o);
        println!("kvsim: {name}: {}", h.line());
        for c in o.checks.iter().filter(|c| !c.holds()) {
            println!("kvsim: {name}: {}", c.message);
        }
        lines.push((name.clone(), h));
        rows.push(Row {
            scenario: format!("{} [{name}]", cfg.name),
            outcome: Ok(o),
        });
    }
    print!("{}", calibration_table(&cfg, &lines));
    write_json(reports.json, &rows)?;
    Ok(lines[2].1.passed)
}

fn replica_name(opts: &Options) -> String {
    opts.replica
        .file_name()
        .map_or("replica".into(), |f| f.to_string_lossy().into_owned())
}

/// `kvsim repeat <n> <file>`: the scenario `n` times, one after another, each run's p99 and
/// kvsim's longest turn as it ends, then how many runs had a p99 under `under_ms`.
/// `Ok(passed)`: every run passed its checks.
pub fn repeat(
    path: &Path,
    n: u32,
    under_ms: f64,
    opts: &Options,
    reports: Reports<'_>,
) -> Result<bool, SuiteError> {
    if n == 0 {
        return Err(SuiteError::Input("repeat wants at least one run".into()));
    }
    let (cfg, seed) = load_for_runs("repeat", path, opts, reports)?;
    println!(
        "kvsim repeat: scenario {} {n} times with seed {seed}, {} timing; {}",
        cfg.name,
        Timing::resolve(opts.timing, cfg.timing).name(),
        run::placement_for(&cfg, opts).describe()
    );
    if let Some(s) = opts.stand_in {
        println!("kvsim: {}", s.notice());
    }
    let mut rows = Vec::new();
    let mut heads = Vec::new();
    for k in 1..=n {
        let o = run_quietly(&cfg, opts, seed)?;
        let h = Headline::of(&o);
        println!("run {k}/{n}: {}", h.line());
        heads.push(h);
        // A run's outcome holds its whole history (hundreds of MB at high load): kept
        // only for the JSON report, so that the runs after it start from the same memory.
        if reports.json.is_some() {
            rows.push(Row {
                scenario: format!("{} [run {k}]", cfg.name),
                outcome: Ok(o),
            });
        }
    }
    print!("{}", repeat_summary(&heads, under_ms));
    write_json(reports.json, &rows)?;
    Ok(heads.iter().all(|h| h.passed))
}

/// `kvsim all`: runs every scenario under `dir`, `pause_s` seconds apart, then prints the
/// table and writes the JSON report if asked. `Ok(passed)` once they ran: true when every
/// one ran and passed.
pub fn all(
    dir: &Path,
    pause_s: f64,
    opts: &Options,
    reports: Reports<'_>,
    progress: &mut impl Progress,
) -> Result<bool, SuiteError> {
    if opts.history_csv.is_some() {
        return Err(SuiteError::Input(
            "--history takes one scenario, not `all`".into(),
        ));
    }
    if reports.html.is_some() {
        return Err(SuiteError::Input(
            "--html takes one scenario; `all` takes --html-dir DIR".into(),
        ));
    }
    let paths = match find_configs(dir) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            return Err(SuiteError::Input(format!(
                "no *.json scenarios under {}",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(SuiteError::Input(format!(
                "cannot read {}: {e}",
                dir.display()
            )));
        }
    };
    // Load them all first: a bad file stops us before any replica starts.
    let configs = paths
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    for cfg in &configs {
        check_runnable(cfg, opts)?;
    }
    let mut pages = match reports.html_dir {
        Some(dir) => Some(HtmlDir::new(dir).map_err(SuiteError::Input)?),
        None => None,
    };
    let opts = &Options {
        page: pages.is_some(),
        ..opts.clone()
    };
    let total_s: f64 = configs.iter().map(Config::total_s).sum();
    progress.start(configs.len());
    if let Some(notice) = stand_in_notice(opts) {
        progress.println(&notice);
    }
    progress.println(&format!(
        "kvsim: {} scenarios, about {:.0} s of simulated time",
        configs.len(),
        total_s
    ));
    let mut rows = Vec::new();
    for (k, cfg) in configs.iter().enumerate() {
        let seed = pick_seed(cfg, opts);
        progress.running(&format!(
            "{} ({:.0} s, seed {seed})",
            cfg.name,
            cfg.total_s()
        ));
        let mut outcome = progress
            .suspend(|| run::run(cfg, opts, seed))
            .map_err(|e| e.to_string());
        progress.println(&format!("{}: {}", cfg.name, classic_line(cfg, &outcome)));
        if let Some(pages) = &mut pages {
            pages
                .add(outcome.as_ref().ok(), cfg)
                .map_err(SuiteError::Run)?;
        }
        if let Ok(o) = &mut outcome {
            // The page is written; a suite of high-load runs would otherwise hold them all.
            o.page = None;
        }
        rows.push(Row {
            scenario: cfg.name.clone(),
            outcome,
        });
        if let Some(pages) = &pages {
            pages.index(&rows, true).map_err(SuiteError::Run)?;
        }
        progress.finished_one();
        if pause_s > 0.0 && k + 1 < configs.len() {
            std::thread::sleep(Duration::from_secs_f64(pause_s));
        }
    }
    progress.finish();
    print!("{}", report::table(&rows));
    if let Some(notice) = stand_in_notice(opts) {
        println!("{notice}");
    }
    write_json(reports.json, &rows)?;
    if let Some(pages) = &pages {
        pages.index(&rows, false).map_err(SuiteError::Run)?;
        println!(
            "kvsim: pages and their index written to {}",
            pages.dir.join("index.html").display()
        );
    }
    Ok(rows
        .iter()
        .all(|r| r.outcome.as_ref().is_ok_and(|o| o.passed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_suite_comes_first_in_its_order() {
        let dir = std::env::temp_dir().join(format!("kvsim-suite-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["zeta", "simple-2", "advanced-4", "crash-1", "simple-1"] {
            std::fs::write(dir.join(format!("{name}.json")), "{}").unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        let found: Vec<String> = find_configs(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            found,
            ["simple-1", "simple-2", "crash-1", "advanced-4", "zeta"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
