//! The few file-system operations a data directory needs, named by file: a real directory
//! (`DataDir`), or in the simulation and tests a model of one with a page cache
//! (`MemDisk`), so that recovery is the same code in both.
//!
//! The contract is POSIX's, as a careful program may rely on it: a write is durable once
//! `sync` of its file returns; a file's creation, rename or removal once `sync_dir`
//! returns; a process that dies keeps everything it wrote (the page cache survives it),
//! a machine that loses power keeps only what was made durable, and the last unsynced
//! write of a file may then survive in any part, not only a prefix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A file is written as this before it is renamed into place.
pub const TEMP_SUFFIX: &str = ".new";
/// A file no longer needed is renamed to this while it is cut down and removed.
pub const RETIRED_SUFFIX: &str = ".retired";

pub trait Disk {
    /// The file's bytes as a read sees them now; `None` if there is no such file.
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// Appends `bytes` to the file, creating it (empty) if there is none.
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Writes `bytes` at `offset` of the file, which must exist: the end of what was
    /// written to it, which in a preallocated file is before the end of the file.
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// As `write_at(name, offset, &bytes[..len])`, where the file already holds the rest
    /// of `bytes` (zeros, in a preallocated file) just after: a real file is written with
    /// them too, so that the write ends where they do, on a block boundary. A write that
    /// ends inside a block the kernel no longer caches makes it read that block from the
    /// disk first, to fill in the rest of it, and the writer waits for that read; the
    /// system drops a spare segment's clean pages as it likes. A model may leave them out.
    fn write_at_padded(
        &mut self,
        name: &str,
        offset: u64,
        bytes: &[u8],
        len: usize,
    ) -> io::Result<()> {
        self.write_at(name, offset, &bytes[..len])
    }
    /// Creates the file `name` (replacing any by that name) as `len` zero bytes, written
    /// and durable (its directory entry is not: that takes `sync_dir`). Writing over those
    /// bytes later changes no block the file system must allocate, so a `sync` of such a
    /// write has no metadata to write: one device write and a flush, not three.
    fn preallocate(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Makes the file's bytes durable (`fdatasync`).
    fn sync(&mut self, name: &str) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Renames `from` over `to`, atomically.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// Removes the file; no such file is no error.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Gives the file `from` the second name `to` (replacing any file by that name);
    /// false if there is no `from`.
    fn hard_link(&mut self, from: &str, to: &str) -> io::Result<bool>;
    /// Removes a file none of whose contents is needed, cutting it shorter a step at a
    /// time first: on a disk mounted with online discard, a file's blocks freed at once
    /// are discarded at once, and every sync on the disk waits behind that (an 80 MB file
    /// removed at once held the syncs of five writers sharing the disk for up to 17 ms;
    /// cut a megabyte every 10 ms, for no more than usual). Slow, by design: for a thread
    /// that nothing waits for. The file must be one no crash can bring back under a name
    /// recovery reads (see `writer`).
    fn shrink_and_remove(&mut self, name: &str) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&mut self) -> io::Result<()>;
    /// The names of the directory's files.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// Where the file is, for messages.
    fn path(&self, name: &str) -> PathBuf;
    /// Starts writing the file's bytes to the disk, once what was started before is
    /// written: a hint, so that a large file reaches the disk in steps rather than in
    /// one burst at its `sync` (which would hold up every other file's sync on the same
    /// disk). Promises nothing: only `sync` makes bytes durable.
    fn write_back(&mut self, _name: &str) -> io::Result<()> {
        Ok(())
    }
}

/// Replaces `name` with `bytes` so that a crash leaves the old file or the new one, never
/// a mix: a temporary file, synced, renamed into place, and the directory synced.
pub fn write_atomically<D: Disk + ?Sized>(
    disk: &mut D,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let temp = format!("{name}{TEMP_SUFFIX}");
    disk.remove(&temp)?;
    disk.append(&temp, bytes)?;
    disk.sync(&temp)?;
    disk.rename(&temp, name)?;
    disk.sync_dir()
}

/// A real directory. The file written to last stays open, so the write-ahead log costs
/// one `write` a turn, not an `open` as well.
#[derive(Debug)]
pub struct DataDir {
    dir: PathBuf,
    open: Option<(String, File)>,
}

impl DataDir {
    /// `dir` must exist and be a directory.
    pub fn new(dir: &Path) -> io::Result<DataDir> {
        if !fs::metadata(dir)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(DataDir {
            dir: dir.to_path_buf(),
            open: None,
        })
    }

    /// The file `name`, open for writing, created (empty) if there is none.
    fn file(&mut self, name: &str) -> io::Result<&mut File> {
        self.open_file(name, true)
    }

    /// The file `name`, open for writing; `create`: created (empty) if there is none.
    fn open_file(&mut self, name: &str, create: bool) -> io::Result<&mut File> {
        if self.open.as_ref().is_none_or(|(open, _)| open != name) {
            // Not `O_APPEND`: a preallocated file is written before its end (`write_at`).
            let file = OpenOptions::new()
                .write(true)
                .create(create)
                .truncate(false)
                .open(self.dir.join(name))?;
            self.open = Some((name.to_owned(), file));
        }
        Ok(&mut self.open.as_mut().expect("just opened").1)
    }

    /// Forgets an open handle that may no longer name `name`'s file.
    fn forget(&mut self, name: &str) {
        if self.open.as_ref().is_some_and(|(open, _)| open == name) {
            self.open = None;
        }
    }
}

impl Disk for DataDir {
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = Vec::new();
        match File::open(self.dir.join(name)) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let file = self.file(name)?;
        file.seek(SeekFrom::End(0))?;
        file.write_all(bytes)
    }
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.open_file(name, false)?.write_all_at(bytes, offset)
    }
    fn write_at_padded(
        &mut self,
        name: &str,
        offset: u64,
        bytes: &[u8],
        _len: usize,
    ) -> io::Result<()> {
        self.write_at(name, offset, bytes)
    }
    fn preallocate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.forget(name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.dir.join(name))?;
        // Written, not `fallocate`d: an extent allocated but unwritten is converted by
        // the first write into it, and that conversion is metadata each sync must write.
        let zeros = vec![0; PREALLOCATE_CHUNK_BYTES];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
            // A little at a time, with pauses: not one burst at the sync that every other
            // sync on the disk queues behind. Replicas sharing a disk fill their segments
            // together, so they make their spares together too.
            start_write_back(&file)?;
            std::thread::sleep(PREALLOCATE_PAUSE);
        }
        file.sync_all()
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.file(name)?.sync_data()
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.file(name)?.set_len(len)
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.forget(name);
        match fs::remove_file(self.dir.join(name)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
    fn hard_link(&mut self, from: &str, to: &str) -> io::Result<bool> {
        self.remove(to)?;
        match fs::hard_link(self.dir.join(from), self.dir.join(to)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
    fn shrink_and_remove(&mut self, name: &str) -> io::Result<()> {
        self.forget(name);
        let file = match OpenOptions::new().write(true).open(self.dir.join(name)) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut len = file.metadata()?.len();
        while len > 0 {
            len = len.saturating_sub(SHRINK_STEP_BYTES);
            file.set_len(len)?;
            std::thread::sleep(SHRINK_PAUSE);
        }
        drop(file);
        self.remove(name)
    }
    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
    fn write_back(&mut self, name: &str) -> io::Result<()> {
        start_write_back(self.file(name)?)
    }
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Bytes of zeros per write when preallocating, and the pause after each: 16 MiB in
/// about 130 ms.
const PREALLOCATE_CHUNK_BYTES: usize = 256 << 10;
const PREALLOCATE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);
/// How much shorter `shrink_and_remove` cuts a file at each step, and how long it waits
/// between steps.
const SHRINK_STEP_BYTES: u64 = 1 << 20;
const SHRINK_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// `Disk::write_back` on an open file.
fn start_write_back(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is an open file of ours; the call reads no memory of ours.
    let result = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            0,
            0,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl DataDir {
    /// Another handle on `name`'s file, for a thread to sync it while this one goes on.
    pub fn handle(&mut self, name: &str) -> io::Result<File> {
        self.file(name)?.try_clone()
    }

    /// The same directory, for another thread (no file open).
    pub fn try_clone(&self) -> DataDir {
        DataDir {
            dir: self.dir.clone(),
            open: None,
        }
    }
}
