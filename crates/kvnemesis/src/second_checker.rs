//! The second, independent linearizability checker: `todc-utils`'s `WGLChecker` (Wing &
//! Gong's search with Lowe's memoization, written by others, sharing no code with our
//! `lincheck`). It is fed the same operations, in the history's event order rather than
//! by time, and a different reading of uncertainty: an `info` write is a call whose
//! response comes after every other event (it may take effect at any point after its
//! invocation, last of all being the same as never), where `lincheck` marks it optional.

use crate::history::Type;
use crate::operations::{Kind, Operation};
use std::collections::HashMap;
use todc_utils::linearizability::WGLChecker;
use todc_utils::linearizability::history::{Action, History};
use todc_utils::specifications::Specification;

/// A register of interned values (0: no such key).
struct Register;

#[derive(Clone, Debug)]
enum RegisterOp {
    /// The value read, known on the response only.
    Read(Option<u32>),
    Write(u32),
}

impl Specification for Register {
    type State = u32;
    type Operation = RegisterOp;

    fn init() -> u32 {
        0
    }

    fn apply(op: &RegisterOp, state: &u32) -> (bool, u32) {
        match op {
            RegisterOp::Read(Some(value)) => (value == state, *state),
            RegisterOp::Read(None) => (false, *state),
            RegisterOp::Write(value) => (true, *value),
        }
    }
}

/// Whether one key's operations are linearizable, by `WGLChecker`.
pub fn linearizable<'a>(ops: &[&'a Operation]) -> bool {
    let mut values: HashMap<Option<&str>, u32> = HashMap::from([(None, 0)]);
    let mut intern = |value: Option<&'a str>| -> u32 {
        let next = values.len() as u32;
        *values.entry(value).or_insert(next)
    };
    let mut processes: HashMap<u64, usize> = HashMap::new();
    // (order, action): the history's index, and after everything for an `info` write.
    let mut actions: Vec<((u64, u64), usize, Action<RegisterOp>)> = Vec::new();
    for &op in ops {
        let (call, response) = match (op.kind, op.outcome) {
            (_, Type::Fail) | (Kind::Read, Type::Info) => continue,
            (Kind::Read, _) => {
                let read = intern(op.value.as_deref());
                (RegisterOp::Read(None), RegisterOp::Read(Some(read)))
            }
            _ => {
                let written = intern(op.written());
                (RegisterOp::Write(written), RegisterOp::Write(written))
            }
        };
        let next = processes.len();
        let process = *processes.entry(op.process).or_insert(next);
        actions.push(((0, op.invoke_index), process, Action::Call(call)));
        let at = match (op.outcome, op.complete_index) {
            (Type::Ok, Some(index)) => (0, index),
            _ => (1, op.invoke_index),
        };
        actions.push((at, process, Action::Response(response)));
    }
    if actions.is_empty() {
        return true;
    }
    actions.sort_by_key(|&(at, _, _)| at);
    let history = History::from_actions(actions.into_iter().map(|(_, p, a)| (p, a)).collect());
    WGLChecker::<Register>::is_linearizable(history)
}
