//! The headline of a run, and the tables of `calibrate` and `repeat`, which put several
//! runs of one scenario side by side: a line per run as it ends, then the comparison.

use std::fmt::Write as _;

use crate::run::Outcome;
use crate::scenario::config::Config;

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
    /// The share of the replicas' CPUs busy over the load, if it was read.
    pub replica_cpus_busy: Option<f64>,
    /// The CPUs' stalls, with `--stall-probe`.
    pub stalls: Option<Stalls>,
}

/// A run's CPU stalls in brief (`measure::cpu_stalls`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stalls {
    pub count: u64,
    pub longest_ms: f64,
    /// Replies in flight during one, and the p99 of the others.
    pub replies_through: u64,
    pub p99_without_ms: f64,
}

impl Headline {
    pub fn of(outcome: &Outcome) -> Headline {
        let extra = &outcome.extra;
        Headline {
            passed: outcome.passed,
            committed_puts_per_s: extra.committed.steady_puts_per_s,
            p50_ms: extra.reply_latency_s.p50 * 1e3,
            p99_ms: extra.reply_latency_s.p99 * 1e3,
            p999_ms: extra.reply_latency_s.p999 * 1e3,
            longest_turn_ms: extra.loop_turn_max_us.0 as f64 / 1e3,
            held_fraction: extra.turns.held_fraction,
            started_late: extra.requests_started_late,
            replica_cpus_busy: extra.load_cpus.as_ref().map(|l| l.replicas.busy),
            stalls: extra.cpu_stalls.as_ref().map(|s| Stalls {
                count: s.stalls,
                longest_ms: s.longest_us as f64 / 1e3,
                replies_through: s.attribution.replies_through_spans,
                p99_without_ms: s.attribution.reply_latency_without_them_s.p99 * 1e3,
            }),
        }
    }

    /// The run in one line, as it ends.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}; committed {:.0} puts/s; reply latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms; kvsim's longest turn {:.3} ms, {:.3}% of the run in turns of 1 ms or more, {} requests started 1 ms late or more",
            if self.passed { "PASS" } else { "FAIL" },
            self.committed_puts_per_s,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.longest_turn_ms,
            self.held_fraction * 100.0,
            self.started_late
        );
        if let Some(busy) = self.replica_cpus_busy {
            let _ = write!(
                line,
                "; the replicas' CPUs {:.0}% busy over the load",
                busy * 100.0
            );
        }
        if let Some(s) = self.stalls {
            let _ = write!(
                line,
                "; CPU stalls {} (longest {:.3} ms), {} replies in flight during one, p99 without them {:.3} ms",
                s.count, s.longest_ms, s.replies_through, s.p99_without_ms
            );
        }
        line
    }
}

/// The three runs side by side, then the replica's ratios to each stand-in.
pub fn calibration_table(cfg: &Config, lines: &[(String, Headline)]) -> String {
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
    for (name, run) in lines {
        let _ = writeln!(
            out,
            "{:<24} {:>16.0} {:>9.3} {:>9.3} {:>9.3} {:>10.3} ms {:>6}",
            name,
            run.committed_puts_per_s,
            run.p50_ms,
            run.p99_ms,
            run.p999_ms,
            run.longest_turn_ms,
            if run.passed { "yes" } else { "no" }
        );
    }
    // The replica's run comes last; each stand-in's before it.
    if let [stand_ins @ .., (replica, replica_run)] = lines {
        for (name, stand_in) in stand_ins {
            let ratio = |mine: f64, theirs: f64| {
                if theirs > 0.0 {
                    mine / theirs
                } else {
                    f64::NAN
                }
            };
            let _ = writeln!(
                out,
                "{:<24} {:>16.2} {:>9.2} {:>9.2} {:>9.2}",
                format!("{replica} / {name}"),
                ratio(
                    replica_run.committed_puts_per_s,
                    stand_in.committed_puts_per_s
                ),
                ratio(replica_run.p50_ms, stand_in.p50_ms),
                ratio(replica_run.p99_ms, stand_in.p99_ms),
                ratio(replica_run.p999_ms, stand_in.p999_ms),
            );
        }
    }
    out
}

/// The closing lines of `repeat`: the runs under the limit, and the spread. A run that
/// failed a check counts as over the limit whatever its p99 (one whose replicas never
/// answered has a p99 of 0).
pub fn repeat_summary(heads: &[Headline], under_ms: f64) -> String {
    let mut p99: Vec<f64> = heads.iter().map(|run| run.p99_ms).collect();
    p99.sort_by(f64::total_cmp);
    let mut turns: Vec<f64> = heads.iter().map(|run| run.longest_turn_ms).collect();
    turns.sort_by(f64::total_cmp);
    let under = heads
        .iter()
        .filter(|run| run.passed && run.p99_ms < under_ms)
        .count();
    let passed = heads.iter().filter(|run| run.passed).count();
    let spread = |sorted: &[f64]| match sorted {
        [] => "-".to_string(),
        _ => format!(
            "{:.3} / {:.3} / {:.3}",
            sorted[0],
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1]
        ),
    };
    let mut out = format!(
        "p99 under {under_ms} ms in {under} of {} runs; {passed} passed every check\np99 min / median / max: {} ms\nkvsim's longest turn min / median / max: {} ms\n",
        heads.len(),
        spread(&p99),
        spread(&turns)
    );
    let without: Vec<(bool, f64)> = heads
        .iter()
        .filter_map(|run| run.stalls.map(|s| (run.passed, s.p99_without_ms)))
        .collect();
    if without.len() == heads.len() && !heads.is_empty() {
        let under_without = without
            .iter()
            .filter(|&&(passed, p99)| passed && p99 < under_ms)
            .count();
        let _ = writeln!(
            out,
            "without the replies in flight during a CPU stall: p99 under {under_ms} ms in {under_without} of {} runs",
            heads.len()
        );
    }
    let mut busy: Vec<f64> = heads
        .iter()
        .filter_map(|run| run.replica_cpus_busy.map(|b| b * 100.0))
        .collect();
    if !busy.is_empty() {
        busy.sort_by(f64::total_cmp);
        let _ = writeln!(
            out,
            "the replicas' CPUs busy over the load, min / median / max: {:.0}% / {:.0}% / {:.0}%",
            busy[0],
            busy[busy.len() / 2],
            busy[busy.len() - 1]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            replica_cpus_busy: None,
            stalls: None,
        }
    }

    #[test]
    fn with_the_stall_probe_a_set_also_counts_its_runs_without_the_stalls_replies() {
        let stalled = |p99_ms: f64, p99_without_ms: f64| {
            let mut run = headline(p99_ms, 100.0);
            run.stalls = Some(Stalls {
                count: 2,
                longest_ms: 6.5,
                replies_through: 1_200,
                p99_without_ms,
            });
            run
        };
        let runs = [stalled(2.5, 2.4), stalled(4.0, 2.8), stalled(5.0, 3.5)];
        assert!(
            runs[1].line().ends_with(
                "; CPU stalls 2 (longest 6.500 ms), 1200 replies in flight during one, p99 without them 2.800 ms"
            ),
            "{}",
            runs[1].line()
        );
        let text = repeat_summary(&runs, 3.0);
        assert!(text.starts_with("p99 under 3 ms in 1 of 3 runs"), "{text}");
        assert!(
            text.contains(
                "without the replies in flight during a CPU stall: p99 under 3 ms in 2 of 3 runs"
            ),
            "{text}"
        );
        let mut failed = runs;
        failed[0].passed = false;
        assert!(
            repeat_summary(&failed, 3.0)
                .contains("during a CPU stall: p99 under 3 ms in 1 of 3 runs")
        );
        // Without the probe in every run, no such line.
        let mixed = [stalled(2.5, 2.4), headline(4.0, 100.0)];
        assert!(!repeat_summary(&mixed, 3.0).contains("CPU stall"));
    }

    #[test]
    fn a_run_says_how_busy_the_replicas_cpus_were_when_it_knows() {
        let mut run = headline(2.0, 100.0);
        assert!(!run.line().contains("busy"), "{}", run.line());
        assert!(!repeat_summary(&[run], 3.0).contains("busy"));
        run.replica_cpus_busy = Some(0.834);
        assert!(
            run.line()
                .ends_with("; the replicas' CPUs 83% busy over the load"),
            "{}",
            run.line()
        );
        let mut quiet = run;
        quiet.replica_cpus_busy = Some(0.5);
        let mut busiest = run;
        busiest.replica_cpus_busy = Some(0.91);
        let text = repeat_summary(&[run, busiest, quiet], 3.0);
        assert!(
            text.contains(
                "the replicas' CPUs busy over the load, min / median / max: 50% / 83% / 91%"
            ),
            "{text}"
        );
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
        // A run that failed is not under the limit, even with no replies to measure.
        let mut failed = runs.clone();
        failed[0].passed = false;
        failed[0].p99_ms = 0.0;
        failed[1].passed = false;
        let text = repeat_summary(&failed, 5.0);
        assert!(
            text.starts_with("p99 under 5 ms in 2 of 5 runs; 3 passed every check"),
            "{text}"
        );
    }

    #[test]
    fn calibration_divides_the_replica_by_each_stand_in() {
        let cfg = Config::minimal_for_tests("hl");
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
}
