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
//!   (unsynced: it only tells recovery that the batch before it had been synced). A
//!   segment is preallocated (`SEGMENT_BYTES` of zeros, made ahead as `wal.spare`: see
//!   `spare`), so a sync writes no metadata; its batches end where the zeros begin. A
//!   full segment is followed by the spare; a restart cuts the last segment where its
//!   batches end and moves on to a new one.
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
mod spare;
mod writer;

pub use disk::{DataDir, Disk, RETIRED_SUFFIX, TEMP_SUFFIX, write_atomically};
pub use mem::MemDisk;
pub use record::{HEADER_BYTES, PAYLOAD_BYTES_MAX};
pub use recovery::{Recovered, TornTail, recover, recover_segments};
use spare::SparePreparer;
use writer::{SnapshotJob, SnapshotWriter};

use raft::NodeId;
use raft::time::Time;
use raft::{Config, EntryRef, EntrySpan, HardState, Log, LogIndex, Node, Term, Unpersisted};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// The format this code writes and reads.
pub const FORMAT_VERSION: u32 = 2;
pub const META_FILE: &str = "meta";
/// The write-ahead log's segments are `wal.` and the sequence number of their first
/// batch, in hexadecimal.
pub const WAL_PREFIX: &str = "wal.";
pub const SNAPSHOT_FILE: &str = "snapshot";
/// The next segment, preallocated before it is needed (see `spare`).
pub const SPARE_FILE: &str = "wal.spare";
/// How large a preallocated segment is made (`Storage::with_preallocated_segments`).
pub const SEGMENT_BYTES: u64 = 16 << 20;

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
    /// The log's segments, oldest first, each with the last log index written to it;
    /// batches go to the last.
    segments: Vec<(String, LogIndex)>,
    /// Where the next write to the last segment goes: the end of what was written to it.
    end: u64,
    /// The last segment's preallocated length (0: not preallocated); past it, writes
    /// extend the file.
    segment_room: u64,
    /// The length new segments are preallocated to (0: they are not).
    segment_bytes: u64,
    /// Whether `SPARE_FILE` is made and may become the next segment.
    spare_ready: bool,
    /// Makes the spare on a thread of its own; without it, `sync` does.
    preparer: Option<SparePreparer>,
    /// Why segments are no longer preallocated, until the caller takes it to report.
    preallocation_failure: Option<io::Error>,
    /// The next batch starts a new segment.
    rotate: bool,
    /// Records of this turn after a batch head to be filled in, written and synced
    /// together by `sync`.
    pending: Vec<u8>,
    /// Whether `pending` holds the hard state (a new segment must: `hard_state`).
    pending_has_hard_state: bool,
    /// The last log index `pending` writes.
    pending_last_index: LogIndex,
    /// The hard state last saved, which each new segment starts with, so that removing
    /// older segments never loses it.
    hard_state: HardState,
    /// A snapshot installed from a leader, encoded, to write before `pending`, which then
    /// starts a new segment that supersedes every older one.
    installed: Option<SnapshotJob>,
    /// A snapshot this replica made by compaction, to write without holding anything up.
    compacted: Option<SnapshotJob>,
    /// Writes compacted snapshots on a thread of its own; without it, `sync` does.
    writer: Option<SnapshotWriter>,
    /// The last sync mark written (a buffer kept, so that a turn allocates nothing).
    mark: Vec<u8>,
    /// The batch `write_unsynced` wrote, whose sync has not returned yet.
    unsynced_batch: Option<u64>,
    /// A failed write or sync leaves the file in an unknown state: nothing is written
    /// after it, and the replica must acknowledge nothing more (`sync` keeps failing).
    failed: bool,
}

impl Storage<DataDir> {
    /// Compacted snapshots are written on a thread of their own from now on.
    pub fn with_snapshot_writer(mut self) -> io::Result<Storage<DataDir>> {
        self.writer = Some(SnapshotWriter::start(self.disk.try_clone())?);
        Ok(self)
    }

    /// New segments are preallocated to `bytes`, each made on a thread of its own while
    /// the one before fills (see `spare`).
    pub fn with_segment_preparer(mut self, bytes: u64) -> io::Result<Storage<DataDir>> {
        let mut preparer = SparePreparer::start(self.disk.try_clone())?;
        if bytes > 0 {
            preparer.request(bytes)?;
        }
        self.preparer = Some(preparer);
        self.segment_bytes = bytes;
        Ok(self)
    }
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
        // A file not yet renamed into place was never part of the state: a crash came
        // before its rename. A spare is made again rather than trusted half made; a file
        // retired was on its way out.
        let temp = format!("{SNAPSHOT_FILE}{TEMP_SUFFIX}");
        let listed = disk.list().map_err(io(&disk, "."))?;
        let retired = listed.iter().filter(|name| name.ends_with(RETIRED_SUFFIX));
        for name in [temp.as_str(), SPARE_FILE]
            .into_iter()
            .chain(retired.map(String::as_str))
        {
            disk.remove(name).map_err(io(&disk, name))?;
        }
        let snapshot = disk.read(SNAPSHOT_FILE).map_err(io(&disk, SNAPSHOT_FILE))?;
        let mut names: Vec<String> = listed
            .into_iter()
            .filter(|name| segment_seq(name).is_some())
            .collect();
        names.sort_by_key(|name| segment_seq(name));
        if names.is_empty() {
            return Err(StorageError::MissingLog {
                path: disk.path(&segment_name(1)),
            });
        }
        let mut segments = Vec::with_capacity(names.len());
        for name in &names {
            let bytes = disk
                .read(name)
                .map_err(io(&disk, name))?
                .unwrap_or_default();
            segments.push((name.clone(), bytes));
        }
        let recovered = recover_segments(snapshot.as_deref().unwrap_or_default(), &segments, nonce)
            .map_err(|(file, offset, what)| StorageError::Corrupt {
                path: disk.path(&file),
                offset,
                what,
            })?;
        let last = names.last().expect("one segment at least").clone();
        let last_len = segments.last().map_or(0, |(_, bytes)| bytes.len() as u64);
        if last_len > recovered.valid_bytes {
            // Cut off a torn tail, and the unwritten zeros of a preallocated segment
            // (which the next new segment has again), so that new batches follow the
            // last whole one and the file ends where they do.
            disk.truncate(&last, recovered.valid_bytes)
                .map_err(io(&disk, &last))?;
        }
        // What a killed process wrote is in the page cache, not necessarily on disk: make
        // it durable before anything is promised on it.
        for name in &names {
            disk.sync(name).map_err(io(&disk, name))?;
        }
        if snapshot.is_some() {
            disk.sync(SNAPSHOT_FILE).map_err(io(&disk, SNAPSHOT_FILE))?;
        }
        disk.sync_dir().map_err(io(&disk, "."))?;
        let mut storage = Storage {
            disk,
            nonce,
            next_seq: recovered.last_batch.map_or(1, |(seq, _)| seq + 1),
            segments: names
                .into_iter()
                .zip(recovered.segment_last_indexes.iter().copied())
                .collect(),
            end: recovered.valid_bytes,
            segment_room: 0,
            segment_bytes: 0,
            spare_ready: false,
            preparer: None,
            preallocation_failure: None,
            rotate: false,
            pending: Vec::with_capacity(64 << 10),
            pending_has_hard_state: false,
            pending_last_index: LogIndex(0),
            hard_state: recovered.hard_state,
            installed: None,
            compacted: None,
            writer: None,
            // Room for the zeros that pad it to a block (`write_in_segment`).
            mark: Vec::with_capacity(record::SYNC_MARK_BYTES + BLOCK_BYTES as usize),
            unsynced_batch: None,
            failed: false,
        };
        storage.begin_batch();
        if let Some((seq, false)) = recovered.last_batch {
            // Synced just now: say so, so that damage to it later is told from a tear.
            storage
                .append_sync_mark(seq)
                .map_err(io(&storage.disk, &last))?;
        }
        Ok((storage, recovered))
    }

    fn begin_batch(&mut self) {
        self.pending.clear();
        self.pending.resize(record::BATCH_HEAD_BYTES, 0);
        self.pending_has_hard_state = false;
        self.pending_last_index = LogIndex(0);
    }

    fn append_sync_mark(&mut self, seq: u64) -> io::Result<()> {
        self.mark.clear();
        record::encode_sync_mark(&mut self.mark, self.nonce, seq);
        let Storage {
            disk,
            segments,
            mark,
            end,
            segment_room,
            ..
        } = self;
        let segment = &segments.last().expect("one segment at least").0;
        write_in_segment(disk, segment, end, *segment_room, mark)
    }

    /// New segments are preallocated to `bytes`, made in the turn that needs one (a
    /// `DataDir` makes them ahead on a thread: `with_segment_preparer`).
    pub fn with_preallocated_segments(mut self, bytes: u64) -> Storage<D> {
        self.segment_bytes = bytes;
        self
    }

    /// Whether the next batch should start a new segment, the spare: the one written to
    /// now is full, or was not preallocated (a new directory's first, or one cut at a
    /// restart).
    fn wants_spare(&self) -> bool {
        self.segment_bytes > 0
            && (self.segment_room == 0 || self.end >= self.segment_room)
            && (self.spare_ready || self.preparer.is_none())
    }

    /// Notes whether the spare asked of the preparer thread is made.
    fn poll_spare(&mut self) {
        if let Some(preparer) = self.preparer.as_mut() {
            match preparer.poll() {
                Ok(ready) => self.spare_ready |= ready,
                Err(error) => self.stop_preallocating(error),
            }
        }
    }

    /// The spare, made now if no thread made it: whether there is one to use.
    fn take_spare(&mut self) -> bool {
        if self.segment_bytes == 0 {
            return false;
        }
        if self.preparer.is_none() && !self.spare_ready {
            match self.disk.preallocate(SPARE_FILE, self.segment_bytes) {
                Ok(()) => self.spare_ready = true,
                Err(error) => self.stop_preallocating(error),
            }
        }
        std::mem::take(&mut self.spare_ready)
    }

    /// A spare could not be made (a full disk, a file size limit): it is a speed-up, not
    /// state, so the log goes on in segments that are not preallocated, and the caller
    /// is told once (`take_preallocation_failure`). The spare is not tried again, nor
    /// anything the failed write or sync left of it used.
    fn stop_preallocating(&mut self, error: io::Error) {
        self.segment_bytes = 0;
        self.spare_ready = false;
        self.preparer = None;
        let _ = self.disk.remove(SPARE_FILE);
        let path = self.disk.path(SPARE_FILE);
        self.preallocation_failure = Some(io::Error::new(
            error.kind(),
            format!("{}: {error}", path.display()),
        ));
    }

    /// Why new segments are no longer preallocated, once: for the replica to report.
    pub fn take_preallocation_failure(&mut self) -> Option<io::Error> {
        self.preallocation_failure.take()
    }

    /// A snapshot installed from a leader, as of `index` (of `term`): every key's value,
    /// as `pairs`. Written in this turn, before anything else; what is saved after it
    /// (the hard state, and the whole log after `index`) starts a new segment, and every
    /// older segment is removed once that is durable.
    pub fn save_installed_snapshot(&mut self, index: LogIndex, term: Term, pairs: Arc<Log>) {
        self.begin_batch();
        // The log that follows begins after this snapshot, whatever older segments say.
        record::encode_snapshot(&mut self.pending, index, term, 0);
        self.installed = Some(SnapshotJob {
            index,
            term,
            pairs,
            unneeded_segments: Vec::new(),
        });
        self.compacted = None;
    }

    /// A snapshot this replica made by compacting its log through `index` (of `term`):
    /// written without holding up the turn (see `writer`); the log is unchanged.
    pub fn save_compacted_snapshot(&mut self, index: LogIndex, term: Term, pairs: Arc<Log>) {
        self.compacted = Some(SnapshotJob {
            index,
            term,
            pairs,
            unneeded_segments: Vec::new(),
        });
    }

    pub fn save_hard_state(&mut self, state: HardState) {
        record::encode_hard_state(&mut self.pending, state);
        self.pending_has_hard_state = true;
        self.hard_state = state;
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
        self.pending_last_index = first.prev();
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

    /// The write-ahead log's segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|(name, _)| name.as_str())
    }

    /// Whether what waits to be written holds the hard state (a new term or vote), not
    /// only entries.
    pub fn pending_has_hard_state(&self) -> bool {
        self.pending_has_hard_state
    }

    /// Whether anything waits to be written.
    pub fn has_pending(&self) -> bool {
        self.pending.len() > record::BATCH_HEAD_BYTES
            || self.installed.is_some()
            || self.compacted.is_some()
    }

    /// Writes what was saved since the last call and makes it durable: one write, one
    /// sync, then the batch's sync mark. A compacted snapshot starts a new segment and
    /// goes to the writer thread (or, without one, is written here). After any failure
    /// this keeps failing: the replica must not acknowledge anything it cannot prove it
    /// persisted.
    pub fn sync(&mut self) -> io::Result<()> {
        let result = self.try_sync();
        self.begin_batch();
        if result.is_err() {
            self.failed = true;
            self.installed = None;
            self.compacted = None;
        }
        result
    }

    fn try_sync(&mut self) -> io::Result<()> {
        debug_assert!(self.unsynced_batch.is_none(), "a batch's sync is in flight");
        if self.failed {
            // Dropped, not kept: nothing will be written again, and memory stays bounded.
            return Err(io::Error::other(
                "an earlier write failed; nothing is written since",
            ));
        }
        if let Some(writer) = self.writer.as_mut() {
            writer.poll()?;
        }
        self.poll_spare();
        if self.wants_spare() {
            self.rotate = true;
        }
        // A segment that holds no batch yet (a new directory's first, or one whose only
        // batch was cut as torn) already bears the next batch's name: rotating writes to
        // it, and it is never among those to remove.
        let next = segment_name(self.next_seq);
        let mut superseded = Vec::new();
        if let Some(job) = self.installed.take() {
            if let Some(writer) = self.writer.as_mut() {
                // Its rename must not land after this one.
                writer.wait_idle()?;
            }
            writer::write_snapshot(&mut self.disk, &job, None)?;
            superseded = self
                .segments
                .iter()
                .map(|(name, _)| name.clone())
                .filter(|name| *name != next)
                .collect();
            self.rotate = true;
        }
        let compacted = self.compacted.take().map(|mut job| {
            // Segments wholly covered by the snapshot go once it is durable; the one
            // written to now is closed, so that the next snapshot can remove it.
            // Only a prefix: removing a segment between two kept ones would leave a gap
            // in the batches' sequence for recovery to take for damage.
            let covered = self
                .segments
                .iter()
                .take_while(|(name, last)| *last <= job.index && *name != next)
                .count();
            job.unneeded_segments = self
                .segments
                .drain(..covered)
                .map(|(name, _)| name)
                .collect();
            self.rotate = true;
            job
        });
        if self.rotate && !self.pending_has_hard_state {
            // A segment must stand without those before it, which will be removed.
            let state = self.hard_state;
            self.save_hard_state(state);
        }
        if self.pending.len() > record::BATCH_HEAD_BYTES {
            self.write_batch(superseded)?;
        }
        if let Some(job) = compacted {
            // Only now, with the new segment durable (it holds the hard state), may the
            // segments the snapshot covers be removed.
            match self.writer.as_mut() {
                Some(writer) => writer.submit(job)?,
                None => {
                    // As the writer thread does, so that the simulation's crashes reach
                    // each step of it.
                    let mut retired = Vec::new();
                    writer::write_snapshot(&mut self.disk, &job, Some(&mut retired))?;
                    for name in retired {
                        self.disk.shrink_and_remove(&name)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes `pending` as the next batch, to a new segment if `rotate` (then removing
    /// `superseded`), syncs it, and marks it synced.
    fn write_batch(&mut self, superseded: Vec<String>) -> io::Result<()> {
        let seq = self.next_seq;
        let rotating = std::mem::take(&mut self.rotate);
        if rotating {
            self.start_segment(seq)?;
        }
        self.append_batch()?;
        let Storage { disk, segments, .. } = self;
        disk.sync(&segments.last().expect("one segment at least").0)?;
        if rotating {
            // The new segment's name is durable before anything is promised on it.
            self.disk.sync_dir()?;
            for old in superseded {
                // Older than the snapshot written first: a removal lost to a crash only
                // leaves a segment recovery skips.
                self.disk.remove(&old)?;
                self.segments.retain(|(name, _)| *name != old);
            }
        }
        self.append_sync_mark(seq)
    }

    /// Makes the segment that batch `seq` starts the last: the spare renamed, if there
    /// is one, or an empty file. A segment that bears that name already (a new
    /// directory's first, or one whose only batch was cut as torn) is kept, unless it is
    /// empty and a spare can replace it.
    fn start_segment(&mut self, seq: u64) -> io::Result<()> {
        let name = segment_name(seq);
        let bears_name = self.segments.last().is_some_and(|(last, _)| *last == name);
        if bears_name && (self.end > 0 || self.segment_room > 0) {
            return Ok(());
        }
        if self.take_spare() {
            self.disk.rename(SPARE_FILE, &name)?;
            self.segment_room = self.segment_bytes;
            let bytes = self.segment_bytes;
            if let Some(Err(error)) = self.preparer.as_mut().map(|p| p.request(bytes)) {
                self.stop_preallocating(error);
            }
        } else {
            if !bears_name {
                self.disk.append(&name, &[])?;
            }
            self.segment_room = 0;
        }
        if !bears_name {
            self.segments.push((name, LogIndex(0)));
        }
        self.end = 0;
        Ok(())
    }

    /// Writes `pending`, headed as the next batch, where the last segment's bytes end.
    fn append_batch(&mut self) -> io::Result<()> {
        record::fill_batch_head(&mut self.pending, 0, self.nonce, self.next_seq);
        let Storage {
            disk,
            segments,
            pending,
            pending_last_index,
            end,
            segment_room,
            ..
        } = self;
        let current = segments.last_mut().expect("one segment at least");
        write_in_segment(disk, &current.0, end, *segment_room, pending)?;
        current.1 = current.1.max(*pending_last_index);
        self.next_seq += 1;
        Ok(())
    }

    /// Whether what was saved must be written and synced by `sync`, in this turn: it
    /// carries a snapshot or starts a segment (a compaction or an install, now and then).
    /// Otherwise a `DataDir`'s storage may sync it off the loop's thread
    /// (`write_unsynced`).
    pub fn sync_must_be_inline(&self) -> bool {
        self.installed.is_some() || self.compacted.is_some() || self.rotate || self.wants_spare()
    }
}

impl Storage<DataDir> {
    /// Writes what was saved since the last call as the next batch, without syncing it,
    /// and returns a handle on its file for another thread to sync (`None`: nothing was
    /// saved). Nothing that depends on the batch may leave before that sync returns and
    /// `batch_synced` is called; no other batch is written in between. Only when
    /// `!sync_must_be_inline()`.
    pub fn write_unsynced(&mut self) -> io::Result<Option<std::fs::File>> {
        debug_assert!(!self.sync_must_be_inline() && self.unsynced_batch.is_none());
        let result = self.try_write_unsynced();
        self.begin_batch();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn try_write_unsynced(&mut self) -> io::Result<Option<std::fs::File>> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write failed; nothing is written since",
            ));
        }
        if let Some(writer) = self.writer.as_mut() {
            writer.poll()?;
        }
        self.poll_spare();
        if self.pending.len() <= record::BATCH_HEAD_BYTES {
            return Ok(None);
        }
        self.unsynced_batch = Some(self.next_seq);
        self.append_batch()?;
        let Storage { disk, segments, .. } = self;
        disk.handle(&segments.last().expect("one segment at least").0)
            .map(Some)
    }

    /// The sync of the batch `write_unsynced` wrote returned `result`: on success its
    /// sync mark follows it; a failure fails every later write, as in `sync`.
    pub fn batch_synced(&mut self, result: io::Result<()>) -> io::Result<()> {
        let seq = self
            .unsynced_batch
            .take()
            .expect("a batch written by write_unsynced");
        let result = result.and_then(|()| self.append_sync_mark(seq));
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

/// The file system's block (4 KiB on ext4 and XFS as usually made): a write that covers a
/// block only in part makes the kernel read the rest of it first, unless it caches it.
const BLOCK_BYTES: u64 = 4096;

/// Writes `bytes` where the segment's written bytes `end`, and moves `end` past them. In
/// a preallocated segment (`room`: its length) the write runs on with the zeros already
/// there to the end of its last block (`Disk::write_at_padded`), so that the turn never
/// waits for the kernel to read back a block it dropped from its cache. `bytes` is left
/// as it was.
fn write_in_segment<D: Disk>(
    disk: &mut D,
    segment: &str,
    end: &mut u64,
    room: u64,
    bytes: &mut Vec<u8>,
) -> io::Result<()> {
    let len = bytes.len();
    let written_end = *end + len as u64;
    let block_end = written_end.next_multiple_of(BLOCK_BYTES);
    let pad = if room > 0 && block_end <= room {
        (block_end - written_end) as usize
    } else {
        0
    };
    bytes.resize(len + pad, 0);
    let result = disk.write_at_padded(segment, *end, bytes, len);
    bytes.truncate(len);
    result?;
    *end = written_end;
    Ok(())
}

/// The name of the segment whose first batch is `seq`: hexadecimal, fixed width, so that
/// names sort as their batches do.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{WAL_PREFIX}{seq:016x}")
}

/// The first batch of the segment `name`, if it names one.
pub(crate) fn segment_seq(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(WAL_PREFIX)?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Hands storage what the core changed: a new snapshot first if there is one (then the
/// hard state and the whole log after it become the new write-ahead log), otherwise the
/// hard state if it changed and the log from where it changed. The in-process simulation
/// persists through this too.
pub fn save_changes<D: Disk>(storage: &mut Storage<D>, node: &Node, changes: Unpersisted) {
    let log = node.log();
    let last = log.last_index();
    if changes.snapshot.is_some() {
        if changes.snapshot_installed {
            storage.save_installed_snapshot(
                log.snapshot_index(),
                log.snapshot_term(),
                node.shared_snapshot(),
            );
            storage.save_hard_state(HardState {
                term: node.term(),
                voted_for: node.voted_for(),
            });
            storage.save_entries(log.snapshot_index().next(), log.entries());
            return;
        }
        storage.save_compacted_snapshot(
            log.snapshot_index(),
            log.snapshot_term(),
            node.shared_snapshot(),
        );
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
