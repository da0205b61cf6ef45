//! The linearizability check over a run's history, key by key.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::clients::Clients;
use lincheck::{Op, OpKind, Reason, Verdict, check_key_bounded, prepare};

/// States explored per key before the search gives up (reported as inconclusive).
pub const LIN_STATES_MAX_PER_KEY: u64 = 2_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct LinViolation {
    pub key: String,
    /// Why, in one sentence (times in seconds since the run started, clients by ID).
    pub explanation: String,
    /// The smallest offending sub-history found, one line per operation (times in µs
    /// since the run started).
    pub ops: Vec<String>,
    /// The key's history as checked, as indices into the clients' history (for the
    /// report's drawing of it).
    #[serde(skip)]
    pub history: Vec<usize>,
    /// Of those, the smallest offending sub-history.
    #[serde(skip)]
    pub minimal: Vec<usize>,
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
    let mut by_key: BTreeMap<u32, (Vec<Op>, Vec<usize>)> = BTreeMap::new();
    for (index, h) in clients.history.iter().enumerate() {
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
        let (ops, indices) = by_key.entry(h.key).or_default();
        ops.push(Op {
            client: h.client,
            kind,
            invoke: h.invoke_us,
            response,
            retry_group: Some(h.group),
        });
        indices.push(index);
    }
    let mut report = LinReport {
        keys: by_key.len(),
        ..LinReport::default()
    };
    for (key, (ops, indices)) in &by_key {
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
                explanation: sentence(&v.reason, ops, clients),
                ops: v.ops.iter().map(ToString::to_string).collect(),
                history: indices.clone(),
                minimal: v.indices.iter().map(|&i| indices[i]).collect(),
            }),
        }
    }
    report.check_ms = started.elapsed().as_secs_f64() * 1000.0;
    report
}

/// Characters of a value shown in a sentence: ours are 32 characters, of which the first
/// few tell them apart (and the report shows each whole).
const VALUE_SHOWN_CHARS: usize = 8;

/// `reason` as a sentence for a person, with our units: times in seconds since the run
/// started, clients by ID, values shortened.
pub fn sentence(reason: &Reason, ops: &[Op], clients: &Clients) -> String {
    let who = |i: usize| clients.client_id(ops[i].client);
    let value = |i: usize| match &ops[i].kind {
        OpKind::Put { value, .. } | OpKind::Get { value } => short(value),
    };
    let at = |us: u64| format!("{:.3} s", us as f64 / 1e6);
    let end = |i: usize| ops[i].response.map_or("?".to_string(), at);
    match *reason {
        Reason::NeverWritten { get } => format!(
            "{}'s get returned {}, a value that no put wrote.",
            who(get),
            value(get)
        ),
        Reason::ReadBeforeWrite { get, put } => format!(
            "{}'s get returned {} at {}, before {}'s put of that value began at {}.",
            who(get),
            value(get),
            end(get),
            who(put),
            at(ops[put].invoke)
        ),
        Reason::Overwritten {
            get,
            written,
            overwrite,
        } => {
            let old = match written {
                Some(w) => format!(
                    "{} (written by {}'s put, done at {})",
                    value(get),
                    who(w),
                    end(w)
                ),
                None => "\"\" (the key as never written)".to_string(),
            };
            format!(
                "{}'s get began at {} and returned {old}, but {}'s put of {} had replaced that value by {}: the get is stale.",
                who(get),
                at(ops[get].invoke),
                who(overwrite),
                value(overwrite),
                end(overwrite)
            )
        }
        Reason::NoOrder { unplaced } => {
            let count = match unplaced {
                Some(i) => format!(
                    ": whatever order is tried, {}'s {} ({} to {}) cannot be placed",
                    who(i),
                    match ops[i].kind {
                        OpKind::Put { .. } => format!("put of {}", value(i)),
                        OpKind::Get { .. } => format!("get of {}", value(i)),
                    },
                    at(ops[i].invoke),
                    end(i)
                ),
                None => String::new(),
            };
            format!(
                "No order of the highlighted operations puts each at one instant inside its bar with every get seeing the latest put before it{count}."
            )
        }
    }
}

fn short(value: &str) -> String {
    if value.chars().count() > VALUE_SHOWN_CHARS {
        let head: String = value.chars().take(VALUE_SHOWN_CHARS).collect();
        format!("\"{head}…\"")
    } else {
        format!("{value:?}")
    }
}
