//! A durable replica's stable storage (§5.1): its term, its vote and its log, in a data
//! directory of its own.
//!
//! - `meta`: whose directory it is: the format version, the replica's id, the cluster
//!   (its peers and the identity it was first started with), and the directory's nonce.
//!   Written once, atomically, and only after the log file exists durably: `meta`
//!   without `wal` is damage, and the start is refused. A directory of another replica,
//!   another cluster or another format is refused too: recovering someone else's term and
//!   log would break Raft silently.
//! - `wal`: an append-only sequence of batches, one per turn's write: a head (nonce,
//!   sequence number, length and checksum of what follows), then checksummed records: the
//!   hard state when it changes, and the entries the turn appended, in runs of at most
//!   about 1 MiB, each replacing the log from its first index on (so a follower's cut is
//!   just a run that starts earlier). Once a batch's sync returns, a sync mark follows it
//!   (unsynced: it only tells recovery that the batch before it had been synced).
//! - `snapshot`: once the log has been compacted (§7), the state machine as of the
//!   snapshot index: a head record (index, term, number of pairs), then the pairs in runs.
//!   Written whole to `snapshot.new`, synced, renamed over `snapshot`, and the directory
//!   synced; only then is the write-ahead log replaced, the same way, by one holding the
//!   hard state and the entries after the snapshot. A crash between the two leaves the
//!   new snapshot with the old log: recovery keeps the old log's entries after the
//!   snapshot only if its entry at the snapshot's index has the snapshot's term (§7).
//!
//! Writes are grouped: a turn's records leave in one `write` and one `fdatasync`
//! (`Storage::sync`), so durability costs one sync per batch of input, never one per
//! entry. At start the log, the snapshot and the directory are synced before anything
//! is sent: what a killed process left in the page cache is not yet durable, and nothing
//! may be promised on it (`recovery` says what a damaged log means).

mod disk;
pub mod mem;
mod record;
mod recovery;

pub use disk::{DataDir, Disk, TEMP_SUFFIX, write_atomically};
pub use mem::MemDisk;
pub use record::{HEADER_BYTES, PAYLOAD_BYTES_MAX};
pub use recovery::{Recovered, TornTail, recover};

use crate::raft::{Config, EntryRef, EntrySpan, HardState, LogIndex, Node, Term, Unpersisted};
use crate::time::Time;
use datagram::NodeId;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// The format this code writes and reads.
pub const FORMAT_VERSION: u32 = 2;
pub const META_FILE: &str = "meta";
pub const WAL_FILE: &str = "wal";
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Pairs per record of a snapshot file, so that no record nears `PAYLOAD_BYTES_MAX`.
const SNAPSHOT_PAIRS_PER_RECORD: usize = 1024;

/// Who a data directory belongs to.
#[derive(Clone, Debug)]
pub struct Identity {
    pub id: NodeId,
    pub peers: Vec<NodeId>,
    /// The cluster's name, the same for all its replicas (empty: none was given). Two
    /// clusters with the same replica ids are told apart by it.
    pub cluster: String,
}

/// Why a data directory cannot be used. Each says what and where in one line.
#[derive(Debug)]
pub enum StorageError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
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
    /// `meta` exists, `wal` does not: the log's directory entry was lost.
    MissingLog {
        path: PathBuf,
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
                "{}: belongs to the cluster {found}, not {ours}",
                path.display()
            ),
            StorageError::MissingLog { path } => write!(
                f,
                "{}: missing, though the directory's meta says it was created: its term, vote and log are lost; refusing to start from nothing",
                path.display()
            ),
            StorageError::Corrupt { path, offset, what } => {
                write!(f, "{}: corrupt at byte {offset} ({what})", path.display())
            }
        }
    }
}

impl std::error::Error for StorageError {}

/// The write side of a data directory.
#[derive(Debug)]
pub struct Storage<D: Disk = DataDir> {
    disk: D,
    /// The directory's own random number, in every batch head and sync mark.
    nonce: u64,
    /// The sequence number of the next batch.
    next_seq: u64,
    /// Records of this turn after a batch head to be filled in, written and synced
    /// together by `sync`.
    pending: Vec<u8>,
    /// A snapshot file to put in place before `pending`, which is then a whole new
    /// write-ahead log (`save_snapshot`).
    snapshot: Option<Vec<u8>>,
    /// The last sync mark written (a buffer kept, so that a turn allocates nothing).
    mark: Vec<u8>,
    /// A failed write or sync leaves the file in an unknown state: nothing is written
    /// after it, and the replica must acknowledge nothing more (`sync` keeps failing).
    failed: bool,
}

impl<D: Disk> Storage<D> {
    /// Opens (or creates) the data directory on `disk` of the replica `identity` names,
    /// recovers what it holds, and makes it durable. `nonce_if_new` becomes the
    /// directory's nonce if it is new (a random number: see `recovery`).
    pub fn open(
        mut disk: D,
        identity: &Identity,
        nonce_if_new: u64,
    ) -> Result<(Storage<D>, Recovered), StorageError> {
        let nonce = meta::check_or_create(&mut disk, identity, nonce_if_new)?;
        let io = |disk: &D, name: &str| {
            let path = disk.path(name);
            move |error| StorageError::Io { path, error }
        };
        for name in [SNAPSHOT_FILE, WAL_FILE] {
            // A file not yet renamed into place was never part of the state: a crash
            // came before its rename.
            let temp = format!("{name}{TEMP_SUFFIX}");
            disk.remove(&temp).map_err(io(&disk, &temp))?;
        }
        let snapshot = disk.read(SNAPSHOT_FILE).map_err(io(&disk, SNAPSHOT_FILE))?;
        let wal = disk
            .read(WAL_FILE)
            .map_err(io(&disk, WAL_FILE))?
            .ok_or_else(|| StorageError::MissingLog {
                path: disk.path(WAL_FILE),
            })?;
        let recovered = recover(snapshot.as_deref().unwrap_or_default(), &wal, nonce).map_err(
            |(offset, what)| StorageError::Corrupt {
                path: disk.path(if what.starts_with(SNAPSHOT_FILE) {
                    SNAPSHOT_FILE
                } else {
                    WAL_FILE
                }),
                offset,
                what,
            },
        )?;
        if recovered.torn_tail.is_some() {
            // Cut the torn tail off, so that new batches follow the last whole one.
            disk.truncate(WAL_FILE, recovered.valid_bytes)
                .map_err(io(&disk, WAL_FILE))?;
        }
        // What a killed process wrote is in the page cache, not necessarily on disk: make
        // it durable before anything is promised on it.
        disk.sync(WAL_FILE).map_err(io(&disk, WAL_FILE))?;
        if snapshot.is_some() {
            disk.sync(SNAPSHOT_FILE).map_err(io(&disk, SNAPSHOT_FILE))?;
        }
        disk.sync_dir().map_err(io(&disk, "."))?;
        let mut storage = Storage {
            disk,
            nonce,
            next_seq: recovered.last_batch.map_or(1, |(seq, _)| seq + 1),
            pending: Vec::with_capacity(64 << 10),
            snapshot: None,
            mark: Vec::with_capacity(record::SYNC_MARK_BYTES),
            failed: false,
        };
        storage.begin_batch();
        if let Some((seq, false)) = recovered.last_batch {
            // Synced just now: say so, so that damage to it later is told from a tear.
            storage
                .append_sync_mark(seq)
                .map_err(io(&storage.disk, WAL_FILE))?;
        }
        Ok((storage, recovered))
    }

    fn begin_batch(&mut self) {
        self.pending.clear();
        self.pending.resize(record::BATCH_HEAD_BYTES, 0);
    }

    fn append_sync_mark(&mut self, seq: u64) -> io::Result<()> {
        self.mark.clear();
        record::encode_sync_mark(&mut self.mark, self.nonce, seq);
        self.disk.append(WAL_FILE, &self.mark)
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
        let mut pairs = pairs.peekable();
        let mut first = 1;
        while pairs.peek().is_some() {
            let mut run = pairs.by_ref().take(SNAPSHOT_PAIRS_PER_RECORD);
            first += u64::from(record::encode_entries_until(
                &mut bytes,
                LogIndex(first),
                &mut run,
                usize::MAX,
            ));
        }
        self.begin_batch();
        self.snapshot = Some(bytes);
    }

    pub fn save_hard_state(&mut self, state: HardState) {
        record::encode_hard_state(&mut self.pending, state);
    }

    /// The log from `first` on: replaces whatever storage holds from there. Written in
    /// runs of about `ENTRIES_PAYLOAD_BYTES_TARGET`, so that no record nears the size
    /// recovery takes for damage.
    pub fn save_entries<'e>(
        &mut self,
        first: LogIndex,
        entries: impl IntoIterator<Item = EntryRef<'e>>,
    ) {
        let mut entries = entries.into_iter().peekable();
        let mut first = first;
        loop {
            let taken = record::encode_entries_until(
                &mut self.pending,
                first,
                &mut entries,
                record::ENTRIES_PAYLOAD_BYTES_TARGET,
            );
            first = LogIndex(first.0 + u64::from(taken));
            if entries.peek().is_none() {
                break;
            }
        }
    }

    /// The disk written to.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// The disk, for a restart to open again.
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// Whether anything waits to be written.
    pub fn has_pending(&self) -> bool {
        self.pending.len() > record::BATCH_HEAD_BYTES || self.snapshot.is_some()
    }

    /// Writes what was saved since the last call and makes it durable: one write, one
    /// sync, then the batch's sync mark. After any failure this keeps failing: the
    /// replica must not acknowledge anything it cannot prove it persisted.
    pub fn sync(&mut self) -> io::Result<()> {
        let snapshot = self.snapshot.take();
        if self.failed {
            // Dropped, not kept: nothing will be written again, and memory stays bounded.
            self.begin_batch();
            return Err(io::Error::other(
                "an earlier write failed; nothing is written since",
            ));
        }
        if !self.has_pending() && snapshot.is_none() {
            return Ok(());
        }
        let seq = self.next_seq;
        record::fill_batch_head(&mut self.pending, 0, self.nonce, seq);
        let result = match &snapshot {
            Some(snapshot) => write_atomically(&mut self.disk, SNAPSHOT_FILE, snapshot)
                .and_then(|()| write_atomically(&mut self.disk, WAL_FILE, &self.pending)),
            None => self
                .disk
                .append(WAL_FILE, &self.pending)
                .and_then(|()| self.disk.sync(WAL_FILE)),
        }
        .and_then(|()| {
            self.next_seq += 1;
            self.append_sync_mark(seq)
        });
        self.begin_batch();
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
pub fn save_changes<D: Disk>(storage: &mut Storage<D>, node: &Node, changes: Unpersisted) {
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

impl Recovered {
    /// The replica this directory held, restarted at `now` with `config` (see
    /// `Node::restore`): the one way a durable replica comes back, in the event loop and
    /// in the simulations alike.
    pub fn restore(self, config: Config, now: Time) -> Node {
        Node::restore(
            config,
            now,
            self.hard_state.term,
            self.hard_state.voted_for,
            self.snapshot,
            self.log,
        )
    }
}

mod meta;

#[cfg(test)]
mod tests;
