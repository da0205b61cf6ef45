//! Checks the workload's history for linearizability, key by key, with the
//! library's Wing-Gong/Lowe checker.

use crate::ClientOp;
use crate::workload::{Attempt, Outcome};
use lincheck::{Op, OpKind, check_key};
use std::collections::BTreeMap;

/// Every key's history must be linearizable; the first violation is described.
pub fn check_linearizable(history: &[Attempt]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for attempt in history {
        let (key, kind, response) = match (&attempt.op, &attempt.outcome) {
            (ClientOp::Put { key, value }, Outcome::Ok(_)) => (
                key,
                OpKind::Put {
                    value: value.clone(),
                    acked: true,
                },
                attempt.responded,
            ),
            (ClientOp::Put { key, value }, Outcome::Unknown) => (
                key,
                OpKind::Put {
                    value: value.clone(),
                    acked: false,
                },
                None,
            ),
            (ClientOp::Get { key }, Outcome::Ok(Some(value))) => (
                key,
                OpKind::Get {
                    value: value.clone(),
                },
                attempt.responded,
            ),
            // A put never proposed is no operation at all.
            (ClientOp::Put { .. }, Outcome::NotDone) => continue,
            // A get that was not answered constrains nothing.
            (ClientOp::Get { .. }, _) => continue,
        };
        by_key.entry(key).or_default().push(Op {
            client: u32::from(attempt.client.0),
            kind,
            invoke: attempt.invoked.as_micros(),
            response: response.map(|t| t.as_micros()),
            retry_group: Some(attempt.logical),
        });
    }
    for (key, ops) in by_key {
        if let Err(violation) = check_key(&ops) {
            let ops: Vec<String> = violation.ops.iter().map(|op| format!("  {op}")).collect();
            return Err(format!(
                "linearizability of {key}: {}\n{}",
                violation.explanation,
                ops.join("\n")
            ));
        }
    }
    Ok(())
}
