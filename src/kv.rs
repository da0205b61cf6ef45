//! The replicated state machine: a map from key to value. Deterministic: the same
//! commands in the same order give the same state on every replica.

use ahash::AHashMap;

#[derive(Default, Debug)]
pub struct KvStore {
    map: AHashMap<Box<str>, Box<str>>,
}

impl KvStore {
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// The value of `key`, or the empty string for a key never written (the protocol's
    /// answer for it).
    pub fn get(&self, key: &str) -> &str {
        self.map.get(key).map_or("", |v| v)
    }

    pub fn put(&mut self, key: &str, value: &str) {
        match self.map.get_mut(key) {
            Some(slot) => {
                if **slot != *value {
                    *slot = value.into();
                }
            }
            None => {
                self.map.insert(key.into(), value.into());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_keys_read_empty_and_puts_overwrite() {
        let mut kv = KvStore::new();
        assert_eq!(kv.get("k"), "");
        kv.put("k", "1");
        kv.put("k", "2");
        assert_eq!(kv.get("k"), "2");
        assert_eq!(kv.len(), 1);
    }
}
