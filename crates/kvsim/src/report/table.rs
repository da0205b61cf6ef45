//! The lines of `kvsim all`: the classic line of each scenario as it ends (its description
//! and PASS with the tiers, FAIL with the failed checks, or ERROR), and the table of every
//! scenario after the last.

use std::fmt::Write as _;

use crate::run::Outcome;
use crate::scenario::classic_suite::describe;
use crate::scenario::config::Config;

/// One row of the `all` table.
pub struct Row {
    pub scenario: String,
    pub outcome: Result<Outcome, String>,
}

/// The table after `kvsim all`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        out,
        "{:<width$}  {:<6}  {:>4} {:>4} {:>4} {:>4}  {:>8} {:>6} {:>5} {:>10} {:>8}  notes",
        "scenario",
        "result",
        "msgs",
        "fail",
        "dup",
        "lat",
        "messages",
        "fails",
        "dups",
        "median_ms",
        "p99_ms",
    );
    for r in rows {
        match &r.outcome {
            Ok(o) => {
                let tiers: Vec<String> = o
                    .tiers
                    .iter()
                    .map(|t| {
                        if o.passed {
                            t.tier.to_string()
                        } else {
                            "-".into()
                        }
                    })
                    .collect();
                let failed = o.failed_checks();
                let _ = writeln!(
                    out,
                    "{:<width$}  {:<6}  {:>4} {:>4} {:>4} {:>4}  {:>8} {:>6} {:>5} {:>10.3} {:>8.3}  {}",
                    r.scenario,
                    if o.passed { "PASS" } else { "FAIL" },
                    tiers[0],
                    tiers[1],
                    tiers[2],
                    tiers[3],
                    o.stats.total_msgs,
                    o.stats.failures,
                    o.stats.duplicates,
                    o.stats.median_latency * 1000.0,
                    o.extra.reply_latency_s.p99 * 1000.0,
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!("failed: {}", failed.join(", "))
                    }
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{:<width$}  {:<6}  {e}", r.scenario, "ERROR");
            }
        }
    }
    let passed = rows
        .iter()
        .filter(|r| r.outcome.as_ref().is_ok_and(|o| o.passed))
        .count();
    let _ = writeln!(
        out,
        "Passed {passed} out of {} tests (tiers: 0 bonus, 1 full, 2 partial, 3 none)",
        rows.len()
    );
    out
}

/// The classic `all` line for one scenario: its description and PASS with the tiers,
/// FAIL with the failed checks, or ERROR.
pub fn classic_line(cfg: &Config, outcome: &Result<Outcome, String>) -> String {
    match outcome {
        Ok(run) if run.passed => {
            let tiers: Vec<String> = run.tiers.iter().map(|t| t.tier.to_string()).collect();
            format!(
                "\t{:<60}\t[PASS]\tPerformance Tiers: {}",
                describe(cfg),
                tiers.join(" ")
            )
        }
        Ok(run) => {
            let failed: Vec<&str> = run
                .checks
                .iter()
                .filter(|check| !check.holds())
                .map(|check| check.message.as_str())
                .collect();
            format!(
                "\t{:<60}\t[FAIL]\n\t\t{}",
                describe(cfg),
                failed.join("\n\t\t")
            )
        }
        Err(error) => format!("\t{:<60}\t[ERROR] {error}", describe(cfg)),
    }
}
