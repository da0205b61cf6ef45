use super::*;
use crate::kv_index::PutLog;

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
        EntryRef {
            term: Term(3),
            command: CommandRef::Membership("1 v;2 v;3 l 127.0.0.1:1"),
        },
        put(3, "", ""),
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
    assert_eq!(log.get(LogIndex(10)), None);
    assert_eq!(log.entries().get(9), None);
    // A membership is neither a put nor a key.
    assert_eq!(log.put_at(LogIndex(8)), None);
    assert_eq!(log.key_at(LogIndex(8)), None);
    // An empty put is still a put, not a no-op.
    assert_eq!(log.put_at(LogIndex(3)), Some(("", "")));
    assert_eq!(log.put_at(LogIndex(1)), None);
    assert_eq!(log.put_at(LogIndex(5)), Some(("", "only a value")));
    // The text holds each put's key and value once, a membership's text, and nothing
    // for no-ops.
    let put_bytes: usize = entries
        .iter()
        .map(|e| match e.command {
            CommandRef::Put { key, value } => key.len() + value.len(),
            CommandRef::Membership(text) => text.len(),
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
                CommandRef::Noop | CommandRef::Membership(_) => "-".to_string(),
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
