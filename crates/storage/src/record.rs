//! The write-ahead log's records: `[payload length u32][crc32 u32][kind u8][payload]`,
//! little-endian, the checksum over the kind and the payload. Five kinds: the hard state
//! (term and vote); a run of entries that replaces the log from its first index on; the
//! head of a snapshot file (its index, term and number of pairs, which follow as runs of
//! entries numbered from 1: puts whose terms mean nothing); and the two that frame a
//! turn's write in the log: a batch head (the directory's nonce, the batch's sequence
//! number, the length and checksum of the records that follow it), and a sync mark
//! (nonce and sequence number), written once the batch's sync has returned.
//! Decoding is total: any bytes give a record or a reason, never a panic.

use raft::NodeId;
use raft::{CommandRef, EntryRef, HardState, LogIndex, Term};

/// Bytes before the payload: length, checksum, kind.
pub const HEADER_BYTES: usize = 9;
/// The largest payload a record may claim; anything larger is damage, not data. Writers
/// split runs of entries at `ENTRIES_PAYLOAD_BYTES_TARGET`, far below it.
pub const PAYLOAD_BYTES_MAX: usize = 64 << 20;
/// A run of entries is closed once its payload reaches this; one entry (at most a
/// datagram, 64 KiB) more keeps it far under `PAYLOAD_BYTES_MAX`.
pub const ENTRIES_PAYLOAD_BYTES_TARGET: usize = 1 << 20;
/// A batch head's whole size: header, nonce, sequence number, length, checksum.
pub const BATCH_HEAD_BYTES: usize = HEADER_BYTES + 28;
/// A sync mark's whole size: header, nonce, sequence number.
pub const SYNC_MARK_BYTES: usize = HEADER_BYTES + 16;

const KIND_HARD_STATE: u8 = 1;
const KIND_ENTRIES: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
const KIND_BATCH: u8 = 4;
const KIND_SYNC_MARK: u8 = 5;
/// `key_len` of a no-op entry.
const NOOP_KEY_LEN: u32 = u32::MAX;
/// The key length that marks a membership entry, its text where a put's value would be.
const MEMBERSHIP_KEY_LEN: u32 = u32::MAX - 1;

/// One decoded record, borrowing the bytes it was read from.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    HardState(HardState),
    /// Entries from `first` on; the log is cut before `first` and these appended.
    Entries {
        first: LogIndex,
        entries: Vec<EntryRef<'a>>,
    },
    /// A snapshot of the state machine as of `index` (of `term`), whose `pairs` pairs
    /// follow.
    Snapshot {
        index: LogIndex,
        term: Term,
        pairs: u64,
    },
    /// The records of one turn's write follow: `length` bytes whose CRC-32 is `crc`.
    Batch {
        nonce: u64,
        seq: u64,
        length: u64,
        crc: u32,
    },
    /// The batch `seq` was synced.
    SyncMark {
        nonce: u64,
        seq: u64,
    },
}

/// Why bytes at some offset are not a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the header or the payload it claims: a write cut short.
    Short,
    /// The checksum does not match, or the length is absurd.
    Damaged,
    /// The checksum matches but the payload does not parse: written by other code.
    Malformed(&'static str),
}

/// Appends a hard-state record to `out`.
pub fn encode_hard_state(out: &mut Vec<u8>, state: HardState) {
    let vote = state.voted_for.unwrap_or(NodeId::UNKNOWN);
    let mut payload = [0u8; 10];
    payload[..8].copy_from_slice(&state.term.0.to_le_bytes());
    payload[8..].copy_from_slice(&vote.0.to_le_bytes());
    frame(out, KIND_HARD_STATE, |p| p.extend_from_slice(&payload));
}

/// Appends the head of a snapshot to `out`.
pub fn encode_snapshot(out: &mut Vec<u8>, index: LogIndex, term: Term, pairs: u64) {
    frame(out, KIND_SNAPSHOT, |p| {
        p.extend_from_slice(&index.0.to_le_bytes());
        p.extend_from_slice(&term.0.to_le_bytes());
        p.extend_from_slice(&pairs.to_le_bytes());
    });
}

/// Writes, over the `BATCH_HEAD_BYTES` reserved at `out[at..]`, the head of a batch whose
/// records are the rest of `out`.
pub fn fill_batch_head(out: &mut [u8], at: usize, nonce: u64, seq: u64) {
    let body = &out[at + BATCH_HEAD_BYTES..];
    let (length, crc) = (body.len() as u64, crc32fast::hash(body));
    let mut head = Vec::with_capacity(BATCH_HEAD_BYTES);
    frame(&mut head, KIND_BATCH, |p| {
        p.extend_from_slice(&nonce.to_le_bytes());
        p.extend_from_slice(&seq.to_le_bytes());
        p.extend_from_slice(&length.to_le_bytes());
        p.extend_from_slice(&crc.to_le_bytes());
    });
    out[at..at + BATCH_HEAD_BYTES].copy_from_slice(&head);
}

/// Appends the sync mark of batch `seq` to `out`.
pub fn encode_sync_mark(out: &mut Vec<u8>, nonce: u64, seq: u64) {
    frame(out, KIND_SYNC_MARK, |p| {
        p.extend_from_slice(&nonce.to_le_bytes());
        p.extend_from_slice(&seq.to_le_bytes());
    });
}

/// Appends a record of `entries`, the log from `first` on, to `out`.
#[cfg(test)]
pub fn encode_entries<'e>(
    out: &mut Vec<u8>,
    first: LogIndex,
    entries: impl IntoIterator<Item = EntryRef<'e>>,
) {
    encode_entries_until(out, first, &mut entries.into_iter(), usize::MAX);
}

/// Appends a record of entries taken from `entries`, the log from `first` on, closing it
/// once its payload reaches `payload_bytes_target`; returns how many it took.
pub fn encode_entries_until<'e>(
    out: &mut Vec<u8>,
    first: LogIndex,
    entries: &mut impl Iterator<Item = EntryRef<'e>>,
    payload_bytes_target: usize,
) -> u32 {
    let mut count = 0u32;
    frame(out, KIND_ENTRIES, |p| {
        let start = p.len();
        p.extend_from_slice(&first.0.to_le_bytes());
        let count_at = p.len();
        p.extend_from_slice(&0u32.to_le_bytes());
        while p.len() - start < payload_bytes_target {
            let Some(entry) = entries.next() else { break };
            p.extend_from_slice(&entry.term.0.to_le_bytes());
            match entry.command {
                CommandRef::Noop => {
                    p.extend_from_slice(&NOOP_KEY_LEN.to_le_bytes());
                    p.extend_from_slice(&0u32.to_le_bytes());
                }
                CommandRef::Put { key, value } => {
                    p.extend_from_slice(&len_u32(key.len()).to_le_bytes());
                    p.extend_from_slice(&len_u32(value.len()).to_le_bytes());
                    p.extend_from_slice(key.as_bytes());
                    p.extend_from_slice(value.as_bytes());
                }
                CommandRef::Membership(text) => {
                    p.extend_from_slice(&MEMBERSHIP_KEY_LEN.to_le_bytes());
                    p.extend_from_slice(&len_u32(text.len()).to_le_bytes());
                    p.extend_from_slice(text.as_bytes());
                }
            }
            count += 1;
        }
        p[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    });
    count
}

fn len_u32(len: usize) -> u32 {
    // Keys and values arrive in datagrams of at most 64 KiB.
    u32::try_from(len).expect("a key or value fits in a datagram")
}

/// Writes the header around the payload `fill` appends.
fn frame(out: &mut Vec<u8>, kind: u8, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    out[start + 8] = kind;
    fill(out);
    let payload_len = out.len() - start - HEADER_BYTES;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len_u32(payload_len).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the record at the start of `bytes`: the record and its length in bytes.
pub fn decode(bytes: &[u8]) -> Result<(Record<'_>, usize), Bad> {
    if bytes.len() < HEADER_BYTES {
        return Err(Bad::Short);
    }
    let payload_len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    if payload_len > PAYLOAD_BYTES_MAX {
        return Err(Bad::Damaged);
    }
    let end = HEADER_BYTES + payload_len;
    if bytes.len() < end {
        return Err(Bad::Short);
    }
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[8..end]) != crc {
        return Err(Bad::Damaged);
    }
    let payload = &bytes[HEADER_BYTES..end];
    let record = match bytes[8] {
        KIND_HARD_STATE => decode_hard_state(payload)?,
        KIND_ENTRIES => decode_entries(payload)?,
        KIND_SNAPSHOT => decode_snapshot(payload)?,
        KIND_BATCH => decode_batch(payload)?,
        KIND_SYNC_MARK => decode_sync_mark(payload)?,
        _ => return Err(Bad::Malformed("unknown record kind")),
    };
    Ok((record, end))
}

fn decode_hard_state(p: &[u8]) -> Result<Record<'_>, Bad> {
    if p.len() != 10 {
        return Err(Bad::Malformed("hard state of the wrong size"));
    }
    let term = Term(u64::from_le_bytes(p[..8].try_into().expect("8 bytes")));
    let vote = NodeId(u16::from_le_bytes(p[8..].try_into().expect("2 bytes")));
    let voted_for = (vote != NodeId::UNKNOWN).then_some(vote);
    Ok(Record::HardState(HardState { term, voted_for }))
}

fn decode_snapshot(p: &[u8]) -> Result<Record<'_>, Bad> {
    if p.len() != 24 {
        return Err(Bad::Malformed("snapshot head of the wrong size"));
    }
    let mut r = Reader { bytes: p };
    Ok(Record::Snapshot {
        index: LogIndex(r.u64()?),
        term: Term(r.u64()?),
        pairs: r.u64()?,
    })
}

fn decode_batch(p: &[u8]) -> Result<Record<'_>, Bad> {
    if p.len() != 28 {
        return Err(Bad::Malformed("batch head of the wrong size"));
    }
    let mut r = Reader { bytes: p };
    Ok(Record::Batch {
        nonce: r.u64()?,
        seq: r.u64()?,
        length: r.u64()?,
        crc: r.u32()?,
    })
}

fn decode_sync_mark(p: &[u8]) -> Result<Record<'_>, Bad> {
    if p.len() != 16 {
        return Err(Bad::Malformed("sync mark of the wrong size"));
    }
    let mut r = Reader { bytes: p };
    Ok(Record::SyncMark {
        nonce: r.u64()?,
        seq: r.u64()?,
    })
}

fn decode_entries(p: &[u8]) -> Result<Record<'_>, Bad> {
    let mut r = Reader { bytes: p };
    let first = LogIndex(r.u64()?);
    if first.0 == 0 {
        return Err(Bad::Malformed("entries from index 0"));
    }
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(p.len() / 16));
    for _ in 0..count {
        let term = Term(r.u64()?);
        let key_len = r.u32()?;
        let value_len = r.u32()? as usize;
        let command = if key_len == NOOP_KEY_LEN {
            CommandRef::Noop
        } else if key_len == MEMBERSHIP_KEY_LEN {
            CommandRef::Membership(r.str(value_len)?)
        } else {
            let key = r.str(key_len as usize)?;
            let value = r.str(value_len)?;
            CommandRef::Put { key, value }
        };
        entries.push(EntryRef { term, command });
    }
    if !r.bytes.is_empty() {
        return Err(Bad::Malformed("bytes after the last entry"));
    }
    Ok(Record::Entries { first, entries })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        if self.bytes.len() < n {
            return Err(Bad::Malformed("an entry runs past its record"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, Bad> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, Bad> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn str(&mut self, n: usize) -> Result<&'a str, Bad> {
        std::str::from_utf8(self.take(n)?)
            .map_err(|_| Bad::Malformed("a key or value is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(term: u64, key: &'static str, value: &'static str) -> EntryRef<'static> {
        EntryRef {
            term: Term(term),
            command: CommandRef::Put { key, value },
        }
    }

    #[test]
    fn records_round_trip_back_to_back() {
        let mut out = Vec::new();
        let state = HardState {
            term: Term(7),
            voted_for: Some(NodeId(2)),
        };
        encode_hard_state(&mut out, state);
        let noop = EntryRef {
            term: Term(7),
            command: CommandRef::Noop,
        };
        let membership = EntryRef {
            term: Term(7),
            command: CommandRef::Membership("1 v;2 v;4 l 10.0.0.4:7104"),
        };
        encode_entries(
            &mut out,
            LogIndex(3),
            [put(6, "k", "v"), noop, put(7, "", "é"), membership],
        );
        encode_hard_state(
            &mut out,
            HardState {
                term: Term(8),
                voted_for: None,
            },
        );
        let (first, n1) = decode(&out).unwrap();
        assert_eq!(first, Record::HardState(state));
        let (second, n2) = decode(&out[n1..]).unwrap();
        assert_eq!(
            second,
            Record::Entries {
                first: LogIndex(3),
                entries: vec![put(6, "k", "v"), noop, put(7, "", "é"), membership]
            }
        );
        let (third, n3) = decode(&out[n1 + n2..]).unwrap();
        assert!(matches!(
            third,
            Record::HardState(HardState {
                voted_for: None,
                ..
            })
        ));
        assert_eq!(n1 + n2 + n3, out.len());
    }

    #[test]
    fn cut_and_damaged_records_are_told_apart() {
        let mut out = Vec::new();
        encode_entries(&mut out, LogIndex(1), [put(1, "key", "value")]);
        for cut in 0..out.len() {
            assert_eq!(decode(&out[..cut]).unwrap_err(), Bad::Short, "cut at {cut}");
        }
        for flip in 4..out.len() {
            let mut bad = out.clone();
            bad[flip] ^= 0x40;
            assert_eq!(
                decode(&bad).unwrap_err(),
                Bad::Damaged,
                "bit flipped at {flip}"
            );
        }
        let mut huge = out.clone();
        huge[3] = 0xFF;
        assert_eq!(decode(&huge).unwrap_err(), Bad::Damaged);
    }
}
