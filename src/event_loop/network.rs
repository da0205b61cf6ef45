//! Sending: a full socket buffer or any send error loses one datagram, never the loop.

use super::{STDERR_REPORT_INTERVAL_MS, Stats};
use crate::codec::DATAGRAM_BYTES_MAX;
use crate::debug_log;
use crate::debug_log::DebugLog;
use crate::id::NodeId;
use crate::time::Time;
use mio::net::UdpSocket;
use std::io;
use std::net::SocketAddr;

/// At most one stderr line per interval; counts what it holds back.
#[derive(Debug)]
pub(super) struct StderrLimiter {
    pub(super) last: Option<Time>,
    pub(super) suppressed: u64,
}

impl StderrLimiter {
    pub(super) fn report(&mut self, now: Time, id: NodeId, what: std::fmt::Arguments<'_>) {
        let due = self
            .last
            .is_none_or(|last| now.since(last).as_millis() >= STDERR_REPORT_INTERVAL_MS);
        if !due {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            eprintln!("{id}: {what} (and {} more since)", self.suppressed);
        } else {
            eprintln!("{id}: {what}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// The network side of a replica: socket, simulator address, send buffer.
pub(super) struct Network {
    pub(super) socket: UdpSocket,
    pub(super) simulator: SocketAddr,
    /// Reused for every datagram sent.
    pub(super) send_buf: Vec<u8>,
}

impl Network {
    /// Sends `send_buf` to the simulator. Any failure loses the datagram and nothing else.
    pub(super) fn send(
        &mut self,
        now: Time,
        stats: &mut Stats,
        log: &mut DebugLog,
        stderr: &mut StderrLimiter,
        id: NodeId,
    ) {
        debug_assert!(
            self.send_buf.len() <= DATAGRAM_BYTES_MAX,
            "the core capped this datagram at {} bytes, not {}",
            DATAGRAM_BYTES_MAX,
            self.send_buf.len()
        );
        loop {
            match self.socket.send_to(&self.send_buf, self.simulator) {
                Ok(_) => {
                    stats.sent += 1;
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    stats.lost += 1;
                    debug_log!(
                        log,
                        now,
                        "lost a datagram of {} bytes: {error}",
                        self.send_buf.len()
                    );
                    if error.kind() != io::ErrorKind::WouldBlock {
                        stderr.report(now, id, format_args!("send failed: {error}"));
                    }
                    return;
                }
            }
        }
    }
}
