//! kvsim's classic timing: what is due fires only when the loop wakes, on a datagram or
//! after the classic's 100 ms of silence. Asserted through what the run counted (how
//! many requests were due at once), never through how long anything took.

use std::path::PathBuf;
use std::process::Command;

use kvsim::Config;
use kvsim::checks::linearizability as checker;
use kvsim::replicas::processes::Output;
use kvsim::run::{Options, run};
use kvsim::scenario::timing::{ClassicPace, Timing};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvsim-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A replica (bash, through /dev/udp) that says hello and then sends nothing: the loop
/// it runs under is woken by no datagram after the hellos.
fn silent_replica(dir: &std::path::Path) -> PathBuf {
    let script = dir.join("silent-replica.sh");
    std::fs::write(
        &script,
        r#"#!/bin/bash
port=$1; id=$2
printf '%s' "{\"src\": \"$id\", \"dst\": \"FFFF\", \"leader\": \"FFFF\", \"type\": \"hello\"}" > /dev/udp/127.0.0.1/$port
exec sleep 60
"#,
    )
    .unwrap();
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    script
}

fn options(replica: PathBuf, timing: Option<Timing>) -> Options {
    Options {
        replica,
        output: Output::Silence,
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
        timing,
        classic_pace: ClassicPace::measured(),
        stall_probe: false,
    }
}

/// 200 requests over 5 s, one every 25 ms, to replicas that never answer.
fn scenario(timing: &str) -> Config {
    Config::parse(
        "silent",
        &format!(
            r#"{{"lifetime": 5, "replicas": 3, "requests": 200, "start_wait": 1, "end_wait": 1,
                "seed": 8, "timing": "{timing}",
                "tests": {{"benchmarks": {{"total_msgs": [1, 2, 3], "failures": [1, 2, 3],
                "duplicates": [1, 2, 3], "median_latency": [1, 2, 3]}}}}}}"#
        ),
    )
    .unwrap()
}

#[test]
fn classic_timing_sends_the_requests_due_during_a_silence_together() {
    let dir = temp_dir("classic-timing");
    let replica = silent_replica(&dir);
    let o = run(&scenario("classic"), &options(replica, None), 8).expect("run");
    // Every request was made, and none answered.
    assert_eq!(o.stats.generated_get + o.stats.generated_put, 200);
    assert_eq!(o.stats.unanswered_get + o.stats.unanswered_put, 200);
    // With nothing to wake it, the loop sleeps its 100 ms each time, and the requests due
    // meanwhile (one every 25 ms: four at least) leave when it wakes.
    assert!(
        o.extra.requests_due_max >= 4,
        "at most {} requests were due at once",
        o.extra.requests_due_max
    );
    assert!(o.extra.timing.starts_with("classic"), "{}", o.extra.timing);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_command_line_overrides_the_scenarios_timing() {
    let dir = temp_dir("timing-override");
    let replica = silent_replica(&dir);
    let o = run(
        &scenario("classic"),
        &options(replica, Some(Timing::Exact)),
        8,
    )
    .expect("run");
    assert!(o.extra.timing.starts_with("exact"), "{}", o.extra.timing);
    assert_eq!(o.stats.generated_get + o.stats.generated_put, 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_timing_or_pace_is_refused_before_any_run() {
    for args in [
        ["--timing", "python"],
        ["--classic-pace", "11"],
        ["--classic-pace", "11,x"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kvsim"))
            .args(args)
            .arg("configs/classic/simple-1.json")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}
