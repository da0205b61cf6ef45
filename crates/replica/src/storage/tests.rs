use super::*;
use crate::raft::{CommandRef, Entry};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvstore-storage-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

const ME: NodeId = NodeId(1);
const PEERS: [NodeId; 2] = [NodeId(0), NodeId(2)];

fn put(term: u64, key: &'static str) -> EntryRef<'static> {
    EntryRef {
        term: Term(term),
        command: CommandRef::Put { key, value: "v" },
    }
}

fn entries(log: &Log) -> Vec<Entry> {
    log.entries().into_iter().map(Entry::from_ref).collect()
}

#[test]
fn what_was_synced_is_recovered_with_cuts_applied() {
    let dir = temp_dir("recover");
    let (mut storage, fresh) = Storage::open(&dir, ME, &PEERS).unwrap();
    assert_eq!(fresh.log.last_index(), LogIndex(0));
    assert_eq!(fresh.hard_state.term, Term(0));
    storage.save_hard_state(HardState {
        term: Term(2),
        voted_for: Some(NodeId(2)),
    });
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

    let (_, recovered) = Storage::open(&dir, ME, &PEERS).unwrap();
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

#[test]
fn a_torn_last_write_is_cut_back_and_writing_goes_on_after_it() {
    let dir = temp_dir("torn");
    let (mut storage, _) = Storage::open(&dir, ME, &PEERS).unwrap();
    storage.save_entries(LogIndex(1), [put(1, "a")]);
    storage.sync().unwrap();
    storage.save_entries(LogIndex(2), [put(1, "b"), put(1, "c")]);
    storage.sync().unwrap();
    drop(storage);
    let wal = dir.join(WAL_FILE);
    let whole = fs::read(&wal).unwrap();
    let first_record = record::decode(&whole).unwrap().1;
    // Every cut inside the second write, and a damaged last byte, recover the first.
    for cut in (first_record + 1..whole.len()).step_by(7) {
        fs::write(&wal, &whole[..cut]).unwrap();
        let (_, recovered) = Storage::open(&dir, ME, &PEERS).unwrap();
        assert_eq!(recovered.log.last_index(), LogIndex(1), "cut at {cut}");
        assert_eq!(
            recovered.torn_tail,
            Some(TornTail {
                offset: first_record as u64,
                bytes: (cut - first_record) as u64
            })
        );
        assert_eq!(fs::metadata(&wal).unwrap().len(), first_record as u64);
    }
    let mut damaged = whole.clone();
    *damaged.last_mut().unwrap() ^= 1;
    fs::write(&wal, &damaged).unwrap();
    let (mut storage, recovered) = Storage::open(&dir, ME, &PEERS).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(1));
    storage.save_entries(LogIndex(2), [put(2, "z")]);
    storage.sync().unwrap();
    drop(storage);
    let (_, recovered) = Storage::open(&dir, ME, &PEERS).unwrap();
    assert_eq!(recovered.log.last_index(), LogIndex(2));
    assert_eq!(recovered.torn_tail, None);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn damage_before_the_tail_is_an_error_not_a_silent_start() {
    let dir = temp_dir("corrupt");
    let (mut storage, _) = Storage::open(&dir, ME, &PEERS).unwrap();
    storage.save_entries(LogIndex(1), [put(1, "a")]);
    storage.sync().unwrap();
    storage.save_entries(LogIndex(2), [put(1, "b")]);
    storage.sync().unwrap();
    drop(storage);
    let wal = dir.join(WAL_FILE);
    let mut bytes = fs::read(&wal).unwrap();
    bytes[HEADER_BYTES + 3] ^= 0xFF;
    fs::write(&wal, &bytes).unwrap();
    let error = Storage::open(&dir, ME, &PEERS).unwrap_err();
    let line = error.to_string();
    assert!(
        matches!(error, StorageError::Corrupt { offset: 0, .. }),
        "{line}"
    );
    assert!(
        line.contains("corrupt at byte 0") && !line.contains('\n'),
        "{line}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_directory_of_another_replica_cluster_or_format_is_refused() {
    let dir = temp_dir("meta");
    drop(Storage::open(&dir, ME, &PEERS).unwrap());
    let other_id = Storage::open(&dir, NodeId(2), &[NodeId(0), NodeId(1)]).unwrap_err();
    assert!(
        matches!(other_id, StorageError::OtherReplica { .. }),
        "{other_id}"
    );
    let other_cluster = Storage::open(&dir, ME, &[NodeId(0), NodeId(3)]).unwrap_err();
    assert!(
        matches!(other_cluster, StorageError::OtherCluster { .. }),
        "{other_cluster}"
    );
    fs::write(
        dir.join(META_FILE),
        "kvstore data v9\nid 0001\npeers 0000,0002\n",
    )
    .unwrap();
    let unknown = Storage::open(&dir, ME, &PEERS).unwrap_err();
    assert!(
        matches!(unknown, StorageError::UnknownFormat { .. }),
        "{unknown}"
    );
    let missing = Storage::open(&dir.join("nope"), ME, &PEERS).unwrap_err();
    assert!(matches!(missing, StorageError::Io { .. }), "{missing}");
    let file = dir.join("a-file");
    fs::write(&file, "").unwrap();
    let not_dir = Storage::open(&file, ME, &PEERS).unwrap_err();
    assert!(
        matches!(not_dir, StorageError::NotADirectory(_)),
        "{not_dir}"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// A device whose writes fail once `room` bytes are used up, as a full disk does.
#[derive(Debug)]
struct FullDisk {
    room: usize,
    synced: usize,
}

impl Device for FullDisk {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > self.room {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.room -= bytes.len();
        self.synced += bytes.len();
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn replace(&mut self, snapshot: &[u8], wal: &[u8]) -> io::Result<()> {
        self.room += self.synced;
        self.synced = 0;
        self.write_all(snapshot)?;
        self.write_all(wal)
    }
}

#[test]
fn after_a_failed_write_every_sync_fails() {
    let mut storage = Storage::on(FullDisk {
        room: 100,
        synced: 0,
    });
    storage.save_entries(LogIndex(1), [put(1, "a")]);
    storage.sync().unwrap();
    storage.save_entries(LogIndex(3), std::iter::repeat_n(put(1, "bbbbbbbb"), 8));
    assert_eq!(
        storage.sync().unwrap_err().raw_os_error(),
        Some(libc::ENOSPC)
    );
    // Room again, but the file's state after a failed write is unknown: nothing more.
    storage.device.room = 1 << 20;
    storage.save_entries(LogIndex(2), [put(1, "c")]);
    assert!(storage.sync().is_err());
    assert!(!storage.has_pending());
}
