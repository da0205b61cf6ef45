//! Log replication (§5.3) and commitment (§5.4.2).
//!
//! The leader sends appends in batches (capped in entries and in wire bytes) and pipelines
//! them (up to `inflight_appends_max` unanswered per follower). A rejection carries a
//! conflict hint so the leader skips a whole term per round trip. The commit index rides
//! on appends; a follower that is sent nothing for `heartbeat_interval` gets an empty one.

use crate::id::NodeId;
use crate::raft::message::{
    AppendEntries, AppendEntriesResponse, AsEntryRef, EntryRef, EntrySpan, LogIndex, Message, Term,
};
use crate::raft::node::{Node, Role};
use crate::raft::progress::ReplicationState;
use crate::time::Time;

impl Node {
    // ----- follower side ------------------------------------------------------------

    pub(super) fn handle_append_entries(
        &mut self,
        now: Time,
        from: NodeId,
        m: AppendEntries<&[EntryRef<'_>]>,
    ) {
        if m.term < self.current_term {
            // A deposed leader: the higher term in the answer makes it step down.
            self.respond_append(from, false, LogIndex(0), LogIndex(0), None, m.sent_at_us);
            return;
        }
        if m.term == self.current_term && self.role == Role::Leader {
            // Two leaders in one term cannot happen between correct replicas; this is a
            // confused or hostile peer, and obeying it could lose committed entries.
            return;
        }
        if m.term > self.current_term || self.role != Role::Follower {
            self.become_follower(now, m.term, from);
        } else {
            self.leader = from;
        }
        self.leader_contact_at = Some(now);
        if !self.held.is_empty() {
            self.release_held_requests(now);
        }
        self.election_deadline = now + self.random_election_timeout();
        self.arm_election_timer(self.election_deadline);

        // §5.3 consistency check, answering with a hint on a mismatch.
        match self.log.term_at(m.prev_log_index) {
            None => {
                let conflict = self.log.last_index().next();
                self.respond_append(from, false, self.commit_index, conflict, None, m.sent_at_us);
                return;
            }
            Some(term) if term != m.prev_log_term => {
                let conflict = self.log.first_index_of_term(m.prev_log_index, term);
                self.respond_append(
                    from,
                    false,
                    self.commit_index,
                    conflict,
                    Some(term),
                    m.sent_at_us,
                );
                return;
            }
            Some(_) => {}
        }
        let Some(last_new) = self
            .log
            .merge(m.prev_log_index, m.entries, self.commit_index)
        else {
            // The leader asks to overwrite a committed entry: impossible from a correct
            // leader, so refuse rather than lose it.
            return;
        };
        // §5.3: commit up to the leader's commit index, but only over entries this append
        // proved to match the leader's log.
        let commit = m.leader_commit.min(last_new);
        if commit > self.commit_index {
            self.commit_index = commit;
            self.apply_committed(now);
        }
        self.respond_append(from, true, last_new, LogIndex(0), None, m.sent_at_us);
    }

    fn respond_append(
        &mut self,
        to: NodeId,
        success: bool,
        match_index: LogIndex,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
        sent_at_us: u64,
    ) {
        let term = self.current_term;
        self.send(
            to,
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term,
                success,
                match_index,
                conflict_index,
                conflict_term,
                sent_at_us,
            }),
        );
    }

    // ----- leader side --------------------------------------------------------------

    pub(super) fn handle_append_entries_response(
        &mut self,
        now: Time,
        from: NodeId,
        m: AppendEntriesResponse,
    ) {
        if m.term > self.current_term {
            self.become_follower(now, m.term, NodeId::UNKNOWN);
            return;
        }
        if m.term < self.current_term || self.role != Role::Leader {
            return;
        }
        let Some(i) = self.config.peers.iter().position(|&p| p == from) else {
            return;
        };
        let last_index = self.log.last_index();
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let p = &mut leader.progress[i];
        // Whether accepted or not, the follower took the append as coming from its leader
        // (it passed the term check), so it counts toward the lease. A time from the future
        // is a bogus echo and is not believed.
        let sent_at = Time(m.sent_at_us);
        if sent_at <= now && p.acked_sent_at.is_none_or(|t| t < sent_at) {
            p.acked_sent_at = Some(sent_at);
        }
        if m.success {
            if m.match_index > last_index {
                return;
            }
            if p.record_match(m.match_index) {
                self.maybe_commit(now);
            }
        } else {
            // A rejection of an append sent before the last reset says nothing new.
            let stale = m.conflict_index <= p.match_index
                || (p.state == ReplicationState::Probe && p.last_sent_at > sent_at);
            if !stale {
                let next = match m.conflict_term {
                    Some(term) => match self.log.last_index_of_term(term) {
                        Some(index) => index.next(),
                        None => m.conflict_index,
                    },
                    None => m.conflict_index,
                };
                p.reset_to_probe(next.min(last_index.next()));
                p.send_requested = true;
            }
        }
        self.answer_confirmed_reads(now);
    }

    /// Sends follower `i` what it lacks, as far as the pipeline window allows; an empty
    /// append if it asked for a send and nothing else went out.
    pub(super) fn replicate_to(&mut self, now: Time, i: usize) {
        loop {
            let last_index = self.log.last_index();
            let Some(leader) = self.leader_state.as_ref() else {
                return;
            };
            let p = &leader.progress[i];
            if p.next_index > last_index || !p.can_send(self.config.inflight_appends_max) {
                break;
            }
            let first = p.next_index;
            let span = self.batch_from(first);
            self.send_append(now, i, first.prev(), span);
        }
        let requested = self
            .leader_state
            .as_ref()
            .is_some_and(|l| l.progress[i].send_requested);
        if requested {
            self.send_heartbeat(now, i);
        }
    }

    /// Entries from `first` that fit one append.
    fn batch_from(&self, first: LogIndex) -> EntrySpan {
        let budget = self.config.append_bytes_max;
        let entries = self.log.span(EntrySpan {
            first,
            count: self.config.append_entries_max.max(1) as u32,
        });
        let mut bytes = 0;
        let mut count = 0u32;
        for entry in entries {
            bytes += (self.config.entry_wire_bytes)(entry.as_entry_ref());
            // At least one entry always goes, or the follower could never catch up.
            if bytes > budget && count > 0 {
                break;
            }
            count += 1;
        }
        EntrySpan { first, count }
    }

    fn send_append(&mut self, now: Time, i: usize, prev: LogIndex, entries: EntrySpan) {
        let prev_log_term = self
            .log
            .term_at(prev)
            .expect("next_index never passes the end of the leader's log");
        let message = AppendEntries {
            term: self.current_term,
            prev_log_index: prev,
            prev_log_term,
            leader_commit: self.commit_index,
            sent_at_us: now.as_micros(),
            entries,
        };
        let to = self.config.peers[i];
        self.send(to, Message::AppendEntries(message));
        let last = LogIndex(prev.0 + u64::from(entries.count));
        if let Some(leader) = self.leader_state.as_mut() {
            leader.progress[i].record_send(last, now, entries.count > 0);
        }
        self.arm_peer_timer(i);
    }

    /// An append without entries: keeps the follower from starting an election, carries
    /// the commit index, and renews the lease when answered. Its `prev` is an index the
    /// follower is known to hold (when it is), so it never triggers a needless rejection.
    fn send_heartbeat(&mut self, now: Time, i: usize) {
        let Some(leader) = self.leader_state.as_ref() else {
            return;
        };
        let p = &leader.progress[i];
        let prev = match p.state {
            ReplicationState::Replicate => p.match_index,
            ReplicationState::Probe => p.next_index.prev(),
        };
        self.send_append(
            now,
            i,
            prev,
            EntrySpan {
                first: prev.next(),
                count: 0,
            },
        );
    }

    pub(super) fn handle_peer_timer(&mut self, now: Time, i: usize) {
        let heartbeat = self.config.heartbeat_interval;
        let rto = self.config.retransmit_timeout;
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let Some(p) = leader.progress.get_mut(i) else {
            return;
        };
        p.timer_armed_at = None;
        if p.oldest_inflight_sent_at()
            .is_some_and(|sent| now >= sent + rto)
        {
            // Go back to the last known match and resend from there.
            let next = p.match_index.next();
            p.reset_to_probe(next);
            p.send_requested = true;
        } else if now >= p.last_sent_at + heartbeat {
            p.send_requested = true;
        }
        self.replicate_to(now, i);
        self.arm_peer_timer(i);
    }

    /// §5.4.2: only an entry of the current term is committed by counting replicas; the
    /// entries before it commit with it.
    pub(super) fn maybe_commit(&mut self, now: Time) {
        let quorum = self.config.quorum();
        let last_index = self.log.last_index();
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let candidate = leader.quorum_match_index(last_index, quorum);
        if candidate > self.commit_index && self.log.term_at(candidate) == Some(self.current_term) {
            self.commit_index = candidate;
            self.apply_committed(now);
        }
    }
}
