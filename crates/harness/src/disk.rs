//! A replica's disk in memory, opened the way the event loop opens a data directory.

use raft::Config;
use storage::{Identity, MemDisk, Recovered, Storage, StorageError};

/// Opens `disk` (empty for a new replica) for the replica `config` names, through the
/// same `Storage::open` as `--data-dir`; `cluster` is the identity's cluster name. The
/// real open waits for its syncs, so they are complete when this returns.
pub fn open_mem_disk(
    config: &Config,
    disk: MemDisk,
    nonce_if_new: u64,
    cluster: &str,
) -> Result<(Storage<MemDisk>, Recovered), StorageError> {
    let identity = Identity {
        id: config.id,
        peers: config.peers.clone(),
        cluster: cluster.to_owned(),
    };
    let (mut storage, recovered) = Storage::open(disk, &identity, nonce_if_new)?;
    storage.disk_mut().complete_syncs();
    Ok((storage, recovered))
}
