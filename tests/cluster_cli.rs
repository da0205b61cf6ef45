//! `kvstore` refuses a bad cluster file, flag or data dir with one line on stderr and a
//! non-zero exit, before it binds anything.

mod cluster_support;

use cluster_support::{KVSTORE, temp_dir};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `kvstore args...`; returns its exit code and its stderr.
fn kvstore(args: &[&str]) -> (i32, String) {
    let output = Command::new(KVSTORE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

fn one_line_error(args: &[&str], expected: &str) {
    let (code, stderr) = kvstore(args);
    assert_ne!(code, 0, "{args:?} succeeded");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
}

#[test]
fn bad_cluster_files_flags_and_data_dirs_are_one_line_and_a_failure() {
    let dir = temp_dir("cli");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = file(
        "good.toml",
        "[[node]]\nid = 1\npeer = \"127.0.0.1:1\"\nclient = \"127.0.0.1:2\"\n\
         [[node]]\nid = 2\npeer = \"127.0.0.1:3\"\nclient = \"127.0.0.1:4\"\n",
    );
    let data = dir.join("data").display().to_string();
    let missing = dir.join("missing.toml").display().to_string();
    one_line_error(
        &["serve", "--config", &missing, "--id", "1", "--in-memory"],
        "cannot read cluster file",
    );
    let bad = file("bad.toml", "[[node]]\nid = \"one\"\n");
    one_line_error(
        &["serve", "--config", &bad, "--id", "1", "--in-memory"],
        "bad.toml",
    );
    one_line_error(
        &["serve", "--config", &good, "--id", "7", "--in-memory"],
        "node 7 is not in cluster file",
    );
    one_line_error(
        &["serve", "--config", &good, "--id", "1"],
        "give --data-dir DIR",
    );
    one_line_error(
        &[
            "serve",
            "--config",
            &good,
            "--id",
            "1",
            "--in-memory",
            "--data-dir",
            &data,
        ],
        "not both",
    );
    let not_a_dir = file("plain-file", "");
    one_line_error(
        &[
            "serve",
            "--config",
            &good,
            "--id",
            "1",
            "--data-dir",
            &not_a_dir,
        ],
        "data dir",
    );
    one_line_error(&["cluster", "--nodes", "1"], "--nodes must be 2 to");
    // Flags are clap's: its error line, then a pointer to --help, and exit status 2.
    let (code, stderr) = kvstore(&["serve", "--config", &good, "--id", "x"]);
    assert_eq!(code, 2);
    assert!(
        stderr
            .lines()
            .next()
            .unwrap()
            .contains("invalid value 'x' for '--id")
    );
    // A data dir written by node 1 refuses to be node 2's.
    let taken = Path::new(&data).join("node");
    std::fs::create_dir_all(&taken).unwrap();
    let identity = storage::Identity {
        id: raft::NodeId(1),
        peers: vec![raft::NodeId(2)],
        cluster: String::new(),
    };
    let disk = storage::DataDir::new(&taken).unwrap();
    let meta = storage::Storage::open(disk, &identity, 1);
    assert!(meta.is_ok());
    drop(meta);
    let taken = taken.display().to_string();
    let (code, stderr) = kvstore(&[
        "serve",
        "--config",
        &good,
        "--id",
        "2",
        "--data-dir",
        &taken,
    ]);
    assert_ne!(code, 0);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
