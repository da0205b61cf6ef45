//! `kvstore cluster`: a whole cluster on this machine, one child process per node.
//!
//! It writes the cluster file, starts `kvstore serve` for each node with its own data
//! dir, prints how to reach and restart each, and then only watches: a node that exits is
//! reported and left down (the others keep serving, as a majority does), and SIGINT or
//! SIGTERM stops them all. With `--spares K` it also starts K nodes outside the cluster
//! (`kvstore serve --join`) and prints the `CLUSTER ADDNODE` that adds each; `CLUSTER
//! DELNODE` removes any node (a removed node stops, and is reported so).

use crate::cluster_file::ClusterFile;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often children are looked at.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// How long children have to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Nodes one supervisor starts, at most.
pub const SUPERVISED_NODES_MAX: u16 = 9;

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub nodes: u16,
    /// Nodes started outside the cluster, ready to be added.
    pub spares: u16,
    pub base_port: u16,
    pub data_dir: PathBuf,
    pub in_memory: bool,
}

struct Supervised {
    id: u16,
    child: Child,
    exited: Option<ExitStatus>,
}

/// The `kvstore serve` arguments that start node `id` (again); `join`: a spare's peer and
/// client addresses.
fn serve_args(
    cluster_file: &Path,
    data_dir: &Path,
    id: u16,
    in_memory: bool,
    join: Option<(String, String)>,
) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        "--config".to_owned(),
        cluster_file.display().to_string(),
        "--id".to_owned(),
        id.to_string(),
    ];
    if let Some((peer, client)) = join {
        args.extend(["--join".to_owned(), peer, client]);
    }
    if in_memory {
        args.push("--in-memory".to_owned());
    } else {
        args.push("--data-dir".to_owned());
        args.push(data_dir.join(format!("node-{id}")).display().to_string());
    }
    args
}

/// Runs until a signal (then `Ok`) or until every node has exited (then an error).
pub fn run(options: &ClusterOptions, kvstore: &Path) -> Result<(), String> {
    if options.nodes < 2 || options.nodes + options.spares > SUPERVISED_NODES_MAX {
        return Err(format!(
            "--nodes must be 2 to {SUPERVISED_NODES_MAX}, spares included, not {} and {}",
            options.nodes, options.spares
        ));
    }
    let all = options.nodes + options.spares;
    // Client ports base..base+N, peer ports 100 above them.
    if u32::from(options.base_port) + 100 + u32::from(all) > 65_535 || options.base_port == 0 {
        return Err(format!(
            "--base-port {} leaves no room for {} client ports and their peer ports 100 above",
            options.base_port, all
        ));
    }
    let dir = &options.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("data dir {}: {e}", dir.display()))?;
    let cluster_file = dir.join("cluster.toml");
    let text = ClusterFile::local(options.nodes, options.base_port);
    std::fs::write(&cluster_file, &text)
        .map_err(|e| format!("cannot write {}: {e}", cluster_file.display()))?;
    let cluster = ClusterFile::parse(&text).map_err(|e| e.to_string())?;

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot watch signals: {e}"))?;
    }

    // Spares take the ids and ports after the members', in the same pattern.
    let spares = (options.nodes..all).map(|i| {
        let client = format!("127.0.0.1:{}", options.base_port + i);
        let peer = format!("127.0.0.1:{}", options.base_port + 100 + i);
        (i + 1, Some((peer, client)))
    });
    let members = cluster.nodes.iter().map(|n| (n.id.0, None));
    let mut nodes: Vec<Supervised> = Vec::new();
    for (id, join) in members.chain(spares) {
        let client = match &join {
            Some((_, client)) => client.clone(),
            None => cluster.nodes[usize::from(id) - 1].client.to_string(),
        };
        let add = join
            .as_ref()
            .map(|(peer, client)| format!("CLUSTER ADDNODE {id} {peer} {client}"));
        let args = serve_args(&cluster_file, &dir, id, options.in_memory, join);
        let child = match Command::new(kvstore).args(&args).spawn() {
            Ok(child) => child,
            Err(error) => {
                stop_all(&mut nodes);
                return Err(format!("cannot start node {id}: {error}"));
            }
        };
        if let Some(add) = &add {
            println!(
                "spare {id}, outside the cluster; add it with: redis-cli -c -p {} {add}",
                options.base_port
            );
        }
        println!(
            "node {id}  client {client}  pid {}  data {}  restart: {} {}",
            child.id(),
            if options.in_memory {
                "(in memory)".to_owned()
            } else {
                dir.join(format!("node-{id}")).display().to_string()
            },
            kvstore.display(),
            args.join(" ")
        );
        nodes.push(Supervised {
            id,
            child,
            exited: None,
        });
    }
    println!(
        "cluster file {}; try: redis-cli -c -p {} SET k v; Ctrl-C stops every node",
        cluster_file.display(),
        options.base_port
    );

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(WATCH_INTERVAL);
        for node in nodes.iter_mut().filter(|n| n.exited.is_none()) {
            if let Ok(Some(status)) = node.child.try_wait() {
                node.exited = Some(status);
                println!(
                    "node {} (pid {}) exited ({status}); not restarted, the others keep serving",
                    node.id,
                    node.child.id()
                );
            }
        }
        if nodes.iter().all(|n| n.exited.is_some()) {
            return Err("every node has exited".into());
        }
    }
    println!("stopping every node");
    stop_all(&mut nodes);
    Ok(())
}

/// SIGTERM to each running child, then SIGKILL to any still running after the grace.
fn stop_all(nodes: &mut [Supervised]) {
    for node in nodes.iter().filter(|n| n.exited.is_none()) {
        if let Ok(pid) = i32::try_from(node.child.id()) {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    for node in nodes.iter_mut().filter(|n| n.exited.is_none()) {
        loop {
            match node.child.try_wait() {
                Ok(Some(status)) => {
                    node.exited = Some(status);
                    break;
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(WATCH_INTERVAL),
                _ => {
                    let _ = node.child.kill();
                    node.exited = node.child.wait().ok();
                    break;
                }
            }
        }
    }
}
