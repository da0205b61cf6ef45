//! kvnemesis end to end: a short run (30 s, 3 nodes, every kind of fault) must pass, and
//! the same schedule against nodes started with `--unsafe-local-reads` (followers serve
//! stale reads) must fail with the violation found by both checkers; a cluster that
//! grows from 3 nodes to 5 and shrinks back, again and again, under the checked clients
//! and `redis-benchmark`, must pass.
//!
//! kvnemesis needs root (a private network namespace) and `nft` (Debian's nftables;
//! `.ci/run` installs it). Without either the tests say so loudly and pass; under CI
//! (`CI` set) a missing one fails them, so CI never skips in silence.

mod cluster_support;

use cluster_support::{KVSTORE, have, temp_dir};
use std::path::Path;
use std::process::Command;

const KVNEMESIS: &str = env!("CARGO_BIN_EXE_kvnemesis");
/// Its 30 s schedule (`kvnemesis --dry-run --time 30 --seed 67`): every node killed,
/// the leader replaced by a new node, the leader cut off, a one-way partition.
const SEED: &str = "67";

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let nft = have("nft");
    if root && nft {
        return true;
    }
    let missing = match (root, nft) {
        (false, false) => "root and nft (apt-get install nftables)",
        (false, true) => "root",
        _ => "nft (apt-get install nftables)",
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "kvnemesis needs {missing}, missing under CI: .ci/run runs as root and installs nftables"
    );
    eprintln!("\n!!!!!!!!\n!!!!!!!! SKIPPED: kvnemesis needs {missing}\n!!!!!!!!\n");
    false
}

/// Runs a 30 s kvnemesis; its exit code, its JSON summary and its page.
fn kvnemesis(name: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let dir = temp_dir(name);
    let json = dir.join("summary.json");
    let html = dir.join("page.html");
    let output = Command::new(KVNEMESIS)
        .args([
            "--nodes",
            "3",
            "--time",
            "30",
            "--clients",
            "4",
            "--seed",
            SEED,
        ])
        .args(["--kvstore", KVSTORE, "--dir"])
        .arg(&dir)
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .args(extra)
        .output()
        .expect("run kvnemesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    let summary = read_json(&json).unwrap_or_else(|| panic!("no summary: {stdout}{stderr}"));
    let page = std::fs::read_to_string(&html).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (output.status.code(), summary, page)
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn count(summary: &serde_json::Value, pointer: &str) -> usize {
    match summary.pointer(pointer) {
        Some(serde_json::Value::Array(items)) => items.len(),
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        other => panic!("{pointer}: {other:?}"),
    }
}

#[test]
fn a_short_run_with_every_fault_passes() {
    if !can_run() {
        return;
    }
    let (code, summary, page) = kvnemesis("nemesis-pass", &[]);
    assert_eq!(summary["passed"], true, "{summary:#}");
    assert_eq!(code, Some(0));
    assert!(count(&summary, "/operations/ok") > 100, "{summary:#}");
    assert!(count(&summary, "/faults") >= 3, "{summary:#}");
    assert_eq!(count(&summary, "/findings/lincheck_violations"), 0);
    assert_eq!(count(&summary, "/findings/second_checker_violations"), 0);
    // The page carries the run for kvsim's report script (whose pages
    // tests/html_report.rs opens in a browser): a lane per node started (n4 replaced the
    // leader), no violation.
    assert!(
        page.contains(r#""replicas":["n1","n2","n3","n4"]"#),
        "{page:.300}"
    );
    assert!(page.contains(r#""violations_total":0"#));
}

#[test]
fn three_nodes_grow_to_five_and_shrink_to_three_under_load() {
    if !can_run() {
        return;
    }
    assert!(
        have("redis-benchmark") || std::env::var_os("CI").is_none(),
        "redis-benchmark missing under CI: .ci/run installs redis-tools"
    );
    if !have("redis-benchmark") {
        eprintln!("\n!!!!!!!!\n!!!!!!!! SKIPPED: needs redis-benchmark (redis-tools)\n!!!!!!!!\n");
        return;
    }
    let (code, summary, _) = kvnemesis(
        "nemesis-grow-shrink",
        &[
            "--spares",
            "2",
            "--faults",
            "member-grow-shrink",
            "--benchmark-clients",
            "4",
        ],
    );
    assert_eq!(summary["passed"], true, "{summary:#}");
    assert_eq!(code, Some(0));
    assert_eq!(count(&summary, "/findings/lost_writes"), 0, "{summary:#}");
    let faults = summary["faults"].as_array().expect("faults");
    assert!(faults.len() >= 3, "{summary:#}");
    for fault in faults {
        let text = fault["description"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("adding ") && text.contains("; removed n"),
            "{fault}"
        );
    }
    // Every fault removed two nodes and started two new spares.
    assert!(summary["nodes_started"].as_u64().unwrap() >= 5 + 2 * faults.len() as u64);
    assert!(
        summary["benchmark"]["runs_done"].as_u64().unwrap() > 0,
        "{summary:#}"
    );
}

#[test]
fn stale_reads_at_followers_are_caught_by_both_checkers() {
    if !can_run() {
        return;
    }
    let (code, summary, page) = kvnemesis("nemesis-broken", &["--unsafe-local-reads"]);
    assert_eq!(summary["passed"], false, "{summary:#}");
    assert_eq!(code, Some(1));
    assert!(
        count(&summary, "/findings/lincheck_violations") > 0,
        "{summary:#}"
    );
    assert!(
        count(&summary, "/findings/second_checker_violations") > 0,
        "{summary:#}"
    );
    assert_eq!(count(&summary, "/findings/disagreements"), 0, "{summary:#}");
    assert!(!page.contains(r#""violations_total":0"#));
    assert!(page.contains(r#""stand_in":"Every node ran with --unsafe-local-reads"#));
}

#[test]
fn the_unsafe_option_is_refused_unless_the_environment_names_it() {
    let output = Command::new(KVSTORE)
        .args(["serve", "--config", "/nonexistent.toml", "--id", "1"])
        .args(["--in-memory", "--unsafe-local-reads"])
        .env_remove("KVSTORE_TEST_ONLY")
        .output()
        .expect("run kvstore");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("refused unless KVSTORE_TEST_ONLY=unsafe-local-reads"),
        "{stderr}"
    );
    // Named, it gets past the gate to the next check: the missing cluster file.
    let output = Command::new(KVSTORE)
        .args(["serve", "--config", "/nonexistent.toml", "--id", "1"])
        .args(["--in-memory", "--unsafe-local-reads"])
        .env("KVSTORE_TEST_ONLY", "unsafe-local-reads")
        .output()
        .expect("run kvstore");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read cluster file"), "{stderr}");
}
