//! Leadership transfer (thesis §3.10): the leader hands its role to a chosen follower, as
//! an operator does before taking the leader's machine down.
//!
//! The leader stops taking writes (they are held, as while no leader is known), brings
//! the target's log up to its own, then sends it `TimeoutNow`; the target stands for
//! election at once, without a pre-vote, and its vote requests say why, so that voters
//! grant them although they still hear from the leader. If the target has not won within
//! `election_timeout_min`, the leader takes writes again.
//!
//! The read lease is what the transfer must not break: it rests on voters refusing any
//! candidate for `election_timeout_min` after they acknowledged the leader, and a
//! transfer election is exactly such a candidate. So the leader gives up its lease for
//! the rest of its term when the transfer starts, before anything is sent: its reads go
//! through read rounds, which a voter that moved to the target's term no longer answers.

use crate::NodeId;
use crate::effect::ReplyKind;
use crate::inline_str::InlineStr;
use crate::message::{Message, Term, TimeoutNow};
use crate::node::{Node, Role};
use crate::time::{Span, Time};

/// A transfer asked for and not yet settled. It outlives the leadership that started it:
/// the answer is known only when a leader of a later term is heard from.
#[derive(Debug)]
pub(super) struct Transfer {
    pub target: NodeId,
    /// The term the transfer started in; any leader of a later term settles it.
    pub term: Term,
    pub client: NodeId,
    pub mid: InlineStr,
    /// The leader takes writes again at this time if the target has not won.
    pub deadline: Time,
    /// When `TimeoutNow` last left; `None` while the target is catching up.
    pub timeout_now_sent_at: Option<Time>,
    /// How long after that it is sent again if no leader of a later term was heard:
    /// doubles from `vote_retry_interval` up to `vote_retry_interval_max`, as vote
    /// requests do, so a target across a partition is not sent one every few
    /// milliseconds.
    pub resend_backoff: Span,
}

impl Node {
    /// Starts handing leadership to `target`, on behalf of `client`'s request `mid`,
    /// which is answered once the outcome is known: `Ok` when `target` is heard leading,
    /// `Fail` when it did not win in time (this leader then takes writes again) or another
    /// replica won, `Redirect` from a replica that does not lead. `Ok` at once when
    /// `target` is this leader; `Fail` at once for a replica that is not a peer, or while
    /// another transfer is under way.
    pub fn transfer_leadership(&mut self, now: Time, target: NodeId, client: NodeId, mid: &str) {
        let mid = InlineStr::from(mid);
        if self.role != Role::Leader {
            self.reply(client, mid, ReplyKind::Redirect);
            return;
        }
        if target == self.config.id {
            self.reply(client, mid, ReplyKind::Ok { value: None });
            return;
        }
        if !self.peers.contains(&target)
            || !self.membership.is_voter(target)
            || self.transfer.is_some()
        {
            self.reply(client, mid, ReplyKind::Fail);
            return;
        }
        if let Some(leader) = self.leader_state.as_mut() {
            leader.lease_revoked = true;
        }
        self.transfer = Some(Transfer {
            target,
            term: self.current_term,
            client,
            mid,
            deadline: now + self.config.election_timeout_min,
            timeout_now_sent_at: None,
            resend_backoff: self.config.vote_retry_interval,
        });
        self.catch_up_transfer_target(now);
        self.advance_transfer(now);
    }

    /// Whether this leader holds writes back for a transfer.
    pub(super) fn transfer_holds_writes(&self) -> bool {
        self.role == Role::Leader && self.transfer.is_some()
    }

    /// The leader's timer fired, or the transfer just started: give up once past the
    /// deadline; otherwise send `TimeoutNow` again if it went unheeded (it is one
    /// datagram, and may be lost), and look again later. The target's catch-up needs no
    /// timer: replication's own retransmissions carry it.
    pub(super) fn advance_transfer(&mut self, now: Time) {
        let Some(transfer) = self.transfer.as_ref() else {
            return;
        };
        if self.role != Role::Leader {
            return;
        }
        if now >= transfer.deadline {
            self.settle_transfer(ReplyKind::Fail);
            // Writes held for the transfer are taken now.
            self.release_held_requests(now);
            return;
        }
        let deadline = transfer.deadline;
        let resend = transfer
            .timeout_now_sent_at
            .is_some_and(|at| now >= at + transfer.resend_backoff);
        if resend {
            self.send_timeout_now(now);
        }
        let next = match self.transfer.as_ref() {
            Some(t) => t
                .timeout_now_sent_at
                .map_or(now + t.resend_backoff, |at| at + t.resend_backoff),
            None => deadline,
        };
        self.arm_election_timer(deadline.min(next));
    }

    /// The target answered an append (`from`), or the transfer just started: once the
    /// target's log matches this leader's whole log, `TimeoutNow` leaves (the target then
    /// wins any election this leader's voters could: its log is as up to date as any);
    /// until then the target is sent what it lacks at every flush, not only with its
    /// heartbeats as a follower outside the quorum would be.
    pub(super) fn transfer_heard_from(&mut self, now: Time, from: NodeId) {
        if self.transfer.as_ref().is_some_and(|t| t.target == from) {
            self.catch_up_transfer_target(now);
        }
    }

    fn catch_up_transfer_target(&mut self, now: Time) {
        let Some(transfer) = self.transfer.as_ref() else {
            return;
        };
        if self.role != Role::Leader || transfer.timeout_now_sent_at.is_some() {
            return;
        }
        let target = transfer.target;
        let last_index = self.log.last_index();
        let Some(i) = self.peers.iter().position(|&p| p == target) else {
            return;
        };
        let Some(p) = self.leader_state.as_mut().map(|l| &mut l.progress[i]) else {
            return;
        };
        if p.match_index == last_index {
            self.send_timeout_now(now);
        } else {
            p.send_requested = true;
        }
    }

    fn send_timeout_now(&mut self, now: Time) {
        let backoff_max = self.config.vote_retry_interval_max;
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        if transfer.timeout_now_sent_at.is_some() {
            transfer.resend_backoff = Span::from_micros(
                (transfer.resend_backoff.as_micros() * 2).min(backoff_max.as_micros()),
            );
        }
        transfer.timeout_now_sent_at = Some(now);
        let (target, term) = (transfer.target, self.current_term);
        self.send(target, Message::TimeoutNow(TimeoutNow { term }));
    }

    /// A follower told by its leader to stand: it does, at once.
    pub(super) fn handle_timeout_now(&mut self, now: Time, from: NodeId, m: TimeoutNow) {
        if m.term == self.current_term
            && self.role == Role::Follower
            && from == self.leader
            && self.is_voter()
        {
            self.start_transfer_election(now);
        }
    }

    /// A leader of a later term than the transfer's was heard from (`from`), or this
    /// replica itself won again: the transfer is over.
    pub(super) fn transfer_saw_leader(&mut self, leader: NodeId, term: Term) {
        let Some(transfer) = self.transfer.as_ref() else {
            return;
        };
        if term > transfer.term {
            let kind = if leader == transfer.target {
                ReplyKind::Ok { value: None }
            } else {
                ReplyKind::Fail
            };
            self.settle_transfer(kind);
        }
    }

    /// A replica that stepped down for a transfer and has heard no leader since its
    /// deadline passed reports the transfer failed (an election is still to come).
    pub(super) fn expire_transfer(&mut self, now: Time) {
        if self.role != Role::Leader && self.transfer.as_ref().is_some_and(|t| now >= t.deadline) {
            self.settle_transfer(ReplyKind::Fail);
        }
    }

    fn settle_transfer(&mut self, kind: ReplyKind) {
        if let Some(transfer) = self.transfer.take() {
            self.reply(transfer.client, transfer.mid, kind);
        }
    }
}
