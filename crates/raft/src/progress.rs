//! What a leader knows of one follower's log, and what it has in flight to it.

use crate::message::LogIndex;
use crate::time::{Span, Time};
use std::collections::VecDeque;

/// How the leader replicates to a follower.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplicationState {
    /// Where the follower's log matches ours is unknown: one append at a time until one
    /// succeeds.
    Probe,
    /// The follower's log is known to match up to `match_index`: appends are pipelined,
    /// `next_index` advancing optimistically as they are sent.
    Replicate,
    /// The follower needs entries this leader has compacted away: it is sent the state
    /// machine's snapshot (§7), one chunk at a time (`Progress::snapshot`), then probed
    /// from just past it.
    Snapshot,
}

/// How far a follower in [`ReplicationState::Snapshot`] has got with the snapshot of
/// `index`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SnapshotSend {
    /// The leader's snapshot being sent (a newer compaction starts it over).
    pub index: LogIndex,
    /// Pairs the follower said it holds: the next chunk starts there.
    pub received: u64,
    /// When the chunk now unanswered was sent, if one is.
    pub chunk_sent_at: Option<Time>,
}

/// When a follower's deadlines fall. Its peer timer is armed for the earliest; when it
/// fires, the first deadline passed (in this order) decides what goes out.
#[derive(Clone, Copy, Debug)]
pub struct PeerDeadlines {
    /// The oldest unanswered append is resent (from the last match).
    pub retransmit: Option<Time>,
    /// Uncommitted entries the follower lacks go to it after all.
    pub stall: Option<Time>,
    /// An empty append keeps it from starting an election.
    pub heartbeat: Time,
}

impl PeerDeadlines {
    pub fn earliest(&self) -> Time {
        [self.retransmit, self.stall]
            .into_iter()
            .flatten()
            .fold(self.heartbeat, Time::min)
    }
}

/// An append sent and not yet acknowledged.
#[derive(Clone, Copy, Debug)]
pub struct Inflight {
    pub last_index: LogIndex,
    pub sent_at: Time,
}

/// Invariant: `match_index < next_index`; every `inflight` entry has
/// `match_index < last_index < next_index`, in increasing order.
#[derive(Debug)]
pub struct Progress {
    pub match_index: LogIndex,
    pub next_index: LogIndex,
    pub state: ReplicationState,
    pub inflight: VecDeque<Inflight>,
    /// When anything was last sent to this follower (heartbeats are due after a quiet
    /// spell).
    pub last_sent_at: Time,
    /// The latest send time, by our clock, of an append this follower acknowledged in this
    /// term: the basis of the lease and of check-quorum.
    pub acked_sent_at: Option<Time>,
    /// The latest send time of an append this follower accepted in this term: a
    /// rejection of an older append describes a log the follower has since changed.
    pub matched_sent_at: Option<Time>,
    /// The deadline the peer timer is armed for, so it is only re-armed when a new
    /// deadline comes earlier.
    pub timer_armed_at: Option<Time>,
    /// Retransmission timeouts in a row without an answer; each doubles the next timeout,
    /// so a dead or cut-off follower is not sent its backlog every few milliseconds.
    pub timeouts_in_a_row: u32,
    /// When a stall was last found covered by other followers; the next look is a stall
    /// timeout after this (or after a newer append).
    pub stall_checked_at: Option<Time>,
    /// Something must go out to this follower at the next flush (a read round, or the new
    /// leader's first append).
    pub send_requested: bool,
    /// Set exactly in [`ReplicationState::Snapshot`].
    pub snapshot: Option<SnapshotSend>,
    /// The follower votes (a learner does not): only voters count toward a commit, the
    /// lease, read rounds and check-quorum.
    pub voter: bool,
}

impl Progress {
    pub fn new(next_index: LogIndex, now: Time) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ReplicationState::Probe,
            inflight: VecDeque::new(),
            last_sent_at: now,
            acked_sent_at: None,
            matched_sent_at: None,
            timer_armed_at: None,
            timeouts_in_a_row: 0,
            stall_checked_at: None,
            send_requested: true,
            snapshot: None,
            voter: true,
        }
    }

    /// Whether another append (or snapshot chunk) may be sent now.
    pub fn can_send(&self, inflight_max: usize) -> bool {
        match self.state {
            ReplicationState::Probe => self.inflight.is_empty(),
            ReplicationState::Replicate => self.inflight.len() < inflight_max,
            ReplicationState::Snapshot => self.snapshot.is_some_and(|s| s.chunk_sent_at.is_none()),
        }
    }

    /// Starts sending the snapshot of `index` (from its first pair), unless it is the one
    /// already being sent.
    pub fn start_snapshot(&mut self, index: LogIndex) {
        if self.snapshot.is_some_and(|s| s.index == index) {
            return;
        }
        self.state = ReplicationState::Snapshot;
        self.inflight.clear();
        self.snapshot = Some(SnapshotSend {
            index,
            received: 0,
            chunk_sent_at: None,
        });
    }

    /// A chunk of the snapshot went out at `now`.
    pub fn record_chunk_sent(&mut self, now: Time) {
        self.last_sent_at = now;
        self.send_requested = false;
        if let Some(s) = self.snapshot.as_mut() {
            s.chunk_sent_at = Some(now);
        }
    }

    /// The follower holds `received` pairs of the snapshot of `index`: the next chunk
    /// starts there, and goes at the next flush.
    pub fn record_chunk_answer(&mut self, index: LogIndex, received: u64) {
        if let Some(s) = self.snapshot.as_mut().filter(|s| s.index == index) {
            s.received = received;
            s.chunk_sent_at = None;
            self.send_requested = true;
        }
    }

    pub fn record_send(&mut self, last_index: LogIndex, now: Time, carries_entries: bool) {
        self.last_sent_at = now;
        self.send_requested = false;
        if carries_entries {
            self.inflight.push_back(Inflight {
                last_index,
                sent_at: now,
            });
            if self.state == ReplicationState::Replicate {
                self.next_index = last_index.next();
            }
        }
    }

    /// The follower matches us up to `match_index`. Returns whether that is news.
    pub fn record_match(&mut self, match_index: LogIndex) -> bool {
        let advanced = match_index > self.match_index;
        if advanced {
            self.match_index = match_index;
        }
        if self.next_index <= self.match_index {
            self.next_index = self.match_index.next();
        }
        while let Some(front) = self.inflight.front() {
            if front.last_index <= self.match_index {
                self.inflight.pop_front();
            } else {
                break;
            }
        }
        if self.state == ReplicationState::Snapshot
            && self.snapshot.is_some_and(|s| s.index <= self.match_index)
        {
            // Installed (or matched past it another way): replicate from the match.
            self.snapshot = None;
            self.state = ReplicationState::Probe;
        }
        if self.state == ReplicationState::Probe {
            self.state = ReplicationState::Replicate;
            // The probe's append is answered; anything else in flight was sent under the
            // old guess and is resent from the match.
            self.inflight.clear();
            self.next_index = self.match_index.next();
        }
        advanced
    }

    /// Go back to probing from `next_index` (after a rejection or a retransmission timeout).
    pub fn reset_to_probe(&mut self, next_index: LogIndex) {
        self.state = ReplicationState::Probe;
        self.snapshot = None;
        self.inflight.clear();
        self.next_index = next_index.max(self.match_index.next());
    }

    /// The retransmission timeout now: `base` doubled per timeout in a row, at most `max`.
    pub fn retransmit_timeout(&self, base: Span, max: Span) -> Span {
        let factor = 1u64 << self.timeouts_in_a_row.min(16);
        Span(
            base.as_micros()
                .saturating_mul(factor)
                .min(max.as_micros().max(base.as_micros())),
        )
    }

    /// From when a stall of entries appended at `appended` is timed for this follower.
    pub fn stall_clock(&self, appended: Time) -> Time {
        self.stall_checked_at.map_or(appended, |t| t.max(appended))
    }

    /// When the oldest unanswered append is taken as lost: `base` after it was sent,
    /// doubled per timeout or rewind in a row (as `retransmit_timeout`).
    pub fn presumed_lost_at(&self, base: Span, max: Span) -> Option<Time> {
        self.oldest_inflight_sent_at()
            .map(|sent| sent + self.retransmit_timeout(base, max))
    }

    /// When the oldest unanswered append, or the unanswered snapshot chunk, was sent.
    pub fn oldest_inflight_sent_at(&self) -> Option<Time> {
        match self.snapshot {
            Some(s) => s.chunk_sent_at,
            None => self.inflight.front().map(|i| i.sent_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_advances_next_and_acks_clear_inflight() {
        let mut p = Progress::new(LogIndex(1), Time(0));
        assert!(p.can_send(4));
        p.record_send(LogIndex(3), Time(1), true);
        assert!(!p.can_send(4), "a probe waits for its answer");
        assert!(p.record_match(LogIndex(3)));
        assert_eq!(p.state, ReplicationState::Replicate);
        assert_eq!(p.next_index, LogIndex(4));
        p.record_send(LogIndex(5), Time(2), true);
        p.record_send(LogIndex(7), Time(3), true);
        assert_eq!(p.next_index, LogIndex(8));
        assert_eq!(p.inflight.len(), 2);
        assert!(p.record_match(LogIndex(5)));
        assert_eq!(p.inflight.len(), 1);
        assert!(!p.record_match(LogIndex(4)), "an old ack is no news");
        let (base, max) = (Span::from_millis(40), Span::from_millis(600));
        assert_eq!(p.retransmit_timeout(base, max), base);
        p.timeouts_in_a_row = 2;
        assert_eq!(p.retransmit_timeout(base, max), Span::from_millis(160));
        p.timeouts_in_a_row = 30;
        assert_eq!(p.retransmit_timeout(base, max), max);
        p.reset_to_probe(LogIndex(2));
        assert_eq!(p.next_index, LogIndex(6), "never below the match");
        assert!(p.inflight.is_empty());
    }
}
