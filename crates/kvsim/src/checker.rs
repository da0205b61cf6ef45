//! The linearizability check over a run's history, key by key.

use serde::Serialize;
use std::collections::BTreeMap;

use super::clients::Clients;
use lincheck::{Op, OpKind, Verdict, check_key_bounded, prepare};

/// States explored per key before the search gives up (reported as inconclusive).
pub const LIN_STATES_MAX_PER_KEY: u64 = 2_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct LinViolation {
    pub key: String,
    pub explanation: String,
    /// The smallest offending sub-history found, one line per operation (times in µs
    /// since the run started).
    pub ops: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LinReport {
    pub keys: usize,
    pub ops_checked: usize,
    pub dropped_unread_unknown_puts: usize,
    pub closed_by_retry: usize,
    pub inconclusive_keys: Vec<String>,
    pub violations: Vec<LinViolation>,
    pub check_ms: f64,
}

/// Builds each key's history from the clients' record and checks it.
pub fn check_history(clients: &Clients, states_max: u64) -> LinReport {
    let started = std::time::Instant::now();
    let mut by_key: BTreeMap<u32, Vec<Op>> = BTreeMap::new();
    for h in &clients.history {
        if h.get && !h.acked {
            // A get that got no `ok` says nothing.
            continue;
        }
        let value = clients.values[h.value as usize].clone();
        let kind = if h.get {
            OpKind::Get { value }
        } else {
            OpKind::Put {
                value,
                acked: h.acked,
            }
        };
        let response = if h.acked { h.response_us } else { None };
        by_key.entry(h.key).or_default().push(Op {
            client: h.client,
            kind,
            invoke: h.invoke_us,
            response,
            retry_group: Some(h.group),
        });
    }
    let mut report = LinReport {
        keys: by_key.len(),
        ..LinReport::default()
    };
    for (key, ops) in &by_key {
        let p = prepare(ops);
        report.ops_checked += p.ops.len();
        report.dropped_unread_unknown_puts += p.dropped_unread;
        report.closed_by_retry += p.closed_by_retry;
        let key_name = clients.keys[*key as usize].clone();
        match check_key_bounded(ops, states_max) {
            Verdict::Linearizable => {}
            Verdict::Unknown { .. } => report.inconclusive_keys.push(key_name),
            Verdict::Violation(v) => report.violations.push(LinViolation {
                key: key_name,
                explanation: v.explanation,
                ops: v.ops.iter().map(ToString::to_string).collect(),
            }),
        }
    }
    report.check_ms = started.elapsed().as_secs_f64() * 1000.0;
    report
}
