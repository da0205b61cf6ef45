//! MIDs and put values that carry their own index.
//!
//! kvsim makes every MID and every put value itself, so it can write into each the index
//! it will be found under: a MID names its attempt (the index into the clients' history),
//! a value its id (the index into the clients' values). A reply is then matched by an
//! array index instead of a hash table that grows with every request; at tens of thousands
//! of requests a second those tables cost CPU on every reply, and pre-sizing them made the
//! first inserts fault their pages in just as load started.
//!
//! An index read back from a reply is only a claim: replicas are untrusted and may return
//! garbage, or a MID or value we never made. The caller must compare the whole stored MID
//! or value before believing it; these functions only decode, and never panic.

use rand::Rng;
use rand::rngs::SmallRng;

pub type Mid = [u8; 16];

/// The alphabet of MIDs (and keys); also the digits, in order, of a MID's attempt index.
pub const MID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// The random part makes a MID that a replica garbles or makes up unlikely to name a real
/// attempt, and keeps MIDs as opaque to replicas as the classic simulator's.
const MID_RANDOM_LEN: usize = 8;
const MID_INDEX_LEN: usize = 16 - MID_RANDOM_LEN;
const MID_BASE: u64 = MID_CHARS.len() as u64;
/// 36^8 ≈ 2.8e12 attempts a run can name; memory runs out long before.
pub const ATTEMPTS_MAX: u64 = MID_BASE.pow(MID_INDEX_LEN as u32);

const HEX: &[u8] = b"0123456789abcdef";
/// A put value: its id in lowercase hex, then random hex digits.
pub const VALUE_LEN: usize = 32;
/// Eight hex digits hold any `u32` id.
const VALUE_ID_LEN: usize = 8;

/// A new MID for attempt `attempt`: random characters, then the index in base 36.
pub fn new_mid(rng: &mut SmallRng, attempt: usize) -> Mid {
    assert!(
        (attempt as u64) < ATTEMPTS_MAX,
        "attempt {attempt} does not fit in a MID"
    );
    let mut mid: Mid = [0; 16];
    let (random, index) = mid.split_at_mut(MID_RANDOM_LEN);
    for b in random {
        *b = MID_CHARS[rng.random_range(0..MID_CHARS.len())];
    }
    let mut rest = attempt as u64;
    for b in index.iter_mut().rev() {
        *b = MID_CHARS[(rest % MID_BASE) as usize];
        rest /= MID_BASE;
    }
    mid
}

/// The attempt index a MID claims, or `None` when its index part is not base 36.
pub fn mid_attempt(mid: &Mid) -> Option<usize> {
    let mut index: u64 = 0;
    for &b in &mid[MID_RANDOM_LEN..] {
        let digit = match b {
            b'A'..=b'Z' => b - b'A',
            b'0'..=b'9' => b - b'0' + 26,
            _ => return None,
        };
        // Eight digits stay below 36^8, so this cannot overflow.
        index = index * MID_BASE + u64::from(digit);
    }
    usize::try_from(index).ok()
}

/// A new put value with id `id`.
pub fn new_value(rng: &mut SmallRng, id: u32) -> String {
    let mut v = String::with_capacity(VALUE_LEN);
    for shift in (0..VALUE_ID_LEN).rev() {
        v.push(char::from(HEX[(id >> (4 * shift)) as usize & 0xf]));
    }
    for _ in VALUE_ID_LEN..VALUE_LEN {
        v.push(char::from(HEX[rng.random_range(0..HEX.len())]));
    }
    v
}

/// The id a value claims, or `None` when it cannot be one of ours (wrong length, or not
/// lowercase hex where the id goes).
pub fn value_id(value: &str) -> Option<u32> {
    if value.len() != VALUE_LEN {
        return None;
    }
    let mut id: u32 = 0;
    for &b in &value.as_bytes()[..VALUE_ID_LEN] {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        id = (id << 4) | u32::from(digit);
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_mid_names_its_attempt_in_mid_chars() {
        let mut rng = SmallRng::seed_from_u64(7);
        for attempt in [0, 1, 35, 36, 1_295, 1_296, 123_456_789, ATTEMPTS_MAX - 1] {
            let mid = new_mid(&mut rng, attempt as usize);
            assert!(mid.iter().all(|b| MID_CHARS.contains(b)), "{mid:?}");
            assert_eq!(mid_attempt(&mid), Some(attempt as usize));
        }
        assert_eq!(&new_mid(&mut rng, 37)[MID_RANDOM_LEN..], b"AAAAAABB");
        assert_eq!(&new_mid(&mut rng, 26)[MID_RANDOM_LEN..], b"AAAAAAA0");
    }

    #[test]
    fn the_random_part_differs_between_mids() {
        let mut rng = SmallRng::seed_from_u64(7);
        let a = new_mid(&mut rng, 5);
        let b = new_mid(&mut rng, 5);
        assert_ne!(a, b);
    }

    #[test]
    #[should_panic(expected = "does not fit in a MID")]
    fn an_attempt_beyond_the_limit_is_a_bug() {
        let mut rng = SmallRng::seed_from_u64(7);
        new_mid(&mut rng, ATTEMPTS_MAX as usize);
    }

    #[test]
    fn a_mid_whose_index_is_not_base_36_claims_nothing() {
        for bad in [
            b"ABCDEFGHAAAAAAAa",
            b"ABCDEFGH!AAAAAAA",
            b"ABCDEFGHAAAA AAA",
            b"ABCDEFGH\0AAAAAAA",
        ] {
            assert_eq!(mid_attempt(bad), None);
        }
        // The random part is not read.
        assert_eq!(mid_attempt(b"!!!!!!!!AAAAAAAB"), Some(1));
    }

    #[test]
    fn a_value_names_its_id_in_its_first_hex_digits() {
        let mut rng = SmallRng::seed_from_u64(7);
        for id in [0, 1, 0xabc, u32::MAX] {
            let v = new_value(&mut rng, id);
            assert_eq!(v.len(), VALUE_LEN);
            assert!(v.bytes().all(|b| HEX.contains(&b)), "{v}");
            assert_eq!(value_id(&v), Some(id));
        }
        assert!(new_value(&mut rng, 0xabc).starts_with("00000abc"));
    }

    #[test]
    fn a_value_that_cannot_be_ours_claims_nothing() {
        for bad in [
            "",
            "nope",
            "0000000100000000000000000000000",
            "000000010000000000000000000000000",
            "0000000A000000000000000000000000",
            "+0000001000000000000000000000000",
            "0000000g000000000000000000000000",
        ] {
            assert_eq!(value_id(bad), None, "{bad}");
        }
        // Right length in bytes, but not ASCII where the id goes.
        let wide = format!("{}{}", "é".repeat(4), "0".repeat(24));
        assert_eq!((wide.len(), value_id(&wide)), (VALUE_LEN, None));
    }
}
