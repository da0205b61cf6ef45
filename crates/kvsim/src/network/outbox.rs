//! Datagrams to replicas, queued during a turn of the event loop and sent in batches.
//!
//! One `sendto` per routed datagram was most of kvsim's cost under load, far above its
//! routing logic. So each replica's simulator socket has a [`SendBatch`]: routing queues
//! a copy of the datagram, and the loop sends every batch with `sendmmsg` at the end of
//! its turn, or earlier when a batch fills up.
//!
//! What stays as it was with one `sendto` per datagram:
//! - datagrams to one replica leave in the order they were routed (one queue per
//!   replica, flushed whole before anything more is queued when it is full);
//! - a datagram the kernel refuses is lost and counted, and never stops the others;
//! - a killed replica gets nothing more: [`Outbox::discard`] drops what was queued for it.
//!
//! This module only queues and sends; who may receive (hello, kills) is decided by the
//! loop before it queues.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Instant;

use datagram::udp_batch::SendBatch;

/// Datagrams queued per replica before the batch is sent without waiting for the end of
/// the turn. A turn at 50,000 puts/s routes a few hundred datagrams in all; 64 per socket
/// keeps a `sendmmsg` well under the kernel's cap and the queue's buffers small.
pub const QUEUED_DATAGRAMS_MAX: usize = 64;

/// What sending one replica's batch did, for the loop to count and report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub datagrams: usize,
    /// Refused by the kernel because the replica's socket buffer was full.
    pub blocked: usize,
    /// Refused for another reason.
    pub failed: usize,
    pub calls: usize,
    pub ns: u64,
}

/// One send queue per replica.
pub struct Outbox {
    batches: Vec<SendBatch>,
    /// The first error of the last flush that lost a datagram, other than a full buffer.
    pub last_error: Option<io::Error>,
}

impl Outbox {
    pub fn new(replicas: usize) -> Outbox {
        Outbox {
            batches: (0..replicas)
                .map(|_| SendBatch::new(QUEUED_DATAGRAMS_MAX).segmenting())
                .collect(),
            last_error: None,
        }
    }

    /// True when `dst`'s queue must be flushed before another datagram is queued.
    pub fn is_full(&self, dst: usize) -> bool {
        self.batches[dst].is_full()
    }

    /// Queues a copy of `bytes` for `to` on replica `dst`'s socket. The queue must not be
    /// full ([`Self::is_full`]): the caller flushes first, so that it can count the flush.
    pub fn queue(&mut self, dst: usize, to: SocketAddr, bytes: &[u8]) {
        let batch = &mut self.batches[dst];
        batch.next_buffer().extend_from_slice(bytes);
        batch.queue(to);
    }

    pub fn queued(&self, dst: usize) -> usize {
        self.batches[dst].len()
    }

    /// Sends what is queued for `dst` through `fd`, in order.
    ///
    /// The batch reports only the first error of a flush; a flush whose first error is a
    /// full buffer counts all its losses as blocked (both at once in one flush is a
    /// full buffer and something else going wrong in the same few microseconds).
    pub fn flush(&mut self, dst: usize, fd: RawFd) -> Sent {
        let batch = &mut self.batches[dst];
        if batch.is_empty() {
            return Sent::default();
        }
        let t0 = Instant::now();
        let flushed = batch.flush(fd);
        let ns = t0.elapsed().as_nanos() as u64;
        let mut sent = Sent {
            datagrams: flushed.sent + flushed.lost,
            calls: flushed.calls,
            ns,
            ..Sent::default()
        };
        match batch.last_error.take() {
            Some(e) if e.kind() == io::ErrorKind::WouldBlock => sent.blocked = flushed.lost,
            Some(e) => {
                sent.failed = flushed.lost;
                self.last_error = Some(e);
            }
            None => {}
        }
        sent
    }

    /// Drops everything queued for `dst` unsent (the replica was killed).
    pub fn discard(&mut self, dst: usize) {
        self.batches[dst].clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datagram::udp_batch::RecvBatch;
    use std::os::fd::AsRawFd;

    fn socket() -> std::net::UdpSocket {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    fn received(sock: &std::net::UdpSocket) -> Vec<Vec<u8>> {
        let mut batch = RecvBatch::new(64);
        let mut got = Vec::new();
        // Loopback delivery is synchronous with the send: everything is there already.
        while let Ok(n) = batch.recv(sock.as_raw_fd()) {
            for i in 0..n {
                got.push(batch.datagram_mut(i).0.to_vec());
            }
        }
        got
    }

    #[test]
    fn queues_are_per_replica_and_keep_their_order() {
        let (sim0, sim1) = (socket(), socket());
        let (r0, r1) = (socket(), socket());
        let mut out = Outbox::new(2);
        for i in 0..5 {
            out.queue(0, r0.local_addr().unwrap(), format!("to 0: {i}").as_bytes());
            out.queue(1, r1.local_addr().unwrap(), format!("to 1: {i}").as_bytes());
        }
        assert_eq!((out.queued(0), out.queued(1)), (5, 5));
        let sent = out.flush(0, sim0.as_raw_fd());
        assert_eq!((sent.datagrams, sent.blocked, sent.failed), (5, 0, 0));
        assert!(sent.calls >= 1);
        assert_eq!(out.queued(0), 0);
        // Nothing for replica 1 leaves until its own queue is flushed.
        assert!(received(&r1).is_empty());
        out.flush(1, sim1.as_raw_fd());
        let want = |d: usize| -> Vec<Vec<u8>> {
            (0..5)
                .map(|i| format!("to {d}: {i}").into_bytes())
                .collect()
        };
        assert_eq!(received(&r0), want(0));
        assert_eq!(received(&r1), want(1));
        assert_eq!(out.flush(1, sim1.as_raw_fd()), Sent::default());
    }

    #[test]
    fn a_discarded_queue_sends_nothing_and_queues_afresh() {
        let sim = socket();
        let r = socket();
        let to = r.local_addr().unwrap();
        let mut out = Outbox::new(1);
        out.queue(0, to, b"never");
        out.discard(0);
        assert_eq!(out.queued(0), 0);
        assert_eq!(out.flush(0, sim.as_raw_fd()).datagrams, 0);
        out.queue(0, to, b"later");
        out.flush(0, sim.as_raw_fd());
        assert_eq!(received(&r), vec![b"later".to_vec()]);
    }

    #[test]
    fn fills_at_the_limit() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut out = Outbox::new(1);
        for _ in 0..QUEUED_DATAGRAMS_MAX - 1 {
            out.queue(0, to, b"x");
        }
        assert!(!out.is_full(0));
        out.queue(0, to, b"x");
        assert!(out.is_full(0));
    }

    #[test]
    fn a_refused_datagram_is_counted_as_failed_and_the_rest_go() {
        let sim = socket();
        let r = socket();
        let to = r.local_addr().unwrap();
        let mut out = Outbox::new(1);
        out.queue(0, to, b"one");
        // Larger than any UDP datagram: refused (EMSGSIZE), not a full buffer.
        out.queue(0, to, &vec![b'x'; 70_000]);
        out.queue(0, to, b"three");
        let sent = out.flush(0, sim.as_raw_fd());
        assert_eq!((sent.datagrams, sent.blocked, sent.failed), (3, 0, 1));
        assert!(out.last_error.is_some());
        assert_eq!(received(&r), vec![b"one".to_vec(), b"three".to_vec()]);
    }
}
