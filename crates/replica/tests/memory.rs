//! What a stored put costs: the log and the state machine allocate nothing per entry, and
//! (as a report, not an assertion: it depends on growth policies) the heap bytes they
//! hold per put. Run with `--nocapture` to see the report:
//!
//!     cargo test --release --test memory -- --nocapture
//!
//! The measurement that counts is the replica's RSS under load (`docs/PERFORMANCE.md`); this
//! one isolates the two structures.

use raft::kv_index::KvStore;
use raft::{CommandRef, EntryRef, Log, LogIndex, Term};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

/// Keys of 32 characters and values of 32 hex characters, like the simulator's.
fn key(k: usize) -> String {
    format!("key-{k:028}")
}

fn value(i: usize) -> String {
    format!("{:032x}", (i as u128 + 1) * 0x9E37_79B9_7F4A_7C15)
}

#[test]
fn stored_puts_cost_no_allocation_each_and_report_their_bytes() {
    // Like high-load-10k: about two puts per key, a no-op per term.
    const PUTS: usize = 50_000;
    const KEYS: usize = 25_000;
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let values: Vec<String> = (0..PUTS).map(value).collect();
    let mut log = Log::new();
    let mut kv = KvStore::new(7);
    let before = allocations();
    for term in 1..=3u64 {
        let index = log.append(EntryRef {
            term: Term(term),
            command: CommandRef::Noop,
        });
        kv.apply(&log, index);
        for i in (term as usize - 1) * PUTS / 3..term as usize * PUTS / 3 {
            let index = log.append(EntryRef {
                term: Term(term),
                command: CommandRef::Put {
                    key: &keys[i % KEYS],
                    value: &values[i],
                },
            });
            kv.apply(&log, index);
        }
    }
    let allocated = allocations() - before;
    // Growth by doubling: a few dozen reallocations for the log, and each shard of the
    // store doubles from 4 slots to hold about 12 keys (a few tables each, 8 at most),
    // where an allocation per key or value would be 25,000 or more.
    let growth_max = 100 + 8 * raft::kv_index::SHARDS as u64;
    assert!(
        allocated < growth_max,
        "{allocated} allocations for {PUTS} puts: something allocates per entry"
    );
    assert_eq!(kv.len(), KEYS);
    assert_eq!(log.last_index(), LogIndex(PUTS as u64 + 3));
    for k in [0, 1, KEYS / 2, KEYS - 1] {
        // Key k was last written by put KEYS + k (the second round over the keys).
        assert_eq!(kv.get(&log, &keys[k]), values[KEYS + k]);
    }

    let payload = (32 + 32) as f64;
    let per_put = |bytes: usize| bytes as f64 / PUTS as f64;
    println!(
        "{PUTS} puts of {payload} bytes, {KEYS} keys, {allocated} allocations: heap bytes per put \
         (by capacity) log {:.1}, state machine {:.1}, total {:.1} = {:.2}x key+value",
        per_put(log.heap_bytes()),
        per_put(kv.heap_bytes()),
        per_put(log.heap_bytes() + kv.heap_bytes()),
        per_put(log.heap_bytes() + kv.heap_bytes()) / payload,
    );
}
