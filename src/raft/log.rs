//! The replicated log (§5.3). Entries are never compacted: replicas live for one run.

use crate::raft::message::{Entry, EntryRef, EntrySpan, LogIndex, Term};

/// Invariant: `entries[i]` is the entry at index `i + 1`, and terms never decrease along
/// the log.
#[derive(Default, Debug)]
pub struct Log {
    entries: Vec<Entry>,
}

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(Term(0), |e| e.term)
    }

    /// The term of the entry at `index`; `Term(0)` for index 0, `None` past the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        self.entries.get(Self::offset(index)).map(|e| e.term)
    }

    pub fn get(&self, index: LogIndex) -> Option<&Entry> {
        if index.0 == 0 {
            return None;
        }
        self.entries.get(Self::offset(index))
    }

    /// The entries of `span`, clipped to the log.
    pub fn span(&self, span: EntrySpan) -> &[Entry] {
        if span.first.0 == 0 {
            return &[];
        }
        let start = Self::offset(span.first).min(self.entries.len());
        let end = start
            .saturating_add(span.count as usize)
            .min(self.entries.len());
        &self.entries[start..end]
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn append(&mut self, entry: Entry) -> LogIndex {
        debug_assert!(
            entry.term >= self.last_term(),
            "terms never decrease in a log"
        );
        self.entries.push(entry);
        self.last_index()
    }

    /// Appends `incoming`, which belongs right after `prev`, keeping entries that already
    /// match and cutting the log at the first conflict (§5.3: "if an existing entry
    /// conflicts with a new one, delete the existing entry and all that follow it"). A
    /// matching prefix is never cut, so a late or duplicated append cannot undo a newer one.
    /// Returns the index of the last entry of `incoming`, or `None` if a committed entry
    /// would have to be cut (a leader violating the protocol; nothing is changed then).
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
                    self.entries.truncate(Self::offset(index));
                }
                None => {}
            }
            self.entries
                .extend(incoming[k..].iter().map(|e| Entry::from_ref(*e)));
            break;
        }
        Some(LogIndex(prev.0 + incoming.len() as u64))
    }

    /// The first index holding `term`, searching back from `from` (which holds `term`).
    pub fn first_index_of_term(&self, from: LogIndex, term: Term) -> LogIndex {
        let mut index = from;
        while index.0 > 1 && self.term_at(index.prev()) == Some(term) {
            index = index.prev();
        }
        index
    }

    /// The last index holding `term`, if any (for the leader's side of fast backtracking).
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        // Terms are sorted along the log, so a binary search finds the end of `term`.
        let end = self.entries.partition_point(|e| e.term <= term);
        if end > 0 && self.entries[end - 1].term == term {
            Some(LogIndex(end as u64))
        } else {
            None
        }
    }

    /// §5.4.1: a candidate's log is at least as up to date as ours.
    pub fn is_up_to_date(&self, last_log_index: LogIndex, last_log_term: Term) -> bool {
        (last_log_term, last_log_index) >= (self.last_term(), self.last_index())
    }

    fn offset(index: LogIndex) -> usize {
        (index.0 - 1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::CommandRef;

    fn put(term: u64, key: &'static str) -> EntryRef<'static> {
        EntryRef {
            term: Term(term),
            command: CommandRef::Put { key, value: "v" },
        }
    }

    fn terms(log: &Log) -> Vec<u64> {
        log.entries().iter().map(|e| e.term.0).collect()
    }

    #[test]
    fn merge_appends_skips_matches_and_cuts_conflicts() {
        let mut log = Log::new();
        assert_eq!(
            log.merge(LogIndex(0), &[put(1, "a"), put(1, "b")], LogIndex(0)),
            Some(LogIndex(2))
        );
        // A duplicate of an older, shorter append leaves the longer log alone.
        log.merge(LogIndex(2), &[put(2, "c")], LogIndex(0));
        assert_eq!(
            log.merge(LogIndex(0), &[put(1, "a")], LogIndex(0)),
            Some(LogIndex(1))
        );
        assert_eq!(terms(&log), vec![1, 1, 2]);
        // A conflict at index 2 cuts 2.. and appends.
        log.merge(LogIndex(1), &[put(3, "x")], LogIndex(1));
        assert_eq!(terms(&log), vec![1, 3]);
    }

    #[test]
    fn merge_refuses_to_cut_committed_entries() {
        let mut log = Log::new();
        log.merge(LogIndex(0), &[put(1, "a"), put(1, "b")], LogIndex(0));
        assert_eq!(log.merge(LogIndex(1), &[put(2, "x")], LogIndex(2)), None);
        assert_eq!(terms(&log), vec![1, 1]);
    }

    #[test]
    fn term_lookups() {
        let mut log = Log::new();
        log.merge(
            LogIndex(0),
            &[put(1, "a"), put(2, "b"), put(2, "c"), put(4, "d")],
            LogIndex(0),
        );
        assert_eq!(log.term_at(LogIndex(0)), Some(Term(0)));
        assert_eq!(log.term_at(LogIndex(5)), None);
        assert_eq!(log.first_index_of_term(LogIndex(3), Term(2)), LogIndex(2));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(3)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
        assert!(log.is_up_to_date(LogIndex(1), Term(5)));
        assert!(!log.is_up_to_date(LogIndex(9), Term(3)));
        assert!(log.is_up_to_date(LogIndex(4), Term(4)));
        let span = log.span(EntrySpan {
            first: LogIndex(2),
            count: 10,
        });
        assert_eq!(span.len(), 3);
    }
}
