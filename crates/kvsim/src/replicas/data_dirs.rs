//! The data dirs of a durable run: a fresh directory per replica, passed as `--data-dir`,
//! so that a replica started again finds what it persisted.
//!
//! They are made new for every run (under the system's temporary directory, with a name
//! no other run has) and removed when the run is over, whichever way it ends: by `Drop` on
//! a normal end, an error or a panic, and by [`remove_registered`] when a signal stops
//! kvsim (the cleanup in `processes` calls it once the replicas are killed). `--keep-data`
//! keeps them and says where they are, to look at what the replicas wrote.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use raft::NodeId;

/// Run roots to remove if a signal stops kvsim.
static REGISTERED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Tells apart the runs of one kvsim process (`kvsim all`, tests in threads).
static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

/// One run's data dirs: `<root>/<replica id>`.
#[derive(Debug)]
pub struct DataDirs {
    root: PathBuf,
    replicas: Vec<PathBuf>,
    keep: bool,
}

impl DataDirs {
    /// Makes a fresh root for scenario `scenario` and an empty directory in it per replica.
    pub fn create(scenario: &str, ids: &[NodeId], keep: bool) -> io::Result<DataDirs> {
        let base = std::env::temp_dir();
        let root = loop {
            let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
            let root = base.join(format!("kvsim-{scenario}-{}-{run}", std::process::id()));
            // `create_dir`, not `create_dir_all`: a directory left by an earlier process
            // with the same pid is never reused.
            match std::fs::create_dir(&root) {
                Ok(()) => break root,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot create data dir {}: {e}", root.display()),
                    ));
                }
            }
        };
        let mut dirs = DataDirs {
            root,
            replicas: Vec::with_capacity(ids.len()),
            keep,
        };
        if keep {
            println!(
                "kvsim: the replicas' data dirs are in {} (kept: --keep-data)",
                dirs.root.display()
            );
        } else {
            lock().push(dirs.root.clone());
        }
        // From here on `dirs` removes the root if anything fails.
        for id in ids {
            let dir = dirs.root.join(id.to_string());
            std::fs::create_dir(&dir).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create data dir {}: {e}", dir.display()),
                )
            })?;
            dirs.replicas.push(dir);
        }
        Ok(dirs)
    }

    /// Replica `r`'s data dir.
    pub fn of(&self, r: usize) -> &Path {
        &self.replicas[r]
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for DataDirs {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.root);
        lock().retain(|p| *p != self.root);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    REGISTERED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the data dirs of every run still going: kvsim is being stopped by a signal and
/// no `Drop` will run. Call once the replicas are killed.
pub fn remove_registered() {
    // Held or poisoned: take it anyway, this is the last thing kvsim does.
    let roots = match REGISTERED.try_lock() {
        Ok(g) => g.clone(),
        Err(std::sync::TryLockError::Poisoned(g)) => g.into_inner().clone(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for root in roots {
        let _ = std::fs::remove_dir_all(&root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_fresh_dirs_removed_at_its_end() {
        let ids = [NodeId(0), NodeId(1), NodeId(2)];
        let a = DataDirs::create("t", &ids, false).unwrap();
        let b = DataDirs::create("t", &ids, false).unwrap();
        assert_ne!(a.root(), b.root());
        assert_eq!(a.of(1), a.root().join("0001"));
        for r in 0..3 {
            assert!(a.of(r).is_dir());
            assert_eq!(std::fs::read_dir(a.of(r)).unwrap().count(), 0);
        }
        std::fs::write(a.of(0).join("wal"), b"x").unwrap();
        let root = a.root().to_path_buf();
        drop(a);
        assert!(!root.exists());
        assert!(b.root().exists());
    }

    #[test]
    fn kept_dirs_stay() {
        let kept = DataDirs::create("t-kept", &[NodeId(0)], true).unwrap();
        let root = kept.root().to_path_buf();
        drop(kept);
        assert!(root.join("0000").is_dir());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
