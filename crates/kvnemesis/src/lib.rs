//! kvnemesis: a Jepsen-style test of the real cluster on one Linux machine.
//!
//! A run, from [`run`]:
//! 1. enters a private network namespace ([`namespace`]) and makes its nftables table
//!    ([`nft`]): nothing touches the machine's own network;
//! 2. starts N durable `kvstore serve` nodes on 127.0.0.11, .12, ... ([`cluster`]);
//! 3. runs the clients ([`workload`], over [`resp`]) and the nemesis ([`nemesis`], on the
//!    seeded [`schedule`]; membership changes through the [`operator`]) together, and
//!    with `--benchmark-clients`, `redis-benchmark` as load beside them ([`benchmark_load`]), every operation and fault written into the history
//!    ([`history`], Jepsen's JSON lines);
//! 4. heals everything, reads every key until the cluster answers, and checks the history
//!    ([`analysis`]: [`operations`], [`checks`] with `lincheck` and the
//!    [`second_checker`], [`availability`]);
//! 5. reports ([`report`]; [`page`] for `--html`): the run passes only if every check
//!    holds.

pub mod analysis;
pub mod availability;
pub mod benchmark_load;
pub mod checks;
pub mod cluster;
pub mod history;
pub mod namespace;
pub mod nemesis;
pub mod nft;
pub mod operations;
pub mod operator;
pub mod page;
pub mod report;
pub mod resp;
pub mod schedule;
pub mod second_checker;
pub mod workload;

use crate::cluster::Cluster;
use crate::history::Recorder;
use crate::operations::FINAL_READ_PROCESS_FROM;
use crate::report::Summary;
use crate::schedule::Fault;
use crate::workload::{Client, Keys, WorkloadOptions};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the cluster may take to elect its first leader.
const FIRST_LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long after the workload each final read may keep trying.
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Options {
    pub nodes: u16,
    /// Nodes started with `--join` beside the cluster, for `member-grow-shrink`.
    pub spares: u16,
    /// Connections of `redis-benchmark` load; 0 for none.
    pub benchmark_clients: usize,
    pub time: Duration,
    pub seed: u64,
    pub workload: WorkloadOptions,
    pub faults: Vec<Fault>,
    pub kvstore: PathBuf,
    /// The run's directory (cluster file, data dirs, node logs, history) goes under it.
    pub dir: PathBuf,
    pub unsafe_local_reads: bool,
    /// The command line, for the summary's "reproduce".
    pub command_line: String,
}

/// Runs the test. Must be called before this process starts any thread: the namespace
/// is entered by the calling thread. An error is a run that could not be made (no root,
/// no nft, a cluster that never elected a leader), not a failed check.
pub fn run(options: &Options) -> Result<Summary, String> {
    nft::check_available()?;
    if options.benchmark_clients > 0 {
        benchmark_load::check_available()?;
    }
    namespace::enter_private_network()?;
    nft::install()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run_dir = options.dir.join(format!("seed-{}-{stamp}", options.seed));
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let cluster = Cluster::start(
        &run_dir,
        options.nodes,
        options.spares,
        &options.kvstore,
        options.unsafe_local_reads,
    )?;
    wait_for_leader(&cluster)?;
    let directory = std::sync::Arc::clone(&cluster.directory);
    let cluster = Mutex::new(cluster);
    let history_path = run_dir.join("history.jsonl");
    let started = Instant::now();
    let recorder = Recorder::create(&history_path, started)?;
    let keys = Keys::new(options.workload.keys, options.workload.ops_per_key);
    let steps = schedule::plan(options.seed, options.time, &options.faults);
    let stop = AtomicBool::new(false);

    let (nemesis_result, benchmark) = std::thread::scope(|scope| {
        for c in 0..options.workload.clients {
            let (directory, keys, recorder, stop) =
                (std::sync::Arc::clone(&directory), &keys, &recorder, &stop);
            scope.spawn(move || {
                workload::run_client(
                    c,
                    directory,
                    &options.workload,
                    keys,
                    recorder,
                    stop,
                    options.seed,
                )
            });
        }
        let nemesis = scope.spawn(|| nemesis::run(&steps, &cluster, &recorder, started));
        let load = (options.benchmark_clients > 0).then(|| {
            scope.spawn(|| benchmark_load::run(&cluster, options.benchmark_clients, &stop))
        });
        std::thread::sleep(options.time);
        stop.store(true, Ordering::Relaxed);
        let benchmark = load.and_then(|thread| thread.join().ok());
        let result = nemesis
            .join()
            .unwrap_or_else(|_| Err("the nemesis panicked".into()));
        (result, benchmark)
    });
    let mut cluster = cluster.into_inner().unwrap_or_else(|e| e.into_inner());
    // Whatever the nemesis left (it heals each fault; an error may have stopped it
    // between), everything is healed before the final reads.
    let healed = nft::heal().and_then(|()| cluster.revive_all());
    let mut crashes = nemesis_result?;
    healed?;

    let mut reader = Client::new(directory, options.workload.op_timeout);
    let mut process = FINAL_READ_PROCESS_FROM;
    for key in keys.all() {
        workload::final_read(
            &mut reader,
            &key,
            &mut process,
            &recorder,
            FINAL_READ_TIMEOUT,
        );
    }
    for (id, status) in cluster.crashed() {
        crashes.push(format!("node {id} died on its own ({status})"));
    }
    cluster.stop_all();
    let nodes_started = u16::try_from(cluster.nodes.len()).unwrap_or(u16::MAX);
    let analysis = analysis::analyse(&recorder.finish()?)?;
    let passed = analysis.findings.passed() && crashes.is_empty() && analysis.operations.ok > 0;
    Ok(Summary {
        seed: options.seed,
        nodes: options.nodes,
        spares: options.spares,
        nodes_started,
        benchmark,
        time_s: options.time.as_secs(),
        clients: options.workload.clients,
        faults_enabled: options.faults.iter().map(|f| f.name()).collect(),
        unsafe_local_reads: options.unsafe_local_reads,
        run_dir: run_dir.display().to_string(),
        history: history_path.display().to_string(),
        analysis,
        crashes,
        passed,
        reproduce: options.command_line.clone(),
    })
}

fn wait_for_leader(cluster: &Cluster) -> Result<(), String> {
    let deadline = Instant::now() + FIRST_LEADER_TIMEOUT;
    while Instant::now() < deadline {
        if cluster.leader().is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no leader within {} s of starting the cluster; node 1's log ends:\n{}",
        FIRST_LEADER_TIMEOUT.as_secs(),
        cluster.log_tail(0, 20)
    ))
}
