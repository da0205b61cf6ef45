//! Compaction of the state machine into a new snapshot arena, a few shards at a time.
//!
//! `start_compaction` names the snapshot's index (at most the last applied: every value
//! the store holds is then from that index or later); each `compact_step` copies whole
//! shards, in order, until it has copied a given number of keys, pointing their slots at
//! the new arena; the step that copies the last shard makes the new arena the snapshot
//! and frees the old one. In between, a slot of a shard already copied that says
//! [`IN_SNAPSHOT`] names the new arena, and one of a shard not yet copied the old: a key
//! never changes shard, so the shard alone tells which (`place`). Puts applied meanwhile
//! go to the log as always, and are copied with the rest if their shard comes later: the
//! fuzzy snapshot the module above describes.

use super::{IN_SNAPSHOT, KvStore, Place, PutLog, SHARDS, Source, place, snapshot_slot};
use crate::log::Log;
use crate::message::{CommandRef, EntryRef, LogIndex, Term};

/// Log positions past `base` at which a finished compaction moves `base` up (a pass over
/// every slot, so rare: once per 2^30 entries). Slots reach `2^31` before they overflow
/// into [`IN_SNAPSHOT`], so the log may run another 2^30 entries before a compaction
/// must finish.
const REBASE_PAST: u64 = 1 << 30;

/// How many keys ahead of the copy their puts are prefetched: the slots name puts all
/// over the log, so each copy would otherwise wait for a cache miss or two.
const PREFETCH_AHEAD: usize = 8;

/// A compaction under way.
#[derive(Debug)]
pub(super) struct Compacting {
    arena: Log,
    index: LogIndex,
    term: Term,
    /// Shards before this one are copied.
    next_shard: usize,
    /// The slot values of the shard being copied, in the table's order (kept for its
    /// capacity).
    slots: Vec<u32>,
}

impl Compacting {
    pub(super) fn arena(&self) -> &Log {
        &self.arena
    }

    pub(super) fn has_copied(&self, shard: usize) -> bool {
        shard < self.next_shard
    }
}

impl KvStore {
    /// Starts a compaction into a snapshot of `index` (of `term`), which must be no later
    /// than the last index applied, and no earlier than the current snapshot's. The
    /// snapshot begins with `membership` if given: the cluster's membership as of
    /// `index`, which the state machine does not hold but a snapshot must.
    pub fn start_compaction(&mut self, index: LogIndex, term: Term, membership: Option<&str>) {
        debug_assert!(self.compacting.is_none(), "one compaction at a time");
        debug_assert!(index >= self.snapshot_index);
        let mut arena = Log::new();
        if let Some(text) = membership {
            arena.append(EntryRef {
                term: Term(0),
                command: CommandRef::Membership(text),
            });
        }
        self.compacting = Some(Compacting {
            arena,
            index,
            term,
            next_shard: 0,
            slots: Vec::new(),
        });
    }

    /// Whether a compaction is under way.
    pub fn is_compacting(&self) -> bool {
        self.compacting.is_some()
    }

    /// Copies whole shards until at least `keys` keys are copied or none is left. `true`
    /// once the compaction has finished: the new snapshot is in place, and the caller may
    /// drop the log through `snapshot_index()` (`Log::compact`), which `log` must still
    /// hold until then.
    pub fn compact_step(&mut self, log: &impl PutLog, keys: usize) -> bool {
        let Self {
            latest_put,
            snapshot,
            base,
            compacting,
            ..
        } = self;
        let Some(c) = compacting.as_mut() else {
            return false;
        };
        let mut copied = 0;
        while c.next_shard < SHARDS && copied < keys {
            let shard = c.next_shard;
            // The shard is not copied yet: its slots name the old arena or the log.
            let from = |at: u32| match place(*base, None, shard, at) {
                Place::Log(i) => (Source::Log(log), i),
                Place::Snapshot(i) | Place::Compacting(i) => (Source::Arena(&*snapshot), i),
            };
            c.slots.clear();
            latest_put[shard].for_each_mut(|slot| c.slots.push(slot.index));
            let n = c.slots.len();
            for k in 0..n {
                if let Some(&at) = c.slots.get(k + 2 * PREFETCH_AHEAD) {
                    let (source, i) = from(at);
                    source.prefetch_entry(i);
                }
                if let Some(&at) = c.slots.get(k + PREFETCH_AHEAD) {
                    let (source, i) = from(at);
                    source.prefetch_key(i);
                }
                let (source, i) = from(c.slots[k]);
                let (key, value) = source
                    .put_at(i)
                    .expect("the store refers only to applied puts, in an arena or the log");
                c.arena.append(EntryRef {
                    term: Term(0),
                    command: CommandRef::Put { key, value },
                });
                c.slots[k] = snapshot_slot(c.arena.last_index());
            }
            let mut k = 0;
            latest_put[shard].for_each_mut(|slot| {
                slot.index = c.slots[k];
                k += 1;
            });
            copied += n;
            c.next_shard += 1;
        }
        if c.next_shard < SHARDS {
            return false;
        }
        let Some(done) = compacting.take() else {
            return false;
        };
        self.snapshot = std::sync::Arc::new(done.arena);
        self.snapshot_index = done.index;
        self.snapshot_term = done.term;
        self.rebase_if_far(done.index);
        true
    }

    /// Moves `base` up to `to` (the new snapshot's index) once log positions near the
    /// `u32`'s reach. Every slot naming the log names an entry after `to`: each was copied
    /// into the arena, or written since its shard was, by a put after the last applied
    /// index at the start, which is at least `to`.
    fn rebase_if_far(&mut self, to: LogIndex) {
        if to.0 - self.base.0 < REBASE_PAST {
            return;
        }
        let shift = u32::try_from(to.0 - self.base.0).expect("positions fit a u32");
        for table in self.latest_put.iter_mut() {
            table.for_each_mut(|slot| {
                if slot.index & IN_SNAPSHOT == 0 {
                    debug_assert!(slot.index > shift);
                    slot.index -= shift;
                }
            });
        }
        self.base = to;
    }

    /// The whole compaction at once (for tests and tools).
    pub fn compact(&mut self, log: &impl PutLog, index: LogIndex, term: Term) {
        self.start_compaction(index, term, None);
        while !self.compact_step(log, usize::MAX) {}
    }
}
