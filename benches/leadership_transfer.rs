//! Writes while leadership moves, on real processes: a durable `kvstore cluster --nodes 3`,
//! 16 client threads writing new keys through the `redis` crate's cluster client (which
//! follows `-MOVED`, as `redis-benchmark` does not: it exits on the first one), first
//! for 10 s alone, then for 10 s with `CLUSTER TRANSFER` to the next node every second.
//! Prints, per phase, SETs/s and the p50, p99 and max latency of a write (a redirect and
//! the retry included), and errors; then each transfer's time to `+OK` (the target leads)
//! and the slowest write begun between the request and 50 ms after the answer.
//!
//!     cargo build --release && cargo bench --bench leadership_transfer

use redis::Commands;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const NODES: u16 = 3;
const WRITERS: usize = 16;
const PHASE: Duration = Duration::from_secs(10);
const BASE_PORT: u16 = 27_401;

/// One write: when it began (µs since the phase began), how long it took (µs), whether
/// it was acknowledged.
type Write = (u64, u64, bool);

struct Cluster {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, which has not been waited for.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn url(id: u16) -> String {
    format!("redis://127.0.0.1:{}/", BASE_PORT + id - 1)
}

fn connect(id: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(url(id)).ok()?;
    let con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    Some(con)
}

fn leader() -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for id in 1..=NODES {
            let Some(mut con) = connect(id) else { continue };
            let info: String = redis::cmd("INFO")
                .arg("raft")
                .query(&mut con)
                .unwrap_or_default();
            if info.contains("raft_role:leader") {
                return id;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no leader within 20 s");
}

fn start() -> Cluster {
    let dir = std::env::temp_dir().join(format!("kvstore-bench-transfer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new(env!("CARGO_BIN_EXE_kvstore"))
        .args(["cluster", "--nodes", &NODES.to_string()])
        .args(["--base-port", &BASE_PORT.to_string(), "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kvstore cluster");
    let cluster = Cluster { child, dir };
    leader();
    cluster
}

/// Runs the writers for one phase, `during` beside them; their writes, in one list.
fn phase(prefix: &str, during: impl FnOnce(Instant) + Send) -> (Vec<Write>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let writes = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let stop = Arc::clone(&stop);
                scope.spawn(move || {
                    let urls: Vec<String> = (1..=NODES).map(url).collect();
                    let client = redis::cluster::ClusterClient::builder(urls)
                        .connection_timeout(Duration::from_secs(1))
                        .response_timeout(Duration::from_secs(3))
                        .build()
                        .expect("a cluster client");
                    let mut con = client.get_connection().expect("a cluster connection");
                    let mut writes = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let at = Instant::now();
                        let done = con.set::<_, _, ()>(format!("{prefix}:{w}:{i}"), i).is_ok();
                        writes.push((
                            at.duration_since(began).as_micros() as u64,
                            at.elapsed().as_micros() as u64,
                            done,
                        ));
                        i += 1;
                    }
                    writes
                })
            })
            .collect();
        during(began);
        std::thread::sleep(PHASE.saturating_sub(began.elapsed()));
        stop.store(true, Ordering::Relaxed);
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a writer"))
            .collect()
    });
    (writes, began.elapsed())
}

fn report(name: &str, writes: &[Write], took: Duration) {
    let mut latencies: Vec<u64> = writes.iter().filter(|w| w.2).map(|w| w.1).collect();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1e3;
    println!(
        "{name}: {:.0} SETs/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors",
        latencies.len() as f64 / took.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0),
        writes.len() - latencies.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _cluster = start();
    let (steady, took) = phase("steady", |_| {});
    report("steady", &steady, took);

    let mut transfers = Vec::new();
    let (moving, took) = phase("moving", |began| {
        for second in 1..PHASE.as_secs() {
            std::thread::sleep(
                (began + Duration::from_secs(second)).saturating_duration_since(Instant::now()),
            );
            let from = leader();
            let to = from % NODES + 1;
            let asked = Instant::now();
            let answer: redis::RedisResult<String> = connect(from)
                .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::IoError, "connect")))
                .and_then(|mut con| {
                    redis::cmd("CLUSTER")
                        .arg("TRANSFER")
                        .arg(to)
                        .query(&mut con)
                });
            transfers.push((
                asked.duration_since(began).as_micros() as u64,
                asked.elapsed().as_micros() as u64,
                answer.map_err(|e| e.to_string()),
            ));
        }
    });
    report("with a transfer every second", &moving, took);
    for (asked, answered_after, answer) in &transfers {
        let window = *asked..=asked + answered_after + 50_000;
        let slowest = moving
            .iter()
            .filter(|w| window.contains(&w.0))
            .map(|w| w.1)
            .max()
            .unwrap_or(0);
        println!(
            "transfer at {:.1} s: {:?} after {:.1} ms; slowest write begun meanwhile {:.1} ms",
            *asked as f64 / 1e6,
            answer,
            *answered_after as f64 / 1e3,
            slowest as f64 / 1e3
        );
    }
}
