use super::mem::Failing;
use super::*;
use raft::{CommandRef, Entry, Log};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::fs;
use std::path::Path;
use std::sync::Arc;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvstore-storage-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

const ME: NodeId = NodeId(1);
const NONCE: u64 = 0x1234_5678_9ABC_DEF0;

fn identity() -> Identity {
    Identity {
        id: ME,
        peers: vec![NodeId(0), NodeId(2)],
        cluster: "test".to_owned(),
    }
}

fn open_dir(dir: &Path) -> Result<(Storage, Recovered), StorageError> {
    Storage::open(DataDir::new(dir).unwrap(), &identity(), NONCE)
}

/// A new directory at `dir` whose compacted snapshots go to the writer thread.
fn open_dir_with_writer(dir: &Path) -> Storage {
    let (storage, _) = open_dir(dir).unwrap();
    storage.with_snapshot_writer().unwrap()
}

fn open_mem(disk: MemDisk) -> Result<(Storage<MemDisk>, Recovered), StorageError> {
    Storage::open(disk, &identity(), NONCE)
}

fn put(term: u64, key: &'static str) -> EntryRef<'static> {
    EntryRef {
        term: Term(term),
        command: CommandRef::Put { key, value: "v" },
    }
}

fn big_put(term: u64, key: &'static str, bytes: usize) -> EntryRef<'static> {
    let value: &'static str = Box::leak("v".repeat(bytes).into_boxed_str());
    EntryRef {
        term: Term(term),
        command: CommandRef::Put { key, value },
    }
}

/// The first segment of the write-ahead log, which these tests never rotate past.
fn wal() -> String {
    segment_name(1)
}

fn entries(log: &Log) -> Vec<Entry> {
    log.entries().into_iter().map(Entry::from_ref).collect()
}

fn vote(term: u64, voted_for: u16) -> HardState {
    HardState {
        term: Term(term),
        voted_for: Some(NodeId(voted_for)),
    }
}

#[test]
fn what_was_synced_is_recovered_with_cuts_applied() {
    let dir = temp_dir("recover");
    let (mut storage, fresh) = open_dir(&dir).unwrap();
    assert_eq!(fresh.log.last_index(), LogIndex(0));
    assert_eq!(fresh.hard_state.term, Term(0));
    storage.save_hard_state(vote(2, 2));
    storage.save_entries(LogIndex(1), [put(1, "a"), put(2, "b"), put(2, "c")]);
    storage.sync().unwrap();
    // A new leader cuts index 3 and on.
    storage.save_hard_state(HardState {
        term: Term(3),
        voted_for: None,
    });
    storage.save_entries(LogIndex(3), [put(3, "x")]);
    storage.sync().unwrap();
    drop(storage);

    let (_, recovered) = open_dir(&dir).unwrap();
    assert_eq!(
        recovered.hard_state,
        HardState {
            term: Term(3),
            voted_for: None
        }
    );
    let want: Vec<Entry> = [put(1, "a"), put(2, "b"), put(3, "x")]
        .into_iter()
        .map(Entry::from_ref)
        .collect();
    assert_eq!(entries(&recovered.log), want);
    assert_eq!(recovered.torn_tail, None);
    let _ = fs::remove_dir_all(&dir);
}

/// The write-ahead log's bytes after two synced batches, and where the first batch's
/// sync mark ends and where the second batch ends.
fn two_batches(second: &[EntryRef<'static>]) -> (MemDisk, Vec<u8>, usize, usize) {
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_entries(LogIndex(1), [put(1, "a")]);
    storage.sync().unwrap();
    let first = storage.disk().len(&wal()).unwrap();
    storage.save_entries(LogIndex(2), second.iter().copied());
    storage.sync().unwrap();
    let mut disk = storage.disk().clone();
    let whole = disk.read(&wal()).unwrap().unwrap();
    let second_end = whole.len() - record::SYNC_MARK_BYTES;
    (disk, whole, first, second_end)
}

fn with_wal(mut disk: MemDisk, bytes: &[u8]) -> MemDisk {
    disk.truncate(&wal(), 0).unwrap();
    disk.append(&wal(), bytes).unwrap();
    disk
}

#[test]
fn a_torn_last_write_is_cut_back_and_writing_goes_on_after_it() {
    let (disk, whole, first, second_end) = two_batches(&[put(1, "b"), put(1, "c")]);
    // Every cut inside the second write recovers the first.
    for cut in first + 1..second_end {
        let (_, recovered) = open_mem(with_wal(disk.clone(), &whole[..cut])).unwrap();
        assert_eq!(recovered.log.last_index(), LogIndex(1), "cut at {cut}");
        // Zeros that end it are not counted: a preallocated segment ends in zeros.
        let written = whole[..cut].iter().rposition(|&b| b != 0).unwrap() + 1;
        assert_eq!(
            recovered.torn_tail,
            (written > first).then_some(TornTail {
                offset: first as u64,
                bytes: (written - first) as u64
            })
        );
    }
    // A whole last batch whose mark never came is kept, and marked at open.
    let (storage, recovered) = open_mem(with_wal(disk.clone(), &whole[..second_end])).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(3));
    assert_eq!(storage.disk().len(&wal()), Some(whole.len()));
    // Writing goes on after a cut.
    let (mut storage, _) = open_mem(with_wal(disk, &whole[..first + 5])).unwrap();
    assert_eq!(storage.disk().len(&wal()), Some(first));
    storage.save_entries(LogIndex(2), [put(2, "z")]);
    storage.sync().unwrap();
    let (_, recovered) = open_mem(storage.disk().clone()).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(2));
    assert_eq!(recovered.torn_tail, None);
}

#[test]
fn a_torn_write_with_holes_between_its_pages_is_cut() {
    // Review finding 6: a multi-page write torn out of order leaves a hole, then pages
    // with whole records in them; it was never synced, so it is cut, not refused.
    let (disk, whole, first, second_end) =
        two_batches(&[big_put(1, "b", 6_000), big_put(1, "c", 6_000)]);
    let mut torn = whole[..second_end].to_vec();
    torn[first..first + mem::PAGE_BYTES].fill(0);
    let (_, recovered) = open_mem(with_wal(disk, &torn)).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(1));
    assert_eq!(recovered.torn_tail.unwrap().offset, first as u64);
}

#[test]
fn damage_to_synced_bytes_stops_the_start_with_file_and_offset() {
    // Review finding 5: a flipped bit in the last vote, synced (its mark follows), is
    // corruption, not a torn write: forgetting the vote could elect two leaders.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_hard_state(vote(3, 2));
    storage.sync().unwrap();
    let mut disk = storage.disk().clone();
    assert!(disk.flip_bit(
        &wal(),
        record::BATCH_HEAD_BYTES + record::HEADER_BYTES + 2,
        4
    ));
    let error = open_mem(disk).unwrap_err();
    let line = error.to_string();
    assert!(
        matches!(error, StorageError::Corrupt { offset: 0, .. }),
        "{line}"
    );
    assert!(
        line.starts_with("wal.0000000000000001: corrupt at byte 0") && !line.contains('\n'),
        "{line}"
    );
    // Anywhere in the first of two batches, the same.
    let (disk, whole, first, _) = two_batches(&[put(1, "b")]);
    for at in 0..first {
        let mut damaged = whole.clone();
        damaged[at] ^= 0x20;
        let error = open_mem(with_wal(disk.clone(), &damaged));
        assert!(
            matches!(error, Err(StorageError::Corrupt { .. })),
            "a flipped byte at {at} was not refused"
        );
    }
}

#[test]
fn a_damaged_sync_mark_alone_is_cut() {
    let (disk, whole, _, second_end) = two_batches(&[put(1, "b")]);
    let mut damaged = whole.clone();
    *damaged.last_mut().unwrap() ^= 1;
    let (_, recovered) = open_mem(with_wal(disk, &damaged)).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(2));
    assert_eq!(recovered.torn_tail.unwrap().offset, second_end as u64);
}

#[test]
fn a_log_larger_than_a_record_may_be_survives_a_restart() {
    // Review finding 4: 72 MB of entries in one turn were one record, over the 64 MiB a
    // record may claim.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    let entry = big_put(1, "k", 60_000);
    storage.save_entries(LogIndex(1), std::iter::repeat_n(entry, 1_200));
    storage.sync().unwrap();
    let (_, recovered) = open_mem(storage.disk().clone()).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(1_200));
    assert_eq!(recovered.torn_tail, None);
}

#[test]
fn a_suffix_the_snapshot_replaced_does_not_come_back() {
    // Review finding 2: a follower held 1..30 (9..30 at term 2) and installed snapshot
    // 20@3; the crash came between the two renames, keeping the new snapshot and the old
    // log. The old log's 21..30 are not the leader's.
    let terms: Vec<u64> = (1..=30).map(|i| if i < 9 { 1 } else { 2 }).collect();
    let old_log = |storage: &mut Storage<MemDisk>| {
        storage.save_hard_state(vote(2, 2));
        storage.save_entries(LogIndex(1), terms.iter().map(|&t| put(t, "k")));
        storage.sync().unwrap();
        storage.disk_mut().read(&wal()).unwrap().unwrap()
    };
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    let wal = old_log(&mut storage);
    let mut snapshot = Vec::new();
    record::encode_snapshot(&mut snapshot, LogIndex(20), Term(3), 1);
    record::encode_entries(&mut snapshot, LogIndex(1), [put(0, "k")]);
    let recovered = recover(&snapshot, &wal, NONCE).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(20));
    assert_eq!(recovered.log.snapshot_term(), Term(3));
    // Its term is the snapshot's, with no vote: the old log's hard state is older.
    assert_eq!(
        recovered.hard_state,
        HardState {
            term: Term(3),
            voted_for: None
        }
    );
    // A snapshot the log agrees with keeps what follows it (§7).
    let mut agreeing = Vec::new();
    record::encode_snapshot(&mut agreeing, LogIndex(20), Term(2), 1);
    record::encode_entries(&mut agreeing, LogIndex(1), [put(0, "k")]);
    let recovered = recover(&agreeing, &wal, NONCE).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(30));
    assert_eq!(recovered.hard_state, vote(2, 2));
}

fn pairs(keys: &[&'static str]) -> Arc<Log> {
    let mut log = Log::new();
    for &key in keys {
        log.append(put(0, key));
    }
    Arc::new(log)
}

#[test]
fn a_crash_anywhere_in_an_install_recovers_the_old_state_or_the_new() {
    // A follower held 1..10 at term 1 and installs snapshot 20@2 from a leader: the
    // snapshot file, then a new segment (the log after it), then the old one removed.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_hard_state(vote(1, 1));
    storage.save_entries(LogIndex(1), (0..10).map(|_| put(1, "k")));
    storage.sync().unwrap();
    storage.disk_mut().syncs_complete_at_once = false;
    storage.save_installed_snapshot(LogIndex(20), Term(2), pairs(&["k", "j"]));
    storage.save_hard_state(vote(2, 2));
    storage.save_entries(LogIndex(21), (0..2).map(|_| put(2, "k")));
    storage.sync().unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut outcomes = std::collections::BTreeSet::new();
    for completed in 0..=8 {
        for _ in 0..16 {
            let mut disk = storage.disk().clone();
            disk.complete_some(completed);
            disk.lose_power(&mut rng);
            let (_, recovered) = open_mem(disk).unwrap();
            let state = (
                recovered.log.snapshot_index().0,
                recovered.log.last_index().0,
            );
            assert!(
                state == (0, 10) || state == (20, 20) || state == (20, 22),
                "after {completed} syncs: snapshot and last index {state:?}"
            );
            if state.0 == 20 {
                assert_eq!(recovered.hard_state.term, Term(2));
            }
            outcomes.insert(state);
        }
    }
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
}

#[test]
fn a_compaction_starts_a_segment_and_removes_those_its_snapshot_covers() {
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_hard_state(vote(1, 1));
    storage.save_entries(LogIndex(1), (0..10).map(|_| put(1, "k")));
    storage.sync().unwrap();
    // Compacted through 8: the segment holding 1..10 is closed, not yet removable.
    storage.save_compacted_snapshot(LogIndex(8), Term(1), pairs(&["k"]));
    storage.save_entries(LogIndex(11), [put(1, "k")]);
    storage.sync().unwrap();
    assert_eq!(storage.segments().count(), 2);
    let (_, recovered) = open_mem(storage.disk().clone()).unwrap();
    assert_eq!(recovered.log.snapshot_index(), LogIndex(8));
    assert_eq!(recovered.log.last_index(), LogIndex(11));
    assert_eq!(recovered.hard_state, vote(1, 1));
    // Compacted through 11: both segments go, a third starts with the hard state.
    storage.save_compacted_snapshot(LogIndex(11), Term(1), pairs(&["k"]));
    storage.sync().unwrap();
    let names: Vec<&str> = storage.segments().collect();
    assert_eq!(names, [segment_name(3)]);
    let (_, recovered) = open_mem(storage.disk().clone()).unwrap();
    assert_eq!(recovered.log.snapshot_index(), LogIndex(11));
    assert_eq!(recovered.log.last_index(), LogIndex(11));
    assert_eq!(recovered.hard_state, vote(1, 1));
}

#[test]
fn a_lost_segment_between_two_others_is_refused() {
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_entries(LogIndex(1), (0..10).map(|_| put(1, "k")));
    storage.sync().unwrap();
    for (through, next) in [(2, 11), (4, 12)] {
        storage.save_compacted_snapshot(LogIndex(through), Term(1), pairs(&["k"]));
        storage.save_entries(LogIndex(next), [put(1, "k")]);
        storage.sync().unwrap();
    }
    let names: Vec<String> = storage.segments().map(str::to_owned).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let mut disk = storage.disk().clone();
    disk.remove(&names[1]).unwrap();
    let error = open_mem(disk).unwrap_err();
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
}

#[test]
fn a_first_write_that_is_an_installed_snapshot_keeps_its_segment() {
    // Found by the simulation (seed 1282): the new directory's empty first segment has
    // the name the install's new segment gets; it was written, then removed as old.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_installed_snapshot(LogIndex(20), Term(2), pairs(&["k"]));
    storage.save_hard_state(vote(2, 2));
    storage.save_entries(LogIndex(21), [put(2, "k")]);
    storage.sync().unwrap();
    assert_eq!(storage.segments().collect::<Vec<_>>(), [wal()]);
    storage.save_entries(LogIndex(22), [put(2, "k")]);
    storage.sync().unwrap();
    let (_, recovered) = open_mem(storage.disk().clone()).unwrap();
    assert_eq!(recovered.log.snapshot_index(), LogIndex(20));
    assert_eq!(recovered.log.last_index(), LogIndex(22));
    assert_eq!(recovered.hard_state, vote(2, 2));
    // The same for a compaction whose log segment holds no batch yet.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_compacted_snapshot(LogIndex(0), Term(0), pairs(&[]));
    storage.sync().unwrap();
    assert_eq!(storage.segments().collect::<Vec<_>>(), [wal()]);
    assert!(open_mem(storage.disk().clone()).is_ok());
}

#[test]
fn a_restart_marks_its_last_batch_in_a_new_segment_that_outlives_the_batch() {
    // Found by the simulation (seed 18418): a power loss tore a new segment's first
    // batch away; the restart cut it to nothing and marked the last batch (in the older
    // segment) at the head of the empty one; a later compaction removed the older
    // segment, and the mark then led a segment whose first batch is gone.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_hard_state(vote(1, 1));
    storage.save_entries(LogIndex(1), (0..10).map(|_| put(1, "k")));
    storage.sync().unwrap();
    storage.save_compacted_snapshot(LogIndex(5), Term(1), pairs(&["k"]));
    storage.sync().unwrap();
    let second = segment_name(2);
    assert_eq!(
        storage.segments().collect::<Vec<_>>(),
        [wal(), second.clone()]
    );
    let mut disk = storage.into_disk();
    // The second segment's only batch torn away: as if never written, with no mark
    // after the first segment's last batch either.
    disk.truncate(&second, 0).unwrap();
    let first_len = disk.len(&wal()).unwrap() - record::SYNC_MARK_BYTES;
    disk.truncate(&wal(), first_len as u64).unwrap();
    let (mut storage, _) = open_mem(disk).unwrap();
    assert_eq!(storage.disk().len(&second), Some(record::SYNC_MARK_BYTES));
    storage.save_entries(LogIndex(11), [put(1, "k")]);
    storage.sync().unwrap();
    storage.save_compacted_snapshot(LogIndex(10), Term(1), pairs(&["k"]));
    storage.sync().unwrap();
    assert!(!storage.segments().any(|s| s == wal()));
    let (_, recovered) = open_mem(storage.disk().clone()).unwrap();
    assert_eq!(recovered.log.snapshot_index(), LogIndex(10));
    assert_eq!(recovered.log.last_index(), LogIndex(11));
    assert_eq!(recovered.hard_state, vote(1, 1));
}

#[test]
fn a_log_of_another_nonce_is_refused_not_cut() {
    // Found by the simulation's bit flips: a flipped hex digit in meta's nonce made every
    // batch foreign, and recovery cut the whole log as torn, wiping the replica.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_hard_state(vote(3, 2));
    storage.save_entries(LogIndex(1), [put(3, "k")]);
    storage.sync().unwrap();
    let error = Storage::open(storage.disk().clone(), &identity(), NONCE)
        .and_then(|_| {
            let mut disk = storage.disk().clone();
            let meta = String::from_utf8(disk.read(META_FILE).unwrap().unwrap()).unwrap();
            let flipped = meta.replace(&format!("{NONCE:016x}"), &format!("{:016x}", NONCE ^ 1));
            assert_ne!(meta, flipped);
            disk.remove(META_FILE).unwrap();
            disk.append(META_FILE, flipped.as_bytes()).unwrap();
            Storage::open(disk, &identity(), NONCE)
        })
        .unwrap_err();
    assert!(
        matches!(error, StorageError::Corrupt { offset: 0, .. }),
        "{error}"
    );
}

/// A new directory at `dir` with entries 1..=12, compacted by the writer thread through
/// 5 and then through 10.
fn compacted_twice_by_the_writer(dir: &Path) -> Storage {
    let mut storage = open_dir_with_writer(dir);
    storage.save_hard_state(vote(1, 1));
    storage.save_entries(LogIndex(1), (0..10).map(|_| put(1, "k")));
    storage.sync().unwrap();
    for through in [5, 10] {
        storage.save_compacted_snapshot(LogIndex(through), Term(1), pairs(&["k", "j"]));
        storage.save_entries(LogIndex(through / 5 + 10), [put(1, "k")]);
        storage.sync().unwrap();
        storage.writer.as_mut().unwrap().wait_idle().unwrap();
    }
    storage
}

#[test]
fn a_real_directory_writes_compacted_snapshots_on_another_thread() {
    let dir = temp_dir("writer");
    drop(compacted_twice_by_the_writer(&dir));
    let (_, recovered) = open_dir(&dir).unwrap();
    assert_eq!(recovered.log.snapshot_index(), LogIndex(10));
    assert_eq!(recovered.snapshot.last_index(), LogIndex(2));
    assert_eq!(recovered.log.last_index(), LogIndex(12));
    let segments = fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            segment_seq(name.to_str().unwrap()).is_some()
        })
        .count();
    assert_eq!(
        segments, 2,
        "the segment the second snapshot covers is gone"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_snapshot_of_many_write_chunks_is_written_back_in_steps_and_recovered_whole() {
    // Larger than several of the writer's chunks, so that each chunk's write-back runs.
    let dir = temp_dir("write-back");
    let mut storage = open_dir_with_writer(&dir);
    storage.save_hard_state(vote(1, 1));
    storage.save_entries(LogIndex(1), [put(1, "k")]);
    storage.sync().unwrap();
    let mut pairs = Log::new();
    let keys: Vec<&'static str> = (0..3000)
        .map(|k| &*Box::leak(format!("key{k}").into_boxed_str()))
        .collect();
    for (k, key) in keys.iter().enumerate() {
        pairs.append(big_put(0, key, 1000 + k % 7));
    }
    let expected: Vec<Entry> = entries(&pairs);
    storage.save_compacted_snapshot(LogIndex(1), Term(1), Arc::new(pairs));
    storage.sync().unwrap();
    storage.writer.as_mut().unwrap().wait_idle().unwrap();
    drop(storage);
    let snapshot_bytes = fs::metadata(dir.join(SNAPSHOT_FILE)).unwrap().len();
    assert!(snapshot_bytes > 2 * (1 << 20), "{snapshot_bytes} bytes");
    let (_, recovered) = open_dir(&dir).unwrap();
    assert_eq!(entries(&recovered.snapshot), expected);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_snapshot_writer_runs_only_when_the_cpu_is_otherwise_idle() {
    let dir = temp_dir("writer-policy");
    let storage = open_dir_with_writer(&dir);
    let policy_of = |name: &str| -> Option<i32> {
        fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
            let task = task.ok()?;
            let comm = fs::read_to_string(task.path().join("comm")).ok()?;
            let tid: i32 = task.file_name().to_str()?.parse().ok()?;
            // SAFETY: a query about a thread of this process; no memory is passed.
            (comm.trim() == name).then(|| unsafe { libc::sched_getscheduler(tid) })
        })
    };
    // The thread sets its policy first thing: give it a moment to start.
    let mut policy = None;
    for _ in 0..200 {
        policy = policy_of("snapshot-writer");
        if policy == Some(libc::SCHED_IDLE) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(policy, Some(libc::SCHED_IDLE));
    assert_ne!(
        // SAFETY: as above, for the calling thread.
        unsafe { libc::sched_getscheduler(0) },
        libc::SCHED_IDLE,
        "only the writer's thread is lowered"
    );
    drop(storage);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn what_open_recovered_survives_a_power_loss() {
    // Review finding 3: a killed process's last write is in the page cache, not on disk.
    // A replica that restarts on it and votes or acknowledges must first make it durable.
    let mut rng = SmallRng::seed_from_u64(3);
    for _ in 0..32 {
        let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
        storage.disk_mut().syncs_complete_at_once = false;
        storage.save_hard_state(vote(5, 2));
        storage.save_entries(LogIndex(1), (0..100).map(|_| big_put(5, "k", 100)));
        storage.sync().unwrap();
        // Killed before the sync completed; started again on the page cache.
        let mut killed = storage.disk().clone();
        killed.kill();
        let (restarted, recovered) = open_mem(killed).unwrap();
        assert_eq!(recovered.hard_state, vote(5, 2));
        let mut disk = restarted.disk().clone();
        disk.complete_syncs();
        disk.lose_power(&mut rng);
        let (_, after) = open_mem(disk).unwrap();
        assert_eq!(after.hard_state, vote(5, 2));
        assert_eq!(after.log.last_index(), LogIndex(100));
    }
}

#[test]
fn meta_without_its_log_is_refused() {
    // Review finding 8: a lost directory entry for `wal` next to `meta` restarted the
    // replica at term 0, its vote forgotten.
    let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
    storage.save_hard_state(vote(3, 2));
    storage.sync().unwrap();
    let mut disk = storage.disk().clone();
    disk.remove(&wal()).unwrap();
    let error = open_mem(disk).unwrap_err();
    assert!(matches!(error, StorageError::MissingLog { .. }), "{error}");
    // A first start's files, made durable before anything was promised, survive a power
    // loss together: never `meta` without its log.
    let mut rng = SmallRng::seed_from_u64(5);
    for _ in 0..32 {
        let mut disk = MemDisk::new();
        disk.syncs_complete_at_once = false;
        let (mut storage, _) = open_mem(disk).unwrap();
        // Each sync returned (they block) before the vote was promised.
        storage.disk_mut().complete_syncs();
        storage.save_hard_state(vote(3, 2));
        storage.sync().unwrap();
        storage.disk_mut().complete_syncs();
        let mut disk = storage.disk().clone();
        disk.lose_power(&mut rng);
        let (_, recovered) = open_mem(disk).unwrap();
        assert_eq!(recovered.hard_state, vote(3, 2));
    }
}

#[test]
fn a_directory_of_another_replica_cluster_or_format_is_refused() {
    let dir = temp_dir("meta");
    drop(open_dir(&dir).unwrap());
    let data_dir = || DataDir::new(&dir).unwrap();
    let mut other = identity();
    other.id = NodeId(2);
    other.peers = vec![NodeId(0), NodeId(1)];
    let other_id = Storage::open(data_dir(), &other, 1).unwrap_err();
    assert!(
        matches!(other_id, StorageError::OtherReplica { .. }),
        "{other_id}"
    );
    let mut other = identity();
    other.peers = vec![NodeId(0), NodeId(3)];
    let other_peers = Storage::open(data_dir(), &other, 1).unwrap_err();
    assert!(
        matches!(other_peers, StorageError::OtherCluster { .. }),
        "{other_peers}"
    );
    // Review finding 9: the same ids in another cluster.
    let mut other = identity();
    other.cluster = "another".to_owned();
    let other_cluster = Storage::open(data_dir(), &other, 1).unwrap_err();
    assert!(
        other_cluster.to_string().contains("\"test\""),
        "{other_cluster}"
    );
    fs::write(
        dir.join(META_FILE),
        "kvstore data v9\nid 0001\npeers 0000,0002\n",
    )
    .unwrap();
    let unknown = open_dir(&dir).unwrap_err();
    assert!(
        matches!(unknown, StorageError::UnknownFormat { .. }),
        "{unknown}"
    );
    assert!(DataDir::new(&dir.join("nope")).is_err());
    let file = dir.join("a-file");
    fs::write(&file, "").unwrap();
    assert!(DataDir::new(&file).is_err());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn after_a_failed_write_or_sync_every_sync_fails() {
    for failing in [Failing::Write, Failing::Sync] {
        let (mut storage, _) = open_mem(MemDisk::new()).unwrap();
        storage.save_entries(LogIndex(1), [put(1, "a")]);
        storage.sync().unwrap();
        storage.disk_mut().fail_next(failing);
        storage.save_entries(LogIndex(2), [put(1, "b")]);
        assert_eq!(storage.sync().unwrap_err().raw_os_error(), Some(libc::EIO));
        // The disk works again, but the file's state after a failure is unknown.
        storage.save_entries(LogIndex(2), [put(1, "c")]);
        assert!(storage.sync().is_err());
        assert!(!storage.has_pending());
    }
}

/// The loop's way: each batch written in the turn and synced on another thread.
fn write_and_sync_elsewhere(storage: &mut Storage, marked: bool) {
    let file = storage.write_unsynced().unwrap().expect("a batch to write");
    let synced = std::thread::spawn(move || file.sync_data()).join().unwrap();
    if marked {
        storage.batch_synced(synced).unwrap();
    } else {
        // As if the mark were lost: the loop died between the sync and the mark.
        synced.unwrap();
    }
}

#[test]
fn batches_synced_on_another_thread_are_marked_so_later_damage_is_not_taken_for_a_tear() {
    for marked in [true, false] {
        let dir = temp_dir(&format!("sync-thread-{marked}"));
        let (mut storage, _) = open_dir(&dir).unwrap();
        storage.save_hard_state(vote(2, 1));
        storage.save_entries(LogIndex(1), (0..3).map(|_| put(2, "k")));
        write_and_sync_elsewhere(&mut storage, true);
        storage.save_entries(LogIndex(4), (0..3).map(|_| put(2, "j")));
        write_and_sync_elsewhere(&mut storage, marked);
        if marked {
            assert!(storage.write_unsynced().unwrap().is_none(), "nothing left");
        }
        drop(storage);

        // A bit flipped in the second batch's entries, after it was synced.
        let path = dir.join(wal());
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() - record::SYNC_MARK_BYTES * usize::from(marked) - 4;
        bytes[at] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let reopened = open_dir(&dir);
        if marked {
            assert!(
                matches!(reopened, Err(StorageError::Corrupt { .. })),
                "a synced batch is never cut as torn: {reopened:?}"
            );
        } else {
            // Without its mark the damaged last batch looks torn: what the mark is for.
            let (_, recovered) = reopened.unwrap();
            assert_eq!(recovered.log.last_index(), LogIndex(3));
            assert_eq!(recovered.hard_state, vote(2, 1));
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_failed_sync_on_another_thread_fails_every_later_write() {
    let dir = temp_dir("sync-thread-failed");
    let (mut storage, _) = open_dir(&dir).unwrap();
    storage.save_entries(LogIndex(1), [put(1, "k")]);
    storage.write_unsynced().unwrap().unwrap();
    let refused = storage.batch_synced(Err(io::Error::other("EIO")));
    assert!(refused.is_err());
    storage.save_entries(LogIndex(2), [put(1, "j")]);
    assert!(storage.write_unsynced().is_err());
    assert!(storage.sync().is_err());
    let _ = fs::remove_dir_all(&dir);
}

mod preallocated;
mod retired;
