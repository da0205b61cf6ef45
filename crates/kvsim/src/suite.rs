//! Suites: what `kvsim <file>` and `kvsim all` do between their arguments and their exit
//! status.
//!
//! A suite is one scenario file, or every `*.json` under a folder (the classic suite first,
//! in the classic order). Every file is loaded before any replica starts, so a bad one
//! stops the suite at once; then each scenario runs with its seed, and the suite prints the
//! classic lines, the table, and writes the JSON of every row. What the caller shows while
//! a long suite runs (the binary's progress bar) comes in through [`Progress`], so this
//! module decides what is said and the caller only how it is drawn.

mod floor;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use floor::{FloorRun, floor, floor_line, floor_summary};

use super::config::Config;
use super::html::{self, HtmlDir};
use super::report::{self, Row};
use super::run::{self, Options, pick_seed};
use super::stand_in::StandIn;
use super::timing::Timing;

/// The classic suite in the classic order, with the descriptions the classic `all` prints.
const CLASSIC: [(&str, &str); 17] = [
    ("simple-1", "No drops, no failures, 80% read"),
    ("simple-2", "No drops, no failures, 20% read"),
    ("unreliable-1", "5% drops, no failures, 20% read"),
    ("unreliable-2", "10% drops, no failures, 20% read"),
    ("unreliable-3", "15% drops, no failures, 20% read"),
    ("crash-1", "No drops, 1 replica failure, 20% read"),
    ("crash-2", "No drops, 2 replica failures, 20% read"),
    ("crash-3", "No drops, 1 leader failure, 20% read"),
    ("crash-4", "No drops, 2 leader failures, 20% read"),
    ("partition-1", "No drops, 1 easy partition, 20% read"),
    ("partition-2", "No drops, 2 easy partitions, 20% read"),
    ("partition-3", "No drops, 1 hard partition, 20% read"),
    ("partition-4", "No drops, 2 hard partitions, 20% read"),
    (
        "advanced-1",
        "10% drops, 2 hard partitions and 1 leader failures, 20% read",
    ),
    ("advanced-2", "15% drops, 2 leader failures, 20% read"),
    ("advanced-3", "30% drops, 1 leader failure, 20% read"),
    (
        "advanced-4",
        "10% drops, 3 hard partions and 1 leader kill, 20% read",
    ),
];

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
        let classic = CLASSIC
            .iter()
            .position(|&(c, _)| c == stem)
            .unwrap_or(CLASSIC.len());
        let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
        (dir, classic, p.clone())
    };
    found.sort_by_key(rank);
    Ok(found)
}

/// The classic `all` descriptions, or the file's own.
pub fn describe(cfg: &Config) -> String {
    if let Some(d) = &cfg.description {
        return d.clone();
    }
    match CLASSIC.iter().find(|&&(name, _)| name == cfg.name) {
        Some(&(_, classic)) => classic.to_string(),
        None => cfg.name.clone(),
    }
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

/// One run's headline figures, as `calibrate` and `repeat` print them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headline {
    pub passed: bool,
    pub committed_puts_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub longest_turn_ms: f64,
    /// Of the run after start_wait, the share kvsim spent in turns of 1 ms or more.
    pub held_fraction: f64,
    pub started_late: u64,
}

impl Headline {
    pub fn of(o: &run::Outcome) -> Headline {
        let e = &o.extra;
        Headline {
            passed: o.passed,
            committed_puts_per_s: e.committed.steady_puts_per_s,
            p50_ms: e.reply_latency_s.p50 * 1e3,
            p99_ms: e.reply_latency_s.p99 * 1e3,
            p999_ms: e.reply_latency_s.p999 * 1e3,
            longest_turn_ms: e.loop_turn_max_us.0 as f64 / 1e3,
            held_fraction: e.turns.held_fraction,
            started_late: e.requests_started_late,
        }
    }
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
        println!("kvsim: {name}: {}", headline_line(&h));
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

fn headline_line(h: &Headline) -> String {
    format!(
        "{}; committed {:.0} puts/s; reply latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms; kvsim's longest turn {:.3} ms, {:.3}% of the run in turns of 1 ms or more, {} requests started 1 ms late or more",
        if h.passed { "PASS" } else { "FAIL" },
        h.committed_puts_per_s,
        h.p50_ms,
        h.p99_ms,
        h.p999_ms,
        h.longest_turn_ms,
        h.held_fraction * 100.0,
        h.started_late
    )
}

/// The three runs side by side, then the replica's ratios to each stand-in.
pub fn calibration_table(cfg: &Config, lines: &[(String, Headline)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let offered = cfg.requests as f64 * (1.0 - cfg.mix) / cfg.lifetime_s;
    let _ = writeln!(
        out,
        "\nkvsim calibrate: {} ({:.0} puts/s offered, {} replicas)",
        cfg.name, offered, cfg.replicas
    );
    let _ = writeln!(
        out,
        "{:<24} {:>16} {:>9} {:>9} {:>9} {:>13} {:>6}",
        "run", "committed puts/s", "p50 ms", "p99 ms", "p99.9 ms", "longest turn", "passed"
    );
    for (name, h) in lines {
        let _ = writeln!(
            out,
            "{:<24} {:>16.0} {:>9.3} {:>9.3} {:>9.3} {:>10.3} ms {:>6}",
            name,
            h.committed_puts_per_s,
            h.p50_ms,
            h.p99_ms,
            h.p999_ms,
            h.longest_turn_ms,
            if h.passed { "yes" } else { "no" }
        );
    }
    if let [.., (replica, r)] = lines {
        for (name, s) in &lines[..lines.len() - 1] {
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
            let _ = writeln!(
                out,
                "{:<24} {:>16.2} {:>9.2} {:>9.2} {:>9.2}",
                format!("{replica} / {name}"),
                ratio(r.committed_puts_per_s, s.committed_puts_per_s),
                ratio(r.p50_ms, s.p50_ms),
                ratio(r.p99_ms, s.p99_ms),
                ratio(r.p999_ms, s.p999_ms),
            );
        }
    }
    out
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
        println!("run {k}/{n}: {}", headline_line(&h));
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

/// The closing lines of `repeat`: the runs under the limit, and the spread.
pub fn repeat_summary(heads: &[Headline], under_ms: f64) -> String {
    let mut p99: Vec<f64> = heads.iter().map(|h| h.p99_ms).collect();
    p99.sort_by(f64::total_cmp);
    let mut turns: Vec<f64> = heads.iter().map(|h| h.longest_turn_ms).collect();
    turns.sort_by(f64::total_cmp);
    let under = heads.iter().filter(|h| h.p99_ms < under_ms).count();
    let passed = heads.iter().filter(|h| h.passed).count();
    let spread = |v: &[f64]| match v {
        [] => "-".to_string(),
        _ => format!(
            "{:.3} / {:.3} / {:.3}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        ),
    };
    format!(
        "p99 under {under_ms} ms in {under} of {} runs; {passed} passed every check\np99 min / median / max: {} ms\nkvsim's longest turn min / median / max: {} ms\n",
        heads.len(),
        spread(&p99),
        spread(&turns)
    )
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

/// The classic `all` line for one scenario: its description and PASS with the tiers,
/// FAIL with the failed checks, or ERROR.
fn classic_line(cfg: &Config, outcome: &Result<run::Outcome, String>) -> String {
    match outcome {
        Ok(o) if o.passed => {
            let tiers: Vec<String> = o.tiers.iter().map(|t| t.tier.to_string()).collect();
            format!(
                "\t{:<60}\t[PASS]\tPerformance Tiers: {}",
                describe(cfg),
                tiers.join(" ")
            )
        }
        Ok(o) => {
            let failed: Vec<&str> = o
                .checks
                .iter()
                .filter(|c| !c.holds())
                .map(|c| c.message.as_str())
                .collect();
            format!(
                "\t{:<60}\t[FAIL]\n\t\t{}",
                describe(cfg),
                failed.join("\n\t\t")
            )
        }
        Err(e) => format!("\t{:<60}\t[ERROR] {e}", describe(cfg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, description: Option<&str>) -> Config {
        let mut c = Config::parse(
            name,
            r#"{"lifetime": 5, "replicas": 3, "requests": 1, "tests": {"benchmarks": {
                "total_msgs": [1, 2, 3], "failures": [1, 2, 3], "duplicates": [1, 2, 3],
                "median_latency": [1, 2, 3]}}}"#,
        )
        .unwrap();
        c.description = description.map(str::to_string);
        c
    }

    #[test]
    fn descriptions_are_the_files_then_the_classics_then_the_name() {
        assert_eq!(
            describe(&config("crash-3", None)),
            "No drops, 1 leader failure, 20% read"
        );
        assert_eq!(describe(&config("crash-3", Some("mine"))), "mine");
        assert_eq!(describe(&config("chaos", None)), "chaos");
    }

    fn headline(p99_ms: f64, puts: f64) -> Headline {
        Headline {
            passed: true,
            committed_puts_per_s: puts,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            p999_ms: p99_ms * 2.0,
            longest_turn_ms: 0.5,
            held_fraction: 0.0,
            started_late: 0,
        }
    }

    #[test]
    fn repeat_counts_the_runs_under_the_limit_and_gives_the_spread() {
        let runs: Vec<Headline> = [1.0, 7.0, 2.0, 4.99, 5.0]
            .iter()
            .map(|&p| headline(p, 100.0))
            .collect();
        let text = repeat_summary(&runs, 5.0);
        assert!(text.contains("p99 under 5 ms in 3 of 5 runs"), "{text}");
        assert!(
            text.contains("p99 min / median / max: 1.000 / 4.990 / 7.000 ms"),
            "{text}"
        );
    }

    #[test]
    fn calibration_divides_the_replica_by_each_stand_in() {
        let cfg = config("hl", None);
        let lines = [
            ("instant".to_string(), headline(0.5, 100.0)),
            ("majority-ack".to_string(), headline(1.0, 100.0)),
            ("3700kvstore".to_string(), headline(2.0, 50.0)),
        ];
        let table = calibration_table(&cfg, &lines);
        let row = |name: &str| {
            table
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {table}"))
                .split_whitespace()
                .skip(3)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        // committed puts/s, p50, p99, p99.9
        assert_eq!(
            row("3700kvstore / instant"),
            ["0.50", "4.00", "4.00", "4.00"]
        );
        assert_eq!(
            row("3700kvstore / majority-ack"),
            ["0.50", "2.00", "2.00", "2.00"]
        );
    }

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
