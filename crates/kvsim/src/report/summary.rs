//! The summary of one run: the classic simulator's lines (same lines, same order), our
//! figures between its statistics and its checks (`figures`), then the checks, any
//! linearizability violation, and the performance tiers in the classic's colours.

use std::fmt::Write as _;

use super::figures::figures;
use crate::measure::stats::Stats;
use crate::run::Outcome;
use crate::scenario::config::Config;

pub(super) const BOLD: &str = "\x1b[1m\x1b[4m";
const RED: &str = "\x1b[91m";
const GREEN: &str = "\x1b[92m";
pub(super) const YELLOW: &str = "\x1b[93m";
const BLUE: &str = "\x1b[94m";
pub(super) const END: &str = "\x1b[0m";

/// Linearizability violations printed, a key each; all are in the JSON report.
const VIOLATIONS_SHOWN_MAX: usize = 5;

/// The classic single-test summary, with ours between its statistics and its checks.
pub fn summary(outcome: &Outcome, cfg: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BOLD}\n# Simulation Finished\n\n## Useful Information and Statistics{END}"
    );
    classic_statistics(&mut out, &outcome.stats);
    out.push_str(&figures(outcome, cfg));
    let _ = writeln!(out, "{BOLD}\n## Correctness Checks{END}");
    checks(&mut out, outcome);
    if outcome.passed {
        let _ = writeln!(out, "{GREEN}All correctness tests passed{END}");
        let _ = writeln!(out, "{BOLD}\n## Performance Tests{END}");
        let _ = writeln!(
            out,
            "## <test metric>: <your score> <benchmark score>, <test result>"
        );
        for tier in &outcome.tiers {
            let colour = [BLUE, GREEN, YELLOW, RED][usize::from(tier.tier.min(3))];
            let _ = writeln!(out, "{colour}{}{END}", tier.line);
        }
    } else {
        let _ = writeln!(
            out,
            "\n## Correctness Checks Failed, Skipping Performance Tests"
        );
    }
    out
}

/// The classic's statistics, in its order and words.
fn classic_statistics(out: &mut String, stats: &Stats) {
    let _ = writeln!(out, "Leaders: {}", stats.leaders.join(" "));
    let _ = writeln!(
        out,
        "Replicas that died/were killed: {}/{}",
        stats.died, stats.killed
    );
    let _ = writeln!(out, "Total messages sent: {}", stats.total_msgs);
    let _ = writeln!(out, "Total messages dropped: {}", stats.total_drops);
    let _ = writeln!(
        out,
        "Total messages blocked by full sockets: {}",
        stats.blocked
    );
    let _ = writeln!(
        out,
        "Total client get()/put() requests: {}/{}",
        stats.total_get, stats.total_put
    );
    let _ = writeln!(out, "Total duplicate responses: {}", stats.duplicates);
    let _ = writeln!(
        out,
        "Total unanswered get()/put() requests: {}/{}",
        stats.unanswered_get, stats.unanswered_put
    );
    let _ = writeln!(out, "Total redirects: {}", stats.redirects);
    let _ = writeln!(
        out,
        "Total get()/put() failures: {}/{}",
        stats.failed_get, stats.failed_put
    );
    let _ = writeln!(
        out,
        "Total get() with incorrect response: {}",
        stats.incorrect
    );
    if !stats.latencies_s.is_empty() {
        let _ = writeln!(
            out,
            "Mean/Median query latency: {}sec/{}sec",
            stats.mean_latency, stats.median_latency
        );
    }
}

/// The checks that failed, those a stand-in is not held to, and the first violations of
/// linearizability with their operations.
fn checks(out: &mut String, outcome: &Outcome) {
    for check in outcome.checks.iter().filter(|check| !check.holds()) {
        let _ = writeln!(out, "{RED}{}{END}", check.message);
    }
    for check in outcome
        .checks
        .iter()
        .filter(|check| check.skipped.is_some())
    {
        let verdict = if check.passed { "passed" } else { "failed" };
        let _ = writeln!(
            out,
            "{YELLOW}Not held against a stand-in: {} ({verdict}): {}{END}",
            check.name,
            check.skipped.unwrap_or_default()
        );
    }
    let violations = &outcome.linearizability.violations;
    if violations.len() > VIOLATIONS_SHOWN_MAX {
        let _ = writeln!(
            out,
            "  (the first {VIOLATIONS_SHOWN_MAX} of {} keys shown; all are in --json)",
            violations.len()
        );
    }
    for violation in violations.iter().take(VIOLATIONS_SHOWN_MAX) {
        let _ = writeln!(out, "  key {}: {}", violation.key, violation.explanation);
        for op in &violation.ops {
            let _ = writeln!(out, "    {op}");
        }
    }
}
