//! How available the cluster stayed: the share of operations that succeeded while a
//! fault held and while none did, and after each heal, how long until the first write
//! invoked after it succeeded (a write needs a leader with a working majority; a read
//! may be served from a lease). The final reads are left out.

use crate::history::Type;
use crate::nemesis::Span;
use crate::operations::{Kind, Operation};
use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Availability {
    pub during_faults: Share,
    pub without_faults: Share,
    /// Per heal, in order: milliseconds from the heal to the first successful write
    /// invoked after it; `None` if none succeeded before the next fault or the end.
    pub recovery_ms: Vec<Option<f64>>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Share {
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
}

impl Share {
    fn add(&mut self, outcome: Type) {
        self.ops += 1;
        match outcome {
            Type::Ok => self.ok += 1,
            Type::Fail => self.fail += 1,
            _ => self.info += 1,
        }
    }

    pub fn merged(self, other: Share) -> Share {
        Share {
            ops: self.ops + other.ops,
            ok: self.ok + other.ok,
            fail: self.fail + other.fail,
            info: self.info + other.info,
        }
    }

    pub fn ok_percent(&self) -> f64 {
        if self.ops == 0 {
            return 0.0;
        }
        100.0 * self.ok as f64 / self.ops as f64
    }
}

/// `ops` are the workload's (not the final reads), `spans` the faults in order.
pub fn measure(ops: &[Operation], spans: &[Span]) -> Availability {
    let mut availability = Availability::default();
    for op in ops {
        let faulty = spans
            .iter()
            .any(|s| s.start <= op.invoke && op.invoke <= s.stop);
        if faulty {
            availability.during_faults.add(op.outcome);
        } else {
            availability.without_faults.add(op.outcome);
        }
    }
    for (i, span) in spans.iter().enumerate() {
        let until = spans.get(i + 1).map_or(u64::MAX, |next| next.start);
        let first = ops
            .iter()
            .filter(|o| o.kind != Kind::Read && o.outcome == Type::Ok)
            .filter(|o| o.invoke >= span.stop && o.invoke < until)
            .filter_map(|o| o.complete)
            .min();
        availability
            .recovery_ms
            .push(first.map(|t| (t - span.stop) as f64 / 1e6));
    }
    availability
}
