//! The write-ahead log's next segment, preallocated ahead of need on a thread of its own.
//!
//! A sync of bytes appended to a file must also write the metadata that makes them part
//! of it (its size, the blocks allocated for them): on the 2-core VM this project is
//! measured on, three device writes and a flush per `fdatasync` instead of one write and
//! a flush, and twice the time. Written over zeros already durable, the same bytes need
//! no metadata. So the log is written into segments made of zeros beforehand
//! (`Disk::preallocate`); this thread makes the next one, `wal.spare`, while the current
//! one fills, at the lowest priority, as the snapshot writer does (nothing waits for it:
//! until it is ready the log goes on past the end of its segment, or in a plain one; and
//! if it cannot be made, storage stops asking for spares: `Storage::stop_preallocating`).

use super::SPARE_FILE;
use super::disk::Disk;
use super::writer::yield_to_the_loop;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};

#[derive(Debug)]
pub(super) struct SparePreparer {
    requests: Sender<u64>,
    done: Receiver<io::Result<()>>,
    /// A spare asked for and not yet reported made.
    busy: bool,
}

impl SparePreparer {
    pub fn start<D: Disk + Send + 'static>(mut disk: D) -> io::Result<SparePreparer> {
        let (requests, inbox) = mpsc::channel::<u64>();
        let (report, done) = mpsc::channel();
        // Not joined when dropped: nothing waits for a spare, and a replica stopping
        // need not wait for one to be made.
        std::thread::Builder::new()
            .name("wal-preallocate".to_owned())
            .spawn(move || {
                yield_to_the_loop();
                for bytes in inbox {
                    if report.send(disk.preallocate(SPARE_FILE, bytes)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(SparePreparer {
            requests,
            done,
            busy: false,
        })
    }

    /// Starts making a spare of `bytes` zeros (replacing any).
    pub fn request(&mut self, bytes: u64) -> io::Result<()> {
        debug_assert!(!self.busy, "one spare at a time");
        self.requests.send(bytes).map_err(|_| stopped())?;
        self.busy = true;
        Ok(())
    }

    /// Whether the spare asked for is made now (durable, not yet its directory entry).
    pub fn poll(&mut self) -> io::Result<bool> {
        if !self.busy {
            return Ok(false);
        }
        match self.done.try_recv() {
            Ok(result) => {
                self.busy = false;
                result.map(|()| true)
            }
            Err(TryRecvError::Empty) => Ok(false),
            Err(TryRecvError::Disconnected) => Err(stopped()),
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the thread that preallocates log segments stopped")
}
