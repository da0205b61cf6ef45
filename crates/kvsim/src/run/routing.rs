//! Routing: each datagram a replica sends, checked as the classic simulator checks it and
//! taken where its `dst` says (one replica, every other replica, or one of our clients).
//! Replica-to-replica traffic goes through the network's faults first (`faults`); what
//! goes to a replica is queued in the outbox and leaves at the end of the turn. The
//! `leader` field of what the majority side sends is the simulator's idea of the leader,
//! kept here with how long the run went without one.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use super::Sim;
use crate::measure::timeline::FaultKind;
use crate::network::outbox::Sent;
use crate::network::wire::{self, WireError};
use crate::scenario::timing::Timing;
use raft::NodeId;

impl Sim<'_> {
    /// Validates and routes one datagram that arrived on replica `from`'s socket.
    pub(super) fn route(&mut self, from: usize, raw: &[u8], addr: Option<SocketAddr>) {
        let h = match wire::parse(raw) {
            Ok(h) => h,
            Err(WireError::NotJson) => return self.incorrect("Unable to decode JSON message", raw),
            Err(WireError::NotObject) => return self.incorrect("Message is not a dictionary", raw),
        };
        if h.src.is_missing() || h.dst.is_missing() || h.leader.is_missing() || h.kind.is_missing()
        {
            return self.incorrect("Message is missing a required field", raw);
        }
        if h.leader.id().is_none() {
            return self.incorrect("Incorrect leader format", raw);
        }
        if h.dst.id().is_none() {
            return self.incorrect("Incorrect destination format", raw);
        }
        if h.src.id().is_none() {
            return self.incorrect("Incorrect source format", raw);
        }
        if h.kind.as_str() == Some("hello") {
            // The port this replica speaks from: where its traffic goes from now on. (The
            // kernel always gives the address of a datagram on a UDP socket.)
            if addr.is_some() {
                self.remote[from] = addr;
            }
            // A second hello comes from a restarted replica's new process.
            self.hello_again(from);
            return;
        }
        let src = self.replica_index(h.src.canonical_id());
        // The lanes of the report go by the socket it came from: a replica that writes
        // someone else's ID in `src` still speaks for itself.
        if let Some(leader) = h.leader.canonical_id() {
            self.timeline.claim(self.batch_us, from, leader);
        }
        if self.network.in_majority(src) {
            if let Some(l) = h.leader.as_str() {
                self.stats.add_leader(l);
            }
            let leader = self.replica_index(h.leader.canonical_id());
            self.set_leader(leader);
        }
        let dst = h.dst.canonical_id();
        if let Some(d) = self.replica_index(dst) {
            self.stats.total_msgs += 1;
            self.count_by_type(from, &h, 1);
            self.deliver_replica_traffic(src, d, raw);
        } else if dst == Some(NodeId::BROADCAST) {
            self.stats.total_msgs += self.n as u64 - 1;
            self.count_by_type(from, &h, self.n as u64 - 1);
            for d in 0..self.n {
                if Some(d) != src {
                    self.deliver_replica_traffic(src, d, raw);
                }
            }
        } else if let Some(c) = dst.and_then(|id| self.clients.index_of(id)) {
            let now = self.now_us();
            let retry = self.clients.on_reply(
                c,
                &h,
                raw,
                now,
                &self.living_list,
                &mut self.stats,
                &mut self.warnings,
            );
            if let Some(d) = retry {
                self.send_request(d, std::time::Instant::now());
            }
        } else {
            self.incorrect("Unknown destination", raw);
        }
    }

    fn count_by_type(&mut self, from: usize, h: &wire::Header<'_>, copies: u64) {
        let kind = h.kind.as_str().unwrap_or("(not a string)");
        self.timeline
            .message(self.batch_us, Some(from), kind, copies);
        match self.extra.msgs_by_type.get_mut(kind) {
            Some(count) => *count += copies,
            None => {
                self.extra.msgs_by_type.insert(kind.to_string(), copies);
            }
        }
    }

    fn incorrect(&mut self, what: &str, raw: &[u8]) {
        self.warnings.raw(what, raw);
        self.stats.incorrect += 1;
    }

    fn replica_index(&self, id: Option<NodeId>) -> Option<usize> {
        id.map(|id| usize::from(id.0)).filter(|&i| i < self.n)
    }

    pub(super) fn set_leader(&mut self, leader: Option<usize>) {
        if leader == self.leader {
            return;
        }
        let now = self.now_us();
        self.timeline.sim_leader(now, leader);
        match (self.leader, leader) {
            (Some(_), None) => self.leaderless_since_us = Some(now),
            (None, Some(_)) => {
                if let Some(since) = self.leaderless_since_us.take() {
                    if self.extra.first_leader_s.is_none() {
                        self.extra.first_leader_s = Some(now as f64 / 1e6);
                    } else {
                        self.extra.leaderless_s_max =
                            self.extra.leaderless_s_max.max((now - since) as f64 / 1e6);
                    }
                }
            }
            _ => {}
        }
        self.leader = leader;
    }

    /// Queues a datagram for replica `dst`; it leaves at the end of the turn (or sooner if
    /// `dst`'s queue fills). Something sent to a replica before its hello (or after it
    /// ended) marks it dead, as in the classic simulator.
    pub(super) fn send(&mut self, dst: usize, bytes: &[u8]) {
        let addr = match (self.replicas[dst].ended(), self.remote[dst]) {
            (false, Some(addr)) => addr,
            (_, remote) => {
                if self.living[dst] {
                    if remote.is_none() {
                        let now = self.now_us();
                        self.timeline.start(now, FaultKind::Died { replica: dst });
                        self.extra
                            .delivered_before_hello
                            .push(NodeId(dst as u16).to_string());
                        self.warnings.say(&format!(
                            "Replica {} got a message before its hello: marked dead",
                            NodeId(dst as u16)
                        ));
                    }
                    self.mark_not_living(dst);
                }
                return;
            }
        };
        if self.outbox.is_full(dst) {
            self.flush(dst);
        }
        self.outbox.queue(dst, addr, bytes);
        if self.timing == Timing::Classic {
            // The classic sends each datagram as it routes it.
            self.flush(dst);
        }
    }

    /// Sends what is queued for replica `dst`, counting losses as the classic does.
    fn flush(&mut self, dst: usize) {
        let sent: Sent = self.outbox.flush(dst, self.sockets[dst].as_raw_fd());
        if sent.datagrams == 0 {
            return;
        }
        self.extra.sends += sent.datagrams as u64;
        self.extra.send_calls += sent.calls as u64;
        self.extra.send_ns_total += sent.ns;
        for _ in 0..sent.blocked {
            self.warnings.say(&format!(
                "the socket to replica {} is blocked",
                NodeId(dst as u16)
            ));
            self.stats.blocked += 1;
        }
        if sent.failed > 0 {
            let e = self.outbox.last_error.take();
            for _ in 0..sent.failed {
                self.warnings.say(&format!(
                    "Unable to send to replica {}: {}",
                    NodeId(dst as u16),
                    e.as_ref().map_or(String::new(), ToString::to_string)
                ));
            }
        }
    }

    pub(super) fn flush_all(&mut self) {
        for dst in 0..self.n {
            if self.outbox.queued(dst) > 0 {
                self.flush(dst);
            }
        }
    }
}
