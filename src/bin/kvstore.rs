//! `kvstore`: the store in cluster mode, for Redis clients.
//!
//! - `kvstore serve --config CLUSTER.toml --id ID [--data-dir DIR | --in-memory]` runs one
//!   node; with `--join PEER CLIENT`, a node not in the file, to be added by the leader
//!   (`CLUSTER ADDNODE`);
//! - `kvstore cluster [--nodes N] [--spares K] [--base-port P] [--data-dir DIR]` runs a
//!   local cluster of N nodes as child processes, and K more outside it, ready to add.
//!
//! Parses the command line and hands over to the `server` crate.

use clap::{Parser, Subcommand};
use server::serve::{PEER_DATAGRAM_BYTES_ENV, ServeOptions, TEST_ONLY_ENV, serve};
use server::supervisor::{self, ClusterOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kvstore",
    about = "A Raft-replicated key-value store for Redis clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Run one node of the cluster that CLUSTER.toml describes.
    Serve {
        /// The cluster file: every node's id, peer (UDP) and client (TCP) address.
        #[arg(long, value_name = "CLUSTER.toml")]
        config: PathBuf,
        /// This node's id in the cluster file (with --join, an id not in it).
        #[arg(long)]
        id: u16,
        /// Start outside the cluster, at these peer (UDP) and client (TCP) addresses, and
        /// wait to be added: `CLUSTER ADDNODE ID PEER CLIENT` on the leader.
        #[arg(long, num_args = 2, value_names = ["PEER", "CLIENT"])]
        join: Option<Vec<std::net::SocketAddr>>,
        /// Where the node keeps its term, vote, log and snapshot (created if missing).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Keep nothing on disk (a restarted node comes back empty).
        #[arg(long)]
        in_memory: bool,
        /// Write a debug log to DIR.
        #[arg(long, value_name = "DIR")]
        debug_log: Option<PathBuf>,
        /// TEST ONLY, breaks linearizability: followers answer GET from their own state,
        /// without a read index. Refused unless KVSTORE_TEST_ONLY=unsafe-local-reads.
        #[arg(long)]
        unsafe_local_reads: bool,
    },
    /// Run a local cluster: N nodes on 127.0.0.1 as child processes, until Ctrl-C.
    Cluster {
        #[arg(long, default_value_t = 3)]
        nodes: u16,
        /// Also start this many nodes outside the cluster, each ready to be added with the
        /// CLUSTER ADDNODE line printed for it.
        #[arg(long, default_value_t = 0)]
        spares: u16,
        /// Client ports P..P+N-1; peer ports 100 above them.
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
        /// Where cluster.toml and each node's data dir go.
        #[arg(long, value_name = "DIR", default_value = "kvstore-cluster")]
        data_dir: PathBuf,
        /// Nodes keep nothing on disk.
        #[arg(long)]
        in_memory: bool,
    },
}

/// The experiment knob, if set (with [`TEST_ONLY_ENV`], the only environment this binary
/// reads).
fn peer_datagram_bytes() -> Result<Option<usize>, String> {
    match std::env::var(PEER_DATAGRAM_BYTES_ENV) {
        Err(_) => Ok(None),
        Ok(text) => text
            .parse()
            .map(Some)
            .map_err(|_| format!("{PEER_DATAGRAM_BYTES_ENV}={text:?} is not a byte count")),
    }
}

/// A test-only option is refused unless the environment names it, so that it cannot be
/// turned on by a stray flag alone.
fn allow_test_only(option: &str, wanted: bool) -> Result<bool, String> {
    let named = std::env::var(TEST_ONLY_ENV)
        .is_ok_and(|list| list.split(',').any(|word| word.trim() == option));
    if wanted && !named {
        return Err(format!(
            "--{option} is for tests only (it breaks linearizability): refused unless {TEST_ONLY_ENV}={option}"
        ));
    }
    Ok(wanted)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Mode::Serve {
            config,
            id,
            join,
            data_dir,
            in_memory,
            debug_log,
            unsafe_local_reads,
        } => peer_datagram_bytes().and_then(|peer_datagram_bytes| {
            serve(&ServeOptions {
                config,
                id,
                join: join.map(|a| (a[0], a[1])),
                data_dir,
                in_memory,
                debug_log_dir: debug_log,
                peer_datagram_bytes,
                unsafe_local_reads: allow_test_only("unsafe-local-reads", unsafe_local_reads)?,
            })
        }),
        Mode::Cluster {
            nodes,
            spares,
            base_port,
            data_dir,
            in_memory,
        } => std::env::current_exe()
            .map_err(|e| format!("cannot find this program's path: {e}"))
            .and_then(|kvstore| {
                supervisor::run(
                    &ClusterOptions {
                        nodes,
                        spares,
                        base_port,
                        data_dir,
                        in_memory,
                    },
                    &kvstore,
                )
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kvstore: {error}");
            ExitCode::FAILURE
        }
    }
}
