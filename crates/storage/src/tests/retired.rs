//! Files a compaction frees are retired: renamed out of recovery's way, durably, and only
//! then cut down and removed, so that no crash brings a cut file back under its name.

use super::*;
use crate::writer::{SnapshotJob, write_snapshot};

/// A log of ten entries in two segments, with a snapshot through 5 already written.
fn compacted_once() -> Storage<MemDisk> {
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_hard_state(vote(1, 1));
    storage.save_entries(LogIndex(1), (0..10).map(|_| put(1, "k")));
    storage.sync().unwrap();
    storage.save_compacted_snapshot(LogIndex(5), Term(1), pairs(&["k"]));
    storage.save_entries(LogIndex(11), [put(1, "k")]);
    storage.sync().unwrap();
    assert_eq!(storage.segments().count(), 2);
    storage
}

#[test]
fn what_a_snapshot_frees_is_renamed_away_durably_before_it_is_cut() {
    let storage = compacted_once();
    let first = storage.segments().next().unwrap().to_owned();
    let mut disk = storage.into_disk();
    let job = SnapshotJob {
        index: LogIndex(10),
        term: Term(1),
        pairs: pairs(&["k", "j"]),
        unneeded_segments: vec![first.clone()],
    };
    let mut retired = Vec::new();
    write_snapshot(&mut disk, &job, Some(&mut retired)).unwrap();
    let old_snapshot = format!("{SNAPSHOT_FILE}{RETIRED_SUFFIX}");
    let old_segment = format!("{first}{RETIRED_SUFFIX}");
    assert_eq!(retired, [old_snapshot.clone(), old_segment.clone()]);
    let names: Vec<&str> = disk.names().collect();
    assert!(!names.contains(&first.as_str()), "{names:?}");
    // Cut part way when the power goes: whichever directory entries survive, a restart
    // finds the new snapshot and the log after it, and removes what was retired.
    for name in &retired {
        disk.truncate(name, 3).unwrap();
        // As the kernel may write a file's new size back at any moment.
        disk.sync(name).unwrap();
    }
    for seed in 0..32 {
        let mut disk = disk.clone();
        disk.lose_power(&mut SmallRng::seed_from_u64(seed));
        let (storage, recovered) = open_mem(disk).unwrap();
        assert_eq!(recovered.log.snapshot_index(), LogIndex(10), "seed {seed}");
        assert_eq!(recovered.snapshot.last_index(), LogIndex(2));
        assert_eq!(recovered.log.last_index(), LogIndex(11));
        let names: Vec<&str> = storage.disk().names().collect();
        assert!(
            !names.iter().any(|n| n.ends_with(RETIRED_SUFFIX)),
            "{names:?}"
        );
    }
}

#[test]
fn a_real_directory_removes_what_a_compaction_retired() {
    let dir = temp_dir("retired");
    let storage = compacted_twice_by_the_writer(&dir);
    let retired = || {
        fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_str().unwrap().ends_with(RETIRED_SUFFIX)
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while retired() > 0 {
        assert!(std::time::Instant::now() < deadline, "retired files stay");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(storage);
    // One left by a crash is removed at the start, and never read.
    fs::write(
        dir.join(format!("{}{RETIRED_SUFFIX}", segment_name(2))),
        b"junk",
    )
    .unwrap();
    fs::write(
        dir.join(format!("{SNAPSHOT_FILE}{RETIRED_SUFFIX}")),
        b"junk",
    )
    .unwrap();
    let (_, recovered) = open_dir(&dir).unwrap();
    assert_eq!(recovered.log.snapshot_index(), LogIndex(10));
    assert_eq!(recovered.log.last_index(), LogIndex(12));
    assert_eq!(retired(), 0);
    let _ = fs::remove_dir_all(&dir);
}
