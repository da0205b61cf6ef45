//! A hashed timer wheel on integer time. It never reads a clock: callers pass `now`.
//!
//! # How it works
//!
//! Time is cut into ticks (1 ms by default) and the wheel has a fixed number of slots
//! (512 by default, so one rotation is 512 ms). A timer due at tick `k` lives in slot
//! `k % slots`, in an intrusive doubly linked list threaded through a slab of nodes, so
//! insert and cancel are O(1). A deadline further away than one rotation shares its slot
//! with nearer ones and is simply skipped until its own tick comes round ("rounds").
//!
//! The wheel keeps a cursor: the tick of the last `now` it was told about. Collecting the
//! timers due at `now` walks the slots from the cursor to `now`'s tick, moving every node
//! whose deadline is `<= now` into a small min-heap ordered by (deadline, insertion order),
//! from which they are popped one at a time. If `now` is a full rotation or more past the
//! cursor (a stall of hours, say), every slot is visited once instead of every elapsed
//! tick: O(slots + fired), not O(elapsed ticks).
//!
//! Handles carry a generation, bumped every time a node is freed, so a stale handle (for a
//! timer that already fired or was cancelled, whose node may now hold another timer)
//! cancels nothing.
//!
//! Deadlines are exact: a timer never fires before its deadline, even one within the
//! current tick. A deadline already in the past goes into the cursor's slot, which every
//! collection visits, so it fires at the next `pop_expired`/`advance`.

use raft::time::{Span, Time};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Default tick: 1 ms.
pub const TICK_US_DEFAULT: u64 = 1_000;
/// Default number of slots: one rotation is 512 ticks.
pub const SLOTS_DEFAULT: usize = 512;

/// Marks "no node" in the intrusive lists and the free list.
const NIL: u32 = u32::MAX;

/// Names one inserted timer, to cancel it. Stale handles are harmless.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Free,
    /// Linked into the list of slot `tick % slots`.
    Slotted,
    /// Due, waiting in the ready heap.
    Ready,
}

#[derive(Clone, Copy, Debug)]
struct Node<T> {
    deadline: Time,
    /// The tick the node is filed under (its deadline's tick, or the cursor's if that was
    /// already past when inserted).
    tick: u64,
    /// Insertion order, to break ties between equal deadlines.
    seq: u64,
    prev: u32,
    /// The next node in the slot list, or in the free list when free.
    next: u32,
    generation: u32,
    state: State,
    payload: Option<T>,
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

/// A due timer waiting to be popped: ordered by deadline, then insertion order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct ReadyKey {
    deadline: Time,
    seq: u64,
    index: u32,
    generation: u32,
}

/// A hashed timer wheel holding small `Copy` payloads.
#[derive(Debug)]
pub struct TimerWheel<T: Copy> {
    tick_us: u64,
    slots: Vec<List>,
    nodes: Vec<Node<T>>,
    free_head: u32,
    /// The tick of the latest `now` seen by a collection.
    cursor: u64,
    next_seq: u64,
    /// Timers in slot lists (not counting the ready heap).
    slotted: usize,
    /// Live timers in total.
    live: usize,
    ready: BinaryHeap<Reverse<ReadyKey>>,
    /// `next_deadline()`'s answer while nothing has invalidated it.
    next_cache: Option<Option<Time>>,
}

impl<T: Copy> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> TimerWheel<T> {
    /// A wheel with a 1 ms tick and 512 slots.
    pub fn new() -> Self {
        Self::with_geometry(Span::from_micros(TICK_US_DEFAULT), SLOTS_DEFAULT)
    }

    /// A wheel with the given tick and number of slots (both non-zero).
    pub fn with_geometry(tick: Span, slots: usize) -> Self {
        assert!(tick.as_micros() > 0, "tick must be positive");
        assert!(slots > 0, "a wheel needs slots");
        TimerWheel {
            tick_us: tick.as_micros(),
            slots: vec![
                List {
                    head: NIL,
                    tail: NIL
                };
                slots
            ],
            nodes: Vec::new(),
            free_head: NIL,
            cursor: 0,
            next_seq: 0,
            slotted: 0,
            live: 0,
            ready: BinaryHeap::new(),
            next_cache: Some(None),
        }
    }

    /// How many timers are armed (including due ones not yet popped).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Arms a timer for `deadline`. A deadline at or before the last `now` seen fires at
    /// the next `pop_expired`/`advance`.
    pub fn insert(&mut self, deadline: Time, payload: T) -> TimerHandle {
        let index = self.alloc();
        let tick = self.tick_of(deadline).max(self.cursor);
        let seq = self.next_seq;
        self.next_seq += 1;
        let node = &mut self.nodes[index as usize];
        node.deadline = deadline;
        node.tick = tick;
        node.seq = seq;
        node.state = State::Slotted;
        node.payload = Some(payload);
        let generation = node.generation;
        self.link(index);
        self.live += 1;
        if let Some(cached) = self.next_cache {
            self.next_cache = Some(Some(match cached {
                Some(t) => t.min(deadline),
                None => deadline,
            }));
        }
        TimerHandle { index, generation }
    }

    /// Disarms the timer `handle` names and returns its payload, or `None` if it already
    /// fired or was cancelled.
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        let node = self.nodes.get(handle.index as usize)?;
        if node.generation != handle.generation || node.state == State::Free {
            return None;
        }
        let deadline = node.deadline;
        match node.state {
            State::Slotted => {
                self.unlink(handle.index);
                self.slotted -= 1;
            }
            // Its heap entry goes stale with the generation bump and is skipped later.
            State::Ready => {}
            State::Free => unreachable!(),
        }
        if self.next_cache == Some(Some(deadline)) {
            self.next_cache = None;
        }
        Some(self.release(handle.index))
    }

    /// The earliest deadline armed, or `None` if no timer is. Cheap when called repeatedly:
    /// the answer is cached until a cancel, fire or collection invalidates it; recomputing
    /// walks at most one rotation of slots.
    pub fn next_deadline(&mut self) -> Option<Time> {
        if let Some(cached) = self.next_cache {
            return cached;
        }
        let answer = self.compute_next_deadline();
        self.next_cache = Some(answer);
        answer
    }

    /// Removes and returns the earliest timer with a deadline `<= now`, if any. Timers are
    /// returned in deadline order, ties in insertion order. Timers inserted or cancelled
    /// between calls are taken into account, so a caller can fire one, react (arming and
    /// cancelling others), and pop again.
    pub fn pop_expired(&mut self, now: Time) -> Option<T> {
        self.collect(now);
        while let Some(Reverse(key)) = self.ready.pop() {
            let node = &self.nodes[key.index as usize];
            if node.generation != key.generation || node.state != State::Ready {
                continue; // cancelled while due
            }
            self.next_cache = None;
            return Some(self.release(key.index));
        }
        None
    }

    /// Fires every timer due at `now` into `fired`, in deadline order (ties in insertion
    /// order).
    pub fn advance(&mut self, now: Time, fired: &mut Vec<T>) {
        while let Some(payload) = self.pop_expired(now) {
            fired.push(payload);
        }
    }

    fn tick_of(&self, t: Time) -> u64 {
        t.as_micros() / self.tick_us
    }

    fn slot_of(&self, tick: u64) -> usize {
        (tick % self.slots.len() as u64) as usize
    }

    /// Moves every slotted node with a deadline `<= now` into the ready heap and moves the
    /// cursor to `now`'s tick (never backwards).
    fn collect(&mut self, now: Time) {
        let target = self.tick_of(now).max(self.cursor);
        if self.slotted > 0 {
            let slots = self.slots.len() as u64;
            let span = target - self.cursor;
            if span >= slots {
                // A stall of a rotation or more: every slot once, whatever the gap.
                for slot in 0..self.slots.len() {
                    self.collect_slot(slot, now);
                }
            } else {
                for tick in self.cursor..=target {
                    self.collect_slot(self.slot_of(tick), now);
                    if self.slotted == 0 {
                        break;
                    }
                }
            }
        }
        self.cursor = target;
    }

    fn collect_slot(&mut self, slot: usize, now: Time) {
        let mut index = self.slots[slot].head;
        while index != NIL {
            let node = self.nodes[index as usize];
            let next = node.next;
            if node.deadline <= now {
                self.unlink(index);
                self.slotted -= 1;
                self.nodes[index as usize].state = State::Ready;
                self.ready.push(Reverse(ReadyKey {
                    deadline: node.deadline,
                    seq: node.seq,
                    index,
                    generation: node.generation,
                }));
                self.next_cache = None;
            }
            index = next;
        }
    }

    fn compute_next_deadline(&mut self) -> Option<Time> {
        // Drop cancelled entries from the top of the heap so its minimum is live.
        while let Some(Reverse(key)) = self.ready.peek() {
            let node = &self.nodes[key.index as usize];
            if node.generation == key.generation && node.state == State::Ready {
                break;
            }
            self.ready.pop();
        }
        let ready_min = self.ready.peek().map(|Reverse(key)| key.deadline);
        let slotted_min = self.slotted_min();
        match (ready_min, slotted_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest deadline among slotted nodes: walks slots from the cursor; the first
    /// slot holding a node filed under this rotation's tick for it holds the minimum. If
    /// none does, every node is at least a rotation away and the minimum seen wins.
    fn slotted_min(&self) -> Option<Time> {
        if self.slotted == 0 {
            return None;
        }
        let mut seen_min: Option<Time> = None;
        for offset in 0..self.slots.len() as u64 {
            let tick = self.cursor + offset;
            let mut in_rotation: Option<Time> = None;
            let mut index = self.slots[self.slot_of(tick)].head;
            while index != NIL {
                let node = &self.nodes[index as usize];
                if node.tick == tick {
                    in_rotation = Some(in_rotation.map_or(node.deadline, |t| t.min(node.deadline)));
                }
                seen_min = Some(seen_min.map_or(node.deadline, |t| t.min(node.deadline)));
                index = node.next;
            }
            if in_rotation.is_some() {
                return in_rotation;
            }
        }
        seen_min
    }

    fn alloc(&mut self) -> u32 {
        if self.free_head != NIL {
            let index = self.free_head;
            self.free_head = self.nodes[index as usize].next;
            return index;
        }
        let index = u32::try_from(self.nodes.len()).expect("fewer than 2^32 timers");
        assert!(index != NIL, "fewer than 2^32 - 1 timers");
        self.nodes.push(Node {
            deadline: Time::ZERO,
            tick: 0,
            seq: 0,
            prev: NIL,
            next: NIL,
            generation: 0,
            state: State::Free,
            payload: None,
        });
        index
    }

    /// Frees a node that is already out of any slot list and returns its payload.
    fn release(&mut self, index: u32) -> T {
        let node = &mut self.nodes[index as usize];
        let payload = node.payload.take().expect("a live node has a payload");
        node.state = State::Free;
        node.generation = node.generation.wrapping_add(1);
        node.prev = NIL;
        node.next = self.free_head;
        self.free_head = index;
        self.live -= 1;
        payload
    }

    fn link(&mut self, index: u32) {
        let slot = self.slot_of(self.nodes[index as usize].tick);
        let tail = self.slots[slot].tail;
        {
            let node = &mut self.nodes[index as usize];
            node.prev = tail;
            node.next = NIL;
        }
        if tail == NIL {
            self.slots[slot].head = index;
        } else {
            self.nodes[tail as usize].next = index;
        }
        self.slots[slot].tail = index;
        self.slotted += 1;
    }

    fn unlink(&mut self, index: u32) {
        let Node {
            prev, next, tick, ..
        } = self.nodes[index as usize];
        let slot = self.slot_of(tick);
        if prev == NIL {
            self.slots[slot].head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.slots[slot].tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        let node = &mut self.nodes[index as usize];
        node.prev = NIL;
        node.next = NIL;
    }
}

#[cfg(test)]
mod tests;
