//! Segments preallocated with zeros: the log ends where its batches do, not where the
//! file does, through every way a segment can end.

use super::*;

/// A storage whose segments are preallocated to `bytes`, made in the turn that needs one.
fn open_preallocated(disk: MemDisk, bytes: u64) -> (Storage<MemDisk>, Recovered) {
    let (storage, recovered) = open_mem(disk).unwrap();
    (storage.with_preallocated_segments(bytes), recovered)
}

fn save_and_sync(storage: &mut Storage<MemDisk>, first: u64, entries: &[EntryRef<'static>]) {
    storage.save_entries(LogIndex(first), entries.iter().copied());
    storage.sync().unwrap();
}

#[test]
fn the_first_batch_moves_the_log_into_a_preallocated_segment() {
    let (mut storage, _) = open_preallocated(MemDisk::new(), 8192);
    save_and_sync(&mut storage, 1, &[put(1, "a")]);
    let segments: Vec<String> = storage.segments().map(str::to_owned).collect();
    assert_eq!(
        segments,
        [wal()],
        "the empty first segment is replaced, not followed"
    );
    let disk = storage.disk().clone();
    let read = disk.clone().read(&wal()).unwrap().unwrap();
    assert_eq!(read.len(), 8192, "the segment is its preallocated zeros");
    let written = disk.len(&wal()).unwrap();
    assert!(written < 8192);
    assert_eq!(disk.names().filter(|&n| n == SPARE_FILE).count(), 0);
    // Recovered, it ends at its last batch; the zeros are no torn write.
    let (storage, recovered) = open_mem(disk).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(1));
    assert_eq!(recovered.torn_tail, None);
    // And the file is cut where the batches end, so that the next ones follow them.
    let mut disk = storage.into_disk();
    assert_eq!(disk.read(&wal()).unwrap().unwrap().len(), written);
}

#[test]
fn a_full_segment_goes_on_in_a_new_one_and_every_entry_is_recovered() {
    let (mut storage, _) = open_preallocated(MemDisk::new(), 4096);
    for index in 1..=40 {
        save_and_sync(&mut storage, index, &[big_put(1, "k", 300)]);
    }
    let segments = storage.segments().count();
    assert!(
        segments >= 3,
        "{segments} segments for 40 batches of 300 bytes"
    );
    let (_, recovered) = open_mem(storage.into_disk()).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(40));
    assert_eq!(recovered.torn_tail, None);
}

#[test]
fn a_torn_write_into_a_preallocated_segment_is_cut_and_writing_goes_on() {
    let (mut storage, _) = open_preallocated(MemDisk::new(), 1 << 16);
    save_and_sync(&mut storage, 1, &[put(1, "a")]);
    let synced = storage.disk().len(&wal()).unwrap();
    // The second write is issued, not synced, when the power goes: each shape a power
    // loss can leave of it, over many seeds.
    storage.disk_mut().syncs_complete_at_once = false;
    storage.save_entries(LogIndex(2), [big_put(1, "b", 9000)]);
    storage.sync().unwrap();
    let disk = storage.into_disk();
    let mut shapes = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mut disk = disk.clone();
        for (_, tear) in disk.lose_power(&mut SmallRng::seed_from_u64(seed)) {
            shapes.insert(format!("{tear:?}"));
        }
        let (mut storage, recovered) = open_mem(disk).unwrap();
        let last = recovered.log.last_index();
        assert!(
            last == LogIndex(1) || last == LogIndex(2),
            "seed {seed}: {last:?}"
        );
        if last == LogIndex(1) {
            assert_eq!(storage.disk().len(&wal()), Some(synced), "seed {seed}");
        }
        storage.save_entries(last.next(), [put(2, "c")]);
        storage.sync().unwrap();
        let (_, again) = open_mem(storage.into_disk()).unwrap();
        assert_eq!(again.log.last_index(), last.next(), "seed {seed}");
    }
    assert!(shapes.len() >= 3, "power losses left only {shapes:?}");
}

#[test]
fn an_older_segment_may_end_in_its_unsynced_mark_and_zeros() {
    let (mut storage, _) = open_preallocated(MemDisk::new(), 4096);
    save_and_sync(&mut storage, 1, &[put(1, "a")]);
    let first = storage.segments().next().unwrap().to_owned();
    let mark_end = storage.disk().len(&first).unwrap();
    // The mark's bytes are damaged, as a tear of that unsynced write would leave them.
    let mut disk = storage.into_disk();
    assert!(disk.flip_bit(&first, mark_end - 3, 1));
    let (storage, _) = open_mem(disk).unwrap();
    let mut storage = storage.with_preallocated_segments(4096);
    let mut next = 2;
    while storage.segments().count() < 3 {
        save_and_sync(&mut storage, next, &[big_put(1, "k", 500)]);
        next += 1;
    }
    let (_, recovered) = open_mem(storage.into_disk()).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(next - 1));
}

#[test]
fn damage_in_a_preallocated_segment_that_a_later_one_follows_stops_the_start() {
    let (mut storage, _) = open_preallocated(MemDisk::new(), 4096);
    let mut next = 1;
    while storage.segments().count() < 2 {
        save_and_sync(&mut storage, next, &[big_put(1, "k", 500)]);
        next += 1;
    }
    let first = storage.segments().next().unwrap().to_owned();
    let mut disk = storage.into_disk();
    assert!(disk.flip_bit(&first, 100, 0));
    match open_mem(disk) {
        Err(StorageError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, PathBuf::from(&first));
            assert!(offset <= 100);
        }
        other => panic!("damage to synced bytes was not refused: {other:?}"),
    }
}

#[test]
fn a_real_directory_makes_the_next_segment_ahead_on_another_thread() {
    let dir = temp_dir("preallocated");
    let (storage, _) = open_dir(&dir).unwrap();
    let mut storage = storage.with_segment_preparer(1 << 20).unwrap();
    let spare = dir.join(SPARE_FILE);
    let mut next = 1;
    // The first batches go to the plain first segment until the spare is made; then
    // the log moves into it, and the next spare is made.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let last_len = |storage: &Storage| {
        let last = storage.segments().last().unwrap().to_owned();
        fs::metadata(dir.join(last)).unwrap().len()
    };
    while last_len(&storage) != 1 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "never moved to a spare"
        );
        storage.save_entries(LogIndex(next), [put(1, "k")]);
        if storage.sync_must_be_inline() {
            storage.sync().unwrap();
        } else {
            let file = storage.write_unsynced().unwrap().unwrap();
            storage.batch_synced(file.sync_data()).unwrap();
        }
        next += 1;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    while fs::metadata(&spare).map(|m| m.len()).unwrap_or(0) != 1 << 20 {
        assert!(std::time::Instant::now() < deadline, "no next spare");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(
        storage.segments().count() == 2,
        "the plain first segment, then the spare"
    );
    drop(storage);
    let (storage, recovered) = open_dir(&dir).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(next - 1));
    assert_eq!(recovered.torn_tail, None);
    assert!(
        !spare.exists(),
        "a spare left behind is removed at the start"
    );
    assert!(last_len(&storage) < 1 << 20, "cut where its batches end");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_spare_that_cannot_be_made_leaves_the_log_in_plain_segments() {
    let (mut storage, _) = open_preallocated(MemDisk::new(), 8192);
    // A full disk, or a file size limit: the spare's write fails, the log's does not.
    storage.disk_mut().fail_next(Failing::Write);
    save_and_sync(&mut storage, 1, &[put(1, "a")]);
    let failure = storage.take_preallocation_failure().expect("reported");
    assert!(failure.to_string().contains(SPARE_FILE), "{failure}");
    assert!(
        storage.take_preallocation_failure().is_none(),
        "reported once"
    );
    for index in 2..=40 {
        save_and_sync(&mut storage, index, &[big_put(1, "k", 300)]);
    }
    assert_eq!(storage.segments().count(), 1, "no spare is tried again");
    assert_eq!(
        storage.disk().names().filter(|&n| n == SPARE_FILE).count(),
        0
    );
    let (_, recovered) = open_mem(storage.into_disk()).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(40));
}

/// Bytes this thread has had read from a disk (`/proc/thread-self/io`).
fn bytes_read_by_this_thread() -> u64 {
    let io = fs::read_to_string("/proc/thread-self/io")
        .expect("/proc/thread-self/io: the kernel counts each task's I/O");
    io.lines()
        .find_map(|line| line.strip_prefix("read_bytes: "))
        .and_then(|n| n.parse().ok())
        .expect("a read_bytes line")
}

/// Drops the cached pages of `path` from `from` on, as the kernel may for any clean page.
fn drop_cached_pages(path: &Path, from: u64) {
    let file = fs::File::open(path).unwrap();
    // SAFETY: an advice on a file descriptor we hold open; no memory is passed.
    let r = unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            from as libc::off_t,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(r, 0, "posix_fadvise");
}

#[test]
fn a_write_into_a_preallocated_segment_never_waits_for_the_disk_to_read_a_block() {
    let dir = temp_dir("padded");
    let mut disk = DataDir::new(&dir).unwrap();
    let room = 1 << 20;
    disk.preallocate("segment", room).unwrap();
    let path = dir.join("segment");
    // Writes that end inside a block, into blocks the kernel no longer caches (the
    // spare's zeros are synced, so clean, and dropped as any clean page may be).
    let mut end = 0u64;
    let mut expected = vec![0u8; room as usize];
    for (k, size) in [10, 100, 5_000, 3, 9_000, 4_000, 70]
        .into_iter()
        .enumerate()
    {
        drop_cached_pages(&path, end.next_multiple_of(BLOCK_BYTES));
        let mut bytes = vec![b'a' + k as u8; size];
        let before = bytes_read_by_this_thread();
        write_in_segment(&mut disk, "segment", &mut end, room, &mut bytes).unwrap();
        assert_eq!(
            bytes_read_by_this_thread() - before,
            0,
            "a write of {size} bytes had a block read back first"
        );
        assert_eq!(
            bytes.len(),
            size,
            "the caller's bytes are left as they were"
        );
        let at = end as usize - size;
        expected[at..at + size].copy_from_slice(&bytes);
    }
    let written = fs::read(&path).unwrap();
    assert_eq!(written.len(), room as usize, "not grown");
    assert!(
        written == expected,
        "the bytes where they were written, zeros elsewhere"
    );
    // Past the preallocated length, nothing is padded: the file grows by the bytes alone.
    let mut end = room - 3;
    write_in_segment(&mut disk, "segment", &mut end, room, &mut vec![7; 10]).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), room + 7);
    let _ = fs::remove_dir_all(&dir);
}
