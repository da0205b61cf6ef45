//! kvsim against hostile input: bad configs, a replica that writes garbage and then hangs,
//! and the shipped scenario files.

use std::path::{Path, PathBuf};
use std::process::Command;

use kvsim::Config;
use kvsim::checks::linearizability as checker;
use kvsim::replicas::processes::Output;
use kvsim::run::{Options, run};
use kvsim::suite::find_configs;

fn kvsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kvsim"))
}

/// kvsim with this build's replica, whatever the order of the other arguments.
fn kvsim_with_replica() -> Command {
    let mut command = kvsim();
    command
        .arg("--replica")
        .arg(env!("CARGO_BIN_EXE_3700kvstore"));
    command
}

/// A directory of the test's own. The test removes it as its last step, so one that fails
/// leaves it behind for a look.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvsim-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_bad_config_gets_one_line_naming_the_field() {
    let dir = temp_dir("badcfg");
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        r#"{"lifetime": 30, "replicas": 5, "requests": 10, "mix": 2,
            "tests": {"benchmarks": {"total_msgs": [1, 2, 3], "failures": [1, 2, 3],
            "duplicates": [1, 2, 3], "median_latency": [1, 2, 3]}}}"#,
    )
    .unwrap();
    let out = kvsim_with_replica().arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`mix`"), "{err}");
    let out = kvsim_with_replica()
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_history_file_that_cannot_be_written_stops_kvsim_before_the_run() {
    let dir = temp_dir("history");
    // A missing folder is made (as for --log-dir), but a file in the way cannot be.
    let in_the_way = dir.join("a-file");
    std::fs::write(&in_the_way, "").unwrap();
    let out = kvsim_with_replica()
        .arg("configs/classic/simple-1.json")
        .arg("--history")
        .arg(in_the_way.join("h.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot write"), "{err}");
    // Refused before the scenario starts (its first line is "kvsim: scenario ...").
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let path = dir.join("h.csv");
    let out = kvsim()
        .arg("all")
        .arg("--history")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one scenario"));
    assert!(!path.exists(), "nothing is written for a refused run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn html_reports_that_cannot_be_written_stop_kvsim_before_the_run() {
    let dir = temp_dir("html");
    let in_the_way = dir.join("a-file");
    std::fs::write(&in_the_way, "").unwrap();
    for args in [
        vec!["configs/classic/simple-1.json", "--html"],
        vec!["all", "--html-dir"],
    ] {
        let out = kvsim_with_replica()
            .args(&args)
            .arg(in_the_way.join("x"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?} started");
    }
    // Each flag belongs to its kind of run.
    for (args, says) in [
        (
            vec!["configs/classic/simple-1.json", "--html-dir"],
            "--html-dir is for `all`",
        ),
        (vec!["all", "--html"], "--html takes one scenario"),
    ] {
        let out = kvsim_with_replica()
            .args(&args)
            .arg(dir.join("x"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says));
    }
    let out = kvsim()
        .args(["configs/classic/simple-1.json", "--stand-in", "stale"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stale-reads"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_shipped_scenario_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let classic = find_configs(&root.join("classic")).unwrap();
    assert_eq!(classic.len(), 17);
    for p in &classic {
        let c = Config::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(c.is_classic(), "{}", p.display());
        assert_eq!((c.replicas, c.lifetime_s, c.start_wait_s), (5, 30.0, 5.0));
    }
    let all = find_configs(&root).unwrap();
    assert!(all.len() > 17);
    for p in &all {
        Config::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    let names: Vec<String> = classic
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names[0], "simple-1");
    assert_eq!(names[16], "advanced-4");
}

/// A replica (bash, through /dev/udp) that says hello, then writes garbage of every kind,
/// then a child that sleeps: kvsim must count it all as incorrect and leave nothing behind.
#[test]
fn a_garbage_replica_is_counted_incorrect_and_cleaned_up() {
    let dir = temp_dir("garbage");
    let script = dir.join("garbage-replica.sh");
    // A sleep no other run of this test shares (it looks for leftovers machine-wide, and
    // another checkout may be running it at the same time).
    let sleep = format!(
        "sleep 9{}.{:03}",
        std::process::id(),
        std::process::id() % 1000
    );
    std::fs::write(
        &script,
        r#"#!/bin/bash
port=$1; id=$2
send() { printf '%s' "$1" > /dev/udp/127.0.0.1/$port; }
send "{\"src\": \"$id\", \"dst\": \"FFFF\", \"leader\": \"FFFF\", \"type\": \"hello\"}"
sleep 0.3
send 'not json at all'
send '[1, 2, 3]'
send "{\"src\": \"$id\"}"
send "{\"src\": \"$id\", \"dst\": \"zz\", \"leader\": \"FFFF\", \"type\": \"x\"}"
send "{\"src\": \"$id\", \"dst\": \"0001\", \"leader\": 7, \"type\": \"x\"}"
send "{\"src\": \"$id\", \"dst\": \"0042\", \"leader\": \"FFFF\", \"type\": \"x\"}"
send "{\"src\": \"$id\", \"dst\": \"0013\", \"leader\": \"FFFF\", \"type\": \"ok\", \"MID\": \"NOPE\"}"
SLEEP &
wait
"#
        .replace("SLEEP", &sleep),
    )
    .unwrap();
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    let cfg = Config::parse(
        "garbage",
        r#"{"lifetime": 5, "replicas": 3, "requests": 20, "start_wait": 1, "end_wait": 1, "seed": 5,
            "tests": {"benchmarks": {"total_msgs": [1, 2, 3], "failures": [1, 2, 3],
            "duplicates": [1, 2, 3], "median_latency": [1, 2, 3]}}}"#,
    )
    .unwrap();
    let opts = Options {
        replica: script.clone(),
        output: Output::Files {
            dir: dir.join("logs"),
            prefix: String::new(),
        },
        warnings: false,
        env: Vec::new(),
        seed: None,
        lin_states_max: checker::LIN_STATES_MAX_PER_KEY,
        history_csv: None,
        stand_in: None,
        page: false,
        // Tests run side by side: pinning each run's replicas to one CPU would pile them up.
        placement: kvsim::replicas::placement::Placement::Shared,
        keep_data: false,
        durable: false,
        timing: None,
        classic_pace: kvsim::scenario::timing::ClassicPace::measured(),
        stall_probe: false,
    };
    let o = run(&cfg, &opts, 5).expect("run");
    assert!(!o.passed);
    assert!(o.stats.incorrect >= 3 * 7, "{:?}", o.stats);
    assert!(o.checks.iter().any(|c| c.name == "incorrect" && !c.passed));
    // One log file per replica.
    assert!(dir.join("logs").join("garbage-0000.log").exists());
    // Nothing left running from this script (the `sleep` children included).
    std::thread::sleep(std::time::Duration::from_millis(200));
    let needle = script.to_string_lossy().into_owned();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle) || c.contains(&sleep))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A short durable scenario with one restart, for the command line's own checks.
fn durable_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("durable.json");
    std::fs::write(
        &path,
        r#"{"lifetime": 5, "replicas": 3, "requests": 40, "start_wait": 1, "end_wait": 1,
            "seed": 6, "durable": true, "mix": 0.5, "shared_keys": 2,
            "events": [{"type": "restart_non_leader", "time": 1, "duration": 0.5}],
            "tests": {"benchmarks": {"total_msgs": [1, 2, 3], "failures": [1, 2, 3],
            "duplicates": [1, 2, 3], "median_latency": [1, 2, 3]}}}"#,
    )
    .unwrap();
    path
}

#[test]
fn keep_data_keeps_the_data_dirs_and_says_where() {
    let dir = temp_dir("keep-data");
    let out = kvsim_with_replica()
        .arg(durable_scenario(&dir))
        .args(["--silence", "--keep-data"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Restarted: "), "{stdout}");
    let kept = kept_data_dir(&stdout);
    for id in ["0000", "0001", "0002"] {
        let files = std::fs::read_dir(kept.join(id)).unwrap().count();
        assert!(files > 0, "{id}: nothing persisted");
    }
    std::fs::remove_dir_all(&kept).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stand_in_cannot_run_a_durable_scenario() {
    let dir = temp_dir("durable-stand-in");
    let out = kvsim()
        .arg(durable_scenario(&dir))
        .args(["--stand-in", "stale-reads"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("durable"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn durable_makes_a_scenario_persist_that_does_not_ask_for_it() {
    let out = kvsim_with_replica()
        .args([
            "configs/classic/simple-1.json",
            "--silence",
            "--durable",
            "--keep-data",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let kept = kept_data_dir(&stdout);
    // The write-ahead log's first segment (see docs/ARCHITECTURE.md, Durability), which
    // may be preallocated: something other than zeros was written to it.
    let wal = kept.join("0000").join("wal.0000000000000001");
    assert!(
        std::fs::read(&wal).unwrap().iter().any(|&b| b != 0),
        "{}: nothing persisted",
        wal.display()
    );
    std::fs::remove_dir_all(&kept).unwrap();
}

/// Where kvsim says, with `--keep-data`, that it left the replicas' data dirs.
fn kept_data_dir(stdout: &str) -> PathBuf {
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kvsim: the replicas' data dirs are in "))
        .and_then(|l| l.strip_suffix(" (kept: --keep-data)"))
        .unwrap_or_else(|| panic!("no data dir line in {stdout}"));
    PathBuf::from(kept)
}
