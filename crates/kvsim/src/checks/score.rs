//! The correctness checks and the performance tiers, with the classic wording.

use serde::Serialize;

use crate::measure::stats::Stats;
use crate::scenario::config::{Config, Tiers};

/// One correctness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The classic simulator's name for it (`incorrect`, `died`, ...), or ours.
    pub name: &'static str,
    pub passed: bool,
    /// The error line printed when it fails.
    pub message: String,
    /// Not held against this run, and why: a stand-in fails it by design
    /// (`stand_in::StandIn::skipped_checks`). A skipped check counts as passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
}

impl Check {
    /// Passed, or not held against the run.
    pub fn holds(&self) -> bool {
        self.passed || self.skipped.is_some()
    }
}

/// The classic floor on messages between replicas: the requests' share of puts, times the
/// replicas, less the fraction of appends that may be batched away. A run under it fails.
pub fn message_floor(config: &Config) -> f64 {
    config.requests as f64
        * config.replicas as f64
        * (1.0 - config.mix)
        * (1.0 - config.tests.appends_batched_frac)
}

/// The classic checks, in the classic order. `put_oks` is the number of puts that got `ok`
/// (the classic looks at the clients' stored items; it is the same thing).
pub fn classic_checks(stats: &Stats, config: &Config, put_oks: u64) -> Vec<Check> {
    let t = &config.tests;
    let floor = message_floor(config);
    vec![
        Check {
            name: "incorrect",
            passed: stats.incorrect == 0,
            message: "Error: >0 incorrect responses to get()".into(),
            skipped: None,
        },
        Check {
            name: "died",
            passed: stats.died == 0,
            message: "Error: >0 replicas died unexpectedly".into(),
            skipped: None,
        },
        Check {
            name: "no_state",
            passed: put_oks > 0,
            message: "Error: No state stored in replicas".into(),
            skipped: None,
        },
        Check {
            name: "get_answered",
            passed: stats.unanswered_get as f64 <= stats.generated_get as f64 * t.max_get_fail_frac,
            message: format!(
                "Error: insufficient get() requests answered ({} > {} * {:.2})",
                stats.unanswered_get, stats.generated_get, t.max_get_fail_frac
            ),
            skipped: None,
        },
        Check {
            name: "put_answered",
            passed: stats.unanswered_put as f64 <= stats.generated_put as f64 * t.max_put_fail_frac,
            message: format!(
                "Error: insufficient put() requests answered ({} > {} * {:.2})",
                stats.unanswered_put, stats.generated_put, t.max_put_fail_frac
            ),
            skipped: None,
        },
        Check {
            name: "get_generated",
            passed: stats.failed_to_generate_get as f64
                <= stats.generated_get as f64 * t.max_get_gen_fail_frac,
            message: format!(
                "Error: insufficient get() requests were generated because insufficient put()s were accepted ({} > {} * {:.2})",
                stats.failed_to_generate_get, stats.generated_get, t.max_get_gen_fail_frac
            ),
            skipped: None,
        },
        Check {
            name: "total_msgs",
            passed: stats.total_msgs as f64 >= floor,
            message: "Error: too few messages between the replicas".into(),
            skipped: None,
        },
    ]
}

/// A performance metric's result.
#[derive(Debug, Clone, Serialize)]
pub struct Tier {
    pub metric: &'static str,
    /// The classic label, e.g. "Total Messages Between Replicas".
    pub label: &'static str,
    pub value: f64,
    /// 0 bonus, 1 full credit, 2 partial credit, 3 no credit.
    pub tier: u8,
    /// The classic summary line.
    pub line: String,
}

/// Scores `value` against `[bonus, full, partial]`: tier k when `value < tiers[k]`.
pub fn tier_of(value: f64, tiers: &Tiers) -> u8 {
    tiers
        .values
        .iter()
        .position(|&t| value < t)
        .map(|k| k as u8)
        .unwrap_or(3)
}

fn tier(
    metric: &'static str,
    label: &'static str,
    value: f64,
    shown: String,
    tiers: &Tiers,
) -> Tier {
    let k = tier_of(value, tiers);
    let line = match k {
        0 => format!("{label}: {shown} < {}, Bonus!", tiers.text[0]),
        1 => format!("{label}: {shown} < {}, Full credit", tiers.text[1]),
        2 => format!(
            "{label}: {shown} < {}, Partial credit, needs improvement",
            tiers.text[2]
        ),
        _ => format!("{label}: {shown} >= {}, No credit", tiers.text[2]),
    };
    Tier {
        metric,
        label,
        value,
        tier: k,
        line,
    }
}

/// The four metrics, in the classic order.
pub fn performance(stats: &Stats, config: &Config) -> Vec<Tier> {
    let b = &config.tests.benchmarks;
    vec![
        tier(
            "total_msgs",
            "Total Messages Between Replicas",
            stats.total_msgs as f64,
            stats.total_msgs.to_string(),
            &b.total_msgs,
        ),
        tier(
            "failures",
            "Total Failures and Unanswered Requests",
            stats.failures as f64,
            stats.failures.to_string(),
            &b.failures,
        ),
        tier(
            "duplicates",
            "Duplicate Responses to Clients",
            stats.duplicates as f64,
            stats.duplicates.to_string(),
            &b.duplicates,
        ),
        tier(
            "median_latency",
            "Median Response Latency to Clients",
            stats.median_latency,
            stats.median_latency.to_string(),
            &b.median_latency,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(v: [f64; 3]) -> Tiers {
        Tiers {
            values: v,
            text: v.map(|x| x.to_string()),
        }
    }

    #[test]
    fn tiers_use_strict_less_than() {
        let t = tiers([2200.0, 4000.0, 5000.0]);
        assert_eq!(tier_of(2199.0, &t), 0);
        assert_eq!(tier_of(2200.0, &t), 1);
        assert_eq!(tier_of(4999.0, &t), 2);
        assert_eq!(tier_of(5000.0, &t), 3);
        // failures [0, 1, 2]: zero failures is full credit, never bonus.
        let f = tiers([0.0, 1.0, 2.0]);
        assert_eq!(tier_of(0.0, &f), 1);
    }

    #[test]
    fn summary_lines_match_the_classic_wording() {
        let t = tiers([0.0, 2.0, 5.0]);
        assert_eq!(
            tier(
                "duplicates",
                "Duplicate Responses to Clients",
                0.0,
                "0".into(),
                &t
            )
            .line,
            "Duplicate Responses to Clients: 0 < 2, Full credit"
        );
        assert_eq!(
            tier(
                "duplicates",
                "Duplicate Responses to Clients",
                3.0,
                "3".into(),
                &t
            )
            .line,
            "Duplicate Responses to Clients: 3 < 5, Partial credit, needs improvement"
        );
        assert_eq!(
            tier(
                "duplicates",
                "Duplicate Responses to Clients",
                7.0,
                "7".into(),
                &t
            )
            .line,
            "Duplicate Responses to Clients: 7 >= 5, No credit"
        );
    }

    #[test]
    fn checks_follow_the_classic_rules() {
        let config = crate::scenario::config::Config::parse(
            "t",
            r#"{"lifetime": 30, "replicas": 5, "requests": 500, "mix": 0.2,
                "tests": {"benchmarks": {"total_msgs": [1, 2, 3], "failures": [1, 2, 3],
                "duplicates": [1, 2, 3], "median_latency": [1, 2, 3]}}}"#,
        )
        .unwrap();
        let mut s = Stats {
            generated_get: 100,
            generated_put: 400,
            total_msgs: 1000,
            ..Stats::default()
        };
        assert!(classic_checks(&s, &config, 1).iter().all(|c| c.passed));
        // Floor: 500 * 5 * 0.8 * 0.5 = 1000 messages.
        s.total_msgs = 999;
        s.unanswered_put = 201;
        s.failed_to_generate_get = 11;
        let failed: Vec<_> = classic_checks(&s, &config, 0)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            ["no_state", "put_answered", "get_generated", "total_msgs"]
        );
        let msg = &classic_checks(&s, &config, 0)[4].message;
        assert_eq!(
            msg,
            "Error: insufficient put() requests answered (201 > 400 * 0.50)"
        );
    }
}
