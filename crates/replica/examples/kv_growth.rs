//! How long the slowest applies take while the state machine grows: 250,000 puts of
//! fresh 32-byte keys and values into a log and a `KvStore`, timing each append and apply.
//! Growing a hash table rehashes its keys in one insert; this shows what that costs.
//!
//! `cargo run --release --example kv_growth`

use replica::kv::KvStore;
use replica::raft::log::Log;
use replica::raft::message::{CommandRef, EntryRef, Term};
use std::time::{Duration, Instant};

const PUTS: u64 = 250_000;
const SLOW: Duration = Duration::from_micros(500);

fn main() {
    let mut log = Log::new();
    let mut kv = KvStore::new(7);
    let mut slowest = (0, Duration::ZERO);
    let (mut slow, mut slow_total) = (0, Duration::ZERO);
    let started = Instant::now();
    for i in 0..PUTS {
        let key = format!("{:032}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let value = format!("{i:032}");
        let t = Instant::now();
        let index = log.append(EntryRef {
            term: Term(1),
            command: CommandRef::Put {
                key: &key,
                value: &value,
            },
        });
        kv.apply(&log, index);
        let took = t.elapsed();
        if took > slowest.1 {
            slowest = (i + 1, took);
        }
        if took > SLOW {
            slow += 1;
            slow_total += took;
        }
    }
    println!(
        "{PUTS} puts in {:.1} ms; slowest apply {:.2} ms (put {}); {slow} applies over {} µs, {:.1} ms in all",
        started.elapsed().as_secs_f64() * 1e3,
        slowest.1.as_secs_f64() * 1e3,
        slowest.0,
        SLOW.as_micros(),
        slow_total.as_secs_f64() * 1e3,
    );
}
