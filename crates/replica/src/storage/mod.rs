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

use crate::raft::{EntryRef, HardState, Log, LogIndex, Term};
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

/// Where the records go: a file, or in tests a stand-in that fails on demand.
pub trait Device {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn sync_data(&mut self) -> io::Result<()>;
}

impl Device for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// What a restarting replica recovers.
#[derive(Debug)]
pub struct Recovered {
    pub hard_state: HardState,
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
pub struct Storage<D: Device = File> {
    device: D,
    /// Records of this turn, written and synced together by `sync`.
    pending: Vec<u8>,
    /// A failed write or sync leaves the file in an unknown state: nothing is written
    /// after it, and the replica must acknowledge nothing more (`sync` keeps failing).
    failed: bool,
}

impl Storage<File> {
    /// Opens (or creates) the data directory `dir` of replica `id` with `peers`, and
    /// recovers what it holds. `dir` must exist; its files are created on first use.
    pub fn open(
        dir: &Path,
        id: NodeId,
        peers: &[NodeId],
    ) -> Result<(Storage<File>, Recovered), StorageError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| StorageError::Io { path, error }
        };
        let meta = fs::metadata(dir).map_err(io(dir))?;
        if !meta.is_dir() {
            return Err(StorageError::NotADirectory(dir.to_path_buf()));
        }
        check_or_write_meta(dir, id, peers)?;
        let wal = dir.join(WAL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&wal)
            .map_err(io(&wal))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&wal))?;
        let recovered = recover(&bytes).map_err(|(offset, what)| StorageError::Corrupt {
            path: wal.clone(),
            offset,
            what,
        })?;
        if let Some(torn) = recovered.torn_tail {
            // Cut the torn tail off, so that new records follow the last whole one.
            file.set_len(torn.offset).map_err(io(&wal))?;
            file.sync_data().map_err(io(&wal))?;
        }
        Ok((Storage::on(file), recovered))
    }
}

impl<D: Device> Storage<D> {
    /// Storage writing to `device`, which holds nothing yet or whole records only.
    pub fn on(device: D) -> Storage<D> {
        Storage {
            device,
            pending: Vec::with_capacity(64 << 10),
            failed: false,
        }
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
        !self.pending.is_empty()
    }

    /// Writes what was saved since the last call and makes it durable: one write, one
    /// sync. After any failure this keeps failing: the replica must not acknowledge
    /// anything it cannot prove it persisted.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.failed {
            // Dropped, not kept: nothing will be written again, and memory stays bounded.
            self.pending.clear();
            return Err(io::Error::other(
                "an earlier write failed; nothing is written since",
            ));
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self
            .device
            .write_all(&self.pending)
            .and_then(|()| self.device.sync_data());
        self.pending.clear();
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

/// Reads `bytes`, a whole `wal` file (the in-process simulation keeps its disks in
/// memory and recovers them with this too). `Err((offset, what))` if damage precedes a
/// valid record.
pub fn recover(bytes: &[u8]) -> Result<Recovered, (u64, String)> {
    let mut hard_state = HardState {
        term: Term(0),
        voted_for: None,
    };
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
                let keep = first.0 - 1;
                if keep > entries.len() as u64 {
                    return Err((at as u64, format!("entries from {} leave a gap", first.0)));
                }
                entries.truncate(keep as usize);
                entries.extend(run.into_iter().map(crate::raft::Entry::from_ref));
                at += len;
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
    let mut log = Log::new();
    for entry in &entries {
        use crate::raft::AsEntryRef;
        log.append(entry.as_entry_ref());
    }
    Ok(Recovered {
        hard_state,
        log,
        torn_tail,
    })
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
