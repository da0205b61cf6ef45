//! Cluster mode driven by Debian's `redis-cli -c` and `redis-benchmark` (package
//! redis-tools; `.ci/run` installs it), against a cluster started the README's way:
//! `kvstore cluster`. Without the tools on this machine the test says so loudly and
//! passes; under CI (`CI` set) their absence fails it.

mod cluster_support;

use cluster_support::{KVSTORE, eventually, have, temp_dir};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const NODES: u16 = 3;

fn tools_present() -> bool {
    if have("redis-cli") && have("redis-benchmark") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "redis-cli or redis-benchmark is missing under CI: .ci/run installs redis-tools"
    );
    eprintln!(
        "\n!!!!!!!!\n!!!!!!!! SKIPPED: redis-cli or redis-benchmark not found; `apt-get install redis-tools` to run this test\n!!!!!!!!\n"
    );
    false
}

/// A base port with its client ports and the peer ports 100 above all free now.
fn free_base_port() -> u16 {
    free_base_port_for(NODES)
}

/// The same for `nodes` nodes. The two tests here run in parallel: each asks from its
/// own stretch of ports.
fn free_base_port_for(nodes: u16) -> u16 {
    let seed = (std::process::id() as u16).wrapping_add(nodes.wrapping_mul(977));
    (0..200)
        // Below the kernel's ephemeral range (from 32,768), where other tests bind.
        .map(|i| 20_000 + (seed.wrapping_mul(7).wrapping_add(i * 13)) % 12_000)
        .find(|&base| {
            (0..nodes).all(|i| {
                TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                    && UdpSocket::bind(("127.0.0.1", base + 100 + i)).is_ok()
            })
        })
        .expect("a free range of ports")
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn role(port: u16) -> Option<String> {
    let output: Output = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "INFO", "raft"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("raft_role:"))
        .map(|r| r.trim().to_owned())
}

#[test]
fn redis_cli_and_redis_benchmark_work_against_kvstore_cluster() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("redis-tools");
    let base = free_base_port();
    let (mut supervisor, mut lines) = Supervisor::start(&["--nodes", "3"], base, &dir);
    // One line per node, then the cluster file's.
    let mut pids = Vec::new();
    for id in 1..=NODES {
        let line = lines.next().unwrap().unwrap();
        assert!(
            line.starts_with(&format!("node {id}  client 127.0.0.1:")),
            "{line}"
        );
        assert!(
            line.contains("restart: ") && line.contains("serve --config"),
            "{line}"
        );
        let pid: i32 = line
            .split("pid ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        pids.push(pid);
    }
    let last = lines.next().unwrap().unwrap();
    assert!(last.contains("cluster.toml"), "{last}");

    let ports: Vec<u16> = (0..NODES).map(|i| base + i).collect();
    let leader = eventually("a leader", Duration::from_secs(15), || {
        ports
            .iter()
            .copied()
            .find(|&p| role(p).as_deref() == Some("leader"))
    });
    let follower = *ports.iter().find(|&&p| p != leader).unwrap();

    // -c follows the follower's -MOVED to the leader.
    assert_eq!(
        redis_cli(follower, &["-c", "SET", "cli:key", "hello"]),
        "OK"
    );
    assert_eq!(redis_cli(follower, &["-c", "GET", "cli:key"]), "hello");
    let moved = redis_cli(follower, &["GET", "cli:key"]);
    assert!(
        moved.starts_with("MOVED ") && moved.ends_with(&format!(" 127.0.0.1:{leader}")),
        "{moved}"
    );
    assert_eq!(redis_cli(leader, &["DEL", "cli:key", "other"]), "1");
    assert_eq!(redis_cli(leader, &["EXISTS", "cli:key"]), "0");
    assert_eq!(redis_cli(leader, &["PING"]), "PONG");
    assert!(redis_cli(leader, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
    assert!(redis_cli(leader, &["NOSUCHCOMMAND"]).contains("unknown command"));

    // redis-benchmark, plain and pipelined, against the leader: every request answered
    // (it prints a summary line per test only when the test completes).
    for pipeline in ["1", "8"] {
        let output = Command::new("redis-benchmark")
            .args([
                "-p",
                &leader.to_string(),
                "-t",
                "set,get",
                "-n",
                "2000",
                "-c",
                "10",
            ])
            .args(["-P", pipeline, "-r", "1000", "-q"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-benchmark");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{output:?}");
        for test in ["SET", "GET"] {
            let summary = text
                .split(['\r', '\n'])
                .find(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second"))
                .unwrap_or_else(|| panic!("no {test} summary in {text:?}"));
            let rate: f64 = summary.split_whitespace().nth(1).unwrap().parse().unwrap();
            assert!(rate > 0.0, "{summary}");
        }
    }
    // -r 1000 spread the writes over keys key:000000000000 to key:000000000999.
    let size: u64 = redis_cli(leader, &["DBSIZE"]).parse().unwrap();
    assert!(size > 100 && size <= 1000, "DBSIZE {size}");

    // A follower killed is reported, not restarted; the other two go on serving.
    let victim = ports.iter().position(|&p| p == follower).unwrap();
    // SAFETY: kill(2) on a node our supervisor started.
    unsafe {
        libc::kill(pids[victim], libc::SIGKILL);
    }
    let report = lines.next().unwrap().unwrap();
    assert!(
        report.starts_with(&format!(
            "node {} (pid {}) exited",
            victim + 1,
            pids[victim]
        )) && report.contains("not restarted"),
        "{report}"
    );
    assert_eq!(redis_cli(leader, &["SET", "after:kill", "1"]), "OK");

    // SIGTERM stops the supervisor and every node.
    let status = supervisor.stop();
    assert!(status.success(), "{status}");
    for pid in pids {
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "node pid {pid} outlived its supervisor");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kvstore cluster --spares 2`: the printed `CLUSTER ADDNODE` lines, run with Debian's
/// `redis-cli -c`, grow the cluster to five voters; `CLUSTER DELNODE` shrinks it back to
/// three (the leader first), and each removed node is reported stopped by the supervisor.
#[test]
fn redis_cli_grows_and_shrinks_kvstore_cluster_with_spares() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("redis-tools-spares");
    let base = free_base_port_for(NODES + 2);
    let (mut supervisor, mut lines) =
        Supervisor::start(&["--nodes", "3", "--spares", "2"], base, &dir);
    let mut adds = Vec::new();
    loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(add) = line.split("add it with: ").nth(1) {
            adds.push(add.to_owned());
        }
        if line.contains("cluster.toml") && line.contains("Ctrl-C") {
            break;
        }
    }
    assert_eq!(adds.len(), 2, "{adds:?}");
    let ports: Vec<u16> = (0..5).map(|i| base + i).collect();
    let leader = || {
        eventually("a leader", Duration::from_secs(15), || {
            ports
                .iter()
                .copied()
                .find(|&p| role(p).as_deref() == Some("leader"))
        })
    };
    leader();
    for add in &adds {
        // `redis-cli -c -p PORT CLUSTER ADDNODE ...`, as printed: -c follows -MOVED.
        let words: Vec<&str> = add.split_whitespace().collect();
        assert_eq!(&words[..2], ["redis-cli", "-c"], "{add}");
        let port: u16 = words[3].parse().unwrap();
        let mut args = vec!["-c"];
        args.extend(&words[4..]);
        // A second change waits for the first (and for the promotion that follows it):
        // the leader says to try again, as an operator's script would.
        eventually(add, Duration::from_secs(15), || {
            let answer = redis_cli(port, &args);
            assert!(
                answer == "OK" || answer.contains("try again"),
                "{add}: {answer}"
            );
            (answer == "OK").then_some(())
        });
    }
    let voters = |port: u16| {
        redis_cli(port, &["CLUSTER", "MEMBERS"])
            .lines()
            .filter(|l| l.contains(" voter "))
            .count()
    };
    eventually("five voters", Duration::from_secs(15), || {
        (voters(leader()) == 5).then_some(())
    });
    assert_eq!(redis_cli(base + 3, &["-c", "SET", "grown", "5"]), "OK");

    let first = leader();
    let first_id = first - base + 1;
    assert_eq!(
        redis_cli(first, &["CLUSTER", "DELNODE", &first_id.to_string()]),
        "OK"
    );
    let report = lines.next().unwrap().unwrap();
    assert!(
        report.contains(&format!("node {first_id} ")) && report.contains("exited"),
        "{report}"
    );
    let next = leader();
    let other = (1..=3u16)
        .find(|&id| id != first_id && base + id - 1 != next)
        .unwrap();
    assert_eq!(
        redis_cli(next, &["-c", "CLUSTER", "DELNODE", &other.to_string()]),
        "OK"
    );
    let report = lines.next().unwrap().unwrap();
    assert!(report.contains(&format!("node {other} ")), "{report}");
    eventually("three voters", Duration::from_secs(15), || {
        (voters(leader()) == 3).then_some(())
    });
    assert_eq!(redis_cli(base + 4, &["-c", "GET", "grown"]), "5");

    assert!(supervisor.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kvstore cluster` as a child, stopped with SIGTERM (its nodes with it) even when the
/// test fails: orphaned nodes would hold the test's output open.
struct Supervisor(std::process::Child);

impl Supervisor {
    /// `kvstore cluster ARGS --base-port BASE --data-dir DIR`, and the lines it prints.
    fn start(
        args: &[&str],
        base: u16,
        dir: &std::path::Path,
    ) -> (
        Supervisor,
        std::io::Lines<BufReader<std::process::ChildStdout>>,
    ) {
        let mut child = Command::new(KVSTORE)
            .arg("cluster")
            .args(args)
            .arg("--base-port")
            .arg(base.to_string())
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start kvstore cluster");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        (Supervisor(child), lines)
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        self.0.wait().expect("wait for kvstore cluster")
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}
