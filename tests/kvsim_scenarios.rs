//! The real replica under kvsim, on shortened classic scenarios (and one of ours): every
//! correctness check must pass. Each run is about 12 s of wall time; the tests run in
//! parallel threads, so the whole file stays well under two minutes.

use std::path::PathBuf;

use kvsim::Config;
use kvsim::checks::linearizability as checker;
use kvsim::replicas::processes::Output;
use kvsim::run::{Options, Outcome, run};

fn options() -> Options {
    Options {
        replica: PathBuf::from(env!("CARGO_BIN_EXE_3700kvstore")),
        output: Output::Silence,
        warnings: true,
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
    }
}

/// A classic-shaped scenario, shortened: lifetime 8 s, start_wait 2 s, end_wait 2 s.
fn scenario(name: &str, extra: &str) -> Config {
    let text = format!(
        r#"{{
            "lifetime": 8, "replicas": 5, "requests": 160, "mix": 0.2, "start_wait": 2, "end_wait": 2,
            {extra}
            "tests": {{"benchmarks": {{"total_msgs": [1000, 4000, 5000], "failures": [1, 10, 100],
                       "duplicates": [0, 6, 10], "median_latency": [0.0002, 0.005, 0.1]}}}}
        }}"#
    );
    Config::parse(name, &text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_correct(o: &Outcome) {
    let failed: Vec<String> = o
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.message.clone())
        .collect();
    assert!(
        o.passed,
        "{} (seed {}) failed: {failed:?}\nstats: {:#?}\nviolations: {:#?}",
        o.scenario, o.seed, o.stats, o.linearizability.violations
    );
    assert_eq!(o.stats.incorrect, 0);
    assert_eq!(
        o.extra.mids_with_two_replies, 0,
        "{}: a MID got two replies",
        o.scenario
    );
    assert!(
        o.extra.exited_on_own.is_empty(),
        "{:?}",
        o.extra.exited_on_own
    );
}

#[test]
fn crash_leader_and_follower() {
    let cfg = scenario(
        "crash-short",
        r#""seed": 11, "events": [{"type": "kill_leader", "time": 3}, {"type": "kill_non_leader", "time": 5}],"#,
    );
    let o = run(&cfg, &options(), 11).expect("run");
    assert_correct(&o);
    assert_eq!(o.stats.killed, 2);
}

#[test]
fn hard_partition_and_heal() {
    let cfg = scenario(
        "partition-short",
        r#""seed": 12, "events": [{"type": "part_hard", "time": 2}, {"type": "part_end", "time": 5}],
           "maximum_get_generation_fail_fraction": 0.2,"#,
    );
    let o = run(&cfg, &options(), 12).expect("run");
    assert_correct(&o);
}

#[test]
fn drops_fifteen_percent() {
    let cfg = scenario("unreliable-short", r#""seed": 13, "drops": 0.15,"#);
    let o = run(&cfg, &options(), 13).expect("run");
    assert_correct(&o);
    assert!(o.stats.total_drops > 0);
}

#[test]
fn shared_keys_with_a_paused_leader_are_linearizable() {
    let cfg = scenario(
        "pause-shared-short",
        r#""seed": 14, "shared_keys": 3, "clients": 12, "mix": 0.5, "duplicate": 0.02, "reorder": 0.1,
           "events": [{"type": "pause_leader", "time": 2, "duration": 2}],"#,
    );
    let o = run(&cfg, &options(), 14).expect("run");
    assert_correct(&o);
    assert!(
        o.linearizability.ops_checked > 100,
        "{:?}",
        o.linearizability
    );
    assert!(o.linearizability.inconclusive_keys.is_empty());
}

#[test]
fn durable_replicas_restarted_keep_what_they_acknowledged() {
    let cfg = scenario(
        "restart-short",
        r#""seed": 15, "durable": true, "shared_keys": 3, "mix": 0.5,
           "events": [{"type": "restart_leader", "time": 1, "duration": 1},
                      {"type": "restart_non_leader", "time": 3, "duration": 0.5},
                      {"type": "restart_all", "time": 5, "duration": 0.5}],"#,
    );
    let o = run(&cfg, &options(), 15).expect("run");
    assert_correct(&o);
    // Each replica comes back: the leader, a follower, then all five.
    let restarts = &o.extra.restarts;
    assert_eq!(restarts.len(), 7, "{restarts:#?}");
    assert!(restarts.iter().all(|r| r.back_s.is_some()), "{restarts:#?}");
    assert_eq!((o.stats.killed, o.stats.died), (0, 0));
    // Gets after the restarts read what was put before them.
    assert!(
        o.linearizability.ops_checked > 50,
        "{:?}",
        o.linearizability
    );
    // The run's data dirs are gone.
    let prefix = format!("kvsim-restart-short-{}-", std::process::id());
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
