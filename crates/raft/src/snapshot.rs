//! Log compaction and InstallSnapshot (§7).
//!
//! Compaction: once the committed entries the log holds take `Config::compaction_log_bytes`
//! (and at least as many bytes as the snapshot already does), the state machine, brought
//! up to the commit index, starts becoming the snapshot of that index (or, on a leader,
//! of its slowest follower's: `compaction_point`). The copy goes a few shards per `flush`
//! (`Config::compaction_keys_per_flush`, `KvStore::compact_step`), so that no batch of
//! input waits for all of it; once it is done, the log drops every entry through the
//! snapshot's index (`Log::compact`). Only committed entries are compacted, so none that
//! could still be cut is lost. It happens in `flush`, between batches of input, never
//! inside one: a message already asked for then still names what it meant. The snapshot
//! is fuzzy (see `kv_index`): a key written during the copy may be copied with its newer value,
//! which the entries after the snapshot's index, applied to it, write again.
//!
//! InstallSnapshot: a follower that needs an entry the leader has compacted (its
//! `next_index` is at or below the snapshot index) is sent the snapshot instead, a chunk
//! of key-value pairs at a time, each chunk as large as a datagram allows. One chunk is
//! out at a time; the follower answers each with how many pairs it holds, and the next
//! chunk starts there, so a lost chunk or answer costs a retransmission (on the peer
//! timer, as an unanswered probe) and nothing received is sent twice. A newer compaction
//! on the leader starts the transfer over, and so does a new leader: its snapshot of the
//! same index holds its pairs in another order. The follower installs the snapshot once it
//! holds every pair: it replaces its state machine, keeps the part of its log that follows
//! the snapshot if its log holds the snapshot's last entry, and otherwise discards the log
//! (§7), and answers so that the leader replicates from just past it.

use crate::NodeId;
use crate::log::{Log, LogSlice};
use crate::message::{
    EntryRef, EntrySpan, InstallSnapshot, InstallSnapshotResponse, LogIndex, Message, Term,
};
use crate::node::LeaderCheck;
use crate::node::Node;
use crate::progress::ReplicationState;
use crate::time::Time;

/// A snapshot a follower is receiving: the pairs it holds so far, and whose they are.
#[derive(Debug)]
pub(super) struct IncomingSnapshot {
    pub index: LogIndex,
    pub term: Term,
    /// The leader sending it, and its term. Two leaders' snapshots of one index hold the
    /// same state but not the same sequence of pairs (each orders them by its own hash
    /// seed, and a fuzzy copy may hold values newer than the index), so a chunk's offset
    /// means something only to the leadership that cut it.
    pub sender: (NodeId, Term),
    pub pairs: Log,
}

impl Node {
    // ----- compaction ---------------------------------------------------------------

    /// Goes on with the compaction under way, or starts one through the commit index if
    /// the log has grown past the threshold; a leader stops short of what a follower still
    /// needs (see [`Node::compaction_point`]).
    pub(super) fn maybe_compact(&mut self) {
        if self.kv.is_compacting() {
            let keys = self.config.compaction_keys_per_flush;
            if self.kv.compact_step(&self.log, keys) {
                self.log.compact(self.kv.snapshot_index());
                self.snapshot_membership =
                    crate::membership_change::snapshot_membership_of(self.kv.snapshot());
                self.snapshot_changed = true;
            }
            return;
        }
        let threshold = self
            .config
            .compaction_log_bytes
            .max(self.kv.snapshot_bytes());
        // Up to half as much again, by the replica's seed: replicas sharing a machine,
        // which commit the same entries at nearly the same moment, then copy their state
        // machines at different moments rather than all at once.
        let stagger = (self.config.seed % 512) as usize;
        let threshold = threshold.saturating_add(threshold / 1024 * stagger);
        // Every flush asks; the commit index bounds where compaction may stop, so most
        // flushes answer here without looking at the followers.
        if self.log.bytes_through(self.commit_index) < threshold {
            return;
        }
        let through = self.compaction_point();
        if through <= self.log.snapshot_index() || self.log.bytes_through(through) < threshold {
            return;
        }
        self.start_compaction(through);
    }

    /// Where compaction may stop: the commit index, or on a leader the lowest index a
    /// follower has, if the entries after it take no more than `compaction_log_bytes`.
    /// Compacting past a follower that is merely slow (one that `replicate_to_quorum_only`
    /// serves last, or one sharing a busy CPU) would send it the whole state machine
    /// instead of a few appends; a follower further behind than that, or gone, gets a
    /// snapshot, so that no follower keeps the log growing.
    ///
    /// A durable replica compacts only what it has persisted: its snapshot is written in
    /// the background, and until it is durable the write-ahead log must hold every entry
    /// the snapshot covers (a follower may commit an entry in the turn it appends it).
    fn compaction_point(&self) -> LogIndex {
        let commit = self.commit_index.min(self.own_match_index());
        let Some(leader) = self.leader_state.as_ref() else {
            return commit;
        };
        let slowest = leader
            .progress
            .iter()
            .map(|p| p.match_index)
            .min()
            .unwrap_or(commit)
            .min(commit);
        let retained = self
            .log
            .bytes_through(commit)
            .saturating_sub(self.log.bytes_through(slowest));
        if retained <= self.config.compaction_log_bytes {
            slowest
        } else {
            commit
        }
    }

    /// Starts making the state machine the snapshot of `through` (committed), and copies
    /// the first shards. Everything committed is applied first, so that every value the
    /// copy takes is from `through` or later.
    fn start_compaction(&mut self, through: LogIndex) {
        debug_assert!(through <= self.commit_index);
        self.apply_all_committed();
        let term = self
            .log
            .term_at(through)
            .expect("the log holds every committed entry past its snapshot");
        let membership = self.membership_text_as_of(through);
        self.kv
            .start_compaction(through, term, membership.as_deref());
        self.maybe_compact();
    }

    // ----- follower side ------------------------------------------------------------

    pub(super) fn handle_install_snapshot(
        &mut self,
        now: Time,
        from: NodeId,
        m: InstallSnapshot<&[EntryRef<'_>]>,
    ) {
        match self.hear_from_leader(now, from, m.term) {
            LeaderCheck::Stale => {
                self.respond_snapshot(from, m.last_index, 0, false, m.sent_at_us);
                return;
            }
            LeaderCheck::Confused => return,
            LeaderCheck::Current => {}
        }
        if m.last_index <= self.commit_index {
            // Everything the snapshot covers is committed here already, and committed
            // entries match the leader's log: nothing to install.
            self.incoming_snapshot = None;
            self.respond_snapshot(from, m.last_index, 0, true, m.sent_at_us);
            return;
        }
        let same = |s: &IncomingSnapshot| {
            (s.index, s.term, s.sender) == (m.last_index, m.last_term, (from, m.term))
        };
        if !self.incoming_snapshot.as_ref().is_some_and(same) {
            if m.offset != 0 {
                // A chunk of a snapshot we have not started (or began from another
                // leadership, whose pairs came in another order): ask for its beginning.
                self.respond_snapshot(from, m.last_index, 0, false, m.sent_at_us);
                return;
            }
            // §7: "create new snapshot file if first chunk", discarding any other.
            self.incoming_snapshot = Some(IncomingSnapshot {
                index: m.last_index,
                term: m.last_term,
                sender: (from, m.term),
                pairs: Log::new(),
            });
        }
        let Some(incoming) = self.incoming_snapshot.as_mut() else {
            return;
        };
        let held = incoming.pairs.last_index().0;
        if m.offset <= held {
            // A resent chunk may overlap what we hold: take only what follows it.
            let skip = (held - m.offset) as usize;
            for pair in m.pairs.iter().skip(skip) {
                incoming.pairs.append(EntryRef {
                    term: Term(0),
                    command: pair.command,
                });
            }
        }
        let held = incoming.pairs.last_index().0;
        let complete = m.done && m.offset + m.pairs.len() as u64 == held;
        if !complete {
            self.respond_snapshot(from, m.last_index, held, false, m.sent_at_us);
            return;
        }
        if let Some(incoming) = self.incoming_snapshot.take() {
            self.install_snapshot(incoming);
            self.reload_membership(now);
        }
        self.respond_snapshot(from, m.last_index, held, true, m.sent_at_us);
    }

    /// Replaces the state machine with a received snapshot (§7: "discard the entire log"
    /// unless "existing log entry has same index and term as snapshot's last included
    /// entry", in which case "retain log entries following it").
    fn install_snapshot(&mut self, incoming: IncomingSnapshot) {
        let IncomingSnapshot {
            index, term, pairs, ..
        } = incoming;
        debug_assert!(index > self.commit_index);
        self.snapshot_membership = crate::membership_change::snapshot_membership_of(&pairs);
        self.kv.install(pairs, index, term);
        if self.log.term_at(index) == Some(term) {
            self.log.compact(index);
        } else {
            self.log.reset_to_snapshot(index, term);
        }
        self.commit_index = index;
        self.last_applied = index;
        self.persisted_index = self.persisted_index.min(self.log.last_index());
        self.snapshot_changed = true;
        self.snapshot_installed = true;
        self.snapshots_installed += 1;
    }

    fn respond_snapshot(
        &mut self,
        to: NodeId,
        last_index: LogIndex,
        received: u64,
        installed: bool,
        sent_at_us: u64,
    ) {
        let term = self.current_term;
        self.send(
            to,
            Message::InstallSnapshotResponse(InstallSnapshotResponse {
                term,
                last_index,
                received,
                installed,
                sent_at_us,
            }),
        );
    }

    // ----- leader side --------------------------------------------------------------

    /// Whether follower `i` needs entries this leader has compacted away.
    pub(super) fn needs_snapshot(&self, i: usize) -> bool {
        self.leader_state.as_ref().is_some_and(|l| {
            let p = &l.progress[i];
            p.state == ReplicationState::Snapshot || p.next_index <= self.log.snapshot_index()
        })
    }

    /// Sends follower `i` the next chunk of the snapshot, unless one is unanswered and
    /// nothing was asked for (a heartbeat is due, or a read round: the chunk is sent
    /// again from where the follower last was, and serves as either).
    pub(super) fn send_snapshot_chunk(&mut self, now: Time, i: usize) {
        let index = self.log.snapshot_index();
        debug_assert_eq!(index, self.kv.snapshot_index());
        let inflight_max = self.config.inflight_appends_max;
        let Some(p) = self.leader_state.as_mut().map(|l| &mut l.progress[i]) else {
            return;
        };
        p.start_snapshot(index);
        if !p.can_send(inflight_max) && !p.send_requested {
            return;
        }
        let pairs = self.kv.snapshot();
        let total = pairs.last_index().0;
        let offset = p.snapshot.map_or(0, |s| s.received).min(total);
        let first = LogIndex(offset + 1);
        let span = EntrySpan {
            first,
            count: u32::try_from(total - offset).unwrap_or(u32::MAX),
        };
        let count = if offset == total {
            0
        } else {
            self.fitting(pairs.span(span))
        };
        let message = InstallSnapshot {
            term: self.current_term,
            last_index: index,
            last_term: self.log.snapshot_term(),
            offset,
            done: offset + u64::from(count) == total,
            sent_at_us: now.as_micros(),
            pairs: EntrySpan { first, count },
        };
        self.send(self.peers[i], Message::InstallSnapshot(message));
        if let Some(p) = self.leader_state.as_mut().map(|l| &mut l.progress[i]) {
            p.record_chunk_sent(now);
        }
    }

    pub(super) fn handle_install_snapshot_response(
        &mut self,
        now: Time,
        from: NodeId,
        m: InstallSnapshotResponse,
    ) {
        let Some((i, sent_at)) = self.answer_of_this_leadership(now, from, m.term, m.sent_at_us)
        else {
            return;
        };
        // An installed snapshot cannot be past what this leader has committed.
        if m.installed && m.last_index > self.commit_index {
            return;
        }
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        // No round-trip sample: a chunk is larger than an append, and its time would
        // stretch the stall timeout sized for appends.
        let p = &mut leader.progress[i];
        if p.acked_sent_at.is_none_or(|t| t < sent_at) {
            p.acked_sent_at = Some(sent_at);
        }
        p.timeouts_in_a_row = 0;
        if m.installed {
            if p.matched_sent_at.is_none_or(|t| t < sent_at) {
                p.matched_sent_at = Some(sent_at);
            }
            // Its log now matches ours through the snapshot: entries follow at once.
            let advanced = p.record_match(m.last_index);
            p.send_requested = true;
            if advanced {
                self.maybe_commit(now);
            }
        } else {
            p.record_chunk_answer(m.last_index, m.received);
        }
        self.answer_confirmed_reads(now);
    }

    /// The pairs a snapshot chunk the core asked to send names, for encoding in place;
    /// `None` if the snapshot it was cut from has since been replaced (the chunk is then
    /// dropped, as if lost, and the transfer goes on from the new one).
    pub fn snapshot_pairs(&self, last_index: LogIndex, span: EntrySpan) -> Option<LogSlice<'_>> {
        (last_index == self.kv.snapshot_index()).then(|| self.kv.snapshot().span(span))
    }
}

#[cfg(test)]
mod tests {
    use crate::message::{CommandRef, EntryRef, InstallSnapshot, LogIndex, Message, Term};
    use crate::time::Time;
    use crate::{Config, Node, NodeId};

    fn chunk<'a>(
        term: u64,
        offset: u64,
        done: bool,
        pairs: &'a [EntryRef<'a>],
    ) -> Message<&'a [EntryRef<'a>]> {
        Message::InstallSnapshot(InstallSnapshot {
            term: Term(term),
            last_index: LogIndex(10),
            last_term: Term(2),
            offset,
            done,
            sent_at_us: 0,
            pairs,
        })
    }

    fn pair<'a>(key: &'a str, value: &'a str) -> EntryRef<'a> {
        EntryRef {
            term: Term(0),
            command: CommandRef::Put { key, value },
        }
    }

    /// Two leaders' snapshots of one index are not the same bytes: each orders its pairs
    /// by its own hash seed, and a fuzzy copy may hold newer values. A transfer that a new
    /// leader takes over must start again from its first pair, or the follower installs a
    /// mix of both that misses keys (seed 491253 of the simulation: a stale read).
    #[test]
    fn a_snapshot_transfer_a_new_leader_takes_over_starts_over() {
        let config = Config::new(NodeId(3), vec![NodeId(1), NodeId(2)], 7);
        let mut node = Node::new(config, Time(0));
        let (a, b) = (pair("a", "1"), pair("b", "2"));
        // Leader 1 of term 2 sends its first pair, `a`, and is then deposed.
        node.handle_message(Time(1_000), NodeId(1), chunk(2, 0, false, &[a]))
            .unwrap();
        // Leader 2 of term 3 sends the same snapshot in its own order: `b`, then `a`.
        node.handle_message(Time(2_000), NodeId(2), chunk(3, 0, false, &[b]))
            .unwrap();
        node.handle_message(Time(3_000), NodeId(2), chunk(3, 1, true, &[a]))
            .unwrap();
        assert_eq!(node.commit_index(), LogIndex(10), "installed");
        assert_eq!(node.read_committed("a").as_str(), "1");
        assert_eq!(node.read_committed("b").as_str(), "2");
    }
}
