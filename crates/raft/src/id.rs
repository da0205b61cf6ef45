//! Node identifiers: the protocol's four hexadecimal characters, held as a `u16`.
//!
//! Replicas and clients share one ID space. `FFFF` is special: as a destination it means
//! "every replica", as a leader it means "unknown". IDs are parsed once at the edge
//! (codec, command line) so the rest of the code compares integers.

use std::fmt;

/// A replica's or a client's ID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u16);

impl NodeId {
    /// `FFFF`: "broadcast" as a destination, "unknown" as a leader.
    pub const BROADCAST: NodeId = NodeId(0xFFFF);
    /// The same value read as a leader: no leader is known.
    pub const UNKNOWN: NodeId = NodeId(0xFFFF);

    /// Parses exactly four hexadecimal characters (either case).
    pub fn parse(text: &str) -> Option<NodeId> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Parses exactly four hexadecimal bytes (either case).
    pub fn parse_bytes(bytes: &[u8]) -> Option<NodeId> {
        if bytes.len() != 4 {
            return None;
        }
        let mut value: u16 = 0;
        for &b in bytes {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return None,
            };
            value = (value << 4) | u16::from(digit);
        }
        Some(NodeId(value))
    }

    /// The four upper-case hexadecimal characters of this ID, without allocating.
    pub fn to_hex(self) -> [u8; 4] {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let v = self.0;
        [
            DIGITS[usize::from(v >> 12)],
            DIGITS[usize::from((v >> 8) & 0xF)],
            DIGITS[usize::from((v >> 4) & 0xF)],
            DIGITS[usize::from(v & 0xF)],
        ]
    }

    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // to_hex only yields ASCII hex digits.
        f.write_str(std::str::from_utf8(&self.to_hex()).unwrap_or("????"))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_upper_case() {
        assert_eq!(NodeId::parse("001c"), Some(NodeId(0x1C)));
        assert_eq!(NodeId::parse("FFFF"), Some(NodeId::BROADCAST));
        assert_eq!(NodeId(0x1C).to_string(), "001C");
        assert_eq!(&NodeId(0xABCD).to_hex(), b"ABCD");
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        for bad in ["", "001", "00001", "00g1", " 001", "+001", "0x01"] {
            assert_eq!(NodeId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_id_round_trips() {
        for v in 0..=u16::MAX {
            let id = NodeId(v);
            assert_eq!(NodeId::parse_bytes(&id.to_hex()), Some(id));
        }
    }
}
