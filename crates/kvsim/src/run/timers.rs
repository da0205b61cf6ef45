//! Timed actions: everything but client requests that falls due at a time (faults, resumes
//! of paused replicas, restarts, delayed deliveries), earliest first, ties in the order scheduled.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::scenario::config::EventKind;

pub(super) enum Action {
    Fault(EventKind),
    Resume(usize),
    /// A replica taken down by a restart event starts again.
    StartAgain(usize),
    Deliver {
        dst: usize,
        bytes: Vec<u8>,
    },
}

struct Timed {
    at_us: u64,
    seq: u64,
    action: Action,
}

impl PartialEq for Timed {
    fn eq(&self, o: &Self) -> bool {
        (self.at_us, self.seq) == (o.at_us, o.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first; ties in insertion
    // order (as the classic's insort).
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at_us, o.seq).cmp(&(self.at_us, self.seq))
    }
}

/// The actions to come, in the order they fall due.
#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Timed>,
    seq: u64,
}

impl Timers {
    pub(super) fn schedule(&mut self, at_us: u64, action: Action) {
        self.seq += 1;
        self.heap.push(Timed {
            at_us,
            seq: self.seq,
            action,
        });
    }

    /// When the earliest action falls due.
    pub(super) fn next_due_us(&self) -> Option<u64> {
        self.heap.peek().map(|t| t.at_us)
    }

    /// Takes the earliest action, due or not.
    pub(super) fn pop(&mut self) -> Option<Action> {
        self.heap.pop().map(|t| t.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(t: &mut Timers) -> Vec<usize> {
        std::iter::from_fn(|| match t.pop()? {
            Action::Resume(r) => Some(r),
            _ => None,
        })
        .collect()
    }

    #[test]
    fn earliest_first_ties_in_the_order_scheduled() {
        let mut t = Timers::default();
        for (at_us, r) in [(30, 0), (10, 1), (30, 2), (10, 3), (20, 4)] {
            t.schedule(at_us, Action::Resume(r));
        }
        assert_eq!(t.next_due_us(), Some(10));
        assert_eq!(order(&mut t), [1, 3, 4, 0, 2]);
        assert_eq!(t.next_due_us(), None);
    }
}
