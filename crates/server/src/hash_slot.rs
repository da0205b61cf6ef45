//! The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM) of the key, or of
//! the part between the first `{` and the next `}` when that part is non-empty (a hash
//! tag), modulo 16,384. One shard serves every slot here; the slot is what a `-MOVED`
//! names, and cluster clients check it.

/// Slots in a Redis Cluster.
pub const HASH_SLOTS: u16 = 16_384;

pub fn hash_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % HASH_SLOTS
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_cluster() {
        // The CRC16 check value from the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        // `redis-cli CLUSTER KEYSLOT` on a Redis Cluster.
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"bar"), 5061);
        assert_eq!(hash_slot(b"{user1000}.following"), hash_slot(b"user1000"));
        assert_eq!(hash_slot(b"foo{}{bar}"), hash_slot(b"foo{}{bar}"));
        assert_ne!(hash_slot(b"foo{}{bar}"), hash_slot(b"bar"));
        assert_eq!(hash_slot(b""), 0);
    }
}
