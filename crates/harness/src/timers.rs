//! A core's armed timers, as its driver keeps them from `SetTimer` and `CancelTimer`.

use raft::Timer;
use raft::time::Time;

#[derive(Clone, Copy, Default)]
struct Slot {
    deadline: Option<Time>,
    /// Bumped at every set and cancel, so that a driver which scheduled a firing can tell
    /// one made stale by a later set or cancel.
    generation: u64,
}

/// One slot per `Timer::slot` of a core with this many peers, more as its membership
/// grows.
pub struct Timers {
    slots: Vec<Slot>,
}

impl Timers {
    pub fn new(peers: usize) -> Timers {
        Timers {
            slots: vec![Slot::default(); Timer::count(peers)],
        }
    }

    /// Arms `timer` for `at`, replacing its earlier deadline; returns the generation a
    /// scheduled firing must name.
    pub fn set(&mut self, timer: Timer, at: Time) -> u64 {
        if timer.slot() >= self.slots.len() {
            self.slots.resize(timer.slot() + 1, Slot::default());
        }
        let slot = &mut self.slots[timer.slot()];
        slot.generation += 1;
        slot.deadline = Some(at);
        slot.generation
    }

    pub fn cancel(&mut self, timer: Timer) {
        if let Some(slot) = self.slots.get_mut(timer.slot()) {
            slot.generation += 1;
            slot.deadline = None;
        }
    }

    /// Disarms the timer in `slot`, which fires now.
    pub fn disarm(&mut self, slot: usize) {
        self.slots[slot].deadline = None;
    }

    /// Disarms the timer in `slot` if `generation` is still its latest arming: whether a
    /// firing scheduled for that arming is due.
    pub fn take_if_current(&mut self, slot: usize, generation: u64) -> bool {
        let s = &mut self.slots[slot];
        let current = s.deadline.is_some() && s.generation == generation;
        if current {
            s.deadline = None;
        }
        current
    }

    /// Every timer disarmed, and every firing scheduled so far made stale: a restart.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            slot.deadline = None;
            slot.generation += 1;
        }
    }

    /// The armed deadlines, by slot.
    pub fn armed(&self) -> impl Iterator<Item = (usize, Time)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| s.deadline.map(|at| (slot, at)))
    }

    pub fn deadline(&self, timer: Timer) -> Option<Time> {
        self.slots.get(timer.slot()).and_then(|s| s.deadline)
    }
}
