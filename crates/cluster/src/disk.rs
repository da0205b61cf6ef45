//! Each replica's disk in the simulation: the write-ahead log's bytes in memory, written
//! by the replica's own storage code (`replica::storage`), and read back by its own
//! recovery.
//!
//! A write is durable only when its sync completes, some time after it was issued (the
//! cluster schedules that). A crash keeps what was synced and a random prefix of the
//! write in flight, cut anywhere, so a torn last record is as likely as a whole one or
//! none.

use replica::storage::Device;
use std::io;

#[derive(Debug, Default)]
pub struct SimDisk {
    /// What survives any crash.
    pub durable: Vec<u8>,
    /// Written, not yet synced.
    pub in_flight: Vec<u8>,
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
}

impl SimDisk {
    /// The sync issued last has completed.
    pub fn synced(&mut self) {
        self.durable.append(&mut self.in_flight);
    }

    /// A crash: the first `kept` bytes of the write in flight reached the disk (a torn
    /// write if that is not a whole number of records), the rest did not.
    pub fn crash(&mut self, kept: usize) {
        let kept = kept.min(self.in_flight.len());
        self.durable.extend_from_slice(&self.in_flight[..kept]);
        self.in_flight.clear();
    }
}
