//! Each replica's disk in the simulation: the write-ahead log's and the snapshot's bytes
//! in memory, written by the replica's own storage code (`replica::storage`), and read
//! back by its own recovery.
//!
//! A write is durable only when its sync completes, some time after it was issued (the
//! cluster schedules that). A crash keeps what was synced and a random prefix of the
//! write in flight, cut anywhere, so a torn last record is as likely as a whole one or
//! none. A snapshot with the new log that replaces the old one (`Device::replace`) is two
//! renames in a row: a crash before the sync completes keeps neither, the snapshot alone,
//! or both, as a real crash between or after the renames would.

use replica::storage::Device;
use std::io;

#[derive(Debug, Default)]
pub struct SimDisk {
    /// What survives any crash.
    pub durable: Vec<u8>,
    /// Written, not yet synced.
    pub in_flight: Vec<u8>,
    /// The snapshot file, durable (empty: none).
    pub snapshot: Vec<u8>,
    /// A snapshot written, not yet synced: `in_flight` is then the whole new log.
    pub snapshot_in_flight: Option<Vec<u8>>,
}

impl Device for SimDisk {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.in_flight.extend_from_slice(bytes);
        Ok(())
    }

    /// Issues the sync; the cluster completes it later (`SimDisk::synced`).
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn replace(&mut self, snapshot: &[u8], wal: &[u8]) -> io::Result<()> {
        self.snapshot_in_flight = Some(snapshot.to_vec());
        self.in_flight.clear();
        self.in_flight.extend_from_slice(wal);
        Ok(())
    }
}

impl SimDisk {
    /// The sync issued last has completed.
    pub fn synced(&mut self) {
        if let Some(snapshot) = self.snapshot_in_flight.take() {
            self.snapshot = snapshot;
            self.durable = std::mem::take(&mut self.in_flight);
        } else {
            self.durable.append(&mut self.in_flight);
        }
    }

    /// A crash: the first `kept` bytes of the write in flight reached the disk (a torn
    /// write if that is not a whole number of records), the rest did not. A snapshot and
    /// log replacing the old ones: by `kept`, neither, the snapshot only, or both.
    pub fn crash(&mut self, kept: usize) {
        if let Some(snapshot) = self.snapshot_in_flight.take() {
            match kept % 3 {
                0 => {}
                1 => self.snapshot = snapshot,
                _ => {
                    self.snapshot = snapshot;
                    self.durable = std::mem::take(&mut self.in_flight);
                }
            }
            self.in_flight.clear();
            return;
        }
        let kept = kept.min(self.in_flight.len());
        self.durable.extend_from_slice(&self.in_flight[..kept]);
        self.in_flight.clear();
    }
}
