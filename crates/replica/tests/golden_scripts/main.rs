//! Golden scripts for the Raft core, in the spirit of etcd-io/raft's datadriven tests and
//! toydb's goldenscript: each `.txt` file in this folder drives a few `Node`s in memory
//! with a small command language (`driver`) and holds, after each command, the output it
//! must print.
//!
//! `cargo test -p replica --test golden_scripts` checks them; `UPDATE_GOLDEN=1 cargo test
//! -p replica --test golden_scripts` writes today's output into them instead (review the diff!).
//! Every `.txt` file here is a script, found when the test runs: a new one cannot be left
//! out. `GOLDEN_SCRIPT=name` runs only the scripts whose file name contains `name`.

mod driver;
mod runner;
mod text;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// Restricts a run to the scripts whose file name contains its value.
const FILTER_VAR: &str = "GOLDEN_SCRIPT";
/// Fewer scripts than this means the folder was not found whole: the test would pass
/// having checked nothing.
const SCRIPTS_MIN: usize = 20;

/// Every script in this folder, sorted by name.
fn scripts() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden_scripts");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable folder").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    scripts.sort();
    scripts
}

#[test]
fn golden_scripts() {
    let all = scripts();
    assert!(all.len() >= SCRIPTS_MIN, "only {} scripts", all.len());
    let filter = std::env::var(FILTER_VAR).unwrap_or_default();
    let mut failed = Vec::new();
    let mut ran = 0;
    for path in &all {
        let name = path.file_name().expect("a file").to_string_lossy();
        if !name.contains(filter.as_str()) {
            continue;
        }
        ran += 1;
        // Each script runs on: a failure in one must not hide the others' results.
        let run = catch_unwind(AssertUnwindSafe(|| {
            let mut cluster = None;
            runner::run(path, |line| driver::exec(&mut cluster, line));
        }));
        eprintln!("{name}: {}", if run.is_ok() { "ok" } else { "FAILED" });
        if run.is_err() {
            failed.push(name.into_owned());
        }
    }
    assert!(ran > 0, "no script's name contains {FILTER_VAR}={filter:?}");
    assert!(failed.is_empty(), "failed: {}", failed.join(", "));
}
