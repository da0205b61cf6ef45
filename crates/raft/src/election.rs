//! Leader election (§5.2) with pre-vote (thesis §9.6) and leader stickiness.
//!
//! A follower whose election timer fires first asks its peers whether they would vote for
//! it in the next term (pre-vote), without changing its own term. Only if a majority says
//! yes does it start a real election. A replica that heard from a leader within
//! `election_timeout_min` refuses both kinds of vote: that is what keeps a replica coming
//! back from a partition from deposing a healthy leader, and what makes leader leases safe.

use crate::NodeId;
use crate::leader::LeaderState;
use crate::message::{CommandRef, EntryRef, Message, RequestVote, RequestVoteResponse, Term};
use crate::node::{Node, Role};
use crate::progress::Progress;
use crate::time::{Span, Time};

impl Node {
    pub(super) fn handle_election_timer(&mut self, now: Time) {
        if self.role == Role::Leader {
            self.advance_transfer(now);
            if self.role == Role::Leader {
                self.check_quorum(now);
            }
            return;
        }
        self.expire_transfer(now);
        if !self.may_stand() {
            // A learner, or a replica whose removal is known committed: it never stands.
            self.reset_election_deadline(now);
            return;
        }
        if now < self.election_deadline {
            if matches!(self.role, Role::PreCandidate | Role::Candidate) {
                self.send_vote_requests(now);
            }
            self.arm_election_timer(self.election_deadline);
            return;
        }
        self.start_pre_vote(now);
    }

    /// Asks the peers that have not answered this (pre-)candidacy, then again after a
    /// backoff: with lossy links an election that waits a whole timeout per lost message
    /// can take seconds, and one that re-asks at a fixed short interval storms when the
    /// silence is a partition.
    fn send_vote_requests(&mut self, now: Time) {
        // A pre-vote asks about the next term without entering it.
        let (term, pre_vote) = match self.role {
            Role::PreCandidate => (Term(self.current_term.0 + 1), true),
            _ => (self.current_term, false),
        };
        let request = RequestVote {
            term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote,
            round_started_us: self.round_started_at.as_micros(),
            transfer: self.role == Role::Candidate && self.transfer_candidacy,
        };
        for i in 0..self.peers.len() {
            let to = self.peers[i];
            if !self.votes_answered.contains(&to) && self.membership.is_voter(to) {
                self.send(to, Message::RequestVote(request));
            }
        }
        self.arm_election_timer(now + self.vote_retry_backoff);
        self.vote_retry_backoff = Span::from_micros(
            (self.vote_retry_backoff.as_micros() * 2)
                .min(self.config.vote_retry_interval_max.as_micros()),
        );
    }

    /// Whether a leader was heard from recently enough that no election may start (or,
    /// just after a restart, may have been: `no_vote_before`).
    fn in_leader_lease(&self, now: Time) -> bool {
        self.role == Role::Leader
            || now < self.no_vote_before
            || self
                .leader_contact_at
                .is_some_and(|t| now < t + self.config.election_timeout_min)
    }

    fn start_pre_vote(&mut self, now: Time) {
        self.role = Role::PreCandidate;
        self.transfer_candidacy = false;
        self.begin_candidacy(now);
    }

    /// Stands at once, skipping the pre-vote: the leader handed over (`transfer`).
    pub(super) fn start_transfer_election(&mut self, now: Time) {
        self.transfer_candidacy = true;
        self.start_election(now);
    }

    fn start_election(&mut self, now: Time) {
        self.role = Role::Candidate;
        self.set_hard_state(Term(self.current_term.0 + 1), Some(self.config.id));
        self.begin_candidacy(now);
    }

    /// What both rounds start with: the leader is silent, so requests that arrive from
    /// now on are held, not sent to it; this replica votes for itself and asks the rest.
    fn begin_candidacy(&mut self, now: Time) {
        self.leader = NodeId::UNKNOWN;
        self.votes_granted.clear();
        self.votes_granted.push(self.config.id);
        self.votes_answered.clear();
        self.round_started_at = now;
        self.vote_retry_backoff = self.config.vote_retry_interval;
        self.reset_election_deadline(now);
        self.send_vote_requests(now);
        self.maybe_win_vote(now);
    }

    pub(super) fn handle_request_vote(&mut self, now: Time, from: NodeId, m: RequestVote) {
        let up_to_date = self.log.is_up_to_date(m.last_log_index, m.last_log_term);
        if m.pre_vote {
            // A pre-vote changes nothing here; it only predicts the real vote.
            let grant = m.term > self.current_term && up_to_date && !self.in_leader_lease(now);
            let term = if grant { m.term } else { self.current_term };
            self.send(
                from,
                Message::RequestVoteResponse(RequestVoteResponse {
                    term,
                    vote_granted: grant,
                    pre_vote: true,
                    round_started_us: m.round_started_us,
                }),
            );
            return;
        }
        if self.in_leader_lease(now) && !m.transfer {
            // Not even the term is taken from it: the leader we heard from may still hold a
            // lease. Silence costs the candidate nothing it could use. A candidate the
            // leader handed over to is the exception: that leader gave its lease up
            // first (`transfer`), and any earlier leader's lease ended before this one
            // was elected.
            return;
        }
        if m.term > self.current_term {
            self.become_follower(now, m.term, NodeId::UNKNOWN);
        }
        let grant =
            m.term == self.current_term && self.voted_for.is_none_or(|v| v == from) && up_to_date;
        if grant {
            self.set_hard_state(self.current_term, Some(from));
            self.reset_election_deadline(now);
        }
        let term = self.current_term;
        self.send(
            from,
            Message::RequestVoteResponse(RequestVoteResponse {
                term,
                vote_granted: grant,
                pre_vote: false,
                round_started_us: m.round_started_us,
            }),
        );
    }

    pub(super) fn handle_request_vote_response(
        &mut self,
        now: Time,
        from: NodeId,
        m: RequestVoteResponse,
    ) {
        if m.term > self.current_term && !(m.pre_vote && m.vote_granted) {
            self.become_follower(now, m.term, NodeId::UNKNOWN);
            return;
        }
        // An answer counts only for the round that asked it: a late answer to an earlier
        // round (a pre-vote answered after the real election began, or a real vote after
        // the next pre-vote began) would otherwise mark the peer as answered, and if this
        // round's request to it was lost it would never be asked again.
        let this_round = m.round_started_us == self.round_started_at.as_micros()
            && match self.role {
                Role::PreCandidate => m.pre_vote,
                Role::Candidate => !m.pre_vote && m.term == self.current_term,
                _ => false,
            };
        if !this_round {
            return;
        }
        if !self.votes_answered.contains(&from) {
            self.votes_answered.push(from);
        }
        // A pre-vote is granted for the next term, a vote for this one.
        let counts = !m.pre_vote || m.term.0 == self.current_term.0 + 1;
        if counts && m.vote_granted && !self.votes_granted.contains(&from) {
            self.votes_granted.push(from);
            self.maybe_win_vote(now);
        }
    }

    fn maybe_win_vote(&mut self, now: Time) {
        let voters = self
            .votes_granted
            .iter()
            .filter(|&&v| self.membership.is_voter(v))
            .count();
        if voters < self.membership.quorum() {
            return;
        }
        match self.role {
            Role::PreCandidate => self.start_election(now),
            Role::Candidate => self.become_leader(now),
            _ => {}
        }
    }

    fn become_leader(&mut self, now: Time) {
        self.role = Role::Leader;
        self.leader = self.config.id;
        self.votes_granted.clear();
        self.transfer_candidacy = false;
        let term = self.current_term;
        self.transfer_saw_leader(self.config.id, term);
        self.became_leader_at = now;
        let next = self.log.last_index().next();
        let progress = self
            .peers
            .iter()
            .map(|&id| Progress {
                voter: self.membership.is_voter(id),
                ..Progress::new(next, now)
            })
            .collect();
        // §8: a no-op of the new term, so that entries of earlier terms commit with it and
        // reads know what is committed.
        let noop = self.log.append(EntryRef {
            term: self.current_term,
            command: CommandRef::Noop,
        });
        let mut state = LeaderState::new(progress, noop);
        state.leader_votes = self.is_voter();
        if !self.membership.contains(self.config.id) {
            // Elected to commit its own removal (`may_stand`): it commits with the no-op,
            // and then this leader hands over as one that removed itself does.
            state.membership_change = Some((self.membership_index, None));
        }
        state.record_append(noop, now);
        self.leader_state = Some(state);
        self.election_timer_armed_at = None;
        let check_at = now + self.config.election_timeout_max;
        self.arm_election_timer(check_at);
        for i in 0..self.peers.len() {
            self.arm_peer_timer(i);
        }
        self.release_held_requests(now);
        // A cluster of one commits alone.
        self.maybe_commit(now);
    }

    /// Check-quorum: a leader that has not heard from a majority for an election timeout
    /// steps down, so that a leader cut off in a minority stops taking requests it cannot
    /// commit, and answers them.
    fn check_quorum(&mut self, now: Time) {
        let quorum = self.membership.quorum();
        let window = self.config.election_timeout_max;
        let since = self.leader_state.as_mut().map_or(now, |l| {
            l.quorum_acked_sent_at(now, quorum).unwrap_or(Time::ZERO)
        });
        let heard = since.max(self.became_leader_at);
        if now >= heard + window {
            let term = self.current_term;
            self.become_follower(now, term, crate::NodeId::UNKNOWN);
        } else {
            self.arm_election_timer(heard + window);
        }
    }
}
