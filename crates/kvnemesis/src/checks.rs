//! What the history must satisfy, key by key (a history of independent keys is
//! linearizable exactly when each key's is):
//!
//! - linearizable, by `lincheck` and by the second checker, which must agree;
//! - no acknowledged write lost: the final read of a key returns a value that may have
//!   been written last (no acknowledged write of another value began after every write
//!   of the value read had finished);
//! - no failed write visible: no read returns a value whose write was answered as not
//!   performed.

use crate::history::Type;
use crate::operations::{Kind, Operation};
use crate::second_checker;
use lincheck::{Op, OpKind, Verdict};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// States the `lincheck` search may explore per key before it says "unknown": keys are
/// rotated small, so a search this long means something unusual, shown as undecided.
const LINCHECK_STATES_MAX: u64 = 20_000_000;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Findings {
    pub keys: usize,
    /// Operations given to the checkers (ok reads, and writes not known to have failed).
    pub checked_ops: usize,
    pub lincheck_violations: Vec<KeyViolation>,
    pub second_checker_violations: Vec<String>,
    /// Keys `lincheck` could not decide within its bound.
    pub undecided: Vec<String>,
    /// Keys where the two checkers disagree.
    pub disagreements: Vec<String>,
    pub lost_writes: Vec<String>,
    pub failed_writes_visible: Vec<String>,
    /// Keys with no successful final read.
    pub unread_keys: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyViolation {
    pub key: String,
    pub explanation: String,
    /// History indices of the invocations of the offending operations.
    pub invocations: Vec<u64>,
}

impl Findings {
    pub fn passed(&self) -> bool {
        self.lincheck_violations.is_empty()
            && self.second_checker_violations.is_empty()
            && self.undecided.is_empty()
            && self.disagreements.is_empty()
            && self.lost_writes.is_empty()
            && self.failed_writes_visible.is_empty()
            && self.unread_keys.is_empty()
    }
}

/// Checks `ops`, the final reads among them.
pub fn check(ops: &[Operation]) -> Findings {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut findings = Findings {
        keys: by_key.len(),
        ..Findings::default()
    };
    for (key, ops) in &by_key {
        let (lin_ops, origin) = lincheck_ops(ops);
        findings.checked_ops += lin_ops.len();
        let first = match lincheck::check_key_bounded(&lin_ops, LINCHECK_STATES_MAX) {
            Verdict::Linearizable => Some(true),
            Verdict::Unknown { .. } => None,
            Verdict::Violation(v) => {
                findings.lincheck_violations.push(KeyViolation {
                    key: key.to_string(),
                    explanation: v.explanation,
                    invocations: v
                        .indices
                        .iter()
                        .map(|&i| ops[origin[i]].invoke_index)
                        .collect(),
                });
                Some(false)
            }
        };
        let second = second_checker::linearizable(ops);
        if !second {
            findings.second_checker_violations.push(key.to_string());
        }
        match first {
            None => findings.undecided.push(key.to_string()),
            Some(first) if first != second => findings.disagreements.push(format!(
                "{key}: lincheck says {}, the second checker {}",
                verdict(first),
                verdict(second)
            )),
            Some(_) => {}
        }
        lost_writes(key, ops, &mut findings);
    }
    failed_writes_visible(ops, &mut findings);
    findings
}

fn verdict(linearizable: bool) -> &'static str {
    if linearizable {
        "linearizable"
    } else {
        "not linearizable"
    }
}

/// The key's operations as `lincheck` takes them (times in ns), and where each came from.
fn lincheck_ops(ops: &[&Operation]) -> (Vec<Op>, Vec<usize>) {
    let mut out = Vec::new();
    let mut origin = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let response = op.complete.filter(|_| op.outcome == Type::Ok);
        let kind = match (op.kind, op.outcome) {
            (_, Type::Fail) | (Kind::Read, Type::Info | Type::Invoke) => continue,
            (Kind::Read, _) => OpKind::Get {
                value: op.value.clone().unwrap_or_default(),
            },
            _ => OpKind::Put {
                value: op.written().unwrap_or_default().to_owned(),
                acked: op.outcome == Type::Ok,
            },
        };
        out.push(Op {
            client: op.process as u32,
            kind,
            invoke: op.invoke,
            response,
            retry_group: None,
        });
        origin.push(i);
    }
    (out, origin)
}

/// The latest instant each value (`None`: no such key) may have been written, over all
/// its writes not known to have failed (`u64::MAX`: a write of unknown outcome).
fn latest_writes<'a>(ops: &[&'a Operation]) -> HashMap<Option<&'a str>, u64> {
    let mut latest = HashMap::from([(None, 0)]);
    for op in ops
        .iter()
        .filter(|o| o.is_write() && o.outcome != Type::Fail)
    {
        let at = match op.outcome {
            Type::Ok => op.complete.unwrap_or(u64::MAX),
            _ => u64::MAX,
        };
        let entry = latest.entry(op.written()).or_insert(0);
        *entry = (*entry).max(at);
    }
    latest
}

fn lost_writes(key: &str, ops: &[&Operation], findings: &mut Findings) {
    let Some(last) = ops
        .iter()
        .rev()
        .find(|o| o.is_final_read() && o.outcome == Type::Ok)
    else {
        findings.unread_keys.push(key.to_string());
        return;
    };
    let read = last.value.as_deref();
    let latest = latest_writes(ops);
    // A value never written is the linearizability checkers' to report.
    let Some(&written_by) = latest.get(&read) else {
        return;
    };
    for op in ops.iter().filter(|o| o.is_write() && o.outcome == Type::Ok) {
        if op.written() != read && op.invoke > written_by {
            findings.lost_writes.push(format!(
                "{key}: the final read returned {}, but the acknowledged {} (invoked at history index {}) began after every write of that had finished",
                shown(read),
                match op.written() {
                    Some(value) => format!("write of {value:?}"),
                    None => "delete".into(),
                },
                op.invoke_index,
            ));
        }
    }
}

fn shown(value: Option<&str>) -> String {
    value.map_or("no value".into(), |v| format!("{v:?}"))
}

fn failed_writes_visible(ops: &[Operation], findings: &mut Findings) {
    let failed: HashMap<&str, u64> = ops
        .iter()
        .filter(|o| o.kind == Kind::Write && o.outcome == Type::Fail)
        .filter_map(|o| Some((o.written()?, o.invoke_index)))
        .collect();
    for op in ops
        .iter()
        .filter(|o| o.kind == Kind::Read && o.outcome == Type::Ok)
    {
        if let Some(value) = op.value.as_deref()
            && let Some(write) = failed.get(value)
        {
            findings.failed_writes_visible.push(format!(
                "{}: the read invoked at history index {} returned {value:?}, whose write (invoked at {write}) failed",
                op.key, op.invoke_index
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::FINAL_READ_PROCESS_FROM;

    /// Operation `i`; the last of each test is its final read.
    fn op(i: u64, kind: Kind, value: Option<&str>, outcome: Type, span: (u64, u64)) -> Operation {
        Operation {
            process: if i == 2 { FINAL_READ_PROCESS_FROM } else { i },
            kind,
            key: "k".into(),
            value: value.map(Into::into),
            outcome,
            invoke: span.0,
            // The history's order is its time order.
            invoke_index: span.0,
            complete: Some(span.1),
            complete_index: Some(span.1),
            node: None,
        }
    }

    #[test]
    fn a_stale_read_is_caught_by_both_checkers() {
        let ops = [
            op(0, Kind::Write, Some("a"), Type::Ok, (0, 10)),
            op(1, Kind::Write, Some("b"), Type::Ok, (20, 30)),
            op(2, Kind::Read, Some("a"), Type::Ok, (40, 50)),
        ];
        let findings = check(&ops);
        assert_eq!(findings.lincheck_violations.len(), 1);
        assert_eq!(findings.second_checker_violations, vec!["k".to_string()]);
        assert!(findings.disagreements.is_empty());
        assert_eq!(findings.lost_writes.len(), 1, "{findings:?}");
        assert!(!findings.passed());
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let mut unknown = op(1, Kind::Write, Some("b"), Type::Info, (20, 0));
        unknown.complete = None;
        let history = |read: &str| {
            vec![
                op(0, Kind::Write, Some("a"), Type::Ok, (0, 10)),
                unknown.clone(),
                op(2, Kind::Read, Some(read), Type::Ok, (40, 50)),
            ]
        };
        for read in ["a", "b"] {
            let findings = check(&history(read));
            assert!(findings.passed(), "{read}: {findings:?}");
        }
    }

    #[test]
    fn a_failed_write_must_never_be_read() {
        let ops = [
            op(0, Kind::Write, Some("a"), Type::Fail, (0, 10)),
            op(1, Kind::Read, Some("a"), Type::Ok, (20, 30)),
        ];
        let findings = check(&ops);
        assert_eq!(findings.failed_writes_visible.len(), 1);
        assert!(!findings.passed());
    }

    #[test]
    fn a_delete_reads_as_no_such_key() {
        let ops = [
            op(0, Kind::Write, Some("a"), Type::Ok, (0, 10)),
            op(1, Kind::Delete, None, Type::Ok, (20, 30)),
            op(2, Kind::Read, None, Type::Ok, (40, 50)),
        ];
        assert!(check(&ops).passed());
        let mut unread = ops.to_vec();
        unread.pop();
        assert_eq!(check(&unread).unread_keys, vec!["k".to_string()]);
    }
}
