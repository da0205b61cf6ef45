//! Reading a data directory back: the snapshot, then the write-ahead log's batches.
//!
//! Only the last write can have been interrupted, so only the last batch may be damaged:
//! damage with a whole batch or a sync mark of this directory after it hit bytes that had
//! been synced, and the start is refused, naming the file and the offset. A damaged last
//! batch is a torn write (of any shape: a prefix, or pages with holes between them), cut
//! off. A segment may end in zeros never written to (it was preallocated): they end it as
//! the end of its file would. One case cannot be told from a torn write: a synced last
//! batch damaged at rest whose sync mark a power loss kept from the disk. That takes two
//! faults at once.

use super::record::{self, Bad, Record};
use raft::{AsEntryRef, CommandRef, Entry, EntryRef, HardState, Log, LogIndex, Term};

/// What a restarting replica recovers.
#[derive(Debug)]
pub struct Recovered {
    pub hard_state: HardState,
    /// The snapshot's pairs (every key's value as of `log.snapshot_index()`; empty if
    /// there is no snapshot).
    pub snapshot: Log,
    /// The log after the snapshot.
    pub log: Log,
    /// Bytes of a torn last write that were cut off, and where in the last segment, if
    /// any (zeros that end a preallocated segment are no tear, and not counted).
    pub torn_tail: Option<TornTail>,
    /// The last whole batch's sequence number and whether its sync mark was found.
    pub(super) last_batch: Option<(u64, bool)>,
    /// Where the whole batches (and their marks) of the last segment end: what follows
    /// is a torn write, or the zeros of a preallocated segment.
    pub(super) valid_bytes: u64,
    /// Zeros past the last segment's batches and any torn write: the part of a
    /// preallocated segment never written to.
    pub unwritten_tail_bytes: u64,
    /// Per segment, the last log index its records wrote (0 if none).
    pub(super) segment_last_indexes: Vec<LogIndex>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub offset: u64,
    pub bytes: u64,
}

/// `recover_segments` on a log of one segment, `wal`.
pub fn recover(snapshot: &[u8], wal: &[u8], nonce: u64) -> Result<Recovered, (u64, String)> {
    recover_segments(snapshot, &[("wal".to_owned(), wal.to_vec())], nonce)
        .map_err(|(_, at, what)| (at, what))
}

/// Reads a whole `snapshot` file (empty if there is none) and the write-ahead log's
/// segments, oldest first, written with `nonce`. `Err((file, offset, what))` if the
/// snapshot is damaged at all (it was renamed into place whole, so no crash tears it), or
/// if the log is damaged anywhere but in its last write, or a segment is missing.
pub fn recover_segments(
    snapshot: &[u8],
    segments: &[(String, Vec<u8>)],
    nonce: u64,
) -> Result<Recovered, (String, u64, String)> {
    let (pairs, mut log) = recover_snapshot(snapshot)
        .map_err(|(at, what)| (super::SNAPSHOT_FILE.to_owned(), at, what))?;
    let mut replay = Replay {
        after: log.snapshot_index(),
        hard_state: HardState {
            term: Term(0),
            voted_for: None,
        },
        entries: Vec::new(),
        term_at_snapshot: None,
        segment_last: LogIndex(0),
    };
    let mut last_batch: Option<(u64, bool)> = None;
    let mut torn_tail = None;
    let mut valid_bytes = 0;
    let mut unwritten_tail_bytes = 0;
    let mut segment_last_indexes = Vec::with_capacity(segments.len());
    for (k, (name, wal)) in segments.iter().enumerate() {
        let is_last = k + 1 == segments.len();
        let bad = |at: usize, what: String| (name.clone(), at as u64, what);
        replay.segment_last = LogIndex(0);
        if k > 0
            && next_unit(wal, 0, nonce, last_batch).is_none()
            && next_unit(wal, 0, nonce, None).is_some()
        {
            // Out of sequence with the segments before it: those are older ones whose
            // removal (after a snapshot that covers them) a crash undid, and the ones
            // between them and this are gone. Start over from this segment: it opens
            // with the hard state, and if the snapshot does not reach its first entry,
            // the gap is refused below.
            replay.entries.clear();
            replay.term_at_snapshot = None;
            last_batch = None;
        }
        let mut at = 0;
        // Where the segment's whole batches and marks end.
        let mut units_end = wal.len();
        while at < wal.len() {
            let end = match next_unit(wal, at, nonce, last_batch) {
                Some(Unit::Batch { seq, body }) => {
                    replay
                        .batch(wal, body)
                        .map_err(|(off, what)| bad(off as usize, what.to_owned()))?;
                    last_batch = Some((seq, false));
                    body.1
                }
                Some(Unit::Mark { seq, end }) => {
                    last_batch = Some((seq, true));
                    end
                }
                None if wal[at..].iter().all(|&b| b == 0) => {
                    // The rest of a preallocated segment, never written.
                    units_end = at;
                    break;
                }
                None if !is_last => {
                    // Only the last write can be torn, and it is in the last segment; but
                    // an older segment ends with the sync mark of its last batch, written
                    // unsynced (before the zeros of a preallocated segment).
                    if written_end(wal, at) - at <= record::SYNC_MARK_BYTES
                        && last_batch.is_some_and(|(_, marked)| !marked)
                    {
                        units_end = at;
                        break;
                    }
                    return Err(bad(
                        at,
                        "damaged, in a segment a later one follows".to_owned(),
                    ));
                }
                None if foreign_unit(wal, at, nonce) => {
                    // Whole, but of another directory: `meta`'s nonce, or the log, is
                    // not what was written. Cutting it as torn would wipe the replica.
                    return Err(bad(
                        at,
                        "a whole batch whose nonce is not the directory's (meta damaged?)"
                            .to_owned(),
                    ));
                }
                None => {
                    let written = written_end(wal, at);
                    if let Some(next) = (at + 1..written).find(|&i| is_unit_of(wal, i, nonce)) {
                        return Err(bad(
                            at,
                            format!("damaged, yet a synced batch or mark follows at byte {next}"),
                        ));
                    }
                    torn_tail = Some(TornTail {
                        offset: at as u64,
                        bytes: (written - at) as u64,
                    });
                    units_end = at;
                    break;
                }
            };
            at = end;
        }
        segment_last_indexes.push(replay.segment_last);
        if is_last {
            valid_bytes = units_end as u64;
            unwritten_tail_bytes = (wal.len() - written_end(wal, units_end)) as u64;
        }
    }
    let Replay {
        mut hard_state,
        mut entries,
        term_at_snapshot,
        ..
    } = replay;
    // §7: entries after a snapshot are kept only if the log agrees with it at its index.
    // A crash between an installed snapshot's rename and the new segment leaves the old
    // log, whose suffix the snapshot may have replaced.
    if term_at_snapshot.is_some_and(|term| term != log.snapshot_term()) {
        entries.clear();
    }
    // The snapshot's term was adopted before it was installed; that hard state may be in
    // the segment the crash kept from being written. Adopting a term without a vote is
    // safe.
    if hard_state.term < log.snapshot_term() {
        hard_state = HardState {
            term: log.snapshot_term(),
            voted_for: None,
        };
    }
    for entry in &entries {
        log.append(entry.as_entry_ref());
    }
    log.take_changed_from();
    Ok(Recovered {
        hard_state,
        snapshot: pairs,
        log,
        torn_tail,
        last_batch,
        valid_bytes,
        unwritten_tail_bytes,
        segment_last_indexes,
    })
}

enum Unit {
    /// A whole batch: its records are `wal[body.0..body.1]`.
    Batch { seq: u64, body: (usize, usize) },
    /// The sync mark of batch `seq`: the one before it, or one in a removed segment.
    Mark { seq: u64, end: usize },
}

/// The batch or mark at `at`, if it is whole, of this directory and in sequence.
fn next_unit(wal: &[u8], at: usize, nonce: u64, last: Option<(u64, bool)>) -> Option<Unit> {
    let (record, len) = record::decode(&wal[at..]).ok()?;
    match record {
        Record::Batch {
            nonce: n,
            seq,
            length,
            crc,
        } if n == nonce && last.is_none_or(|(s, _)| seq == s + 1) => {
            let start = at + len;
            let end = start.checked_add(usize::try_from(length).ok()?)?;
            (end <= wal.len() && crc32fast::hash(&wal[start..end]) == crc).then_some(Unit::Batch {
                seq,
                body: (start, end),
            })
        }
        // A mark first of all: its batch was in a segment since removed (a restart
        // marks its last batch in the segment it writes to next).
        Record::SyncMark { nonce: n, seq }
            if n == nonce && last.is_none_or(|(s, marked)| s == seq && !marked) =>
        {
            Some(Unit::Mark { seq, end: at + len })
        }
        _ => None,
    }
}

/// Where the bytes from `at` on end once the zeros that close a preallocated segment
/// are left out (a torn write's holes before its last written byte stay in).
fn written_end(wal: &[u8], at: usize) -> usize {
    at + wal[at..].iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

/// Whether a whole batch or a sync mark of this directory starts at `at`: proof that
/// what precedes it was synced. The nonce, random per directory, keeps a client's value
/// that mimics a record from passing for one.
fn is_unit_of(wal: &[u8], at: usize, nonce: u64) -> bool {
    // Cheap tests first: this runs at every offset of a damaged log.
    if wal.len() - at < record::SYNC_MARK_BYTES
        || wal[at + record::HEADER_BYTES - 1] < 4
        || wal[at + record::HEADER_BYTES..at + record::HEADER_BYTES + 8] != nonce.to_le_bytes()
    {
        return false;
    }
    match record::decode(&wal[at..]) {
        Ok((Record::SyncMark { nonce: n, .. }, _)) => n == nonce,
        Ok((Record::Batch { .. }, _)) => next_unit(wal, at, nonce, None).is_some(),
        _ => false,
    }
}

/// Whether a whole batch of another nonce starts at `at` (its body's checksum holds).
fn foreign_unit(wal: &[u8], at: usize, nonce: u64) -> bool {
    match record::decode(&wal[at..]) {
        Ok((Record::Batch { nonce: other, .. }, _)) if other != nonce => {
            next_unit(wal, at, other, None).is_some()
        }
        _ => false,
    }
}

/// The log as the records of the batches rebuild it.
struct Replay {
    after: LogIndex,
    hard_state: HardState,
    /// The log after the snapshot: `entries[k]` is the entry at `after + 1 + k`.
    entries: Vec<Entry>,
    /// The term of the entry at the snapshot's index, if the records rebuilt it: they
    /// were written before the snapshot replaced the log.
    term_at_snapshot: Option<Term>,
    /// The last index the current segment's records wrote.
    segment_last: LogIndex,
}

impl Replay {
    fn batch(
        &mut self,
        wal: &[u8],
        (start, end): (usize, usize),
    ) -> Result<(), (u64, &'static str)> {
        let mut at = start;
        while at < end {
            // The batch's checksum held: a bad record inside is no crash's doing.
            let (record, len) = record::decode(&wal[at..end]).map_err(|bad| {
                let what = match bad {
                    Bad::Malformed(what) => what,
                    _ => "a damaged record inside a whole batch",
                };
                (at as u64, what)
            })?;
            match record {
                Record::HardState(state) => self.hard_state = state,
                Record::Entries { first, entries } => {
                    let last = LogIndex(first.0 + entries.len() as u64).prev();
                    self.segment_last = self.segment_last.max(last);
                    self.entries_from(first, entries)
                        .map_err(|what| (at as u64, what))?
                }
                Record::Snapshot { index, .. } => {
                    // An installed snapshot: the log after it was written whole next.
                    if index > self.after {
                        return Err((at as u64, "the log begins after a snapshot it lacks"));
                    }
                    self.entries.clear();
                    self.term_at_snapshot = None;
                    self.segment_last = self.segment_last.max(index);
                }
                _ => return Err((at as u64, "a record out of place in a batch")),
            }
            at += len;
        }
        Ok(())
    }

    fn entries_from(
        &mut self,
        first: LogIndex,
        run: Vec<EntryRef<'_>>,
    ) -> Result<(), &'static str> {
        let after = self.after.0;
        let last = first.0 + run.len() as u64 - 1;
        // A log written before the snapshot replaced it may start earlier: its entries
        // through the snapshot are in the snapshot, but their terms say whether what
        // follows them agrees with it.
        if first.0 <= after {
            self.term_at_snapshot = (last >= after)
                .then(|| run[(after - first.0) as usize].term)
                .filter(|_| !run.is_empty());
        }
        let skip = after.saturating_sub(first.0 - 1);
        let keep = (first.0 - 1).saturating_sub(after);
        if keep > self.entries.len() as u64 {
            return Err("entries that leave a gap");
        }
        self.entries.truncate(keep as usize);
        self.entries
            .extend(run.into_iter().skip(skip as usize).map(Entry::from_ref));
        Ok(())
    }
}

/// Reads a snapshot file: its pairs, and an empty log that starts after it (an empty log
/// from index 1 if `bytes` is empty: no snapshot).
fn recover_snapshot(bytes: &[u8]) -> Result<(Log, Log), (u64, String)> {
    let mut pairs = Log::new();
    let mut log = Log::new();
    if bytes.is_empty() {
        return Ok((pairs, log));
    }
    let bad = |at: usize, what: &str| (at as u64, what.to_owned());
    let (head, mut at) = record::decode(bytes).map_err(|e| bad(0, &format!("{e:?} head")))?;
    let Record::Snapshot {
        index,
        term,
        pairs: count,
    } = head
    else {
        return Err(bad(0, "no snapshot head"));
    };
    while at < bytes.len() {
        let (record, len) =
            record::decode(&bytes[at..]).map_err(|e| bad(at, &format!("{e:?} record")))?;
        let Record::Entries { first, entries } = record else {
            return Err(bad(at, "not a run of pairs"));
        };
        if first != pairs.last_index().next() {
            return Err(bad(at, "pairs out of order"));
        }
        for entry in entries {
            // Puts, after the membership a snapshot begins with when the cluster's
            // membership has changed.
            let first_pair = pairs.last_index() == LogIndex(0);
            let fits = match entry.command {
                CommandRef::Put { .. } => true,
                CommandRef::Membership(text) => first_pair && raft::Membership::parse(text).is_ok(),
                CommandRef::Noop => false,
            };
            if !fits {
                return Err(bad(at, "a pair that is no put"));
            }
            pairs.append(EntryRef {
                term: Term(0),
                command: entry.command,
            });
        }
        at += len;
    }
    if pairs.last_index().0 != count {
        return Err(bad(at, "fewer pairs than its head says"));
    }
    log.reset_to_snapshot(index, term);
    Ok((pairs, log))
}
