//! One shard of the state machine's index: an open-addressing table of [`LatestPut`]s with
//! linear probing. Insert-only, since the store never forgets a key, so there are no
//! tombstones and a probe ends at the first empty slot.
//!
//! Not hashbrown: a hashbrown lookup reads the control bytes and then the slot, two cache
//! misses in a table of megabytes (they were most of `KvStore::apply` in a profile at
//! 50,000 puts/s). Here a probe reads 8-byte slots, neighbours sharing a cache line, and a
//! slot's address is known before the lookup, so a batch of applies prefetches the slots
//! of the entries ahead of it ([`Table::prefetch`]).

use crate::prefetch::prefetch_read;

/// A key's latest applied put: where it is (see `KvStore`) and 32 bits of its key's hash. The tag's low
/// bits place it in the table, so growing needs no keys; all of it filters candidates, so
/// a lookup reads a key back from the log only on a tag match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatestPut {
    pub index: u32,
    pub tag: u32,
}

/// Log index 0 is never a put (and a snapshot's pair has its top bit set), so 0 marks an
/// empty slot.
const EMPTY: LatestPut = LatestPut { index: 0, tag: 0 };
/// The share of its slots a table may fill before it grows, in 32nds: 3/4 on average,
/// each table its own (`with_slots`) within these bounds, so that tables filling at the
/// same rate do not all grow at the same moment (see `KvStore`). Linear probing stays
/// short: at 27/32, about 3.7 slots for a hit and 24 for a miss at the worst.
pub const LOAD_MAX_32NDS: std::ops::RangeInclusive<usize> = 21..=27;

/// Invariant: `slots.len()` is a power of two; every put sits at or after its home slot
/// with no empty slot in between (wrapping around); no more than `load_max_32nds` 32nds
/// of the slots are taken.
#[derive(Debug)]
pub struct Table {
    slots: Box<[LatestPut]>,
    len: usize,
    load_max_32nds: usize,
}

impl Table {
    /// A table of `slots` slots, rounded up to a power of two (4 at least), which grows
    /// before more than `load_max_32nds` 32nds of them are taken (within
    /// `LOAD_MAX_32NDS`).
    pub fn with_slots(slots: usize, load_max_32nds: usize) -> Table {
        debug_assert!(LOAD_MAX_32NDS.contains(&load_max_32nds));
        Table {
            slots: vec![EMPTY; slots.max(4).next_power_of_two()].into_boxed_slice(),
            len: 0,
            load_max_32nds,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn heap_bytes(&self) -> usize {
        size_of_val(&*self.slots)
    }

    /// Asks the CPU to start loading the slot where a probe for `tag` begins.
    pub fn prefetch(&self, tag: u32) {
        prefetch_read(&self.slots[self.home(tag)]);
    }

    /// The log index of the first put with `tag` on its probe: the key's latest put, but
    /// for the rare other key with the same tag. For prefetching what a lookup will read.
    pub fn first_with_tag(&self, tag: u32) -> Option<u32> {
        self.find(tag, |_| true).map(|put| put.index)
    }

    /// The put with `tag` whose key `is_key` accepts (given its log index).
    pub fn find(&self, tag: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<LatestPut> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(tag);
        loop {
            let slot = self.slots[i];
            if slot.index == EMPTY.index {
                return None;
            }
            if slot.tag == tag && is_key(slot.index) {
                return Some(slot);
            }
            i = (i + 1) & mask;
        }
    }

    /// Makes `put` the latest for its key: it replaces the put with the same tag whose key
    /// `is_key` accepts, or takes the first empty slot.
    pub fn upsert(&mut self, put: LatestPut, mut is_key: impl FnMut(u32) -> bool) {
        debug_assert_ne!(put.index, EMPTY.index, "index 0 marks an empty slot");
        if (self.len + 1) * 32 > self.slots.len() * self.load_max_32nds {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(put.tag);
        loop {
            let slot = self.slots[i];
            if slot.index == EMPTY.index {
                self.slots[i] = put;
                self.len += 1;
                return;
            }
            if slot.tag == put.tag && is_key(slot.index) {
                self.slots[i] = put;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Each stored put, in slot order.
    pub fn for_each(&self, mut f: impl FnMut(LatestPut)) {
        for &slot in self.slots.iter().filter(|s| s.index != EMPTY.index) {
            f(slot);
        }
    }

    /// Lets `f` change where each stored put is (not its tag, which places it).
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut LatestPut)) {
        for slot in self.slots.iter_mut().filter(|s| s.index != EMPTY.index) {
            f(slot);
            debug_assert_ne!(slot.index, EMPTY.index, "index 0 marks an empty slot");
        }
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & (self.slots.len() - 1)
    }

    /// Doubles the slots and places every put again, by its tag alone: the keys are all
    /// different already, so none is read back from the log.
    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2].into_boxed_slice();
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for put in old.iter().filter(|p| p.index != EMPTY.index) {
            let mut i = self.home(put.tag);
            while self.slots[i].index != EMPTY.index {
                i = (i + 1) & mask;
            }
            self.slots[i] = *put;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Keys are numbers; a put's "log" maps its index to its key.
    fn upsert(t: &mut Table, log: &mut Vec<u64>, key: u64, tag: u32) {
        log.push(key);
        let index = log.len() as u32;
        let log_view = log.clone();
        t.upsert(LatestPut { index, tag }, |i| {
            log_view[i as usize - 1] == key
        });
    }

    #[test]
    fn agrees_with_a_map_through_growth_collisions_and_overwrites() {
        let mut t = Table::with_slots(4, 27);
        let mut log = Vec::new();
        let mut model: HashMap<u64, u32> = HashMap::new();
        // Few distinct tags: many keys share one, and homes collide and wrap around.
        let tag_of = |key: u64| (key.wrapping_mul(0x9E37_79B9) % 13) as u32 * 0x1000_0001;
        for step in 0..3_000u64 {
            let key = (step * 7919) % 700;
            upsert(&mut t, &mut log, key, tag_of(key));
            model.insert(key, log.len() as u32);
        }
        assert_eq!(t.len(), model.len());
        for (&key, &index) in &model {
            let found = t.find(tag_of(key), |i| log[i as usize - 1] == key);
            assert_eq!(
                found,
                Some(LatestPut {
                    index,
                    tag: tag_of(key)
                }),
                "key {key}"
            );
        }
        assert_eq!(
            t.find(tag_of(5_000), |i| log[i as usize - 1] == 5_000),
            None
        );
        assert!(t.slots.len() * 27 >= t.len() * 32, "load stays under 27/32");
    }

    #[test]
    fn a_tag_match_with_another_key_is_not_a_hit() {
        let mut t = Table::with_slots(8, 24);
        let mut log = Vec::new();
        upsert(&mut t, &mut log, 1, 42);
        upsert(&mut t, &mut log, 2, 42);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.find(42, |i| log[i as usize - 1] == 2).map(|p| p.index),
            Some(2)
        );
        assert_eq!(t.find(42, |i| log[i as usize - 1] == 3), None);
    }
}
