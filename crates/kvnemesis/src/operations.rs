//! The history's events paired into operations: each invocation with the next completion
//! of the same process (a process has one operation at a time). An invocation never
//! completed (the run ended under it) counts as `info`.

use crate::history::{Event, Process, Type};
use std::collections::BTreeMap;

/// The final reads' process numbers start here, above any client's: a client takes a
/// new number only after an `info`, at most once per operation.
pub const FINAL_READ_PROCESS_FROM: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub process: u64,
    pub kind: Kind,
    pub key: String,
    /// The value written; for a read that succeeded, the value read (`None`: no such key);
    /// `None` for a delete.
    pub value: Option<String>,
    pub outcome: Type,
    /// History time (ns) and index of the invocation and of the completion.
    pub invoke: u64,
    pub invoke_index: u64,
    pub complete: Option<u64>,
    pub complete_index: Option<u64>,
    pub node: Option<u16>,
}

impl Operation {
    /// One of the reads after the heal, which every key must have.
    pub fn is_final_read(&self) -> bool {
        self.process >= FINAL_READ_PROCESS_FROM
    }

    pub fn is_write(&self) -> bool {
        self.kind != Kind::Read
    }

    /// The value this operation leaves, for a write or delete: `None` is no such key.
    pub fn written(&self) -> Option<&str> {
        match self.kind {
            Kind::Write => self.value.as_deref(),
            _ => None,
        }
    }
}

/// Pairs the client events of `events` (in index order) into operations, in the order
/// of their invocations.
pub fn pair(events: &[Event]) -> Result<Vec<Operation>, String> {
    let mut operations: Vec<Operation> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for event in events {
        let Process::Client(process) = event.process else {
            continue;
        };
        let kind = match event.f.as_str() {
            "read" => Kind::Read,
            "write" => Kind::Write,
            "delete" => Kind::Delete,
            other => return Err(format!("event {}: unknown f {other:?}", event.index)),
        };
        let key = event
            .key
            .clone()
            .ok_or_else(|| format!("event {}: no key", event.index))?;
        if event.kind == Type::Invoke {
            if open.contains_key(&process) {
                return Err(format!(
                    "event {}: process {process} invoked while its last operation is open",
                    event.index
                ));
            }
            open.insert(process, operations.len());
            operations.push(Operation {
                process,
                kind,
                key,
                value: event.value.clone(),
                outcome: Type::Info,
                invoke: event.time,
                invoke_index: event.index,
                complete: None,
                complete_index: None,
                node: None,
            });
            continue;
        }
        let Some(i) = open.remove(&process) else {
            return Err(format!(
                "event {}: process {process} completed an operation it never invoked",
                event.index
            ));
        };
        let operation = &mut operations[i];
        if operation.kind != kind || operation.key != key {
            return Err(format!(
                "event {}: completion does not match invocation {}",
                event.index, operation.invoke_index
            ));
        }
        operation.outcome = event.kind;
        operation.complete = Some(event.time);
        operation.complete_index = Some(event.index);
        operation.node = event.node;
        if kind == Kind::Read {
            operation.value = event.value.clone();
        }
    }
    Ok(operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64, kind: Type, process: u64, f: &str, value: Option<&str>) -> Event {
        Event {
            index,
            time: index * 10,
            kind,
            process: Process::Client(process),
            f: f.into(),
            key: Some("k".into()),
            value: value.map(Into::into),
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_by_process_and_leaves_the_unfinished_as_info() {
        let events = [
            event(0, Type::Invoke, 1, "write", Some("1-1")),
            event(1, Type::Invoke, 2, "read", None),
            event(2, Type::Ok, 2, "read", Some("1-1")),
            event(3, Type::Ok, 1, "write", Some("1-1")),
            event(4, Type::Invoke, 2, "delete", None),
        ];
        let ops = pair(&events).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].complete_index, Some(3));
        assert_eq!(ops[1].value.as_deref(), Some("1-1"));
        assert_eq!(ops[2].outcome, Type::Info);
        assert_eq!(ops[2].complete, None);
        assert!(pair(&events[2..3]).is_err());
    }
}
