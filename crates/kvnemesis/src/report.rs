//! The run's summary: printed as text, written as JSON with `--json`.

use crate::analysis::Analysis;
use crate::benchmark_load::LoadReport;
use serde::Serialize;

/// Findings listed in the text, at most (the JSON has them all).
const LISTED_MAX: usize = 5;
/// History indices listed for one violation, at most.
const INDICES_LISTED_MAX: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub nodes: u16,
    pub spares: u16,
    /// Every node the run started: members, spares, and those that took removed ones'
    /// places.
    pub nodes_started: u16,
    pub benchmark: Option<LoadReport>,
    pub time_s: u64,
    pub clients: usize,
    pub faults_enabled: Vec<&'static str>,
    pub unsafe_local_reads: bool,
    pub run_dir: String,
    pub history: String,
    #[serde(flatten)]
    pub analysis: Analysis,
    /// Nodes that died without being killed.
    pub crashes: Vec<String>,
    pub passed: bool,
    pub reproduce: String,
}

impl Summary {
    pub fn text(&self) -> String {
        let mut out = format!(
            "kvnemesis: seed {}, {} nodes{}, {} s, {} clients{}; faults: {}\nrun dir: {} (history: {})\n",
            self.seed,
            self.nodes,
            if self.spares > 0 {
                format!(" and {} spares", self.spares)
            } else {
                String::new()
            },
            self.time_s,
            self.clients,
            if self.unsafe_local_reads {
                ", nodes with --unsafe-local-reads (broken on purpose)"
            } else {
                ""
            },
            self.faults_enabled.join(" "),
            self.run_dir,
            self.history
        );
        out.push_str(&self.analysis.text());
        if let Some(load) = &self.benchmark {
            out.push_str(&load.text());
        }
        for crash in self.crashes.iter().take(LISTED_MAX) {
            out.push_str(&format!("  {crash}\n"));
        }
        let mut problems = self.analysis.problems();
        if !self.crashes.is_empty() {
            problems.push(format!("{} nodes died on their own", self.crashes.len()));
        }
        out.push_str(&verdict(&problems));
        out.push_str(&format!("reproduce: {}\n", self.reproduce));
        out
    }
}

/// `PASS` or `FAIL` and why, one line.
pub fn verdict(problems: &[String]) -> String {
    if problems.is_empty() {
        "PASS: every check holds\n".into()
    } else {
        format!("FAIL: {}\n", problems.join(", "))
    }
}

impl Analysis {
    /// What failed, one phrase each; empty when every check on the history holds.
    pub fn problems(&self) -> Vec<String> {
        let f = &self.findings;
        let mut problems = Vec::new();
        let mut count = |n: usize, what: &str| {
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        };
        count(
            f.lincheck_violations.len(),
            "keys not linearizable (lincheck)",
        );
        count(
            f.second_checker_violations.len(),
            "keys not linearizable (second checker)",
        );
        count(f.disagreements.len(), "checker disagreements");
        count(f.undecided.len(), "keys undecided");
        count(f.lost_writes.len(), "lost acknowledged writes");
        count(f.failed_writes_visible.len(), "failed writes visible");
        count(f.unread_keys.len(), "keys without a final read");
        count(
            usize::from(self.operations.ok == 0),
            "runs with no operation ok",
        );
        problems
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|s| {
                format!(
                    "{:.1}-{:.1}s {} ({})",
                    s.start as f64 / 1e9,
                    s.stop as f64 / 1e9,
                    s.fault,
                    s.description
                )
            })
            .collect();
        line(format!("faults: {}: {}", faults.len(), faults.join("; ")));
        let o = &self.operations;
        line(format!(
            "operations: {} (ok {}, fail {}, info {}); reads {}, writes {}, deletes {}",
            o.ops, o.ok, o.fail, o.info, self.reads, self.writes, self.deletes
        ));
        let f = &self.findings;
        line(format!(
            "linearizability: {} keys, {} operations checked; lincheck: {} violations; second checker (todc-utils WGLChecker): {} violations; {} disagreements; {} undecided",
            f.keys,
            f.checked_ops,
            f.lincheck_violations.len(),
            f.second_checker_violations.len(),
            f.disagreements.len(),
            f.undecided.len()
        ));
        for v in f.lincheck_violations.iter().take(LISTED_MAX) {
            let mut indices: Vec<String> = v
                .invocations
                .iter()
                .take(INDICES_LISTED_MAX)
                .map(u64::to_string)
                .collect();
            if v.invocations.len() > INDICES_LISTED_MAX {
                indices.push(format!(
                    "and {} more",
                    v.invocations.len() - INDICES_LISTED_MAX
                ));
            }
            line(format!(
                "  violation on {}: {} (operations invoked at history indices {})",
                v.key,
                v.explanation,
                indices.join(", ")
            ));
        }
        line(format!(
            "lost acknowledged writes: {}; failed writes visible: {}; keys without a final read: {}",
            f.lost_writes.len(),
            f.failed_writes_visible.len(),
            f.unread_keys.len()
        ));
        let listed = f
            .lost_writes
            .iter()
            .chain(&f.failed_writes_visible)
            .chain(&f.disagreements);
        for finding in listed.take(LISTED_MAX) {
            line(format!("  {finding}"));
        }
        let a = &self.availability;
        let recovery: Vec<String> = a
            .recovery_ms
            .iter()
            .map(|r| r.map_or("none".into(), |ms| format!("{ms:.0}")))
            .collect();
        line(format!(
            "availability: {:.1}% ok during faults ({} ops), {:.1}% ok without ({} ops); first write after each heal (ms): {}; final reads answered after {} ms",
            a.during_faults.ok_percent(),
            a.during_faults.ops,
            a.without_faults.ok_percent(),
            a.without_faults.ops,
            recovery.join(" "),
            self.final_read_after_ms
                .map_or("never".into(), |ms| format!("{ms:.0}"))
        ));
        out
    }
}
