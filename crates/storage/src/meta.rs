//! The `meta` file: whose directory this is, and its nonce.

use super::disk::{Disk, write_atomically};
use super::{FORMAT_VERSION, Identity, META_FILE, StorageError, segment_name, segment_seq};

/// Checks that the directory is `identity`'s and returns its nonce, or claims a new one:
/// the log file first, durably, then `meta`, so that `meta` never exists without it.
pub(super) fn check_or_create<D: Disk>(
    disk: &mut D,
    identity: &Identity,
    nonce_if_new: u64,
) -> Result<u64, StorageError> {
    let path = disk.path(META_FILE);
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |error| StorageError::Io { path, error }
    };
    let peers = identity
        .peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let cluster = if identity.cluster.is_empty() {
        "-"
    } else {
        &identity.cluster
    };
    let Some(text) = disk.read(META_FILE).map_err(io(&path))? else {
        let first = segment_name(1);
        let wal = disk.path(&first);
        let names = disk.list().map_err(io(&wal))?;
        for name in names.iter().filter(|n| segment_seq(n).is_some()) {
            if disk
                .read(name)
                .map_err(io(&wal))?
                .is_some_and(|b| !b.is_empty())
            {
                // Written only after meta: a log without it is not one this code made.
                return Err(StorageError::UnknownFormat {
                    path,
                    found: format!("a log ({name}) without meta"),
                });
            }
        }
        disk.append(&first, &[]).map_err(io(&wal))?;
        disk.sync(&first).map_err(io(&wal))?;
        disk.sync_dir().map_err(io(&wal))?;
        let text = format!(
            "kvstore data v{FORMAT_VERSION}\nid {}\npeers {peers}\ncluster {cluster}\nnonce {nonce_if_new:016x}\n",
            identity.id
        );
        write_atomically(disk, META_FILE, text.as_bytes()).map_err(io(&path))?;
        return Ok(nonce_if_new);
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default();
    if version != format!("kvstore data v{FORMAT_VERSION}") {
        return Err(StorageError::UnknownFormat {
            path,
            found: version.to_owned(),
        });
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .map(str::to_owned)
    };
    let found_id = field("id").and_then(|id| raft::NodeId::parse(&id));
    let found_peers = field("peers");
    let found_cluster = field("cluster");
    let found_nonce = field("nonce").and_then(|n| u64::from_str_radix(&n, 16).ok());
    let (Some(found_id), Some(found_peers), Some(found_cluster), Some(nonce)) =
        (found_id, found_peers, found_cluster, found_nonce)
    else {
        return Err(StorageError::UnknownFormat {
            path,
            found: text.lines().take(5).collect::<Vec<_>>().join(" / "),
        });
    };
    if found_id != identity.id {
        return Err(StorageError::OtherReplica {
            path,
            found: found_id,
            ours: identity.id,
        });
    }
    if found_peers != peers || found_cluster != cluster {
        return Err(StorageError::OtherCluster {
            path,
            found: format!("{found_cluster:?} with peers {found_peers}"),
            ours: format!("{cluster:?} with peers {peers}"),
        });
    }
    Ok(nonce)
}
