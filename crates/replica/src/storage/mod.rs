//! A durable replica's stable storage (§5.1): its term, its vote and its log, in a data
//! directory of its own.
//!
//! - `meta`: who the directory belongs to: the format version, the replica's id and the
//!   cluster (its peers). Written once, atomically (a temporary file renamed into place).
//!   A directory of another replica, another cluster or another format is refused at
//!   start: recovering someone else's term and log would break Raft silently.
//! - `wal`: an append-only sequence of checksummed records (`record`): the hard state
//!   when it changes, and each run of entries a turn appended, which replaces the log
//!   from its first index on (so a follower's cut is just a record that starts earlier).
//! - `snapshot`: once the log has been compacted (§7), the state machine as of the
//!   snapshot index: a head record (index, term, number of pairs), then the pairs in runs.
//!   Written whole to `snapshot.new`, synced, renamed over `snapshot`, and the directory
//!   synced; only then is the write-ahead log replaced, the same way, by one holding the
//!   hard state and the entries after the snapshot. A crash between the two leaves the
//!   new snapshot with the old log, whose entries through the snapshot recovery skips; a
//!   crash before the rename leaves a temporary file, which is ignored and removed.
//!
//! Writes are grouped: a turn's records are buffered and leave in one `write` and one
//! `fdatasync` (`Storage::sync`), so durability costs one sync per batch of input, never
//! one per entry.
//!
//! Recovery reads the records in order. A torn tail, the last write cut short or damaged
//! by a crash with nothing valid after it, is cut back to the last whole record and said
//! so. Damage followed by a valid record is not a crash's doing: the start is refused
//! with an error rather than continuing from a log with a hole in it.

mod record;

use crate::raft::{EntryRef, EntrySpan, HardState, Log, LogIndex, Node, Term, Unpersisted};
use datagram::NodeId;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub use record::{HEADER_BYTES, PAYLOAD_BYTES_MAX};

/// The format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const META_FILE: &str = "meta";
const WAL_FILE: &str = "wal";
const SNAPSHOT_FILE: &str = "snapshot";
/// What a file is written as before it is renamed into place.
const TEMP_SUFFIX: &str = ".new";
/// Pairs per record of a snapshot file, so that no record nears `PAYLOAD_BYTES_MAX`.
const SNAPSHOT_PAIRS_PER_RECORD: usize = 1024;

/// Where the records go: files, or in tests a stand-in that fails on demand.
pub trait Device {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Replaces the snapshot with `snapshot`, then the whole write-ahead log with `wal`,
    /// each atomically and in that order: a crash leaves the old pair, the new snapshot
    /// with the old log, or both new. Durable once `sync_data` returns.
    fn replace(&mut self, snapshot: &[u8], wal: &[u8]) -> io::Result<()>;
}

/// A data directory's write-ahead log, open for appending, and the directory itself (to
/// replace the log and the snapshot in).
#[derive(Debug)]
pub struct WalFile {
    dir: PathBuf,
    file: File,
}

impl Device for WalFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.file, bytes)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn replace(&mut self, snapshot: &[u8], wal: &[u8]) -> io::Result<()> {
        write_atomically(&self.dir, SNAPSHOT_FILE, snapshot)?;
        write_atomically(&self.dir, WAL_FILE, wal)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(self.dir.join(WAL_FILE))?;
        Ok(())
    }
}

/// Writes `bytes` to `dir/name` so that a crash leaves the old file or the new one, never
/// a mix: a temporary file, synced, renamed into place, and the directory synced.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let mut file = File::create(&temp)?;
    Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    fs::rename(&temp, dir.join(name))?;
    // The rename is durable once the directory is.
    File::open(dir)?.sync_all()
}

/// What a restarting replica recovers.
#[derive(Debug)]
pub struct Recovered {
    pub hard_state: HardState,
    /// The snapshot's pairs (every key's value as of `log.snapshot_index()`; empty if
    /// there is no snapshot).
    pub snapshot: Log,
    /// The log after the snapshot.
    pub log: Log,
    /// Bytes of a torn last write that were cut off, and where, if any.
    pub torn_tail: Option<TornTail>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub offset: u64,
    pub bytes: u64,
}

/// Why a data directory cannot be used. Each says what and where in one line.
#[derive(Debug)]
pub enum StorageError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
    NotADirectory(PathBuf),
    UnknownFormat {
        path: PathBuf,
        found: String,
    },
    OtherReplica {
        path: PathBuf,
        found: NodeId,
        ours: NodeId,
    },
    OtherCluster {
        path: PathBuf,
        found: String,
        ours: String,
    },
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            StorageError::NotADirectory(path) => {
                write!(f, "{}: not a directory", path.display())
            }
            StorageError::UnknownFormat { path, found } => write!(
                f,
                "{}: not a data directory of format {FORMAT_VERSION} (found {found:?})",
                path.display()
            ),
            StorageError::OtherReplica { path, found, ours } => write!(
                f,
                "{}: belongs to replica {found}, not {ours}",
                path.display()
            ),
            StorageError::OtherCluster { path, found, ours } => write!(
                f,
                "{}: belongs to a cluster with peers {found}, not {ours}",
                path.display()
            ),
            StorageError::Corrupt { path, offset, what } => write!(
                f,
                "{}: corrupt at byte {offset} ({what}), with valid records after it",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StorageError {}

/// The write side of a data directory.
#[derive(Debug)]
pub struct Storage<D: Device = WalFile> {
    device: D,
    /// Records of this turn, written and synced together by `sync`.
    pending: Vec<u8>,
    /// A snapshot file to put in place before `pending`, which is then a whole new
    /// write-ahead log (`save_snapshot`).
    snapshot: Option<Vec<u8>>,
    /// A failed write or sync leaves the file in an unknown state: nothing is written
    /// after it, and the replica must acknowledge nothing more (`sync` keeps failing).
    failed: bool,
}

impl Storage<WalFile> {
    /// Opens (or creates) the data directory `dir` of replica `id` with `peers`, and
    /// recovers what it holds. `dir` must exist; its files are created on first use.
    pub fn open(
        dir: &Path,
        id: NodeId,
        peers: &[NodeId],
    ) -> Result<(Storage<WalFile>, Recovered), StorageError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| StorageError::Io { path, error }
        };
        let meta = fs::metadata(dir).map_err(io(dir))?;
        if !meta.is_dir() {
            return Err(StorageError::NotADirectory(dir.to_path_buf()));
        }
        check_or_write_meta(dir, id, peers)?;
        for name in [SNAPSHOT_FILE, WAL_FILE] {
            // A file not yet renamed into place was never part of the state: a crash
            // came before its rename.
            let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
            match fs::remove_file(&temp) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    return Err(io(&temp)(error));
                }
                _ => {}
            }
        }
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let snapshot = match fs::read(&snapshot_path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(io(&snapshot_path)(error)),
        };
        let wal = dir.join(WAL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&wal)
            .map_err(io(&wal))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&wal))?;
        let recovered = recover(&snapshot, &bytes).map_err(|(offset, what)| {
            let path = if what.starts_with(SNAPSHOT_FILE) {
                snapshot_path.clone()
            } else {
                wal.clone()
            };
            StorageError::Corrupt { path, offset, what }
        })?;
        if let Some(torn) = recovered.torn_tail {
            // Cut the torn tail off, so that new records follow the last whole one.
            file.set_len(torn.offset).map_err(io(&wal))?;
            file.sync_data().map_err(io(&wal))?;
        }
        let device = WalFile {
            dir: dir.to_path_buf(),
            file,
        };
        Ok((Storage::on(device), recovered))
    }
}

impl<D: Device> Storage<D> {
    /// Storage writing to `device`, which holds nothing yet or whole records only.
    pub fn on(device: D) -> Storage<D> {
        Storage {
            device,
            pending: Vec::with_capacity(64 << 10),
            snapshot: None,
            failed: false,
        }
    }

    /// A snapshot of the state machine as of `index` (of `term`): every key's value, as
    /// `pairs`. Everything saved before it this turn is dropped: what follows it (the
    /// hard state, and the log after `index`) must be saved next, and becomes the whole
    /// new write-ahead log.
    pub fn save_snapshot<'e>(
        &mut self,
        index: LogIndex,
        term: Term,
        pairs: impl ExactSizeIterator<Item = EntryRef<'e>>,
    ) {
        let mut bytes = Vec::new();
        record::encode_snapshot(&mut bytes, index, term, pairs.len() as u64);
        let mut first = 1;
        let mut run = Vec::with_capacity(SNAPSHOT_PAIRS_PER_RECORD);
        let flush = |bytes: &mut Vec<u8>, run: &mut Vec<EntryRef<'e>>, first: &mut u64| {
            if !run.is_empty() {
                record::encode_entries(bytes, LogIndex(*first), run.drain(..));
                *first += SNAPSHOT_PAIRS_PER_RECORD as u64;
            }
        };
        for pair in pairs {
            run.push(pair);
            if run.len() == SNAPSHOT_PAIRS_PER_RECORD {
                flush(&mut bytes, &mut run, &mut first);
            }
        }
        flush(&mut bytes, &mut run, &mut first);
        self.pending.clear();
        self.snapshot = Some(bytes);
    }

    pub fn save_hard_state(&mut self, state: HardState) {
        record::encode_hard_state(&mut self.pending, state);
    }

    /// The log from `first` on: replaces whatever storage holds from there.
    pub fn save_entries<'e>(
        &mut self,
        first: LogIndex,
        entries: impl IntoIterator<Item = EntryRef<'e>>,
    ) {
        record::encode_entries(&mut self.pending, first, entries);
    }

    /// The device written to.
    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Whether anything waits to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.snapshot.is_some()
    }

    /// Writes what was saved since the last call and makes it durable: one write, one
    /// sync. After any failure this keeps failing: the replica must not acknowledge
    /// anything it cannot prove it persisted.
    pub fn sync(&mut self) -> io::Result<()> {
        let snapshot = self.snapshot.take();
        if self.failed {
            // Dropped, not kept: nothing will be written again, and memory stays bounded.
            self.pending.clear();
            return Err(io::Error::other(
                "an earlier write failed; nothing is written since",
            ));
        }
        if self.pending.is_empty() && snapshot.is_none() {
            return Ok(());
        }
        let result = match &snapshot {
            Some(snapshot) => self.device.replace(snapshot, &self.pending),
            None => self.device.write_all(&self.pending),
        }
        .and_then(|()| self.device.sync_data());
        self.pending.clear();
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

/// Hands storage what the core changed: a new snapshot first if there is one (then the
/// hard state and the whole log after it become the new write-ahead log), otherwise the
/// hard state if it changed and the log from where it changed. The in-process simulation
/// persists through this too.
pub fn save_changes<D: Device>(storage: &mut Storage<D>, node: &Node, changes: Unpersisted) {
    let log = node.log();
    let last = log.last_index();
    if changes.snapshot.is_some() {
        storage.save_snapshot(
            log.snapshot_index(),
            log.snapshot_term(),
            node.snapshot().entries().into_iter(),
        );
        storage.save_hard_state(HardState {
            term: node.term(),
            voted_for: node.voted_for(),
        });
        storage.save_entries(log.snapshot_index().next(), log.entries());
        return;
    }
    if let Some(state) = changes.hard_state {
        storage.save_hard_state(state);
    }
    if let Some(first) = changes.entries_from {
        let count = u32::try_from((last.0 + 1).saturating_sub(first.0)).unwrap_or(u32::MAX);
        storage.save_entries(first, node.log_entries(EntrySpan { first, count }));
    }
}

/// Reads a whole `snapshot` file (empty if there is none) and a whole `wal` file (the
/// in-process simulation keeps its disks in memory and recovers them with this too).
/// `Err((offset, what))` if the snapshot is damaged at all (it was renamed into place
/// whole, so no crash tears it; `what` then starts with "snapshot"), or if damage in the
/// log precedes a valid record.
pub fn recover(snapshot: &[u8], bytes: &[u8]) -> Result<Recovered, (u64, String)> {
    let (pairs, mut log) = recover_snapshot(snapshot)
        .map_err(|(at, what)| (at, format!("{SNAPSHOT_FILE}: {what}")))?;
    let after = log.snapshot_index();
    let mut hard_state = HardState {
        term: Term(0),
        voted_for: None,
    };
    // The log after the snapshot: `entries[k]` is the entry at `after + 1 + k`.
    let mut entries: Vec<crate::raft::Entry> = Vec::new();
    let mut at = 0;
    let mut torn_tail = None;
    while at < bytes.len() {
        match record::decode(&bytes[at..]) {
            Ok((record::Record::HardState(state), len)) => {
                hard_state = state;
                at += len;
            }
            Ok((
                record::Record::Entries {
                    first,
                    entries: run,
                },
                len,
            )) => {
                // A log written before the snapshot replaced it may start earlier: its
                // entries through the snapshot are in the snapshot (committed, the same).
                let skip = after.0.saturating_sub(first.0 - 1);
                let keep = (first.0 - 1).saturating_sub(after.0);
                if keep > entries.len() as u64 {
                    return Err((at as u64, format!("entries from {} leave a gap", first.0)));
                }
                entries.truncate(keep as usize);
                entries.extend(
                    run.into_iter()
                        .skip(skip as usize)
                        .map(crate::raft::Entry::from_ref),
                );
                at += len;
            }
            Ok((record::Record::Snapshot { .. }, _)) => {
                return Err((at as u64, "a snapshot head in the log".to_owned()));
            }
            Err(record::Bad::Malformed(what)) => return Err((at as u64, what.to_owned())),
            Err(bad) => {
                if let Some(next) = next_valid_record(&bytes[at + 1..]) {
                    return Err((
                        at as u64,
                        format!(
                            "{bad:?} record; a valid one starts at byte {}",
                            at + 1 + next
                        ),
                    ));
                }
                torn_tail = Some(TornTail {
                    offset: at as u64,
                    bytes: (bytes.len() - at) as u64,
                });
                break;
            }
        }
    }
    for entry in &entries {
        use crate::raft::AsEntryRef;
        log.append(entry.as_entry_ref());
    }
    log.take_changed_from();
    Ok(Recovered {
        hard_state,
        snapshot: pairs,
        log,
        torn_tail,
    })
}

/// Reads a snapshot file: its pairs, and an empty log that starts after it (an empty log
/// from index 1 if `bytes` is empty: no snapshot).
fn recover_snapshot(bytes: &[u8]) -> Result<(Log, Log), (u64, String)> {
    let mut pairs = Log::new();
    let mut log = Log::new();
    if bytes.is_empty() {
        return Ok((pairs, log));
    }
    let bad = |at: usize, what: &str| (at as u64, what.to_owned());
    let (head, mut at) = record::decode(bytes).map_err(|e| bad(0, &format!("{e:?} head")))?;
    let record::Record::Snapshot {
        index,
        term,
        pairs: count,
    } = head
    else {
        return Err(bad(0, "no snapshot head"));
    };
    while at < bytes.len() {
        let (record, len) =
            record::decode(&bytes[at..]).map_err(|e| bad(at, &format!("{e:?} record")))?;
        let record::Record::Entries { first, entries } = record else {
            return Err(bad(at, "not a run of pairs"));
        };
        if first != pairs.last_index().next() {
            return Err(bad(at, "pairs out of order"));
        }
        for entry in entries {
            if !matches!(entry.command, crate::raft::CommandRef::Put { .. }) {
                return Err(bad(at, "a pair that is no put"));
            }
            pairs.append(EntryRef {
                term: Term(0),
                command: entry.command,
            });
        }
        at += len;
    }
    if pairs.last_index().0 != count {
        return Err(bad(at, "fewer pairs than its head says"));
    }
    log.reset_to_snapshot(index, term);
    Ok((pairs, log))
}

/// The offset of the first whole, checksummed record in `bytes`, if any.
fn next_valid_record(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&i| record::decode(&bytes[i..]).is_ok())
}

/// Checks that `dir` is this replica's, or claims it if it is new.
fn check_or_write_meta(dir: &Path, id: NodeId, peers: &[NodeId]) -> Result<(), StorageError> {
    let path = dir.join(META_FILE);
    let ours_peers = peers
        .iter()
        .map(NodeId::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let expected = format!("kvstore data v{FORMAT_VERSION}\nid {id}\npeers {ours_peers}\n");
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mut lines = text.lines();
            let version = lines.next().unwrap_or_default();
            if version != format!("kvstore data v{FORMAT_VERSION}") {
                return Err(StorageError::UnknownFormat {
                    path,
                    found: version.to_owned(),
                });
            }
            let found_id = lines
                .next()
                .and_then(|l| l.strip_prefix("id "))
                .and_then(NodeId::parse);
            let found_peers = lines.next().and_then(|l| l.strip_prefix("peers "));
            match (found_id, found_peers) {
                (Some(found), _) if found != id => Err(StorageError::OtherReplica {
                    path,
                    found,
                    ours: id,
                }),
                (Some(_), Some(found)) if found != ours_peers => Err(StorageError::OtherCluster {
                    path,
                    found: found.to_owned(),
                    ours: ours_peers,
                }),
                (Some(_), Some(_)) => Ok(()),
                _ => Err(StorageError::UnknownFormat {
                    path,
                    found: text.lines().take(3).collect::<Vec<_>>().join(" / "),
                }),
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let temp = dir.join(format!("{META_FILE}.new"));
            let write = || -> io::Result<()> {
                let mut file = File::create(&temp)?;
                Write::write_all(&mut file, expected.as_bytes())?;
                file.sync_all()?;
                fs::rename(&temp, &path)?;
                // The rename is durable once the directory is.
                File::open(dir)?.sync_all()
            };
            write().map_err(|error| StorageError::Io { path, error })
        }
        Err(error) => Err(StorageError::Io { path, error }),
    }
}

#[cfg(test)]
mod tests;
