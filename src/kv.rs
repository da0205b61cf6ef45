//! The replicated state machine: a map from key to value. Deterministic: the same
//! commands in the same order give the same state on every replica.
//!
//! The map holds no keys or values of its own. Every value it could return is the value of
//! an applied put, which is a committed log entry, and committed entries are never cut from
//! the log (`Log::merge` refuses) nor compacted (replicas live for one run). So for each
//! key the map keeps only the log index of the latest applied put of that key, and reads
//! key and value from the log: a key costs a 4-byte slot in a hash table instead of a
//! second copy of its key and value in two more allocations.

use crate::raft::message::LogIndex;
use ahash::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

/// Where the store reads the puts it indexes: the log, in a replica.
pub trait PutLog {
    /// The key and value of the put at `index`; `None` for a no-op or past the end.
    fn put_at(&self, index: LogIndex) -> Option<(&str, &str)>;
}

/// The largest log index the store can refer to (slots are `u32` to halve the table).
/// At 64 bytes of key and value per put, a log this long would hold 256 GiB: a replica
/// runs out of memory long before.
pub const APPLIED_INDEX_MAX: u64 = u32::MAX as u64;

/// Every method that takes a `log` must be given the same log, holding every index
/// applied so far (applied entries are committed, so the log never loses them).
#[derive(Default, Debug)]
pub struct KvStore {
    /// Per key written: the log index of its latest applied put, found by the hash of the
    /// key bytes (read from the log).
    latest_put: HashTable<u32>,
    hasher: RandomState,
}

impl KvStore {
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// The value of `key`, or the empty string for a key never written (the protocol's
    /// answer for it).
    pub fn get<'log>(&self, log: &'log impl PutLog, key: &str) -> &'log str {
        let hash = self.hasher.hash_one(key);
        self.latest_put
            .find(hash, |&slot| put(log, slot).0 == key)
            .map_or("", |&slot| put(log, slot).1)
    }

    /// Applies the entry at `index` of `log`: a put becomes its key's value; a no-op
    /// changes nothing.
    pub fn apply(&mut self, log: &impl PutLog, index: LogIndex) {
        let Some((key, _)) = log.put_at(index) else {
            return;
        };
        assert!(
            index.0 <= APPLIED_INDEX_MAX,
            "log index past the store's reach"
        );
        let slot = index.0 as u32;
        let hasher = &self.hasher;
        let hash = hasher.hash_one(key);
        // Growing the table rehashes every key, read back from the log.
        match self.latest_put.entry(
            hash,
            |&other| put(log, other).0 == key,
            |&other| hasher.hash_one(put(log, other).0),
        ) {
            Entry::Occupied(mut latest) => *latest.get_mut() = slot,
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
            }
        }
    }

    /// Keys written.
    pub fn len(&self) -> usize {
        self.latest_put.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest_put.is_empty()
    }

    /// Heap bytes held (the table's allocation), for measuring what a key costs.
    pub fn heap_bytes(&self) -> usize {
        self.latest_put.allocation_size()
    }
}

/// The put a slot of the table names. Only applied puts are ever stored, so it exists.
fn put(log: &impl PutLog, slot: u32) -> (&str, &str) {
    log.put_at(LogIndex(u64::from(slot)))
        .expect("the store refers only to applied puts, which stay in the log")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of puts only (`None` for a no-op), index 1 first.
    #[derive(Default)]
    struct Puts(Vec<Option<(String, String)>>);

    impl Puts {
        fn put(&mut self, key: &str, value: &str) -> LogIndex {
            self.0.push(Some((key.to_string(), value.to_string())));
            LogIndex(self.0.len() as u64)
        }
        fn noop(&mut self) -> LogIndex {
            self.0.push(None);
            LogIndex(self.0.len() as u64)
        }
    }

    impl PutLog for Puts {
        fn put_at(&self, index: LogIndex) -> Option<(&str, &str)> {
            let (k, v) = self.0.get(index.0.checked_sub(1)? as usize)?.as_ref()?;
            Some((k, v))
        }
    }

    #[test]
    fn unwritten_keys_read_empty_and_puts_overwrite() {
        let mut log = Puts::default();
        let mut kv = KvStore::new();
        assert_eq!(kv.get(&log, "k"), "");
        let i = log.put("k", "1");
        kv.apply(&log, i);
        assert_eq!(kv.get(&log, "k"), "1");
        let i = log.put("k", "2");
        kv.apply(&log, i);
        assert_eq!(kv.get(&log, "k"), "2");
        assert_eq!(kv.len(), 1);
        assert_eq!(kv.get(&log, "K"), "");
        assert_eq!(kv.get(&log, ""), "");
    }

    #[test]
    fn a_value_is_read_from_the_latest_applied_put_of_its_key() {
        let mut log = Puts::default();
        let mut kv = KvStore::new();
        let noop = log.noop();
        kv.apply(&log, noop);
        assert!(kv.is_empty());
        let first = log.put("a", "old");
        let other = log.put("b", "x");
        let latest = log.put("a", "new");
        // Not yet applied: a put in the log is not yet a value.
        let pending = log.put("a", "uncommitted");
        for i in [first, other, latest] {
            kv.apply(&log, i);
        }
        assert_eq!(kv.get(&log, "a"), "new");
        assert_eq!(kv.get(&log, "b"), "x");
        kv.apply(&log, pending);
        assert_eq!(kv.get(&log, "a"), "uncommitted");
        assert_eq!(kv.len(), 2);
        // An empty key and an empty value are a key and a value like any other.
        let empty = log.put("", "");
        kv.apply(&log, empty);
        assert_eq!(kv.len(), 3);
        assert_eq!(kv.get(&log, ""), "");
        let i = log.put("", "e");
        kv.apply(&log, i);
        assert_eq!(kv.get(&log, ""), "e");
    }

    #[test]
    fn many_keys_survive_the_table_growing() {
        let mut log = Puts::default();
        let mut kv = KvStore::new();
        let key = |k: usize| format!("{k:032}");
        for round in 0..3 {
            for k in 0..5_000 {
                let i = log.put(&key(k), &format!("{round}:{k}"));
                kv.apply(&log, i);
            }
        }
        assert_eq!(kv.len(), 5_000);
        for k in 0..5_000 {
            assert_eq!(kv.get(&log, &key(k)), format!("2:{k}"));
        }
        assert_eq!(kv.get(&log, &key(5_000)), "");
    }
}
