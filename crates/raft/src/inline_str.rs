//! A short string stored inline: MIDs and values are copied into replies without touching
//! the heap (the protocol's MIDs are 16 to 32 characters, values 32).

use smallvec::SmallVec;
use std::fmt;

/// Bytes kept inline before spilling to the heap.
pub const INLINE_STR_BYTES: usize = 32;

/// A UTF-8 string up to [`INLINE_STR_BYTES`] long without a heap allocation.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct InlineStr(SmallVec<[u8; INLINE_STR_BYTES]>);

impl InlineStr {
    pub fn as_str(&self) -> &str {
        // Only ever built from a `&str`, so the bytes are UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for InlineStr {
    fn from(s: &str) -> Self {
        InlineStr(SmallVec::from_slice(s.as_bytes()))
    }
}

impl fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for InlineStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_short_and_long_strings() {
        let short = InlineStr::from("4GAZQ1M2X9T7B3C5");
        assert_eq!(short.as_str(), "4GAZQ1M2X9T7B3C5");
        let long: String = "x".repeat(100);
        assert_eq!(InlineStr::from(long.as_str()).as_str(), long);
        assert!(InlineStr::default().is_empty());
    }
}
