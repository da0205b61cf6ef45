//! `kvnemesis`: a Jepsen-style test of the cluster, real processes and real faults in a
//! private network namespace (root needed). Parses the command line and hands over to
//! the `kvnemesis` crate; exits 0 only when every check holds (1: a check failed, 2: the
//! run could not be made).

use clap::Parser;
use kvnemesis::analysis::analyse;
use kvnemesis::history;
use kvnemesis::operations::pair;
use kvnemesis::page::page;
use kvnemesis::report::verdict;
use kvnemesis::schedule::{Fault, plan};
use kvnemesis::workload::WorkloadOptions;
use kvnemesis::{Options, run};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kvnemesis",
    about = "Jepsen-style test of a kvstore cluster: faults from the operating system, the history checked twice"
)]
struct Cli {
    /// Nodes in the cluster (3 or 5 are usual).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(3..=9))]
    nodes: u16,
    /// Nodes started beside the cluster with `kvstore serve --join`, for the
    /// member-grow-shrink fault (which adds them all, then removes as many members).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=4))]
    spares: u16,
    /// Connections of redis-benchmark load (SETs on keys of its own against the leader,
    /// beside the checked clients); 0 for none.
    #[arg(long, default_value_t = 0)]
    benchmark_clients: usize,
    /// Seconds of workload and faults.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Seeds the schedule and the clients (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Clients, each with its own connections.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Keys in use at once.
    #[arg(long, default_value_t = 3)]
    keys: usize,
    /// Operations on one key before its slot moves to a fresh key.
    #[arg(long, default_value_t = 300)]
    ops_per_key: u32,
    /// Milliseconds an operation may take before it is recorded as `info` (more than
    /// the 2 s a node holds a command while no leader is known).
    #[arg(long, default_value_t = 3_000)]
    op_timeout_ms: u64,
    /// Each client waits up to this many milliseconds between operations.
    #[arg(long, default_value_t = 10)]
    think_ms: u64,
    /// Faults to draw from: kill, pause, partition, loss, member, all, or single ones
    /// (kill-one, kill-leader, kill-minority, kill-majority, kill-all, pause-one,
    /// pause-leader, partition-leader, partition-halves, partition-ring,
    /// partition-one-way, member-replace, member-replace-leader, and with --spares
    /// member-grow-shrink), comma-separated.
    #[arg(long, default_value = "all")]
    faults: String,
    /// The kvstore binary (default: the one beside this program).
    #[arg(long, value_name = "PATH")]
    kvstore: Option<PathBuf>,
    /// Each run's directory (cluster file, data dirs, node logs, history.jsonl) goes
    /// under DIR.
    #[arg(long, value_name = "DIR", default_value = "kvnemesis-runs")]
    dir: PathBuf,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the run as one self-contained page to FILE (kvsim's report: node
    /// lanes with faults as spans, operations by latency, violations drawn).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// TEST ONLY: start the nodes with `--unsafe-local-reads` (followers serve reads from
    /// their own state, without a read index): the run must then fail.
    #[arg(long)]
    unsafe_local_reads: bool,
    /// Print the seed's fault schedule and exit (no root needed).
    #[arg(long)]
    dry_run: bool,
    /// Check a history written by an earlier run (its history.jsonl) and exit (no root
    /// needed).
    #[arg(long, value_name = "HISTORY")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.check {
        Some(path) => check(path),
        None => test(&cli),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("kvnemesis: {error}");
            ExitCode::from(2)
        }
    }
}

/// `--check`: the checks on a history already written.
fn check(path: &Path) -> Result<bool, String> {
    let analysis = analyse(&history::read(path)?)?;
    let problems = analysis.problems();
    print!("{}{}", analysis.text(), verdict(&problems));
    Ok(problems.is_empty())
}

fn test(cli: &Cli) -> Result<bool, String> {
    options(cli).and_then(|options| {
        println!("kvnemesis: seed {}", options.seed);
        if cli.dry_run {
            for step in plan(options.seed, options.time, &options.faults) {
                println!(
                    "{:>6.1} s  {:<21} held {:.1} s",
                    step.at.as_secs_f64(),
                    step.fault.name(),
                    step.hold.as_secs_f64()
                );
            }
            return Ok(true);
        }
        if !options.kvstore.is_file() {
            return Err(format!(
                "no kvstore binary at {} (build it, or give --kvstore PATH)",
                options.kvstore.display()
            ));
        }
        let summary = run(&options)?;
        print!("{}", summary.text());
        if let Some(path) = &cli.json {
            let json = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
            std::fs::write(path, json)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        if let Some(path) = &cli.html {
            let events = history::read(Path::new(&summary.history))?;
            let ops = pair(&events)?;
            let html = page(&summary, &events, &ops, options.workload.clients);
            std::fs::write(path, html)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(summary.passed)
    })
}

fn options(cli: &Cli) -> Result<Options, String> {
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let kvstore = match &cli.kvstore {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this program's path: {e}"))?
            .with_file_name("kvstore"),
    };
    if cli.clients == 0 || cli.keys == 0 || cli.ops_per_key == 0 || cli.time == 0 {
        return Err("--clients, --keys, --ops-per-key and --time must be at least 1".into());
    }
    let mut command_line = format!(
        "kvnemesis --nodes {} --time {} --seed {seed} --clients {} --keys {} --ops-per-key {} --op-timeout-ms {} --think-ms {} --faults {}",
        cli.nodes,
        cli.time,
        cli.clients,
        cli.keys,
        cli.ops_per_key,
        cli.op_timeout_ms,
        cli.think_ms,
        cli.faults
    );
    if cli.spares > 0 {
        command_line.push_str(&format!(" --spares {}", cli.spares));
    }
    if cli.benchmark_clients > 0 {
        command_line.push_str(&format!(" --benchmark-clients {}", cli.benchmark_clients));
    }
    if cli.unsafe_local_reads {
        command_line.push_str(" --unsafe-local-reads");
    }
    Ok(Options {
        nodes: cli.nodes,
        spares: cli.spares,
        benchmark_clients: cli.benchmark_clients,
        time: Duration::from_secs(cli.time),
        seed,
        workload: WorkloadOptions {
            clients: cli.clients,
            keys: cli.keys,
            ops_per_key: cli.ops_per_key,
            op_timeout: Duration::from_millis(cli.op_timeout_ms),
            think_max: Duration::from_millis(cli.think_ms),
        },
        faults: Fault::parse_list(&cli.faults, cli.spares > 0)?,
        kvstore,
        dir: cli.dir.clone(),
        unsafe_local_reads: cli.unsafe_local_reads,
        command_line,
    })
}
