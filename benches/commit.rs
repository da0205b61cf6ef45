//! The commit path through the pure core: 5 replicas in memory, no I/O, no timers beyond
//! the first election. A leader takes puts in drains (as the event loop hands it a socket's
//! worth of requests before flushing), messages are delivered in FIFO order, and every put
//! is answered once committed.
//!
//! Reports committed puts per second (criterion's element throughput) and, printed once
//! per configuration, messages per committed put. Compares batching and pipelining on and
//! off, and in memory against durable: each replica then writes what every turn changed
//! to its own data directory (under the system's temporary directory) with one
//! `fdatasync`, before anything the turn produced leaves, as `--data-dir` does:
//!
//!     cargo bench --bench commit

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use raft::EntrySpan;
use raft::NodeId;
use raft::time::{Span, Time};
use raft::{
    ClientRequest, Config, Effect, EntryRef, Message, Node, Operation, OutgoingMessage, ReplyKind,
    Role, Timer,
};
use std::collections::VecDeque;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use storage::{DataDir, Identity, Storage};

const REPLICAS: usize = 5;
const PUTS: usize = 2_000;
const PUTS_PER_DRAIN: usize = 100;

struct Bench {
    nodes: Vec<Node>,
    /// Per replica, when durable: its storage, and the directory removed on drop.
    storage: Vec<Storage>,
    dir: Option<PathBuf>,
    queue: VecDeque<(usize, usize, OutgoingMessage)>,
    effects: Vec<Effect>,
    acked: usize,
    messages: u64,
    now: Time,
}

impl Bench {
    fn new(configure: fn(&mut Config)) -> Bench {
        let ids: Vec<NodeId> = (0..REPLICAS as u16).map(NodeId).collect();
        let mut durable = false;
        let nodes = ids
            .iter()
            .map(|&id| {
                let peers = ids.iter().copied().filter(|&p| p != id).collect();
                let mut config = Config::new(id, peers, u64::from(id.0) + 1);
                configure(&mut config);
                durable = config.durable;
                Node::new(config, Time::ZERO)
            })
            .collect();
        let (storage, dir) = if durable {
            static RUNS: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "kvstore-bench-commit-{}-{}",
                std::process::id(),
                RUNS.fetch_add(1, Ordering::Relaxed)
            ));
            let storage = ids
                .iter()
                .map(|&id| {
                    let mine = dir.join(id.to_string());
                    std::fs::create_dir_all(&mine).expect("a temporary directory");
                    let peers: Vec<NodeId> = ids.iter().copied().filter(|&p| p != id).collect();
                    let identity = Identity {
                        id,
                        peers,
                        cluster: "bench".to_owned(),
                    };
                    let dir = DataDir::new(&mine).expect("a temporary directory");
                    Storage::open(dir, &identity, u64::from(id.0))
                        .expect("a fresh data directory")
                        .0
                })
                .collect();
            (storage, Some(dir))
        } else {
            (Vec::new(), None)
        };
        let mut bench = Bench {
            nodes,
            storage,
            dir,
            queue: VecDeque::new(),
            effects: Vec::new(),
            acked: 0,
            messages: 0,
            now: Time::ZERO,
        };
        for i in 0..REPLICAS {
            bench.collect(i);
        }
        bench.queue.clear();
        // Replica 0's election timer fires first; everything it sends is delivered.
        bench.now = Time::from_millis(5_000);
        bench.nodes[0].handle_timer(bench.now, Timer::Election);
        bench.collect(0);
        bench.deliver_all();
        assert_eq!(bench.nodes[0].role(), Role::Leader);
        bench.messages = 0;
        bench
    }

    fn collect(&mut self, i: usize) {
        self.nodes[i].flush(self.now);
        if let Some(storage) = self.storage.get_mut(i) {
            // One turn's changes, one write and one sync, before its messages leave.
            let node = &mut self.nodes[i];
            let changes = node.take_unpersisted();
            let last = node.log().last_index();
            if let Some(state) = changes.hard_state {
                storage.save_hard_state(state);
            }
            if let Some(first) = changes.entries_from {
                let count = (last.0 + 1 - first.0) as u32;
                storage.save_entries(first, node.log_entries(EntrySpan { first, count }));
            }
            storage.sync().expect("the data directory takes the write");
            node.persisted(self.now, last);
        }
        self.nodes[i].take_effects(&mut self.effects);
        for effect in self.effects.drain(..) {
            match effect {
                Effect::Send { to, message } => {
                    self.messages += 1;
                    self.queue.push_back((i, usize::from(to.0), message));
                }
                Effect::Reply(reply) => {
                    assert_eq!(reply.kind, ReplyKind::Ok { value: None });
                    self.acked += 1;
                }
                Effect::SetTimer { .. } | Effect::CancelTimer { .. } => {}
            }
        }
    }

    fn deliver_all(&mut self) {
        while let Some((from, to, message)) = self.queue.pop_front() {
            self.now = self.now + Span::from_micros(1);
            let from_id = self.nodes[from].id();
            // The sender's log only grows here, so its entries are read at delivery.
            let (sender, receiver) = if from < to {
                let (a, b) = self.nodes.split_at_mut(to);
                (&a[from], &mut b[0])
            } else {
                let (a, b) = self.nodes.split_at_mut(from);
                (&b[0], &mut a[to])
            };
            let entries: Vec<EntryRef<'_>> = match message {
                Message::AppendEntries(m) => sender.log_entries(m.entries).into_iter().collect(),
                _ => Vec::new(),
            };
            let incoming = message.with_entries(&entries[..]);
            receiver
                .handle_message(self.now, from_id, incoming)
                .expect("a valid message");
            self.collect(to);
        }
    }

    /// Puts `PUTS` keys through the leader; returns messages sent for them.
    fn run(&mut self, keys: &[(String, String)]) -> u64 {
        let client = NodeId(0x20);
        for (d, drain) in keys.chunks(PUTS_PER_DRAIN).enumerate() {
            for (k, (key, value)) in drain.iter().enumerate() {
                let mid = format!("{d:08}{k:08}");
                self.nodes[0].handle_client_request(
                    self.now,
                    ClientRequest {
                        client,
                        mid: &mid,
                        operation: Operation::Put { key, value },
                    },
                );
            }
            self.collect(0);
            self.deliver_all();
        }
        assert_eq!(self.acked, keys.len(), "every put committed and answered");
        self.messages
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Adjusts a replica's defaults for one variant.
type Configure = fn(&mut Config);

fn batched(_: &mut Config) {}
fn batched_durable(config: &mut Config) {
    config.durable = true;
}
fn unbatched(config: &mut Config) {
    config.append_entries_max = 1;
}
fn stop_and_wait(config: &mut Config) {
    config.append_entries_max = 1;
    config.inflight_appends_max = 1;
}

fn commit_path(c: &mut Criterion) {
    let keys: Vec<(String, String)> = (0..PUTS)
        .map(|i| (format!("{i:032x}"), format!("{:032x}", i * 7919)))
        .collect();
    let configs: [(&str, Configure); 4] = [
        ("batched_pipelined", batched),
        ("batched_pipelined_durable", batched_durable),
        ("unbatched_pipelined", unbatched),
        ("unbatched_stop_and_wait", stop_and_wait),
    ];
    for (name, configure) in configs {
        let messages = Bench::new(configure).run(&keys);
        println!(
            "commit/{name}: {:.2} messages per committed put ({messages} for {PUTS} puts, {REPLICAS} replicas, {PUTS_PER_DRAIN} puts per drain)",
            messages as f64 / PUTS as f64
        );
    }
    let mut group = c.benchmark_group("commit");
    group.throughput(Throughput::Elements(PUTS as u64));
    for (name, configure) in configs {
        group.bench_function(name, |b| {
            b.iter_batched(
                || Bench::new(configure),
                |mut bench| black_box(bench.run(&keys)),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, commit_path);
criterion_main!(benches);
