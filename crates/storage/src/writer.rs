//! Writing a snapshot file: in the caller's turn (`write_snapshot`), or on a thread of its
//! own (`SnapshotWriter`), so that a compaction of half a million keys does not hold the
//! Raft loop up for the 40 MB it writes and syncs.
//!
//! Nothing waits for it: the write-ahead log still holds every entry since the snapshot
//! before, so a crash while the file is written recovers from the older snapshot and the
//! log. Once the file is durable (synced, renamed, the directory synced), the log's
//! segments that it makes unneeded are removed.
//!
//! Since nothing waits for it, the thread takes the CPU and the disk only when nothing
//! else wants them, and hands the disk its file a megabyte at a time (`Disk::write_back`):
//! written whole and synced at the end, the file reached the disk in one burst that every
//! `fdatasync` on that disk queued behind, the write-ahead log's included, and encoding
//! it took the CPU from the loops of the replicas sharing it.

use super::disk::{Disk, RETIRED_SUFFIX, TEMP_SUFFIX};
use super::{SNAPSHOT_FILE, record};
use raft::{EntryRef, Log, LogIndex, Term};
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

/// Pairs per record of a snapshot file, so that no record nears `PAYLOAD_BYTES_MAX`.
const SNAPSHOT_PAIRS_PER_RECORD: usize = 1024;
/// Bytes gathered before each `write`.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// A snapshot to make durable, and the log segments it makes unneeded.
#[derive(Debug)]
pub(super) struct SnapshotJob {
    pub index: LogIndex,
    pub term: Term,
    pub pairs: Arc<Log>,
    pub unneeded_segments: Vec<String>,
}

/// Writes `job`'s snapshot to `snapshot.new`, syncs it, renames it over `snapshot`, syncs
/// the directory, then removes the segments it makes unneeded. With `retired`, the files
/// that frees (the snapshot replaced, the segments) are not removed but renamed out of
/// recovery's way, durably, and listed there for `Disk::shrink_and_remove`.
pub(super) fn write_snapshot<D: Disk + ?Sized>(
    disk: &mut D,
    job: &SnapshotJob,
    retired: Option<&mut Vec<String>>,
) -> io::Result<()> {
    let temp = format!("{SNAPSHOT_FILE}{TEMP_SUFFIX}");
    disk.remove(&temp)?;
    let pairs = job.pairs.entries();
    let mut chunk = Vec::with_capacity(WRITE_CHUNK_BYTES + (64 << 10));
    record::encode_snapshot(&mut chunk, job.index, job.term, pairs.len() as u64);
    let mut pairs = pairs.into_iter().map(|pair| EntryRef {
        term: Term(0),
        command: pair.command,
    });
    let mut first = 1;
    loop {
        let mut run = pairs.by_ref().take(SNAPSHOT_PAIRS_PER_RECORD).peekable();
        if run.peek().is_none() {
            break;
        }
        let taken = record::encode_entries_until(&mut chunk, LogIndex(first), &mut run, usize::MAX);
        first += u64::from(taken);
        if chunk.len() >= WRITE_CHUNK_BYTES {
            disk.append(&temp, &chunk)?;
            disk.write_back(&temp)?;
            chunk.clear();
        }
    }
    disk.append(&temp, &chunk)?;
    disk.sync(&temp)?;
    let Some(retired) = retired else {
        disk.rename(&temp, SNAPSHOT_FILE)?;
        disk.sync_dir()?;
        for segment in &job.unneeded_segments {
            // A removal lost to a crash only leaves a segment recovery skips.
            disk.remove(segment)?;
        }
        return Ok(());
    };
    // The snapshot replaced keeps a name, so that the rename frees none of its blocks.
    let old = format!("{SNAPSHOT_FILE}{RETIRED_SUFFIX}");
    if disk.hard_link(SNAPSHOT_FILE, &old)? {
        retired.push(old);
    }
    disk.rename(&temp, SNAPSHOT_FILE)?;
    disk.sync_dir()?;
    if job.unneeded_segments.is_empty() {
        return Ok(());
    }
    for segment in &job.unneeded_segments {
        let name = format!("{segment}{RETIRED_SUFFIX}");
        match disk.rename(segment, &name) {
            Ok(()) => retired.push(name),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    // Durably renamed before they are cut: a crash must not bring a cut segment back
    // under its name, where recovery would take it for damage.
    disk.sync_dir()
}

/// A thread that writes snapshots, one at a time; a newer one waiting replaces an older.
#[derive(Debug)]
pub(super) struct SnapshotWriter {
    jobs: Option<Sender<SnapshotJob>>,
    done: Receiver<io::Result<LogIndex>>,
    thread: Option<JoinHandle<()>>,
    /// A job handed over and not yet reported done.
    busy: bool,
    /// The next job, while one is being written.
    waiting: Option<SnapshotJob>,
}

impl SnapshotWriter {
    pub fn start<D: Disk + Send + 'static>(mut disk: D) -> io::Result<SnapshotWriter> {
        let (jobs, inbox) = mpsc::channel::<SnapshotJob>();
        let (report, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("snapshot-writer".to_owned())
            .spawn(move || {
                yield_to_the_loop();
                let mut retired = Vec::new();
                let mut next = inbox.recv().ok();
                while let Some(job) = next {
                    let result =
                        write_snapshot(&mut disk, &job, Some(&mut retired)).map(|()| job.index);
                    drop(job);
                    if report.send(result).is_err() {
                        return;
                    }
                    next = match inbox.try_recv() {
                        Ok(job) => Some(job),
                        // Stopping: what was retired is removed at the next start.
                        Err(TryRecvError::Disconnected) => return,
                        Err(TryRecvError::Empty) => {
                            // After the report: no turn waits for this. A file a failure
                            // leaves behind is removed at the next start too.
                            for name in retired.drain(..) {
                                let _ = disk.shrink_and_remove(&name);
                            }
                            inbox.recv().ok()
                        }
                    };
                }
            })?;
        Ok(SnapshotWriter {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            busy: false,
            waiting: None,
        })
    }

    /// Hands `job` over, or keeps it for when the one being written is done (a job
    /// already waiting is replaced: its segments are unneeded by the newer one too).
    pub fn submit(&mut self, mut job: SnapshotJob) -> io::Result<()> {
        if self.busy {
            if let Some(older) = self.waiting.take() {
                job.unneeded_segments.extend(older.unneeded_segments);
            }
            self.waiting = Some(job);
            return Ok(());
        }
        self.send(job)
    }

    fn send(&mut self, job: SnapshotJob) -> io::Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())?;
        self.busy = true;
        Ok(())
    }

    /// Notes a job finished, if one did, and hands over the one waiting: the index of a
    /// snapshot now durable, or the error that stopped the write.
    pub fn poll(&mut self) -> io::Result<Option<LogIndex>> {
        if !self.busy {
            return Ok(None);
        }
        match self.done.try_recv() {
            Ok(result) => self.finished(result),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(stopped()),
        }
    }

    /// Waits until nothing is being written or waits to be (before a snapshot is written
    /// in the caller's turn, which must not race this thread's rename).
    pub fn wait_idle(&mut self) -> io::Result<()> {
        while self.busy {
            let result = self.done.recv().map_err(|_| stopped())?;
            self.finished(result)?;
        }
        Ok(())
    }

    fn finished(&mut self, result: io::Result<LogIndex>) -> io::Result<Option<LogIndex>> {
        self.busy = false;
        let index = result?;
        if let Some(job) = self.waiting.take() {
            self.send(job)?;
        }
        Ok(Some(index))
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its job is written. A thread with no
        // job is left to end alone: it may be cutting retired files down, slowly, which
        // nothing needs.
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && self.busy
        {
            let _ = thread.join();
        }
    }
}

/// Gives this thread the CPU and the disk only when nothing else wants them: the
/// replica's loop (and its peers', when replicas share a machine) must not wait behind a
/// snapshot, which no one waits for. Best effort: where the kernel refuses, the thread
/// runs at the usual priority.
pub(super) fn yield_to_the_loop() {
    // SAFETY: plain system calls on the calling thread, with a parameter block we own.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        );
    }
}

fn stopped() -> io::Error {
    io::Error::other("the snapshot writer stopped")
}
