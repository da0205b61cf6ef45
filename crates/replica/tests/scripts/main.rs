//! Golden scenario scripts for the Raft core, in the spirit of etcd-io/raft's datadriven
//! tests: each file in `tests/testdata/` drives a few `Node`s in memory with a small
//! command language (`harness`) and holds, after each command, the output it must print.
//!
//! `cargo test -p replica --test scripts` checks them; `UPDATE_GOLDEN=1 cargo test -p
//! replica --test scripts` writes today's output into them instead (review the diff!).
//! Each script is a test of its own, named after its file.

mod harness;
mod runner;
mod text;

use std::path::PathBuf;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata")
}

fn run_script(name: &str) {
    let path = testdata().join(format!("{name}.txt"));
    let mut cluster = None;
    runner::run(&path, |line| harness::exec(&mut cluster, line));
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_script(stringify!($name));
            }
        )*

        /// Every file in `testdata/` is run: one added without a test here would pass
        /// unread.
        #[test]
        fn every_script_has_a_test() {
            let listed = [$(stringify!($name)),*];
            let mut files: Vec<String> = std::fs::read_dir(testdata())
                .expect("tests/testdata exists")
                .map(|e| e.expect("a readable directory").file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            for file in files {
                let name = file.strip_suffix(".txt");
                assert!(
                    name.is_some_and(|n| listed.contains(&n)),
                    "tests/testdata/{file} is no script of tests/scripts/main.rs's list"
                );
            }
        }
    };
}

scripts! {
    append_presumed_lost,
    batching,
    check_quorum,
    coalescing,
    coalescing_off,
    commit_current_term,
    conflict_below_match,
    election_pre_vote,
    durable_leader_counts_what_it_persisted,
    election_late_answers,
    election_stickiness,
    election_vote_backoff,
    fast_backtracking,
    held_requests,
    hostile_peers,
    lease_and_read_round,
    message_floor,
    old_leadership_answers,
    put_answered_once_committed,
    read_sees_batched_apply,
    replication_stall,
    restart_withholds_votes,
    silent_follower_backoff,
    step_down_redirects,
}
