//! The commit path through the pure core: 5 replicas in memory, no I/O, no timers beyond
//! the first election (the harness's `InOrder` network). A leader takes puts in drains (as
//! the event loop hands it a socket's worth of requests before flushing), messages are
//! delivered in FIFO order, and every put is answered once committed.
//!
//! Reports committed puts per second (criterion's element throughput) and, printed once
//! per configuration, messages per committed put. Compares batching and pipelining on and
//! off, and in memory against durable: each replica then writes what every turn changed
//! to its own data directory (under the system's temporary directory) with one
//! `fdatasync`, before anything the turn produced leaves, as `--data-dir` does:
//!
//!     cargo bench --bench commit

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use harness::{Core, Cores, InOrder, Unmetered, peers_of};
use raft::time::Time;
use raft::{ClientRequest, Config, Node, NodeId, Operation};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use storage::{DataDir, Identity, Storage};

const REPLICAS: usize = 5;
const PUTS: usize = 2_000;
const PUTS_PER_DRAIN: usize = 100;

struct Bench {
    network: InOrder<DataDir>,
    /// When durable: the replicas' directories, removed on drop.
    dir: Option<PathBuf>,
}

impl Bench {
    fn new(configure: fn(&mut Config)) -> Bench {
        let ids: Vec<NodeId> = (0..REPLICAS as u16).map(NodeId).collect();
        let configs: Vec<Config> = ids
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, peers_of(&ids, id), u64::from(id.0) + 1);
                configure(&mut config);
                config
            })
            .collect();
        let dir = configs[0].durable.then(|| {
            static RUNS: AtomicU64 = AtomicU64::new(0);
            std::env::temp_dir().join(format!(
                "kvstore-bench-commit-{}-{}",
                std::process::id(),
                RUNS.fetch_add(1, Ordering::Relaxed)
            ))
        });
        let cores = configs
            .into_iter()
            .map(|config| {
                let storage = dir.as_ref().map(|dir| open_data_dir(dir, &config));
                Core::new(Node::new(config, Time::ZERO), storage)
            })
            .collect();
        Bench {
            network: InOrder::new(Cores::new(cores), Unmetered),
            dir,
        }
    }

    /// Puts `PUTS` keys through the leader; returns messages sent for them.
    fn run(&mut self, keys: &[(String, String)]) -> u64 {
        let client = NodeId(0x20);
        for (d, drain) in keys.chunks(PUTS_PER_DRAIN).enumerate() {
            let mids: Vec<String> = (0..drain.len()).map(|k| format!("{d:08}{k:08}")).collect();
            let requests: Vec<ClientRequest<'_>> = drain
                .iter()
                .zip(&mids)
                .map(|((key, value), mid)| ClientRequest {
                    client,
                    mid,
                    operation: Operation::Put { key, value },
                })
                .collect();
            self.network.drain(&requests);
        }
        let (answered, ok) = self.network.answered();
        assert_eq!(
            (answered, ok),
            (keys.len(), keys.len()),
            "every put committed and answered"
        );
        self.network.sent()
    }
}

/// A fresh data directory of the replica `config` names, under `dir`.
fn open_data_dir(dir: &std::path::Path, config: &Config) -> Storage<DataDir> {
    let mine = dir.join(config.id.to_string());
    std::fs::create_dir_all(&mine).expect("a temporary directory");
    let identity = Identity {
        id: config.id,
        peers: config.peers.clone(),
        cluster: "bench".to_owned(),
    };
    let disk = DataDir::new(&mine).expect("a temporary directory");
    Storage::open(disk, &identity, u64::from(config.id.0))
        .expect("a fresh data directory")
        .0
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
