//! Serving clients (§8): puts through the log, gets through a lease or a read round, and
//! requests held while no leader is known.
//!
//! Every request gets exactly one reply from the replica it reached:
//! - a leader answers a put `ok` once its entry is committed and applied;
//! - a leader answers a get at once while its lease holds and its no-op has committed,
//!   otherwise after a majority confirms it still leads (a read round);
//! - a follower that knows the leader redirects to it;
//! - a replica that knows no leader holds the request until one is known (then redirects,
//!   or serves it if it became the leader), or fails it after `held_request_timeout`;
//! - a leader that steps down redirects everything it still owes.

use crate::NodeId;
use crate::effect::{ReplyKind, Timer};
use crate::inline_str::InlineStr;
use crate::leader::{PendingPut, PendingRead};
use crate::message::{ClientRequest, CommandRef, EntryRef, Operation};
use crate::node::{HeldRequest, Node, Role};
use crate::time::Time;

/// Clients whose last redirect is remembered (the classic setting has 8).
const RECENT_REDIRECTS_MAX: usize = 64;

impl Node {
    pub(super) fn route_client_request(&mut self, now: Time, request: ClientRequest<'_>) {
        let mid = InlineStr::from(request.mid);
        if self.role == Role::Leader {
            self.serve(now, request.client, mid, request.operation);
        } else if self.leader != NodeId::UNKNOWN && !self.client_came_back(now, request.client) {
            self.remember_redirect(now, request.client);
            self.reply(request.client, mid, ReplyKind::Redirect);
        } else {
            self.hold(now, request.client, mid, request.operation);
        }
    }

    /// A client we sent to the leader is back before the leader has spoken again: the
    /// leader is most likely dead (clients go elsewhere only when their leader is), and
    /// sending it there again would start a storm of redirects. Hold it instead.
    fn client_came_back(&self, now: Time, client: NodeId) -> bool {
        let window = self.config.election_timeout_max;
        self.recent_redirects.iter().any(|&(c, at)| {
            c == client
                && now < at + window
                && self.leader_contact_at.is_none_or(|contact| contact <= at)
        })
    }

    fn remember_redirect(&mut self, now: Time, client: NodeId) {
        if let Some(slot) = self.recent_redirects.iter_mut().find(|(c, _)| *c == client) {
            slot.1 = now;
            return;
        }
        if self.recent_redirects.len() >= RECENT_REDIRECTS_MAX {
            self.recent_redirects.remove(0);
        }
        self.recent_redirects.push((client, now));
    }

    fn serve(&mut self, now: Time, client: NodeId, mid: InlineStr, operation: Operation<'_>) {
        let (key, value) = match operation {
            Operation::Get { key } => (key, None),
            Operation::Put { key, value } => (key, Some(value)),
        };
        let too_large = key.len() > self.config.key_bytes_max
            || value.is_some_and(|v| v.len() > self.config.value_bytes_max);
        if too_large {
            self.reply(client, mid, ReplyKind::Fail);
            return;
        }
        match value {
            Some(value) => self.serve_put(now, client, mid, key, value),
            None => self.serve_get(now, client, mid, key),
        }
    }

    fn serve_put(&mut self, now: Time, client: NodeId, mid: InlineStr, key: &str, value: &str) {
        if self.transfer_holds_writes() {
            // Answered by the new leader (a redirect) or taken here if the transfer fails.
            self.hold(now, client, mid, Operation::Put { key, value });
            return;
        }
        let full = self
            .leader_state
            .as_ref()
            .is_none_or(|l| l.pending_puts.len() >= self.config.pending_puts_max);
        if full {
            self.reply(client, mid, ReplyKind::Fail);
            return;
        }
        let index = self.log.append(EntryRef {
            term: self.current_term,
            command: CommandRef::Put { key, value },
        });
        if let Some(leader) = self.leader_state.as_mut() {
            leader
                .pending_puts
                .push_back(PendingPut { index, client, mid });
            leader.record_append(index, now);
            leader.floor.owe_put(
                now,
                self.peers.len() + 1,
                self.config.floor_puts_per_s_max,
                self.config.floor_burst_puts,
            );
        }
        // Sent at the next flush, batched with whatever else this round of input appends.
    }

    fn serve_get(&mut self, now: Time, client: NodeId, mid: InlineStr, key: &str) {
        if self.can_read_locally(now) {
            let value = self.read_committed(key);
            self.reply(client, mid, ReplyKind::Ok { value: Some(value) });
            return;
        }
        let commit_index = self.commit_index;
        let pending_reads_max = self.config.pending_reads_max;
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        if leader.pending_reads.len() >= pending_reads_max {
            self.reply(client, mid, ReplyKind::Fail);
            return;
        }
        leader.pending_reads.push_back(PendingRead {
            read_index: commit_index.max(leader.term_start_index),
            arrived_at: now,
            client,
            mid,
            key: key.into(),
        });
        // A read round: every follower hears from us at this flush, and the answers prove
        // (or not) that we still lead.
        for p in &mut leader.progress {
            p.send_requested = true;
        }
    }

    /// A get may be answered from local state: this leader's no-op has committed (so it
    /// knows every committed entry) and a majority acknowledged it recently enough that no
    /// other leader can have been elected since (see `Config::lease_margin`).
    fn can_read_locally(&mut self, now: Time) -> bool {
        let lease = self.config.election_timeout_min;
        let margin = self.config.lease_margin;
        let quorum = self.membership.quorum();
        let commit_index = self.commit_index;
        let Some(leader) = self.leader_state.as_mut() else {
            return false;
        };
        if commit_index < leader.term_start_index || leader.lease_revoked {
            return false;
        }
        leader
            .quorum_acked_sent_at(now, quorum)
            .is_some_and(|t| now < t + lease - margin)
    }

    pub(super) fn answer_committed_puts(&mut self) {
        let commit_index = self.commit_index;
        while let Some(leader) = self.leader_state.as_mut() {
            match leader.pending_puts.front() {
                Some(put) if put.index <= commit_index => {
                    let put = leader
                        .pending_puts
                        .pop_front()
                        .expect("front was just seen");
                    self.reply(put.client, put.mid, ReplyKind::Ok { value: None });
                }
                _ => break,
            }
        }
    }

    pub(super) fn answer_confirmed_reads(&mut self, now: Time) {
        let quorum = self.membership.quorum();
        let commit_index = self.commit_index;
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        if leader.pending_reads.is_empty() || self.commit_index < leader.term_start_index {
            return;
        }
        let Some(confirmed) = leader.quorum_acked_sent_at(now, quorum) else {
            return;
        };
        while let Some(leader) = self.leader_state.as_mut() {
            match leader.pending_reads.front() {
                Some(read) if read.arrived_at <= confirmed && read.read_index <= commit_index => {
                    let read = leader
                        .pending_reads
                        .pop_front()
                        .expect("front was just seen");
                    let value = self.read_committed(&read.key);
                    self.reply(read.client, read.mid, ReplyKind::Ok { value: Some(value) });
                }
                _ => break,
            }
        }
    }

    // ----- held requests ------------------------------------------------------------

    fn hold(&mut self, now: Time, client: NodeId, mid: InlineStr, operation: Operation<'_>) {
        if self.held.len() >= self.config.held_requests_max {
            self.reply(client, mid, ReplyKind::Fail);
            return;
        }
        let (key, value) = match operation {
            Operation::Get { key } => (key.into(), None),
            Operation::Put { key, value } => (key.into(), Some(value.into())),
        };
        let expires_at = now + self.config.held_request_timeout;
        if self.held.is_empty() {
            self.set_timer(Timer::HeldRequests, expires_at);
        }
        self.held.push_back(HeldRequest {
            client,
            mid,
            key,
            value,
            expires_at,
        });
    }

    /// A leader is known (and was just heard from): a follower redirects what it held, a
    /// new leader serves it.
    pub(super) fn release_held_requests(&mut self, now: Time) {
        self.recent_redirects.clear();
        while let Some(held) = self.held.pop_front() {
            if self.role == Role::Leader {
                let operation = match &held.value {
                    Some(value) => Operation::Put {
                        key: &held.key,
                        value,
                    },
                    None => Operation::Get { key: &held.key },
                };
                self.serve(now, held.client, held.mid, operation);
            } else {
                self.reply(held.client, held.mid, ReplyKind::Redirect);
            }
        }
    }

    pub(super) fn expire_held_requests(&mut self, now: Time) {
        while self.held.front().is_some_and(|h| h.expires_at <= now) {
            let held = self.held.pop_front().expect("front was just seen");
            self.reply(held.client, held.mid, ReplyKind::Fail);
        }
        if let Some(next) = self.held.front().map(|h| h.expires_at) {
            self.set_timer(Timer::HeldRequests, next);
        }
    }
}
