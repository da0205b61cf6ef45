//! Sending: a turn's datagrams leave together (`sendmmsg`). A send error never stops the
//! rest of the batch or the loop. A message to a peer that cannot be sent is lost, which
//! Raft tolerates. A client reply that meets a full socket buffer is kept and sent once
//! the socket is writable: clients never retry on silence, so a lost reply would leave
//! its request unanswered for good.

use super::{PeerRoute, STDERR_REPORT_INTERVAL_MS, Stats};
use crate::debug_log;
use crate::debug_log::DebugLog;
use datagram::udp_batch::SendBatch;
use mio::net::UdpSocket;
use raft::NodeId;
use raft::time::Time;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

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

/// Client replies kept for a writable socket, at most. Past it, replies are sent as
/// peer messages are (lost on a full buffer): a socket that stays full that long is not
/// congested but stuck, and memory must stay bounded.
pub(super) const RETAINED_REPLIES_MAX: usize = 4_096;

/// The network side of a replica: socket, where peers are, and the datagrams of this
/// turn, sent together by [`Network::flush`].
pub(super) struct Network {
    pub(super) socket: UdpSocket,
    pub(super) route: PeerRoute,
    pub(super) outbox: SendBatch,
}

impl Network {
    /// The buffer for the next datagram; [`Network::queue`] sends it with the turn's batch.
    /// A full batch is flushed first, so a turn may send in several calls.
    pub(super) fn next_buffer(
        &mut self,
        now: Time,
        stats: &mut Stats,
        log: &mut DebugLog,
        stderr: &mut StderrLimiter,
        id: NodeId,
    ) -> &mut Vec<u8> {
        if self.outbox.is_full() {
            self.flush(now, stats, log, stderr, id);
        }
        self.outbox.next_buffer()
    }

    /// Queues a message to peer `to`: lost if the kernel refuses it. The core sends
    /// only to the peers its config names, which a route always knows.
    pub(super) fn queue(&mut self, to: NodeId) {
        if let Some(address) = self.route.address_of(to) {
            self.outbox.queue(address);
        }
    }

    /// Queues a reply to a client of the simulator: kept for the next flush if the
    /// socket buffer is full.
    pub(super) fn queue_reply(&mut self, simulator: SocketAddr) {
        if self.outbox.retained() < RETAINED_REPLIES_MAX {
            self.outbox.queue_retried(simulator);
        } else {
            self.outbox.queue(simulator);
        }
    }

    /// Whether replies wait for the socket to become writable.
    pub(super) fn waits_for_writable(&self) -> bool {
        self.outbox.retained() > 0
    }

    /// Sends every queued datagram. A failure loses that datagram and nothing else, or
    /// keeps it if it is a reply and the socket was full.
    pub(super) fn flush(
        &mut self,
        now: Time,
        stats: &mut Stats,
        log: &mut DebugLog,
        stderr: &mut StderrLimiter,
        id: NodeId,
    ) {
        if self.outbox.is_empty() {
            return;
        }
        let flushed = self.outbox.flush(self.socket.as_raw_fd());
        stats.sent += flushed.sent as u64;
        stats.send_calls += flushed.calls as u64;
        if flushed.retained > 0 {
            stats.replies_retained_max = stats.replies_retained_max.max(flushed.retained as u64);
            debug_log!(
                log,
                now,
                "socket full: {} replies kept for a writable socket",
                flushed.retained
            );
        }
        if flushed.lost > 0 {
            stats.lost += flushed.lost as u64;
            let error = self
                .outbox
                .last_error
                .take()
                .unwrap_or_else(|| io::Error::other("unknown"));
            debug_log!(log, now, "lost {} datagrams: {error}", flushed.lost);
            // A full buffer is congestion Raft rides out; anything else is worth a line.
            if error.kind() != io::ErrorKind::WouldBlock {
                stderr.report(now, id, format_args!("send failed: {error}"));
            }
        }
    }
}
