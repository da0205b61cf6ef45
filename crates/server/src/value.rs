//! How Redis's byte strings are kept in the core, whose keys and values are UTF-8
//! strings, and how a deleted key is kept.
//!
//! - A key or value's bytes become the characters U+0000 to U+00FF, one per byte
//!   (Latin-1): any byte string round-trips, ASCII (nearly every key and value) is stored
//!   as it is, and a byte above 0x7F costs two.
//! - The core answers a key never written with the empty string. So the empty string
//!   means "no such key", `DEL` writes it (a tombstone that reads exactly as a key never
//!   written, with no change to the log, the WAL or the snapshot formats), and a value
//!   that is empty in Redis is stored as [`EMPTY_VALUE`], one character no byte string
//!   maps to.
//!
//! A deleted key keeps a slot in the state machine (8 bytes and its key), as a key
//! overwritten does: the state machine's tables are insert-only.

use std::borrow::Cow;

/// How an empty Redis value is stored: U+0100, outside what bytes map to.
pub const EMPTY_VALUE: &str = "\u{100}";

/// The string the core keeps for these bytes.
pub fn to_core(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // ASCII is UTF-8 and maps to itself.
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
}

/// The stored form of a value written with `SET` (never the tombstone).
pub fn value_to_core(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_empty() {
        Cow::Borrowed(EMPTY_VALUE)
    } else {
        to_core(bytes)
    }
}

/// The bytes a stored value stands for; `None` for a key that does not exist (never
/// written, or deleted).
pub fn value_from_core(stored: &str) -> Option<Cow<'_, [u8]>> {
    if stored.is_empty() {
        return None;
    }
    if stored == EMPTY_VALUE {
        return Some(Cow::Borrowed(&[]));
    }
    Some(bytes_from_core(stored))
}

/// The bytes a stored key or value stands for. A character past U+00FF cannot come from
/// bytes; should one be there, its UTF-8 is returned as it is.
pub fn bytes_from_core(stored: &str) -> Cow<'_, [u8]> {
    if stored.is_ascii() {
        return Cow::Borrowed(stored.as_bytes());
    }
    if stored.chars().any(|c| u32::from(c) > 0xFF) {
        return Cow::Borrowed(stored.as_bytes());
    }
    Cow::Owned(stored.chars().map(|c| c as u8).collect())
}

/// Whether a stored value says the key exists.
pub fn exists(stored: &str) -> bool {
    !stored.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_value_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let stored = value_to_core(&bytes);
            prop_assert!(exists(&stored));
            let read = value_from_core(&stored);
            prop_assert_eq!(read.as_deref(), Some(&bytes[..]));
            let key = to_core(&bytes);
            prop_assert_eq!(&*bytes_from_core(&key), &bytes[..]);
        }
    }

    #[test]
    fn empty_and_missing_differ() {
        assert_eq!(value_from_core(""), None);
        assert_eq!(
            value_from_core(&value_to_core(b"")).as_deref(),
            Some(&b""[..])
        );
        assert!(matches!(to_core(b"abc"), Cow::Borrowed("abc")));
    }
}
