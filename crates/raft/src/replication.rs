//! Log replication (§5.3) and commitment (§5.4.2).
//!
//! The leader sends appends in batches (capped in entries and in wire bytes) and pipelines
//! them (up to `inflight_appends_max` unanswered per follower). A rejection carries a
//! conflict hint so the leader skips a whole term per round trip. The commit index rides
//! on appends; a follower that is sent nothing for `heartbeat_interval` gets an empty one.

use crate::NodeId;
use crate::effect::Timer;
use crate::log::LogSlice;
use crate::message::{
    AppendEntries, AppendEntriesResponse, EntryRef, EntrySpan, LogIndex, Message, Term,
};
use crate::node::{LeaderCheck, Node};
use crate::progress::{PeerDeadlines, ReplicationState};
use crate::time::{Span, Time};

impl Node {
    // ----- follower side ------------------------------------------------------------

    pub(super) fn handle_append_entries(
        &mut self,
        now: Time,
        from: NodeId,
        m: AppendEntries<&[EntryRef<'_>]>,
    ) {
        match self.hear_from_leader(now, from, m.term) {
            LeaderCheck::Stale => {
                // A deposed leader: the higher term in the answer makes it step down.
                self.respond_append(from, false, LogIndex(0), LogIndex(0), None, m.sent_at_us);
                return;
            }
            LeaderCheck::Confused => return,
            LeaderCheck::Current => {}
        }

        // §5.3 consistency check, answering with a hint on a mismatch. Entries through the
        // snapshot are committed, so any current leader holds them too (§5.4's Leader
        // Completeness): an append starting in the compacted prefix matches there.
        let prev_term = if m.prev_log_index < self.log.snapshot_index() {
            Some(m.prev_log_term)
        } else {
            self.log.term_at(m.prev_log_index)
        };
        match prev_term {
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
        // A membership is in effect once appended, and no more once cut.
        let carries_membership = m
            .entries
            .iter()
            .any(|e| matches!(e.command, crate::CommandRef::Membership(_)));
        // An entry at or after `prev_log_index + 1` may have been replaced: the
        // membership entry in effect too, if it lies there.
        if carries_membership || self.membership_index > m.prev_log_index {
            self.reload_membership(now);
        }
        // §5.3: commit up to the leader's commit index, but only over entries this append
        // proved to match the leader's log.
        let commit = m.leader_commit.min(last_new);
        if commit > self.commit_index {
            self.commit_index = commit;
            self.apply_committed(now);
        }
        if m.ack_requested || !m.entries.is_empty() {
            self.respond_append(from, true, last_new, LogIndex(0), None, m.sent_at_us);
        }
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
        if let Some(leader) = self.leader_state.as_mut() {
            leader.floor.pay();
        }
        let Some((i, sent_at)) = self.answer_of_this_leadership(now, from, m.term, m.sent_at_us)
        else {
            return;
        };
        let last_index = self.log.last_index();
        // A match past the end of our log comes from no append we sent.
        if m.success && m.match_index > last_index {
            return;
        }
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        leader.record_rtt(now.since(sent_at));
        let p = &mut leader.progress[i];
        if p.acked_sent_at.is_none_or(|t| t < sent_at) {
            p.acked_sent_at = Some(sent_at);
        }
        p.timeouts_in_a_row = 0;
        if m.success {
            if p.matched_sent_at.is_none_or(|t| t < sent_at) {
                p.matched_sent_at = Some(sent_at);
            }
            let learner = !p.voter;
            if p.record_match(m.match_index) {
                self.maybe_commit(now);
            }
            self.transfer_heard_from(now, from);
            if learner {
                self.maybe_promote_learner(now);
            }
        } else {
            // A rejection says something new unless it answers an append older than one
            // the follower has since accepted (its log has moved on), or older than the
            // probe now out (the probe will answer for it).
            // While a snapshot is being sent, its answers say where the follower is.
            let stale = p.matched_sent_at.is_some_and(|t| sent_at < t)
                || (p.state == ReplicationState::Probe && p.last_sent_at > sent_at)
                || p.state == ReplicationState::Snapshot;
            if !stale {
                let hinted = match m.conflict_term {
                    Some(term) => match self.log.last_index_of_term(term) {
                        Some(index) => index.next(),
                        None => m.conflict_index,
                    },
                    None => m.conflict_index,
                };
                // A hint at or below the match is still news: the follower holds a
                // divergent suffix past the match (an empty append that matched left it
                // there). `reset_to_probe` resumes just past the match then.
                p.reset_to_probe(hinted.min(last_index.next()));
                p.send_requested = true;
            }
        }
        self.answer_confirmed_reads(now);
    }

    /// After a batch of input: new entries go at once to as many followers as a commit
    /// needs (all of them unless `replicate_to_quorum_only`), and anything requested
    /// (heartbeats, read rounds, probes) goes out. A leader short of the classic floor on
    /// messages batches less (`floor`): it does not wait for a round in flight, and sends
    /// to more followers, in smaller appends if need be.
    pub(super) fn flush_leader(&mut self, now: Time) {
        let shortfall = self.floor_shortfall();
        let quorum = self.choose_replication_targets(now, shortfall <= 0);
        let plan = self.floor_plan(now, quorum, shortfall);
        for i in 0..self.peers.len() {
            self.replicate_to(
                now,
                i,
                plan.targets & (1 << i) != 0,
                plan.entries_per_append,
            );
            self.arm_peer_timer(i);
        }
    }

    /// Which followers get new entries now, as a bit per peer. Followers already sent
    /// everything count toward the quorum; the rest are ranked responsive first (nothing
    /// unanswered for longer than the stall timeout), then least recently sent to, so the
    /// load rotates and each follower hears from us often enough to need no heartbeat.
    /// Runs after every batch of input, so it allocates nothing: the few picks (at most
    /// half the peers) are found by repeated minimum scans. `coalesce`: new entries may
    /// wait for a round in flight (`Config::coalesce_appends` permitting).
    fn choose_replication_targets(&self, now: Time, coalesce: bool) -> u64 {
        let peers = self.peers.len();
        let everyone = u64::MAX.checked_shr(64 - peers as u32).unwrap_or(0);
        let Some(leader) = self.leader_state.as_ref() else {
            return 0;
        };
        if !self.config.replicate_to_quorum_only {
            return everyone;
        }
        let last_index = self.log.last_index();
        // Learners count for no commit: each is sent what it lacks at once, so it
        // catches up as fast as the pipeline allows.
        let learners = (0..peers)
            .filter(|&i| !leader.progress[i].voter && leader.progress[i].next_index <= last_index)
            .fold(0u64, |mask, i| mask | 1 << i);
        let covering = leader
            .progress
            .iter()
            .filter(|p| {
                p.voter && p.state == ReplicationState::Replicate && p.next_index > last_index
            })
            .count();
        let needed = self.followers_needed().saturating_sub(covering);
        if needed == 0 || self.commit_index >= last_index {
            return learners;
        }
        let stall = self.stall_timeout();
        if coalesce && self.config.coalesce_appends && self.round_in_flight(now, stall) {
            return learners;
        }
        let mut chosen = learners;
        for _ in 0..needed {
            let best = (0..peers)
                .filter(|&i| {
                    chosen & (1 << i) == 0
                        && leader.progress[i].voter
                        && leader.progress[i].next_index <= last_index
                })
                .min_by_key(|&i| self.replication_rank(now, i, stall));
            match best {
                Some(i) => chosen |= 1 << i,
                None => break,
            }
        }
        chosen
    }

    /// How follower `i` ranks for new entries, lowest first: responsive ones first, then
    /// the least recently sent to.
    pub(super) fn replication_rank(&self, now: Time, i: usize, stall: Span) -> (bool, Time, usize) {
        let Some(p) = self.leader_state.as_ref().map(|l| &l.progress[i]) else {
            return (true, now, i);
        };
        // Silent past the stall timeout and not heard from lately: likely dead or cut
        // off. One lost message does not make a follower that answered recently
        // unresponsive; its next append carries what was lost.
        let unresponsive = p
            .oldest_inflight_sent_at()
            .is_some_and(|t| now >= t + stall)
            && p.acked_sent_at
                .is_none_or(|t| now >= t + self.config.heartbeat_interval);
        (unresponsive, p.last_sent_at, i)
    }

    /// Whether a quorum of followers is still answering a recent round of uncommitted
    /// entries (sent less than a stall timeout ago). New entries then wait for the first
    /// of those answers and go out together, instead of each batch of input costing an
    /// append and an answer per chosen follower: under load a round carries what arrived
    /// in one round trip. An idle leader has no round out, so a lone request still goes
    /// at once; a round slower than the stall timeout no longer holds anything back.
    fn round_in_flight(&self, now: Time, stall: Span) -> bool {
        let Some(leader) = self.leader_state.as_ref() else {
            return false;
        };
        let answering = leader
            .progress
            .iter()
            .filter(|p| {
                p.voter
                    && p.inflight.back().is_some_and(|f| {
                        f.last_index > self.commit_index && now < f.sent_at + stall
                    })
            })
            .count();
        answering >= self.followers_needed()
    }

    /// Followers whose acknowledgement a commit needs besides this leader's own (all of
    /// a quorum while it removes itself, when its own log counts for nothing).
    fn followers_needed(&self) -> usize {
        let own = self.leader_state.as_ref().is_some_and(|l| l.leader_votes);
        self.membership.quorum() - usize::from(own)
    }

    /// Sends follower `i` what was asked for: its missing entries if `eager` (as far as
    /// the pipeline window allows, at most `entries_per_append` in one append), and at
    /// least an empty append if it asked for a send. Whenever a message goes out anyway it
    /// carries the entries the follower lacks.
    pub(super) fn replicate_to(
        &mut self,
        now: Time,
        i: usize,
        eager: bool,
        entries_per_append: usize,
    ) {
        let wanted = eager
            || self
                .leader_state
                .as_ref()
                .is_some_and(|l| l.progress[i].send_requested);
        if wanted {
            self.rewind_presumed_lost(now, i);
        }
        if self.needs_snapshot(i) {
            if wanted {
                self.send_snapshot_chunk(now, i);
            }
            return;
        }
        loop {
            let last_index = self.log.last_index();
            let Some(leader) = self.leader_state.as_ref() else {
                return;
            };
            let p = &leader.progress[i];
            if !wanted || p.next_index > last_index || !p.can_send(self.config.inflight_appends_max)
            {
                break;
            }
            let first = p.next_index;
            let span = self.batch_from(first, entries_per_append);
            self.send_append(now, i, first.prev(), span, true);
        }
        let requested = self
            .leader_state
            .as_ref()
            .is_some_and(|l| l.progress[i].send_requested);
        if requested {
            self.send_heartbeat(now, i);
        }
    }

    /// When something goes to follower `i` anyway and its oldest unanswered append is older
    /// than `append_presumed_lost_after`, that append (or its answer) is taken as lost and
    /// the message carries the follower's entries again from its last known match. That
    /// costs bytes, not messages: a retransmission would cost a message, and a pipelined
    /// append past the gap would be rejected and cost two more. A follower that did get
    /// the entries keeps the ones that match (`Log::merge`).
    ///
    /// A follower in probe whose probe is presumed lost may be sent a new probe. Each
    /// rewind without an answer in between doubles the wait (as retransmissions do), so a
    /// follower across a partition is not re-sent its backlog every few milliseconds.
    fn rewind_presumed_lost(&mut self, now: Time, i: usize) {
        let lost_at = self.presumed_lost_at(i);
        let Some(p) = self.leader_state.as_mut().map(|l| &mut l.progress[i]) else {
            return;
        };
        if lost_at.is_some_and(|t| now >= t) {
            p.inflight.clear();
            if let Some(s) = p.snapshot.as_mut() {
                s.chunk_sent_at = None;
            }
            p.timeouts_in_a_row = p.timeouts_in_a_row.saturating_add(1);
            if p.state == ReplicationState::Replicate {
                p.next_index = p.match_index.next();
            }
        }
    }

    /// When follower `i`'s oldest unanswered append is presumed lost (`None`: nothing
    /// unanswered, or no leader state).
    fn presumed_lost_at(&self, i: usize) -> Option<Time> {
        self.leader_state.as_ref()?.progress[i].presumed_lost_at(
            self.config.append_presumed_lost_after,
            self.config.retransmit_timeout_max,
        )
    }

    /// Entries from `first` that fit one append, at most `entries_max`.
    pub(super) fn batch_from(&self, first: LogIndex, entries_max: usize) -> EntrySpan {
        let entries = self.log.span(EntrySpan {
            first,
            count: u32::try_from(entries_max.max(1)).unwrap_or(u32::MAX),
        });
        EntrySpan {
            first,
            count: self.fitting(entries),
        }
    }

    /// How many of `entries`, from the first, fit one datagram: at least one.
    pub(super) fn fitting(&self, entries: LogSlice<'_>) -> u32 {
        let budget = self.config.append_bytes_max;
        let mut bytes = 0;
        let mut count = 0u32;
        for entry in entries {
            bytes += (self.config.entry_wire_bytes)(entry);
            // At least one entry always goes, or the follower could never catch up.
            if bytes > budget && count > 0 {
                break;
            }
            count += 1;
        }
        count
    }

    fn send_append(
        &mut self,
        now: Time,
        i: usize,
        prev: LogIndex,
        entries: EntrySpan,
        ack_requested: bool,
    ) {
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
            ack_requested: ack_requested || entries.count > 0,
            entries,
        };
        let to = self.peers[i];
        self.send(to, Message::AppendEntries(message));
        let last = LogIndex(prev.0 + u64::from(entries.count));
        if let Some(leader) = self.leader_state.as_mut() {
            leader.progress[i].record_send(last, now, entries.count > 0);
            leader.floor.pay();
        }
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
            // A match compacted away since is named by the snapshot index, which a
            // follower holds exactly when it holds the match's successors there (committed
            // entries agree); one that does not rejects, and gets the snapshot. A follower
            // being sent a snapshot gets chunks instead (`replicate_to`).
            ReplicationState::Replicate | ReplicationState::Snapshot => {
                p.match_index.max(self.log.snapshot_index())
            }
            ReplicationState::Probe => p.next_index.prev(),
        };
        let ack = self.heartbeat_needs_ack(now, i);
        self.send_append(
            now,
            i,
            prev,
            EntrySpan {
                first: prev.next(),
                count: 0,
            },
            ack,
        );
    }

    /// An empty append asks for an answer only when the answer is worth a message: a read
    /// waits for proof of leadership, no majority answered lately (lease and
    /// check-quorum), or this follower has not been heard from in an election timeout.
    fn heartbeat_needs_ack(&mut self, now: Time, i: usize) -> bool {
        let quorum = self.membership.quorum();
        let refresh = self.config.ack_refresh_interval;
        let silence_max = self.config.election_timeout_max;
        let Some(leader) = self.leader_state.as_mut() else {
            return true;
        };
        if !leader.pending_reads.is_empty() || leader.progress[i].state == ReplicationState::Probe {
            return true;
        }
        let quorum_stale = leader
            .quorum_acked_sent_at(now, quorum)
            .is_none_or(|t| now >= t + refresh);
        let follower_silent = leader.progress[i]
            .acked_sent_at
            .is_none_or(|t| now >= t + silence_max);
        quorum_stale || follower_silent
    }

    /// Follower `i`'s deadlines, from one place for both arming its timer and handling
    /// it (they once disagreed, and a timer re-armed in the past fired forever).
    fn peer_deadlines(&self, i: usize) -> Option<PeerDeadlines> {
        let leader = self.leader_state.as_ref()?;
        let p = leader.progress.get(i)?;
        // An answer that commit waits for is chased sooner than one that only catches a
        // follower up (which its next append does anyway, without a message of its own).
        // A follower in probe takes no new entries until its probe is answered, so it
        // cannot help a commit either: its probe is chased as soon.
        let commit_waits = p
            .inflight
            .back()
            .is_some_and(|f| f.last_index > self.commit_index);
        let base = if commit_waits || p.state != ReplicationState::Replicate {
            self.config.retransmit_timeout_uncommitted
        } else {
            self.config.retransmit_timeout
        };
        let retransmit = p
            .oldest_inflight_sent_at()
            .map(|sent| sent + p.retransmit_timeout(base, self.config.retransmit_timeout_max));
        // The stall fallback is due for a follower that lacks uncommitted entries and can be
        // sent them now; for one that cannot (everything sent, its window full or a probe
        // out), only once what it was sent is presumed lost: its next send rewinds and
        // resends it. Otherwise the retransmission timeout covers it.
        let last_index = self.log.last_index();
        let stall = leader.oldest_uncommitted_at().and_then(|appended| {
            let due = p.stall_clock(appended) + self.stall_timeout();
            if p.next_index <= last_index && p.can_send(self.config.inflight_appends_max) {
                Some(due)
            } else if p.match_index < last_index {
                self.presumed_lost_at(i).map(|lost| lost.max(due))
            } else {
                None
            }
        });
        Some(PeerDeadlines {
            retransmit,
            stall,
            heartbeat: p.last_sent_at + self.config.heartbeat_interval,
        })
    }

    /// The timer for peer `i`, armed for its earliest deadline unless it already fires
    /// sooner.
    pub(super) fn arm_peer_timer(&mut self, i: usize) {
        let Some(due) = self.peer_deadlines(i).map(|d| d.earliest()) else {
            return;
        };
        let Some(p) = self.leader_state.as_mut().map(|l| &mut l.progress[i]) else {
            return;
        };
        if p.timer_armed_at.is_none_or(|armed| due < armed) {
            p.timer_armed_at = Some(due);
            self.set_timer(Timer::Peer(i), due);
        }
    }

    pub(super) fn handle_peer_timer(&mut self, now: Time, i: usize) {
        let Some(deadlines) = self.peer_deadlines(i) else {
            return;
        };
        let short_of_quorum = self.stall_short_of_quorum(now);
        let Some(p) = self.leader_state.as_mut().map(|l| &mut l.progress[i]) else {
            return;
        };
        p.timer_armed_at = None;
        let mut eager = false;
        if deadlines.retransmit.is_some_and(|t| now >= t) {
            p.timeouts_in_a_row = p.timeouts_in_a_row.saturating_add(1);
            // A follower we replicate to goes back to its last known match. A probe that
            // went unanswered is sent again as it was: its answer is still what would
            // move the guess, and going back to the match (index 0 for a follower never
            // heard from) would resend the whole log and skip fast backtracking.
            // An unanswered snapshot chunk is sent again from where the follower last said
            // it was.
            match p.state {
                ReplicationState::Replicate => p.reset_to_probe(p.match_index.next()),
                ReplicationState::Probe => p.reset_to_probe(p.next_index),
                ReplicationState::Snapshot => {
                    if let Some(s) = p.snapshot.as_mut() {
                        s.chunk_sent_at = None;
                    }
                }
            }
            p.send_requested = true;
        } else if deadlines.stall.is_some_and(|t| now >= t) {
            // The followers chosen for these entries have not made them commit in time.
            if short_of_quorum {
                eager = true;
            } else {
                p.stall_checked_at = Some(now);
            }
        } else if now >= deadlines.heartbeat {
            p.send_requested = true;
        }
        self.replicate_to(now, i, eager, self.config.append_entries_max);
        self.arm_peer_timer(i);
    }

    /// Whether too few followers hold the oldest uncommitted entry, or were sent it so
    /// recently that its answer may still come, to make a quorum: a stall brings in only
    /// that many more followers (one lost message, one more follower), not every one.
    fn stall_short_of_quorum(&self, now: Time) -> bool {
        let stall = self.stall_timeout();
        let waiting_for = self.commit_index.next();
        let covering = self.leader_state.as_ref().map_or(0, |leader| {
            leader
                .progress
                .iter()
                .filter(|p| {
                    p.voter
                        && (p.match_index >= waiting_for
                            || (p.next_index > waiting_for
                                && p.oldest_inflight_sent_at().is_some_and(|t| now < t + stall)))
                })
                .count()
        });
        covering < self.followers_needed()
    }

    /// How long uncommitted entries wait for the followers chosen for them before more are
    /// brought in: `stall_timeout_rtts` smoothed round trips, within
    /// `[replication_stall_timeout_min, replication_stall_timeout]`. On a fast network a
    /// lost message then costs a millisecond, not the three a slow one needs.
    pub(super) fn stall_timeout(&self) -> Span {
        let max = self.config.replication_stall_timeout;
        let min = self.config.replication_stall_timeout_min.min(max);
        match self.leader_state.as_ref().and_then(|l| l.smoothed_rtt) {
            Some(rtt) => Span::from_micros(
                (rtt.as_micros() * self.config.stall_timeout_rtts)
                    .clamp(min.as_micros(), max.as_micros()),
            ),
            None => max,
        }
    }

    /// §5.4.2: only an entry of the current term is committed by counting replicas; the
    /// entries before it commit with it.
    pub(super) fn maybe_commit(&mut self, now: Time) {
        let quorum = self.membership.quorum();
        let own = self.own_match_index();
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let candidate = leader.quorum_match_index(own, quorum);
        if candidate > self.commit_index && self.log.term_at(candidate) == Some(self.current_term) {
            leader.record_commit(candidate);
            self.commit_index = candidate;
            self.apply_committed(now);
        }
    }
}
