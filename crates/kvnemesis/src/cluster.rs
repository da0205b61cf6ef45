//! The cluster under test: N `kvstore serve` processes, node `id` on its own loopback
//! address ([`address_of`]), each durable on its own data dir under the run dir, each
//! writing to its own log file, and spares: nodes started with `--join`, outside the
//! cluster until an operator adds them. A removed node is retired for good (its id is
//! never a member again); one that takes its place is a new node with the next id. The
//! nemesis kills, restarts, stops and continues them here; the leader is found by asking
//! every node `INFO raft`.

use crate::resp::{Connection, Reply};
use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Every node's client (TCP) port, on its own address.
pub const CLIENT_PORT: u16 = 7000;
/// Every node's peer (UDP) port, on its own address.
pub const PEER_PORT: u16 = 7100;
/// The environment variable `kvstore serve` reads to allow its test-only options.
pub const TEST_ONLY_ENV: &str = "KVSTORE_TEST_ONLY";
/// How long one node may take to answer `INFO`: a stopped node never does.
const INFO_TIMEOUT: Duration = Duration::from_millis(300);
/// Node ids per third octet of [`address_of`].
const IDS_PER_OCTET: u16 = 200;

/// Node `id`'s address: 127.0.0.11 for 1, 127.0.0.12 for 2, ..., on to 127.0.1.10 for 200.
pub fn address_of(id: u16) -> Ipv4Addr {
    let [high, low] = [id / IDS_PER_OCTET, id % IDS_PER_OCTET];
    Ipv4Addr::new(127, 0, high as u8, 10 + low as u8)
}

/// The node id at `address`, if it is one of [`address_of`]'s.
pub fn id_of(address: SocketAddr) -> Option<u16> {
    let std::net::IpAddr::V4(ip) = address.ip() else {
        return None;
    };
    let [a, b, high, low] = ip.octets();
    let low = u16::from(low).checked_sub(10)?;
    ((a, b) == (127, 0) && low < IDS_PER_OCTET).then(|| u16::from(high) * IDS_PER_OCTET + low)
}

pub struct Node {
    pub id: u16,
    pub address: Ipv4Addr,
    pub data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// Not in the cluster file (a spare, or a node that took a removed one's place):
    /// started with `--join`, on every restart too.
    joins: bool,
    /// Taken out of the cluster (`CLUSTER DELNODE`): never started again.
    pub removed: bool,
    /// In the cluster, as far as the operator knows (its last change was answered).
    pub member: bool,
}

/// The client address of every node not removed, for the clients: nodes join and leave
/// during a run, and a client that knew only the first ones would find none left.
#[derive(Default)]
pub struct Directory {
    version: AtomicU64,
    addresses: RwLock<Vec<SocketAddr>>,
}

impl Directory {
    /// The addresses and their version, if it is not `seen`.
    pub fn changed_since(&self, seen: u64) -> Option<(u64, Vec<SocketAddr>)> {
        let version = self.version.load(Ordering::Acquire);
        (version != seen).then(|| {
            let addresses = self.addresses.read().unwrap_or_else(|e| e.into_inner());
            (version, addresses.clone())
        })
    }

    fn set(&self, addresses: Vec<SocketAddr>) {
        *self.addresses.write().unwrap_or_else(|e| e.into_inner()) = addresses;
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

pub struct Cluster {
    pub directory: Arc<Directory>,
    kvstore: PathBuf,
    run_dir: PathBuf,
    config: PathBuf,
    pub nodes: Vec<Node>,
    unsafe_local_reads: bool,
}

impl Node {
    fn new(run_dir: &Path, id: u16, member: bool) -> Node {
        Node {
            id,
            address: address_of(id),
            data_dir: run_dir.join(format!("node-{id}")),
            log: run_dir.join(format!("node-{id}.log")),
            child: None,
            paused: false,
            joins: !member,
            removed: false,
            member,
        }
    }

    pub fn client(&self) -> SocketAddr {
        SocketAddr::from((self.address, CLIENT_PORT))
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn peer(&self) -> SocketAddr {
        SocketAddr::from((self.address, PEER_PORT))
    }
}

impl Cluster {
    /// Writes the cluster file (the first `members` nodes) into `run_dir` and starts
    /// every node, `spares` more with `--join`.
    pub fn start(
        run_dir: &Path,
        members: u16,
        spares: u16,
        kvstore: &Path,
        unsafe_local_reads: bool,
    ) -> Result<Cluster, String> {
        let mut text = String::from("# Written by kvnemesis.\n");
        let mut list = Vec::new();
        for id in 1..=members + spares {
            let address = address_of(id);
            let member = id <= members;
            if member {
                text.push_str(&format!(
                    "\n[[node]]\nid = {id}\npeer = \"{address}:{PEER_PORT}\"\nclient = \"{address}:{CLIENT_PORT}\"\n"
                ));
            }
            list.push(Node::new(run_dir, id, member));
        }
        let config = run_dir.join("cluster.toml");
        std::fs::write(&config, text)
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let mut cluster = Cluster {
            directory: Arc::default(),
            kvstore: kvstore.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            config,
            nodes: list,
            unsafe_local_reads,
        };
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i)?;
        }
        cluster.publish();
        Ok(cluster)
    }

    /// Tells the clients which nodes there are now.
    fn publish(&self) {
        let live = self.nodes.iter().filter(|n| !n.removed);
        self.directory.set(live.map(Node::client).collect());
    }

    /// The nodes in the cluster now, as positions in `nodes`.
    pub fn members(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].member)
            .collect()
    }

    pub fn start_node(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if node.child.is_some() || node.removed {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
        let mut command = Command::new(&self.kvstore);
        command
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--id", &node.id.to_string(), "--data-dir"])
            .arg(&node.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        if node.joins {
            command
                .arg("--join")
                .arg(node.peer().to_string())
                .arg(node.client().to_string());
        }
        if self.unsafe_local_reads {
            command
                .arg("--unsafe-local-reads")
                .env(TEST_ONLY_ENV, "unsafe-local-reads");
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.kvstore.display()))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.nodes[i].paused = false;
    }

    /// A node just removed from the cluster: waits up to `within` for it to stop on its
    /// own, as a node that learns of its removal does, and kills it otherwise. Whether it
    /// stopped on its own.
    pub fn retire(&mut self, i: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let node = &mut self.nodes[i];
        node.removed = true;
        node.member = false;
        let Some(child) = node.child.as_mut() else {
            return false;
        };
        let mut stopped = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                stopped = true;
                node.child = None;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill(i);
        self.publish();
        stopped
    }

    /// Starts a new node with the next id, outside the cluster (`--join`), on an empty
    /// data dir: a spare, as an operator brings up a machine to take a removed one's
    /// place. Its position in `nodes`.
    pub fn add_spare(&mut self) -> Result<usize, String> {
        let id = u16::try_from(self.nodes.len() + 1)
            .ok()
            .filter(|&id| id < u16::MAX)
            .ok_or("no node id left")?;
        self.nodes.push(Node::new(&self.run_dir, id, false));
        let i = self.nodes.len() - 1;
        self.start_node(i)?;
        self.publish();
        Ok(i)
    }

    /// SIGSTOP (`pause: true`) or SIGCONT.
    pub fn signal_pause(&mut self, i: usize, pause: bool) {
        let node = &mut self.nodes[i];
        let Some(child) = &node.child else { return };
        let signal = if pause { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on our own child, which has not been waited for.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        node.paused = pause;
    }

    /// Continues every stopped node and starts every killed one (not a removed one).
    pub fn revive_all(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.signal_pause(i, false);
            }
            self.start_node(i)?;
        }
        Ok(())
    }

    /// A node that died on its own (not killed here), with how it ended.
    pub fn crashed(&mut self) -> Vec<(u16, String)> {
        let mut crashed = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child
                && let Ok(Some(status)) = child.try_wait()
            {
                crashed.push((node.id, status.to_string()));
                node.child = None;
            }
        }
        crashed
    }

    /// The node that says it leads in the highest term, if any answers so.
    pub fn leader(&self) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_running() || node.paused {
                continue;
            }
            let Some(info) = raft_info(node.client()) else {
                continue;
            };
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
            };
            if field("raft_role") == Some("leader") {
                let term = field("raft_current_term")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                if best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    pub fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.signal_pause(i, false);
            }
            self.kill(i);
        }
    }

    /// The last lines of node `i`'s log, for a report on a crash.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = File::open(&self.nodes[i].log)
            .ok()
            .and_then(|f| std::io::read_to_string(f).ok())
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn raft_info(address: SocketAddr) -> Option<String> {
    let mut connection = Connection::connect(address, INFO_TIMEOUT).ok()?;
    let deadline = Instant::now() + INFO_TIMEOUT;
    match connection.command(&[b"INFO", b"raft"], deadline).ok()? {
        Reply::Bulk(Some(bytes)) => String::from_utf8(bytes).ok(),
        _ => None,
    }
}
