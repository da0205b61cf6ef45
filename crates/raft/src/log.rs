//! The replicated log (§5.3), from just after its snapshot on (§7).
//!
//! Stored densely, because the log is most of a replica's memory: the keys and values of
//! all puts sit back to back in one growing string, each entry has a 12-byte slot saying
//! where its bytes start and how long its key is, and terms are kept run-length encoded
//! (they change only at elections). A put costs its key and value plus 12 bytes, a no-op
//! 12 bytes, and appending allocates nothing per entry. Entries are read back as
//! [`EntryRef`]s borrowing the log, one at a time ([`Log::get`]) or as a [`LogSlice`].
//!
//! Indexes stay absolute when the log is compacted ([`Log::compact`]): the entries through
//! the snapshot index are dropped, and only that index and its term are kept, because the
//! consistency check of an append that follows the snapshot (§7: "the last included index
//! and term ... are used for the AppendEntries consistency check") needs them.

use crate::message::{CommandRef, EntryRef, EntrySpan, LogIndex, Term};
use crate::prefetch::prefetch_read;

/// `Slot::key_len` of a no-op. No key reaches this length: a key arrives in one datagram.
const NOOP_KEY_LEN: u32 = u32::MAX;
/// `Slot::key_len` of a membership entry, whose text is held where a put's key and value
/// would be.
const MEMBERSHIP_KEY_LEN: u32 = u32::MAX - 1;

/// Where one entry's bytes are in `Log::text`: the key at `start..start + key_len`, then
/// the value up to the next entry's `start` (or the end of the text). A no-op has no bytes
/// (`key_len == NOOP_KEY_LEN`). Packed to 12 bytes (instead of 16) because there is one
/// per entry; fields are only ever copied out, never borrowed.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed(4))]
struct Slot {
    start: u64,
    key_len: u32,
}

/// The entries from `first` on (up to the next run) hold `term`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct TermRun {
    first: LogIndex,
    term: Term,
}

/// Invariants: `slots[i]` is the entry at index `snapshot_index + 1 + i`; slot starts
/// never decrease and stay within `text`; `runs` is empty exactly when `slots` is, starts
/// at `snapshot_index + 1`, and its `first`s strictly increase and stay within the log;
/// adjacent runs differ in term, and terms never decrease along the log (for entries the
/// log appends itself; see `merge`).
#[derive(Default, Debug)]
pub struct Log {
    text: String,
    slots: Vec<Slot>,
    runs: Vec<TermRun>,
    /// The last index compacted away (0 for none) and its term: what the state machine's
    /// snapshot covers. Entries through it are committed and gone from `slots`.
    snapshot_index: LogIndex,
    snapshot_term: Term,
    /// The first index appended or cut since `take_changed_from` was last called: what a
    /// durable replica must write again, from there to the end.
    changed_from: Option<LogIndex>,
}

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot_index.0 + self.slots.len() as u64)
    }

    pub fn last_term(&self) -> Term {
        self.runs.last().map_or(self.snapshot_term, |r| r.term)
    }

    /// The last index compacted away (0 if none): entries through it are not held.
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// The term of the entry at `snapshot_index`.
    pub fn snapshot_term(&self) -> Term {
        self.snapshot_term
    }

    /// Entries held (those after the snapshot index).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes the entries after the snapshot through `last` take (keys, values and slots):
    /// what compacting at `last` would free. O(1).
    pub fn bytes_through(&self, last: LogIndex) -> usize {
        let Some(end) = last
            .0
            .checked_sub(self.snapshot_index.0)
            .map(|n| (n as usize).min(self.slots.len()))
        else {
            return 0;
        };
        let text_end = self
            .slots
            .get(end)
            .map_or(self.text.len(), |s| s.start as usize);
        text_end + end * size_of::<Slot>()
    }

    /// The term of the entry at `index`; the snapshot's term at the snapshot index (`Term(0)`
    /// for index 0), `None` before it (compacted) or past the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.run_holding(index).map(|r| self.runs[r].term)
    }

    pub fn get(&self, index: LogIndex) -> Option<EntryRef<'_>> {
        let term = self.term_at(index)?;
        Some(self.entry_at(self.offset(index)?, term))
    }

    /// The entries of `span`, clipped to the log (empty if it starts at or before the
    /// snapshot index: those entries are gone).
    pub fn span(&self, span: EntrySpan) -> LogSlice<'_> {
        let len = self.slots.len();
        let start = self.offset(span.first).map_or(len, |o| o.min(len));
        let end = start.saturating_add(span.count as usize).min(len);
        LogSlice {
            log: self,
            start,
            end,
        }
    }

    /// Every entry.
    pub fn entries(&self) -> LogSlice<'_> {
        LogSlice {
            log: self,
            start: 0,
            end: self.slots.len(),
        }
    }

    pub fn append(&mut self, entry: EntryRef<'_>) -> LogIndex {
        debug_assert!(
            entry.term >= self.last_term(),
            "terms never decrease in a log"
        );
        self.push(entry);
        self.last_index()
    }

    /// Appends `incoming`, which belongs right after `prev`, keeping entries that already
    /// match and cutting the log at the first conflict (§5.3: "if an existing entry
    /// conflicts with a new one, delete the existing entry and all that follow it"). A
    /// matching prefix is never cut, so a late or duplicated append cannot undo a newer one.
    /// Returns the index of the last entry of `incoming`, or `None` if a committed entry
    /// would have to be cut (a leader violating the protocol; nothing is changed then).
    /// Never cutting a committed entry is also what lets the state machine refer to
    /// applied puts by index (`KvStore`). Entries at or before the snapshot index are
    /// committed, so they match (Log Matching, §5.3) and are skipped.
    pub fn merge(
        &mut self,
        prev: LogIndex,
        incoming: &[EntryRef<'_>],
        commit_index: LogIndex,
    ) -> Option<LogIndex> {
        let skip = self.snapshot_index.0.saturating_sub(prev.0);
        for (k, entry) in incoming.iter().enumerate().skip(skip as usize) {
            let index = LogIndex(prev.0 + 1 + k as u64);
            match self.term_at(index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    if index <= commit_index {
                        return None;
                    }
                    self.truncate(index.prev());
                }
                None => {}
            }
            for entry in &incoming[k..] {
                self.push(*entry);
            }
            break;
        }
        Some(LogIndex(prev.0 + incoming.len() as u64))
    }

    /// The first index holding `term`, searching back from `from` (which holds `term`).
    pub fn first_index_of_term(&self, from: LogIndex, term: Term) -> LogIndex {
        debug_assert_eq!(self.term_at(from), Some(term));
        match self.run_holding(from) {
            // Adjacent runs differ in term, so the run holding `from` starts the term.
            Some(r) if self.runs[r].term == term => self.runs[r].first,
            _ => from,
        }
    }

    /// The last index holding `term`, if any (for the leader's side of fast backtracking).
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        // Terms are sorted along the log, so a binary search finds the run of `term`.
        let r = self.runs.partition_point(|run| run.term < term);
        (self.runs.get(r)?.term == term).then(|| self.run_last(r))
    }

    /// §5.4.1: a candidate's log is at least as up to date as ours.
    pub fn is_up_to_date(&self, last_log_index: LogIndex, last_log_term: Term) -> bool {
        (last_log_term, last_log_index) >= (self.last_term(), self.last_index())
    }

    /// Heap bytes held (by capacity), for measuring what an entry costs.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.slots.capacity() * size_of::<Slot>()
            + self.runs.capacity() * size_of::<TermRun>()
    }

    /// Drops every entry through `through` (which must be held, or be the snapshot index),
    /// which the state machine's snapshot now covers (§7), keeping the entries after it.
    /// Moves the bytes that remain to the front of the arena: compaction is rare, and the
    /// arena keeps its capacity for the entries to come.
    pub fn compact(&mut self, through: LogIndex) {
        let term = self
            .term_at(through)
            .expect("compaction stops at an entry the log holds");
        let drop = (through.0 - self.snapshot_index.0) as usize;
        let text_start = self
            .slots
            .get(drop)
            .map_or(self.text.len(), |s| s.start as usize);
        self.text.drain(..text_start);
        self.slots.drain(..drop);
        for slot in &mut self.slots {
            slot.start -= text_start as u64;
        }
        let first_kept = self.runs.partition_point(|r| r.first <= through.next());
        let drop_runs = first_kept.saturating_sub(1);
        self.runs.drain(..drop_runs);
        if self.slots.is_empty() {
            self.runs.clear();
        } else if let Some(run) = self.runs.first_mut() {
            run.first = run.first.max(through.next());
        }
        self.snapshot_index = through;
        self.snapshot_term = term;
        // What was appended through `through` is in the snapshot, which the driver writes.
        self.changed_from = self.changed_from.map(|from| from.max(through.next()));
    }

    /// Replaces the whole log with an empty one after a snapshot of `index` and `term`
    /// (§7: a follower whose log does not hold the snapshot's last entry discards it).
    pub fn reset_to_snapshot(&mut self, index: LogIndex, term: Term) {
        self.text.clear();
        self.slots.clear();
        self.runs.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.changed_from = Some(index.next());
    }

    /// The position of `index` in `slots`; `None` at or before the snapshot index.
    fn offset(&self, index: LogIndex) -> Option<usize> {
        index
            .0
            .checked_sub(self.snapshot_index.0 + 1)
            .map(|o| o as usize)
    }

    /// The index of the entry at position `offset` of `slots`.
    fn index_of(&self, offset: usize) -> LogIndex {
        LogIndex(self.snapshot_index.0 + 1 + offset as u64)
    }

    /// The run holding `index`, if the log does.
    fn run_holding(&self, index: LogIndex) -> Option<usize> {
        if index <= self.snapshot_index || index > self.last_index() {
            return None;
        }
        let last = self.runs.len() - 1;
        // Most lookups are near the tail, in the current term.
        if self.runs[last].first <= index {
            return Some(last);
        }
        Some(self.runs.partition_point(|r| r.first <= index) - 1)
    }

    /// The last index of run `r`.
    fn run_last(&self, r: usize) -> LogIndex {
        self.runs
            .get(r + 1)
            .map_or(self.last_index(), |next| next.first.prev())
    }

    /// The entry in `slots[offset]`, which must exist, whose term is `term`.
    fn entry_at(&self, offset: usize, term: Term) -> EntryRef<'_> {
        let Slot { start, key_len } = self.slots[offset];
        if key_len == NOOP_KEY_LEN {
            return EntryRef {
                term,
                command: CommandRef::Noop,
            };
        }
        let end = self
            .slots
            .get(offset + 1)
            .map_or(self.text.len(), |next| next.start as usize);
        if key_len == MEMBERSHIP_KEY_LEN {
            return EntryRef {
                term,
                command: CommandRef::Membership(&self.text[start as usize..end]),
            };
        }
        let (start, key_end) = (start as usize, start as usize + key_len as usize);
        EntryRef {
            term,
            command: CommandRef::Put {
                key: &self.text[start..key_end],
                value: &self.text[key_end..end],
            },
        }
    }

    /// The first index appended or cut since `take_changed_from` was last called.
    pub fn changed_from(&self) -> Option<LogIndex> {
        self.changed_from
    }

    /// The first index appended or cut since the last call, if any, and forgets it.
    pub fn take_changed_from(&mut self) -> Option<LogIndex> {
        self.changed_from.take()
    }

    fn note_changed(&mut self, index: LogIndex) {
        if self.changed_from.is_none_or(|from| index < from) {
            self.changed_from = Some(index);
        }
    }

    fn push(&mut self, entry: EntryRef<'_>) {
        let index = self.last_index().next();
        self.note_changed(index);
        if self.runs.last().is_none_or(|r| r.term != entry.term) {
            self.runs.push(TermRun {
                first: index,
                term: entry.term,
            });
        }
        let start = self.text.len() as u64;
        let key_len = match entry.command {
            CommandRef::Noop => NOOP_KEY_LEN,
            CommandRef::Put { key, value } => {
                let key_len = u32::try_from(key.len())
                    .ok()
                    .filter(|&n| n < MEMBERSHIP_KEY_LEN)
                    .expect("a key fits in a datagram");
                self.text.push_str(key);
                self.text.push_str(value);
                key_len
            }
            CommandRef::Membership(text) => {
                self.text.push_str(text);
                MEMBERSHIP_KEY_LEN
            }
        };
        self.slots.push(Slot { start, key_len });
    }

    /// Keeps entries through `last`, dropping the rest with their bytes and term runs.
    fn truncate(&mut self, last: LogIndex) {
        self.note_changed(last.next());
        let keep = (last.0 - self.snapshot_index.0) as usize;
        if let Some(&Slot { start, .. }) = self.slots.get(keep) {
            self.text.truncate(start as usize);
            self.slots.truncate(keep);
        }
        let runs = self.runs.partition_point(|r| r.first <= last);
        self.runs.truncate(runs);
    }
}

impl Log {
    /// The key of the put at `index`, read without building its entry: what the state
    /// machine's lookups compare. `None` for a no-op, a membership or outside the log.
    pub fn key_at(&self, index: LogIndex) -> Option<&str> {
        let Slot { start, key_len } = *self.slots.get(self.offset(index)?)?;
        let start = start as usize;
        (key_len < MEMBERSHIP_KEY_LEN).then(|| &self.text[start..start + key_len as usize])
    }

    /// Starts loading the slot of the entry at `index` (a hint; any index is allowed).
    pub fn prefetch_entry(&self, index: LogIndex) {
        if let Some(slot) = self.offset(index).and_then(|o| self.slots.get(o)) {
            prefetch_read(slot);
        }
    }

    /// Starts loading the first byte of the key at `index` (a hint; any index is allowed).
    pub fn prefetch_key(&self, index: LogIndex) {
        if let Some(&Slot { start, .. }) = self.offset(index).and_then(|o| self.slots.get(o))
            && let Some(byte) = self.text.as_bytes().get(start as usize)
        {
            prefetch_read(byte);
        }
    }
}

/// A run of consecutive entries of a [`Log`], borrowed: what an append carries, read
/// straight from the log by the encoder (no copy into a temporary vector).
#[derive(Clone, Copy, Debug)]
pub struct LogSlice<'a> {
    log: &'a Log,
    /// Positions `start..end` in `log.slots`.
    start: usize,
    end: usize,
}

impl<'a> LogSlice<'a> {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The `i`th entry of the slice.
    pub fn get(&self, i: usize) -> Option<EntryRef<'a>> {
        if i >= self.len() {
            return None;
        }
        self.log.get(self.log.index_of(self.start + i))
    }

    pub fn iter(&self) -> LogIter<'a> {
        LogIter {
            log: self.log,
            next: self.start,
            end: self.end,
            run: self
                .log
                .run_holding(self.log.index_of(self.start))
                .unwrap_or(0),
        }
    }
}

impl<'a> IntoIterator for LogSlice<'a> {
    type Item = EntryRef<'a>;
    type IntoIter = LogIter<'a>;
    fn into_iter(self) -> LogIter<'a> {
        self.iter()
    }
}

/// The entries of a [`LogSlice`] in order. Walks the term runs alongside the entries
/// instead of searching them per entry.
#[derive(Clone, Debug)]
pub struct LogIter<'a> {
    log: &'a Log,
    next: usize,
    end: usize,
    /// The run holding the entry at `next` (when there is one).
    run: usize,
}

impl<'a> Iterator for LogIter<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        if self.next >= self.end {
            return None;
        }
        let index = self.log.index_of(self.next);
        let runs = &self.log.runs;
        while runs.get(self.run + 1).is_some_and(|r| r.first <= index) {
            self.run += 1;
        }
        let entry = self.log.entry_at(self.next, runs[self.run].term);
        self.next += 1;
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for LogIter<'_> {}

#[cfg(test)]
mod tests;
