//! The lines of `kvsim floor`: one per run as it ends (its scenario, timing, load, and its
//! messages against the classic floor), then the lowest ratio and the runs under the
//! margin or failing a check.

use std::fmt::Write as _;

use crate::checks::score::message_floor;
use crate::run::Outcome;
use crate::scenario::config::Config;
use crate::scenario::timing::Timing;

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

pub const HEADER: &str = "scenario                       timing   replicas  req/s   mix  drops  fraction  puts ok  messages     floor  x floor  checks";

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
