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

    fn push(&mut self, entry: EntryRef<'_>) {
        let index = self.last_index().next();
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
mod tests {
    use super::*;

    fn put(term: u64, key: &'static str, value: &'static str) -> EntryRef<'static> {
        EntryRef {
            term: Term(term),
            command: CommandRef::Put { key, value },
        }
    }

    fn noop(term: u64) -> EntryRef<'static> {
        EntryRef {
            term: Term(term),
            command: CommandRef::Noop,
        }
    }

    fn terms(log: &Log) -> Vec<u64> {
        log.entries().iter().map(|e| e.term.0).collect()
    }

    fn all(log: &Log) -> Vec<EntryRef<'_>> {
        log.entries().into_iter().collect()
    }

    #[test]
    fn the_state_machine_reads_keys_as_puts_hold_them() {
        let mut log = Log::new();
        for entry in [
            put(1, "a", "1"),
            noop(2),
            put(2, "", "x"),
            put(3, "key", ""),
        ] {
            log.append(entry);
        }
        for i in 0..=6 {
            let index = LogIndex(i);
            assert_eq!(
                log.key_at(index),
                log.put_at(index).map(|(key, _)| key),
                "index {i}"
            );
            // Hints only: any index, in the log or not, is fine.
            log.prefetch_entry(index);
            log.prefetch_key(index);
        }
        assert_eq!(log.key_at(LogIndex(4)), Some("key"));
        assert_eq!(log.key_at(LogIndex(2)), None);
        assert_eq!(log.key_at(LogIndex(5)), None);
    }

    #[test]
    fn merge_appends_skips_matches_and_cuts_conflicts() {
        let mut log = Log::new();
        assert_eq!(
            log.merge(
                LogIndex(0),
                &[put(1, "a", "v"), put(1, "b", "v")],
                LogIndex(0)
            ),
            Some(LogIndex(2))
        );
        // A duplicate of an older, shorter append leaves the longer log alone.
        log.merge(LogIndex(2), &[put(2, "c", "v")], LogIndex(0));
        assert_eq!(
            log.merge(LogIndex(0), &[put(1, "a", "v")], LogIndex(0)),
            Some(LogIndex(1))
        );
        assert_eq!(terms(&log), vec![1, 1, 2]);
        // A conflict at index 2 cuts 2.. and appends.
        log.merge(LogIndex(1), &[put(3, "x", "y")], LogIndex(1));
        assert_eq!(terms(&log), vec![1, 3]);
        assert_eq!(all(&log), vec![put(1, "a", "v"), put(3, "x", "y")]);
    }

    #[test]
    fn merge_refuses_to_cut_committed_entries() {
        let mut log = Log::new();
        log.merge(
            LogIndex(0),
            &[put(1, "a", "v"), put(1, "b", "v")],
            LogIndex(0),
        );
        assert_eq!(
            log.merge(LogIndex(1), &[put(2, "x", "v")], LogIndex(2)),
            None
        );
        assert_eq!(all(&log), vec![put(1, "a", "v"), put(1, "b", "v")]);
    }

    #[test]
    fn term_lookups() {
        let mut log = Log::new();
        log.merge(
            LogIndex(0),
            &[
                put(1, "a", "v"),
                put(2, "b", "v"),
                put(2, "c", "v"),
                put(4, "d", "v"),
            ],
            LogIndex(0),
        );
        assert_eq!(log.term_at(LogIndex(0)), Some(Term(0)));
        assert_eq!(log.term_at(LogIndex(1)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(4)), Some(Term(4)));
        assert_eq!(log.term_at(LogIndex(5)), None);
        assert_eq!(log.first_index_of_term(LogIndex(3), Term(2)), LogIndex(2));
        assert_eq!(log.first_index_of_term(LogIndex(2), Term(2)), LogIndex(2));
        assert_eq!(log.first_index_of_term(LogIndex(4), Term(4)), LogIndex(4));
        assert_eq!(log.first_index_of_term(LogIndex(1), Term(1)), LogIndex(1));
        assert_eq!(log.last_index_of_term(Term(1)), Some(LogIndex(1)));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(3)));
        assert_eq!(log.last_index_of_term(Term(4)), Some(LogIndex(4)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
        assert_eq!(log.last_index_of_term(Term(5)), None);
        assert_eq!(log.last_index_of_term(Term(0)), None);
        assert!(log.is_up_to_date(LogIndex(1), Term(5)));
        assert!(!log.is_up_to_date(LogIndex(9), Term(3)));
        assert!(log.is_up_to_date(LogIndex(4), Term(4)));
        assert!(!log.is_up_to_date(LogIndex(3), Term(4)));
        let span = log.span(EntrySpan {
            first: LogIndex(2),
            count: 10,
        });
        assert_eq!(span.len(), 3);
        assert_eq!(
            span.iter().map(|e| e.term.0).collect::<Vec<_>>(),
            vec![2, 2, 4]
        );
    }

    #[test]
    fn entries_read_back_byte_exact_with_noops_taking_no_bytes() {
        let mut log = Log::new();
        let key = "k".repeat(32);
        let value = "0123456789abcdef0123456789abcdef";
        let entries = [
            noop(1),
            EntryRef {
                term: Term(1),
                command: CommandRef::Put { key: &key, value },
            },
            put(1, "", ""),
            put(2, "é☃😀\"\\\u{0}", ""),
            put(2, "", "only a value"),
            noop(3),
            put(3, "ab", "cd"),
        ];
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(log.append(*entry), LogIndex(i as u64 + 1));
        }
        assert_eq!(all(&log), entries);
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(log.get(LogIndex(i as u64 + 1)), Some(*entry));
            assert_eq!(log.entries().get(i), Some(*entry));
        }
        assert_eq!(log.get(LogIndex(0)), None);
        assert_eq!(log.get(LogIndex(8)), None);
        assert_eq!(log.entries().get(7), None);
        // An empty put is still a put, not a no-op.
        assert_eq!(log.put_at(LogIndex(3)), Some(("", "")));
        assert_eq!(log.put_at(LogIndex(1)), None);
        assert_eq!(log.put_at(LogIndex(5)), Some(("", "only a value")));
        // The text holds each put's key and value once, and nothing for no-ops.
        let put_bytes: usize = entries
            .iter()
            .map(|e| match e.command {
                CommandRef::Put { key, value } => key.len() + value.len(),
                CommandRef::Noop => 0,
            })
            .sum();
        assert_eq!(log.text.len(), put_bytes);
        assert_eq!(log.runs.len(), 3);
    }

    #[test]
    fn spans_clip_to_the_log_and_read_from_the_middle() {
        let mut log = Log::new();
        for (term, key) in [(1, "a"), (1, "b"), (2, "c"), (3, "d"), (3, "e")] {
            log.append(put(term, key, key));
        }
        let keys = |s: LogSlice<'_>| {
            s.iter()
                .map(|e| match e.command {
                    CommandRef::Put { key, .. } => format!("{}{key}", e.term.0),
                    CommandRef::Noop => "-".to_string(),
                })
                .collect::<Vec<_>>()
        };
        let span = |first, count| {
            log.span(EntrySpan {
                first: LogIndex(first),
                count,
            })
        };
        assert_eq!(keys(span(3, 2)), vec!["2c", "3d"]);
        assert_eq!(keys(span(2, 100)), vec!["1b", "2c", "3d", "3e"]);
        assert_eq!(keys(span(5, 1)), vec!["3e"]);
        assert!(span(6, 3).is_empty());
        assert!(span(0, 3).is_empty());
        assert!(span(2, 0).is_empty());
        assert_eq!(span(2, 3).iter().len(), 3);
        assert_eq!(span(4, 2).get(1), Some(put(3, "e", "e")));
    }

    #[test]
    fn truncation_drops_bytes_and_term_runs_then_appends_cleanly() {
        let mut log = Log::new();
        log.append(noop(1));
        log.append(put(1, "k1", "v1"));
        log.append(noop(2));
        log.append(put(2, "k2", "v2"));
        log.append(put(2, "k3", "v3"));
        let bytes_before_2 = log.text.len() - 8;
        // A new leader of term 4 overwrites from index 3 (the whole of term 2).
        assert_eq!(
            log.merge(LogIndex(2), &[noop(4), put(4, "x", "yz")], LogIndex(2)),
            Some(LogIndex(4))
        );
        assert_eq!(log.text.len(), bytes_before_2 + 3);
        assert_eq!(terms(&log), vec![1, 1, 4, 4]);
        assert_eq!(log.last_index_of_term(Term(2)), None);
        assert_eq!(log.last_index_of_term(Term(4)), Some(LogIndex(4)));
        assert_eq!(log.get(LogIndex(4)), Some(put(4, "x", "yz")));
        assert_eq!(log.get(LogIndex(2)), Some(put(1, "k1", "v1")));
        // Cutting inside a run keeps the head of the run.
        log.merge(
            LogIndex(4),
            &[put(4, "m", "n"), put(4, "o", "p")],
            LogIndex(2),
        );
        log.merge(LogIndex(4), &[put(6, "t", "u")], LogIndex(2));
        assert_eq!(terms(&log), vec![1, 1, 4, 4, 6]);
        assert_eq!(log.runs.len(), 3);
        assert_eq!(log.first_index_of_term(LogIndex(4), Term(4)), LogIndex(3));
        assert_eq!(log.last_index_of_term(Term(4)), Some(LogIndex(4)));
        assert_eq!(log.get(LogIndex(5)), Some(put(6, "t", "u")));
        assert_eq!(log.text, "k1v1xyztu");
        // A later leader holding term 4 there cuts term 6; term 4's run then grows again
        // instead of a second run of term 4 starting.
        log.merge(
            LogIndex(3),
            &[put(4, "x", "yz"), put(4, "e", "f")],
            LogIndex(2),
        );
        assert_eq!(terms(&log), vec![1, 1, 4, 4, 4]);
        assert_eq!(log.runs.len(), 2);
        assert_eq!(log.last_index_of_term(Term(4)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(6)), None);
        assert_eq!(log.first_index_of_term(LogIndex(5), Term(4)), LogIndex(3));
        assert_eq!(log.text, "k1v1xyzef");
    }
}
