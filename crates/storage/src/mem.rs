//! A data directory in memory, with a page cache: what the in-process simulation, the
//! golden scripts and the storage tests write to, so that they reach every fault a real
//! disk can show a careful program.
//!
//! Each file has the bytes a read sees (`cached`) and the bytes that survive a power loss
//! (`durable`); the directory likewise has its current entries and its durable ones.
//! `sync` and `sync_dir` are *issued* and complete when the owner says so
//! (`complete_syncs`), at once if `syncs_complete_at_once`, as a test would want. A real
//! sync blocks its caller, so what was done after the first sync still waiting had not
//! really happened yet: a fault takes the disk back to the moment that sync was issued
//! (its `checkpoint`). The faults:
//! - `kill`, a process crash: nothing is lost, the page cache outlives the process;
//! - `lose_power`: what was not made durable is lost, except that the last unsynced write
//!   of each file may survive in any of its pages (a torn write, not only a prefix), and
//!   the directory keeps either its durable entries or its current ones; it says what it
//!   left of each file (`Tear`), for a simulation to count the shapes it reached;
//! - `flip_bit`: damage to bytes at rest, synced or not;
//! - `fail_next`: the next write or sync fails, as `EIO` or a full disk would.
//!
//! A preallocated file reads as what was written to it, then zeros to its length; the
//! written bytes are modelled as above, so a torn write into it leaves holes of zeros
//! just as a torn append does.

use super::disk::Disk;
use rand::Rng;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

/// The unit a torn write is made of.
pub const PAGE_BYTES: usize = 4096;

/// A file: what was written to it, and, if it was preallocated, the zeros that follow to
/// its preallocated length (durable from the start: `Disk::preallocate` syncs them).
#[derive(Clone, Debug, Default)]
struct MemFile {
    cached: Vec<u8>,
    durable: Vec<u8>,
    preallocated: usize,
}

impl MemFile {
    /// What a read sees: the bytes, then zeros to the preallocated length.
    fn contents(&self) -> Vec<u8> {
        let mut bytes = self.cached.clone();
        if bytes.len() < self.preallocated {
            bytes.resize(self.preallocated, 0);
        }
        bytes
    }
}

/// What a power loss left of a file's unsynced bytes, when it did not keep them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// None of them.
    Lost,
    /// A prefix of them, cut anywhere.
    Prefix,
    /// Some of their pages, with holes (zeros) where others were lost: not a prefix.
    /// `out_of_order`: a page survived after one that was lost.
    Holes { out_of_order: bool },
}

/// Which operation `fail_next` makes fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failing {
    Write,
    Sync,
}

#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    /// Files by inode number.
    files: Vec<MemFile>,
    names: BTreeMap<String, usize>,
    durable_names: BTreeMap<String, usize>,
    /// Issued, not completed: a file's sync through this many bytes, or a directory sync
    /// of these entries.
    issued: Vec<(Issued, Checkpoint)>,
    pub syncs_complete_at_once: bool,
    fail_next: Option<Failing>,
    /// Operations failed by `fail_next`.
    pub failures: u64,
}

/// The directory and each file's length when a sync was issued.
type Checkpoint = (BTreeMap<String, usize>, Vec<usize>);

#[derive(Clone, Debug)]
enum Issued {
    File { inode: usize, len: usize },
    Dir(BTreeMap<String, usize>),
}

impl MemDisk {
    /// An empty directory whose syncs complete at once.
    pub fn new() -> MemDisk {
        MemDisk {
            syncs_complete_at_once: true,
            ..MemDisk::default()
        }
    }

    /// Completes every sync issued so far.
    pub fn complete_syncs(&mut self) {
        self.complete_some(usize::MAX);
    }

    /// Completes the first `n` syncs issued (in the order issued), if that many wait.
    pub fn complete_some(&mut self, n: usize) {
        let n = n.min(self.issued.len());
        for (issued, _) in self.issued.drain(..n).collect::<Vec<_>>() {
            match issued {
                Issued::File { inode, len } => {
                    let file = &mut self.files[inode];
                    let len = len.min(file.cached.len());
                    file.durable.clear();
                    file.durable.extend_from_slice(&file.cached[..len]);
                }
                Issued::Dir(names) => self.durable_names = names,
            }
        }
    }

    /// Whether a sync waits for `complete_syncs`.
    pub fn has_issued_syncs(&self) -> bool {
        !self.issued.is_empty()
    }

    /// How many syncs wait for `complete_syncs`.
    pub fn issued_syncs(&self) -> usize {
        self.issued.len()
    }

    /// The next write (`append`) or sync fails, once.
    pub fn fail_next(&mut self, what: Failing) {
        self.fail_next = Some(what);
    }

    /// The process is killed: it was blocked in the first sync still waiting, so what it
    /// did after that did not happen, and nothing it wrote is durable unless synced
    /// since.
    pub fn kill(&mut self) {
        self.back_to_first_waiting();
        self.issued.clear();
    }

    fn back_to_first_waiting(&mut self) {
        self.issued.truncate(1);
        if let Some((_, (names, lengths))) = self.issued.first() {
            self.names = names.clone();
            for (file, &len) in self.files.iter_mut().zip(lengths) {
                file.cached.truncate(len);
            }
        }
    }

    /// Power is lost: syncs not completed are lost with the page cache (the one the
    /// process waited on may have completed); each file's unsynced bytes survive only as
    /// a random selection of their pages (holes read as zeros), up to a random length;
    /// the directory keeps its durable entries or, at random, its current ones. Returns
    /// what was left of each named file whose unsynced bytes did not all survive.
    pub fn lose_power(&mut self, rng: &mut impl Rng) -> Vec<(String, Tear)> {
        self.back_to_first_waiting();
        if rng.random_bool(0.5) {
            self.complete_syncs();
        }
        self.issued.clear();
        if rng.random_bool(0.5) {
            self.durable_names = self.names.clone();
        }
        self.names = self.durable_names.clone();
        let mut tears = Vec::new();
        for (inode, file) in self.files.iter_mut().enumerate() {
            let durable = file.durable.len();
            let mut content = file.durable.clone();
            if file.cached.len() > durable && file.cached[..durable] == file.durable[..] {
                let end = rng.random_range(durable..=file.cached.len());
                content.resize(end, 0);
                let (mut kept_all, mut lost_any, mut out_of_order) = (true, false, false);
                let mut page_start = durable;
                while page_start < end {
                    let page_end = ((page_start / PAGE_BYTES + 1) * PAGE_BYTES).min(end);
                    if rng.random_bool(0.5) {
                        content[page_start..page_end]
                            .copy_from_slice(&file.cached[page_start..page_end]);
                        out_of_order |= lost_any;
                    } else {
                        (kept_all, lost_any) = (false, true);
                    }
                    page_start = page_end;
                }
                let tear = if end == durable {
                    Some(Tear::Lost)
                } else if !kept_all {
                    Some(Tear::Holes { out_of_order })
                } else {
                    (end < file.cached.len()).then_some(Tear::Prefix)
                };
                let name = self.names.iter().find(|&(_, &i)| i == inode);
                if let (Some(tear), Some((name, _))) = (tear, name) {
                    tears.push((name.clone(), tear));
                }
            }
            file.cached = content.clone();
            file.durable = content;
        }
        tears
    }

    /// Flips bit `bit` of byte `offset` of `name`, in the cache and on the disk alike.
    /// False if there is no such byte.
    pub fn flip_bit(&mut self, name: &str, offset: usize, bit: u8) -> bool {
        let Some(&inode) = self.names.get(name) else {
            return false;
        };
        let file = &mut self.files[inode];
        let mut flipped = false;
        for bytes in [&mut file.cached, &mut file.durable] {
            if let Some(b) = bytes.get_mut(offset) {
                *b ^= 1 << (bit % 8);
                flipped = true;
            }
        }
        flipped
    }

    /// The names of the directory's files, as a read sees them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// How many of the file's first bytes, as a read sees them, are durable: the bytes
    /// that damage at rest can hit and that no crash takes back.
    pub fn synced_len(&self, name: &str) -> Option<usize> {
        let file = &self.files[*self.names.get(name)?];
        Some(
            file.cached
                .iter()
                .zip(&file.durable)
                .take_while(|(a, b)| a == b)
                .count(),
        )
    }

    /// The file's length as a read sees it, if it exists.
    pub fn len(&self, name: &str) -> Option<usize> {
        self.names.get(name).map(|&i| self.files[i].cached.len())
    }

    /// The length of the file's bytes that would survive a power loss now.
    pub fn durable_len(&self, name: &str) -> Option<usize> {
        self.durable_names
            .get(name)
            .map(|&i| self.files[i].durable.len())
    }

    fn failing(&mut self, what: Failing) -> io::Result<()> {
        if self.fail_next == Some(what) {
            self.fail_next = None;
            self.failures += 1;
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    fn issue(&mut self, issued: Issued) {
        let checkpoint = (
            self.names.clone(),
            self.files.iter().map(|f| f.cached.len()).collect(),
        );
        self.issued.push((issued, checkpoint));
        if self.syncs_complete_at_once {
            self.complete_syncs();
        }
    }

    fn inode(&self, name: &str) -> io::Result<usize> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

impl Disk for MemDisk {
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.names.get(name).map(|&i| self.files[i].contents()))
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.failing(Failing::Write)?;
        let inode = match self.names.get(name) {
            Some(&i) => i,
            None => {
                self.files.push(MemFile::default());
                self.names.insert(name.to_owned(), self.files.len() - 1);
                self.files.len() - 1
            }
        };
        self.files[inode].cached.extend_from_slice(bytes);
        Ok(())
    }
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let inode = self.inode(name)?;
        if offset != self.files[inode].cached.len() as u64 {
            // The model keeps a file's written bytes as a prefix; the store only ever
            // writes where it stopped.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "MemDisk writes only at the end of what was written",
            ));
        }
        self.failing(Failing::Write)?;
        self.files[inode].cached.extend_from_slice(bytes);
        Ok(())
    }
    fn preallocate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.failing(Failing::Write)?;
        self.files.push(MemFile {
            preallocated: usize::try_from(len).unwrap_or(usize::MAX),
            ..MemFile::default()
        });
        self.names.insert(name.to_owned(), self.files.len() - 1);
        self.failing(Failing::Sync)
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.failing(Failing::Sync)?;
        let inode = self.inode(name)?;
        let len = self.files[inode].cached.len();
        self.issue(Issued::File { inode, len });
        Ok(())
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let inode = self.inode(name)?;
        let file = &mut self.files[inode];
        file.cached.resize(len as usize, 0);
        // Cut, the file ends there: no preallocated zeros follow.
        file.preallocated = 0;
        Ok(())
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let inode = self.inode(from)?;
        self.names.remove(from);
        self.names.insert(to.to_owned(), inode);
        Ok(())
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.names.remove(name);
        Ok(())
    }
    fn hard_link(&mut self, from: &str, to: &str) -> io::Result<bool> {
        let Some(&inode) = self.names.get(from) else {
            self.names.remove(to);
            return Ok(false);
        };
        self.names.insert(to.to_owned(), inode);
        Ok(true)
    }
    fn shrink_and_remove(&mut self, name: &str) -> io::Result<()> {
        self.remove(name)
    }
    fn sync_dir(&mut self) -> io::Result<()> {
        self.failing(Failing::Sync)?;
        self.issue(Issued::Dir(self.names.clone()));
        Ok(())
    }
    fn list(&mut self) -> io::Result<Vec<String>> {
        Ok(self.names.keys().cloned().collect())
    }
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(name)
    }
}
