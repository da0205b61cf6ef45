//! Applying committed puts to a large state machine: the follower's work per put under
//! load. 250,000 keys already stored, then batches of puts to random existing keys (each
//! an overwrite, so the key the table points at is read back from the log and compared:
//! cache misses in a table and a log far larger than the cache).
//!
//! Compares a batch applied with `KvStore::apply_range` (which prefetches ahead) against
//! the same entries applied one at a time, in one run, so their ratio holds even when
//! the machine's speed moves between runs. Also times a whole compaction of that store
//! (every key's value copied into a new snapshot arena, `KvStore::compact`), the work a
//! replica spreads over batches of input, a few hundred keys a batch:
//!
//!     cargo bench --bench apply

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raft::kv_index::KvStore;
use raft::log::Log;
use raft::message::{CommandRef, EntryRef, LogIndex, Term};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const KEYS: u64 = 250_000;
/// Overwrites in the log after the first put of every key.
const OVERWRITES: u64 = 500_000;
const BATCH: u64 = 256;

/// A log of `KEYS` fresh puts then `OVERWRITES` puts to random keys, and a store that has
/// applied all of it. Iterations apply old entries again, which points their keys back
/// at them: the table keeps its keys and its size, so every iteration does the same work.
fn setup() -> (Log, KvStore) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut log = Log::new();
    let mut kv = KvStore::new(7);
    let key = |k: u64| format!("{:032}", k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in 0..KEYS + OVERWRITES {
        let k = if i < KEYS {
            i
        } else {
            rng.random_range(0..KEYS)
        };
        let value = format!("{i:032}");
        let index = log.append(EntryRef {
            term: Term(1),
            command: CommandRef::Put {
                key: &key(k),
                value: &value,
            },
        });
        kv.apply(&log, index);
    }
    (log, kv)
}

fn apply(c: &mut Criterion) {
    let (log, mut kv) = setup();
    let mut rng = StdRng::seed_from_u64(11);
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(BATCH));
    // Batches start anywhere among the overwrites, so the lines they touch are cold.
    let mut batch_start = move || LogIndex(KEYS + 1 + rng.random_range(0..OVERWRITES - BATCH));
    group.bench_function("batch", |b| {
        b.iter(|| {
            let first = batch_start();
            kv.apply_range(&log, first, LogIndex(first.0 + BATCH - 1));
        })
    });
    group.bench_function("one at a time", |b| {
        b.iter(|| {
            let first = batch_start();
            for i in first.0..first.0 + BATCH {
                kv.apply(&log, LogIndex(i));
            }
        })
    });
    group.finish();
}

fn compact(c: &mut Criterion) {
    let mut group = c.benchmark_group("compact");
    group.sample_size(10);
    group.throughput(Throughput::Elements(KEYS));
    // A fresh store each time: a compacted store's slots name its arena, in key order,
    // which a second compaction would read far faster than the log.
    group.bench_function("250k keys", |b| {
        b.iter_custom(|iterations| {
            let mut took = Duration::ZERO;
            for _ in 0..iterations {
                let (log, mut kv) = setup();
                let start = Instant::now();
                kv.compact(&log, log.last_index(), Term(1));
                took += start.elapsed();
            }
            took
        })
    });
    group.finish();
}

criterion_group!(benches, apply, compact);
criterion_main!(benches);
