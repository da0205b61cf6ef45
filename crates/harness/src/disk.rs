//! A replica's disk in memory, opened the way the event loop opens a data directory.

use raft::Config;
use storage::{Identity, MemDisk, Recovered, Storage, StorageError};

/// Segments are preallocated, as a data directory's are, but small: so that a run
/// writes many and its faults reach logs that end in a segment's unwritten zeros.
const SEGMENT_BYTES: u64 = 16 << 10;

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
    let (storage, recovered) = Storage::open(disk, &identity, nonce_if_new)?;
    let mut storage = storage.with_preallocated_segments(SEGMENT_BYTES);
    storage.disk_mut().complete_syncs();
    Ok((storage, recovered))
}
