//! A cluster of real `kvstore serve` processes on loopback, for the cluster-mode tests:
//! free ports, a data dir per node, SIGKILL and restart, and the leader found by asking
//! each node `INFO raft`. Every child is killed when the cluster is dropped.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KVSTORE: &str = env!("CARGO_BIN_EXE_kvstore");
/// How long `Writer::wait_until_acknowledged` waits at most.
const WRITES_WITHIN: Duration = Duration::from_secs(30);

pub struct TestNode {
    pub id: u16,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub data_dir: PathBuf,
    pub child: Option<Child>,
    /// Not in the cluster file: started with `--join`, to be added by the leader.
    pub joins: bool,
}

pub struct TestCluster {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub nodes: Vec<TestNode>,
    pub password: Option<String>,
}

/// A fresh directory under the system's temporary one.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvstore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port free right now for both TCP and UDP, below the kernel's ephemeral range (from
/// 32,768), so that no test binding port 0 can take it before the node binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + ((std::process::id().wrapping_mul(7_919) + n * 97) % 20_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

impl TestCluster {
    /// Writes the cluster file (with `extra` TOML before the nodes) and starts `n` nodes,
    /// durable.
    pub fn start(name: &str, n: u16, extra: &str) -> TestCluster {
        let dir = temp_dir(name);
        let mut text = format!("{extra}\n");
        let mut nodes = Vec::new();
        for id in 1..=n {
            let (client, peer) = (free_port(), free_port());
            text.push_str(&format!(
                "[[node]]\nid = {id}\npeer = \"127.0.0.1:{peer}\"\nclient = \"127.0.0.1:{client}\"\n"
            ));
            nodes.push(TestNode {
                id,
                client: SocketAddr::from(([127, 0, 0, 1], client)),
                peer: SocketAddr::from(([127, 0, 0, 1], peer)),
                data_dir: dir.join(format!("node-{id}")),
                child: None,
                joins: false,
            });
        }
        let config = dir.join("cluster.toml");
        std::fs::write(&config, text).unwrap();
        let password = extra
            .lines()
            .find_map(|l| l.strip_prefix("requirepass = "))
            .map(|p| p.trim_matches('"').to_owned());
        let mut cluster = TestCluster {
            dir,
            config,
            nodes,
            password,
        };
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i);
        }
        cluster
    }

    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {} is running", node.id);
        let mut command = Command::new(KVSTORE);
        command
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--id", &node.id.to_string(), "--data-dir"])
            .arg(&node.data_dir);
        if node.joins {
            command
                .arg("--join")
                .arg(node.peer.to_string())
                .arg(node.client.to_string());
        }
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .expect("start kvstore serve");
        node.child = Some(child);
    }

    /// Starts node `id`, not in the cluster file, with `--join`; returns its position.
    /// The leader adds it with `CLUSTER ADDNODE` (see `add_node_command`).
    pub fn start_joining(&mut self, id: u16) -> usize {
        let (client, peer) = (free_port(), free_port());
        self.nodes.push(TestNode {
            id,
            client: SocketAddr::from(([127, 0, 0, 1], client)),
            peer: SocketAddr::from(([127, 0, 0, 1], peer)),
            data_dir: self.dir.join(format!("node-{id}")),
            child: None,
            joins: true,
        });
        let i = self.nodes.len() - 1;
        self.start_node(i);
        i
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self, i: usize) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@{}/", self.nodes[i].client),
            None => format!("redis://{}/", self.nodes[i].client),
        }
    }

    pub fn connect(&self, i: usize) -> redis::Connection {
        let client = redis::Client::open(self.url(i)).unwrap();
        client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }

    pub fn cluster_client(&self, seeds: &[usize]) -> redis::cluster::ClusterClient {
        let urls: Vec<String> = seeds.iter().map(|&i| self.url(i)).collect();
        redis::cluster::ClusterClient::builder(urls)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// `INFO raft` of node `i` as field pairs; `None` if it cannot be asked.
    pub fn raft_info(&self, i: usize) -> Option<Vec<(String, String)>> {
        self.nodes[i].child.as_ref()?;
        let client = redis::Client::open(self.url(i)).ok()?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        con.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let text: String = redis::cmd("INFO").arg("raft").query(&mut con).ok()?;
        Some(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    pub fn raft_field(&self, i: usize, field: &str) -> Option<String> {
        self.raft_info(i)?
            .into_iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v)
    }

    /// The running node that says it is the leader, once one does (panics after `within`).
    pub fn leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            for i in 0..self.nodes.len() {
                if self.raft_field(i, "raft_role").as_deref() == Some("leader") {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no leader within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i].child.as_ref().expect("running").id()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `attempt` until it returns `Some`, or panics after `within` naming `what`.
pub fn eventually<T>(what: &str, within: Duration, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a program is on the PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
    })
}

/// A client that writes a new key (`PREFIX:n` = n) after each answer until stopped,
/// through the `redis` crate's cluster client, keeping what was acknowledged.
pub struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Writes acknowledged so far.
    acked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: std::thread::JoinHandle<(std::collections::BTreeMap<String, u64>, Vec<String>)>,
}

impl Writer {
    pub fn start(cluster: &TestCluster, prefix: &'static str) -> Writer {
        use redis::Commands;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seeds: Vec<usize> = (0..cluster.nodes.len()).collect();
        let client = cluster.cluster_client(&seeds);
        let stopped = std::sync::Arc::clone(&stop);
        let acked_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&acked_count);
        let thread = std::thread::spawn(move || {
            let mut con = client.get_connection().expect("a cluster connection");
            let (mut acked, mut errors) = (std::collections::BTreeMap::new(), Vec::new());
            let mut i = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let key = format!("{prefix}:{i}");
                match con.set::<_, _, ()>(&key, i) {
                    Ok(()) => {
                        acked.insert(key, i);
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.push(e.to_string()),
                }
                i += 1;
            }
            (acked, errors)
        });
        Writer {
            stop,
            acked: acked_count,
            thread,
        }
    }

    /// Stops the writer: what was acknowledged (key -> value) and the errors it met.
    pub fn stop(self) -> (std::collections::BTreeMap<String, u64>, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the writer thread")
    }

    /// Waits until more than `n` writes got through, however slow the machine (at most
    /// `WRITES_WITHIN`: a cluster that takes longer is stuck, and the check that follows
    /// says so).
    pub fn wait_until_acknowledged(&self, n: usize) {
        let deadline = Instant::now() + WRITES_WITHIN;
        while self.acked.load(std::sync::atomic::Ordering::Relaxed) <= n
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the writer, checks that more than 100 writes got through, and reads every
    /// acknowledged one back through node `reader` (the leader): each must hold what was
    /// acknowledged. How many there were.
    pub fn stop_and_read_back(self, cluster: &TestCluster, reader: usize) -> usize {
        use redis::Commands;
        let (acked, errors) = self.stop();
        let seen = format!(
            "{} writes acknowledged, {} errors {:?}",
            acked.len(),
            errors.len(),
            errors.iter().take(3).collect::<Vec<_>>()
        );
        eprintln!("{seen}");
        assert!(acked.len() > 100, "too few writes got through: {seen}");
        let mut con = cluster.connect(reader);
        for (key, value) in &acked {
            let read: Option<u64> = con.get(key).unwrap();
            assert_eq!(read, Some(*value), "{key}");
        }
        acked.len()
    }
}
