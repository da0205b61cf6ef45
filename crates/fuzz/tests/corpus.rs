//! Replays the committed seed corpus of each fuzz target, so that `cargo test` runs every
//! input the fuzzer once found interesting (and every crash it found, once fixed).

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable corpus folder").path();
            let bytes = std::fs::read(&path).expect("a readable input");
            (path, bytes)
        })
        .collect();
    inputs.sort();
    // An empty or missing corpus would make this test pass without running anything.
    assert!(
        inputs.len() >= 10,
        "{}: only {} inputs",
        dir.display(),
        inputs.len()
    );
    inputs
}

#[test]
fn the_decode_corpus_replays_cleanly() {
    for (path, bytes) in inputs("decode") {
        eprintln!("{}", path.display());
        fuzz::decode(&bytes);
    }
}

#[test]
fn the_resp_corpus_replays_cleanly() {
    for (path, bytes) in inputs("resp") {
        eprintln!("{}", path.display());
        fuzz::resp(&bytes);
    }
}

#[test]
fn the_node_corpus_replays_cleanly_and_reaches_the_whole_core() {
    let mut all = fuzz::Reached::default();
    for (path, bytes) in inputs("node") {
        eprintln!("{}", path.display());
        let reached = fuzz::node(&bytes);
        all.leader |= reached.leader;
        all.committed |= reached.committed;
        all.refused |= reached.refused;
        all.compacted |= reached.compacted;
        all.installed |= reached.installed;
    }
    // A corpus that never elects its replica, commits, meets a refused message, compacts
    // its log or installs a snapshot would replay cleanly while testing little.
    assert!(
        all.leader && all.committed && all.refused && all.compacted && all.installed,
        "{all:?}"
    );
}
