//! `kvstore serve`: one node of a cluster, from its cluster file.

use crate::cluster_file::ClusterFile;
use crate::command::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::port::RespPort;
use raft::Config;
use raft::NodeId;
use replica::codec::{APPEND_HEADER_BYTES_MAX, DATAGRAM_BYTES_MAX, SNAPSHOT_HEADER_BYTES_MAX};
use replica::event_loop::{ClusterSetup, fresh_seed, run_cluster};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The most bytes a peer datagram is filled to: a 1,500-byte Ethernet MTU less the IPv6
/// and UDP headers (48 bytes), with room for a tunnel's. A datagram over the path MTU is
/// fragmented, and losing any fragment loses it whole, so appends and snapshot chunks are
/// cut to fit; only a single entry larger than this (a key and value near their limits)
/// travels alone in a larger, fragmented datagram.
pub const PEER_DATAGRAM_BYTES_TARGET: usize = 1_400;
/// Appends in flight to one follower. Appends are small here (about 35 entries of a
/// short key and value), so more of them are kept in flight than under the simulator to
/// carry a pipelined client's burst in one round trip.
pub const PEER_INFLIGHT_APPENDS_MAX: usize = 64;

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub config: PathBuf,
    pub id: u16,
    /// A node not in the cluster file, at these peer and client addresses, that starts
    /// outside the cluster and waits to be added (`CLUSTER ADDNODE`).
    pub join: Option<(SocketAddr, SocketAddr)>,
    pub data_dir: Option<PathBuf>,
    pub in_memory: bool,
    pub debug_log_dir: Option<PathBuf>,
    /// Overrides [`PEER_DATAGRAM_BYTES_TARGET`], for experiments (the binary reads it from
    /// `KVSTORE_PEER_DATAGRAM_BYTES`).
    pub peer_datagram_bytes: Option<usize>,
    /// TEST ONLY: followers serve reads from their own state, breaking linearizability on
    /// purpose (the binary allows it only when [`TEST_ONLY_ENV`] names it).
    pub unsafe_local_reads: bool,
}

/// The environment variable that must name a test-only option (`unsafe-local-reads`)
/// for `kvstore serve` to accept it.
pub const TEST_ONLY_ENV: &str = "KVSTORE_TEST_ONLY";

/// The environment variable that overrides [`PEER_DATAGRAM_BYTES_TARGET`].
pub const PEER_DATAGRAM_BYTES_ENV: &str = "KVSTORE_PEER_DATAGRAM_BYTES";

/// Runs the node until SIGTERM or SIGINT. An error is one line: a bad cluster file, id or
/// data dir, an address that cannot be bound.
pub fn serve(options: &ServeOptions) -> Result<(), String> {
    let cluster = ClusterFile::read(&options.config).map_err(|e| e.to_string())?;
    let id = NodeId(options.id);
    let in_file = cluster.node(id).copied();
    let me = match (options.join, in_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "node {} is in cluster file {}: start it without --join (a node that replaces a removed one takes a new id)",
                options.id,
                options.config.display()
            ));
        }
        (Some(_), None) if id.is_broadcast() => {
            return Err(format!("--id {}: 65535 is reserved", options.id));
        }
        (Some((peer, client)), None) => crate::cluster_file::NodeAddresses { id, peer, client },
        (None, Some(me)) => me,
        (None, None) => {
            return Err(format!(
                "node {} is not in cluster file {} (its ids: {}); a new node starts with --join PEER CLIENT",
                options.id,
                options.config.display(),
                cluster
                    .nodes
                    .iter()
                    .map(|n| n.id.0.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    let data_dir = match (&options.data_dir, options.in_memory) {
        (Some(_), true) => return Err("give --data-dir or --in-memory, not both".into()),
        (None, false) => {
            return Err(
                "give --data-dir DIR (durable), or --in-memory to keep nothing on disk".into(),
            );
        }
        (Some(dir), false) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
            Some(dir.clone())
        }
        (None, true) => {
            eprintln!(
                "node {}: IN MEMORY (--in-memory): nothing is written to disk; a node that restarts comes back empty, and a cluster that loses a majority at once loses acknowledged writes",
                options.id
            );
            None
        }
    };
    let peers: Vec<(NodeId, SocketAddr)> = cluster
        .nodes
        .iter()
        .filter(|n| n.id != id)
        .map(|n| (n.id, n.peer))
        .collect();
    let mut config = Config::new(id, peers.iter().map(|&(p, _)| p).collect(), fresh_seed(id));
    // Outside the cluster until a membership entry takes it in; it never stands until it
    // is a voter.
    config.joining = options.join.is_some();
    // A leader added after this node's log ends (or after the cluster file) must be heard
    // for this node to catch up; the peer route vouches for senders by address.
    config.hear_unlisted_peers = true;
    let header_bytes = APPEND_HEADER_BYTES_MAX.max(SNAPSHOT_HEADER_BYTES_MAX);
    let datagram_bytes = options
        .peer_datagram_bytes
        .unwrap_or(PEER_DATAGRAM_BYTES_TARGET);
    if !(header_bytes + 64..=DATAGRAM_BYTES_MAX).contains(&datagram_bytes) {
        return Err(format!(
            "{PEER_DATAGRAM_BYTES_ENV}={datagram_bytes}: must be {} to {DATAGRAM_BYTES_MAX}",
            header_bytes + 64
        ));
    }
    config.append_bytes_max = datagram_bytes - header_bytes;
    config.inflight_appends_max = PEER_INFLIGHT_APPENDS_MAX;
    // Stored as Latin-1 (`value`): a byte may take two.
    config.key_bytes_max = 2 * KEY_BYTES_MAX;
    config.value_bytes_max = 2 * VALUE_BYTES_MAX;
    // Two clusters with the same ids are told apart by their addresses (as etcd derives
    // its cluster id from its members' addresses).
    let identity = cluster
        .nodes
        .iter()
        .map(|n| format!("{}@{}", n.id, n.peer))
        .collect::<Vec<_>>()
        .join(",");
    let mut port = RespPort::bind(id, me.client, cluster, data_dir.is_some())
        .map_err(|e| format!("node {}: {e}", options.id))?;
    if options.unsafe_local_reads {
        eprintln!(
            "node {}: UNSAFE LOCAL READS (--unsafe-local-reads, test only): followers answer GET from their own state; reads are NOT linearizable",
            options.id
        );
        port.serve_local_reads_unsafely();
    }
    let setup = ClusterSetup {
        config,
        peer_address: me.peer,
        peers,
        data_dir,
        debug_log_dir: options.debug_log_dir.clone(),
        cluster: identity,
    };
    run_cluster(setup, Box::new(port)).map_err(|e| format!("node {}: {e}", options.id))
}
