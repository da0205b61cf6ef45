//! Load from Redis's own `redis-benchmark` beside the checked clients
//! (`--benchmark-clients C`): run after run of SETs on keys of its own (`key:...`, which
//! the workload never uses) against whichever node leads when the run starts, so the
//! cluster works under a real client's pipeline of writes while faults and membership
//! changes happen. `redis-benchmark` does not look at its replies (a `-MOVED` after the
//! leader changed counts as an answer), so this is load, not a check: the checks are the
//! workload's.

use crate::cluster::Cluster;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// SETs in one run: a few tenths of a second on a quiet machine, 2.4 s on a busy one with
/// a debug build (830 answers/s), so that runs fit between two membership changes, which
/// end a run when its node stops leading. Runs follow each other at once: the load is
/// continuous.
pub const REQUESTS_PER_RUN: u64 = 2_000;
/// A run that takes longer (its node paused, say) is killed and counted as cut short.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LoadReport {
    pub clients: usize,
    /// Runs that sent all their requests and had every answer.
    pub runs_done: u64,
    /// Runs that ended early: a connection closed (the node killed or removed) or the
    /// run timed out.
    pub runs_cut_short: u64,
    pub requests_done: u64,
    /// Seconds the done runs took, together.
    pub seconds_done: f64,
}

impl LoadReport {
    pub fn text(&self) -> String {
        let rate = if self.seconds_done > 0.0 {
            self.requests_done as f64 / self.seconds_done
        } else {
            0.0
        };
        format!(
            "redis-benchmark load ({} connections): {} runs of {REQUESTS_PER_RUN} SETs done ({rate:.0} answers/s), {} cut short\n",
            self.clients, self.runs_done, self.runs_cut_short
        )
    }
}

/// Whether `redis-benchmark` can be started.
pub fn check_available() -> Result<(), String> {
    Command::new("redis-benchmark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(|e| {
            format!("--benchmark-clients needs redis-benchmark (apt-get install redis-tools): {e}")
        })
}

/// Runs `redis-benchmark` with `clients` connections until `stop`.
pub fn run(cluster: &Mutex<Cluster>, clients: usize, stop: &AtomicBool) -> LoadReport {
    let mut report = LoadReport {
        clients,
        ..LoadReport::default()
    };
    while !stop.load(Ordering::Relaxed) {
        let leader = {
            let guard = cluster.lock().unwrap_or_else(|e| e.into_inner());
            guard.leader().map(|i| guard.nodes[i].client())
        };
        let Some(address) = leader else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let started = Instant::now();
        let child = Command::new("redis-benchmark")
            .args(["-h", &address.ip().to_string()])
            .args(["-p", &address.port().to_string()])
            .args(["-c", &clients.to_string()])
            .args(["-n", &REQUESTS_PER_RUN.to_string()])
            .args(["-t", "set", "-r", "1000000", "-P", "1", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            report.runs_cut_short += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let done = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if stop.load(Ordering::Relaxed) || started.elapsed() > RUN_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break false,
            }
        };
        if done {
            report.runs_done += 1;
            report.requests_done += REQUESTS_PER_RUN;
            report.seconds_done += started.elapsed().as_secs_f64();
        } else if !stop.load(Ordering::Relaxed) {
            report.runs_cut_short += 1;
        }
    }
    report
}
