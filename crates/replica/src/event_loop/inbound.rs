//! Receiving: drain the socket a batch per system call, decode each datagram in place and
//! hand it to the core with a fresh reading of the clock.

use super::{RECEIVES_PER_TURN_MAX, Replica};
use crate::codec::Body;
use crate::debug_log;
use crate::event_loop::clock::Clock;
use crate::event_loop::{Observed, PeerRoute};
use raft::time::Time;
use raft::{ClientRequest, Operation};
use std::io;
use std::os::fd::AsRawFd;

impl<C: Clock> Replica<C> {
    /// Receives until `WouldBlock` (or the per-turn cap), a batch per system call, and hands
    /// each datagram to the core.
    /// The clock is read after each receive call and before each datagram goes to the
    /// core (see `clock`); returns the last reading.
    pub(super) fn drain_socket(&mut self) -> Time {
        self.socket_pending = false;
        let mut handled = 0;
        loop {
            if handled >= RECEIVES_PER_TURN_MAX {
                self.socket_pending = true;
                return self.clock.now();
            }
            let received = self.inbox.recv(self.net.socket.as_raw_fd());
            let mut now = self.clock.now();
            match received {
                Ok(received) => {
                    handled += received;
                    self.stats.received += received as u64;
                    self.stats.receive_calls += 1;
                    for i in 0..received {
                        now = self.clock.now();
                        self.handle_datagram(now, i);
                    }
                    if received < self.inbox.capacity() {
                        // A short batch means the socket was drained when the kernel
                        // looked; an edge-triggered poll tells us of anything newer.
                        return now;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return now,
                Err(error) => {
                    // Not expected on an unconnected UDP socket; note it and poll again
                    // rather than spin on a persistent error.
                    debug_log!(self.log, now, "receive failed: {error}");
                    self.stderr
                        .report(now, self.id, format_args!("receive failed: {error}"));
                    return now;
                }
            }
        }
    }

    /// Decodes datagram `i` of the inbox in place and hands it to the core.
    fn handle_datagram(&mut self, now: Time, i: usize) {
        let before = self.log.is_enabled().then(|| Observed::of(&self.node));
        let (bytes, from) = self.inbox.datagram_mut(i);
        let len = bytes.len();
        let datagram = match self.decoder.decode(bytes) {
            Ok(datagram) => datagram,
            Err(error) => {
                self.stats.dropped_bad += 1;
                debug_log!(
                    self.log,
                    now,
                    "dropped a bad datagram of {len} bytes from {from:?}: {error}"
                );
                self.stderr.report(
                    now,
                    self.id,
                    format_args!("dropped a bad datagram of {len} bytes: {error}"),
                );
                return;
            }
        };
        if datagram.dst != self.id && !datagram.dst.is_broadcast() {
            self.stats.ignored += 1;
            debug_log!(self.log, now, "ignored a datagram for {}", datagram.dst);
            return;
        }
        if !self.net.route.admit(self.id, datagram.src, from) {
            self.stats.dropped_bad += 1;
            debug_log!(
                self.log,
                now,
                "dropped a datagram from {from:?} claiming to be {}: not that peer's address",
                datagram.src
            );
            self.stderr.report(
                now,
                self.id,
                format_args!("dropped a datagram from {from:?}: not a peer's address"),
            );
            return;
        }
        let body = match (datagram.body, &self.net.route) {
            // Clients of a cluster-mode node use its client port.
            (Body::Get { .. } | Body::Put { .. }, PeerRoute::Direct(_)) => {
                self.stats.ignored += 1;
                return;
            }
            (body, _) => body,
        };
        match body {
            Body::Get { mid, key } => self.node.handle_client_request(
                now,
                ClientRequest {
                    client: datagram.src,
                    mid,
                    operation: Operation::Get { key },
                },
            ),
            Body::Put { mid, key, value } => self.node.handle_client_request(
                now,
                ClientRequest {
                    client: datagram.src,
                    mid,
                    operation: Operation::Put { key, value },
                },
            ),
            Body::Raft(message) => {
                let kind = Body::Raft(message).type_name();
                if let Err(dropped) = self.node.handle_message(now, datagram.src, message) {
                    self.stats.dropped_peer += 1;
                    debug_log!(
                        self.log,
                        now,
                        "dropped a {kind} from {}: {dropped}",
                        datagram.src
                    );
                    return;
                }
            }
            body => {
                self.stats.ignored += 1;
                debug_log!(
                    self.log,
                    now,
                    "ignored a {} from {}",
                    body.type_name(),
                    datagram.src
                );
                return;
            }
        }
        if let Some(before) = before {
            self.note_changes(now, before);
        }
    }
}
