//! The replicated log (§5.3). Entries are never compacted: replicas live for one run.
//!
//! Stored densely, because the log is most of a replica's memory: the keys and values of
//! all puts sit back to back in one growing string, each entry has a 12-byte slot saying
//! where its bytes start and how long its key is, and terms are kept run-length encoded
//! (they change only at elections). A put costs its key and value plus 12 bytes, a no-op
//! 12 bytes, and appending allocates nothing per entry. Entries are read back as
//! [`EntryRef`]s borrowing the log, one at a time ([`Log::get`]) or as a [`LogSlice`].

use crate::kv::PutLog;
use crate::prefetch::prefetch_read;
use crate::raft::message::{CommandRef, EntryRef, EntrySpan, LogIndex, Term};

/// `Slot::key_len` of a no-op. No key reaches this length: a key arrives in one datagram.
const NOOP_KEY_LEN: u32 = u32::MAX;

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

/// Invariants: `slots[i]` is the entry at index `i + 1`; slot starts never decrease and
/// stay within `text`; `runs` is empty exactly when the log is, starts at index 1, and its
/// `first`s strictly increase and stay within the log; adjacent runs differ in term, and
/// terms never decrease along the log (for entries the log appends itself; see `merge`).
#[derive(Default, Debug)]
pub struct Log {
    text: String,
    slots: Vec<Slot>,
    runs: Vec<TermRun>,
    /// The first index appended or cut since `take_changed_from` was last called: what a
    /// durable replica must write again, from there to the end.
    changed_from: Option<LogIndex>,
}

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.slots.len() as u64)
    }

    pub fn last_term(&self) -> Term {
        self.runs.last().map_or(Term(0), |r| r.term)
    }

    /// The term of the entry at `index`; `Term(0)` for index 0, `None` past the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        self.run_holding(index).map(|r| self.runs[r].term)
    }

    pub fn get(&self, index: LogIndex) -> Option<EntryRef<'_>> {
        let term = self.term_at(index)?;
        Some(self.entry_at(Self::offset(index)?, term))
    }

    /// The entries of `span`, clipped to the log.
    pub fn span(&self, span: EntrySpan) -> LogSlice<'_> {
        let len = self.slots.len();
        let start = Self::offset(span.first).map_or(len, |o| o.min(len));
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
    /// applied puts by index (`KvStore`).
    pub fn merge(
        &mut self,
        prev: LogIndex,
        incoming: &[EntryRef<'_>],
        commit_index: LogIndex,
    ) -> Option<LogIndex> {
        for (k, entry) in incoming.iter().enumerate() {
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

    /// The position of `index` in `slots`; `None` for index 0.
    fn offset(index: LogIndex) -> Option<usize> {
        index.0.checked_sub(1).map(|o| o as usize)
    }

    /// The run holding `index`, if the log does.
    fn run_holding(&self, index: LogIndex) -> Option<usize> {
        if index.0 == 0 || index > self.last_index() {
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
                    .filter(|&n| n != NOOP_KEY_LEN)
                    .expect("a key fits in a datagram");
                self.text.push_str(key);
                self.text.push_str(value);
                key_len
            }
        };
        self.slots.push(Slot { start, key_len });
    }

    /// Keeps entries `1..=last`, dropping the rest with their bytes and term runs.
    fn truncate(&mut self, last: LogIndex) {
        self.note_changed(last.next());
        let keep = last.0 as usize;
        if let Some(&Slot { start, .. }) = self.slots.get(keep) {
            self.text.truncate(start as usize);
            self.slots.truncate(keep);
        }
        let runs = self.runs.partition_point(|r| r.first <= last);
        self.runs.truncate(runs);
    }
}

impl PutLog for Log {
    fn put_at(&self, index: LogIndex) -> Option<(&str, &str)> {
        match self.get(index)?.command {
            CommandRef::Put { key, value } => Some((key, value)),
            CommandRef::Noop => None,
        }
    }

    fn key_at(&self, index: LogIndex) -> Option<&str> {
        let Slot { start, key_len } = *self.slots.get(Self::offset(index)?)?;
        let start = start as usize;
        (key_len != NOOP_KEY_LEN).then(|| &self.text[start..start + key_len as usize])
    }

    fn prefetch_entry(&self, index: LogIndex) {
        if let Some(slot) = Self::offset(index).and_then(|o| self.slots.get(o)) {
            prefetch_read(slot);
        }
    }

    fn prefetch_key(&self, index: LogIndex) {
        if let Some(&Slot { start, .. }) = Self::offset(index).and_then(|o| self.slots.get(o))
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
        self.log.get(LogIndex((self.start + i) as u64 + 1))
    }

    pub fn iter(&self) -> LogIter<'a> {
        LogIter {
            log: self.log,
            next: self.start,
            end: self.end,
            run: self
                .log
                .run_holding(LogIndex(self.start as u64 + 1))
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
        let index = LogIndex(self.next as u64 + 1);
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
