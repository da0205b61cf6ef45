//! State a replica keeps only while it leads: each follower's progress, and the client
//! requests it owes answers to.

use crate::NodeId;
use crate::floor::FloorAccount;
use crate::inline_str::InlineStr;
use crate::message::LogIndex;
use crate::progress::Progress;
use crate::time::{Span, Time};
use std::collections::VecDeque;

/// A put appended at `index` and not yet answered.
#[derive(Debug)]
pub struct PendingPut {
    pub index: LogIndex,
    pub client: NodeId,
    pub mid: InlineStr,
}

/// A get waiting until the leader has confirmed it still leads (a majority acknowledged an
/// append sent at or after `arrived_at`) and has applied up to `read_index` (§8).
#[derive(Debug)]
pub struct PendingRead {
    pub read_index: LogIndex,
    pub arrived_at: Time,
    pub client: NodeId,
    pub mid: InlineStr,
    pub key: Box<str>,
}

#[derive(Debug)]
pub struct LeaderState {
    /// One per peer, in the order of `Config::peers`.
    pub progress: Vec<Progress>,
    /// The index of this leader's no-op. Until it commits, earlier entries may be
    /// committed without this leader knowing, so reads wait for it (§8).
    pub term_start_index: LogIndex,
    /// In index order.
    pub pending_puts: VecDeque<PendingPut>,
    /// In arrival order, so `arrived_at` and `read_index` never decrease along it.
    pub pending_reads: VecDeque<PendingRead>,
    /// Uncommitted entries by when they were appended: `(last index of a batch, time)`,
    /// in index order. The front tells how long the oldest uncommitted entry has waited.
    pub append_times: VecDeque<(LogIndex, Time)>,
    /// Smoothed round-trip time of appends, from the send times followers echo (RFC 6298
    /// weights): sizes the replication stall timeout to the network at hand.
    pub smoothed_rtt: Option<Span>,
    /// Messages this leader owes the classic floor (`floor`).
    pub floor: FloorAccount,
    /// This leader is a voter of the membership in effect (not while it removes
    /// itself): its own log and clock count toward quorums only then.
    pub leader_votes: bool,
    /// A membership change this leader appended, not yet committed: its index, and who
    /// to answer once it commits (`None` for one the leader made itself, a promotion).
    pub membership_change: Option<(LogIndex, Option<(NodeId, InlineStr)>)>,
    /// Followers the last membership change removed, with how far their logs matched:
    /// told once it commits (`membership_change::bid_farewell`).
    pub departed: Vec<(NodeId, LogIndex)>,
    /// No read is served from the lease for the rest of this term: a leadership
    /// transfer began, whose election voters join without waiting out the lease.
    pub lease_revoked: bool,
    /// Scratch for quorum computations, kept to avoid allocating.
    scratch: Vec<u64>,
}

impl LeaderState {
    pub fn new(progress: Vec<Progress>, term_start_index: LogIndex) -> LeaderState {
        let scratch = Vec::with_capacity(progress.len() + 1);
        LeaderState {
            progress,
            term_start_index,
            pending_puts: VecDeque::new(),
            pending_reads: VecDeque::new(),
            append_times: VecDeque::new(),
            smoothed_rtt: None,
            floor: FloorAccount::new(),
            lease_revoked: false,
            leader_votes: true,
            membership_change: None,
            departed: Vec::new(),
            scratch,
        }
    }

    /// Folds one round-trip sample into `smoothed_rtt` (7/8 old, 1/8 new).
    pub fn record_rtt(&mut self, sample: Span) {
        let smoothed = match self.smoothed_rtt {
            None => sample.as_micros(),
            Some(old) => (old.as_micros() * 7 + sample.as_micros()) / 8,
        };
        self.smoothed_rtt = Some(Span::from_micros(smoothed));
    }

    /// The latest time `t` such that a majority (this leader included, as of `now`)
    /// acknowledged appends sent at `t` or later. `None` before any majority answered.
    pub fn quorum_acked_sent_at(&mut self, now: Time, quorum: usize) -> Option<Time> {
        self.scratch.clear();
        if self.leader_votes {
            self.scratch.push(now.0);
        }
        for p in self.progress.iter().filter(|p| p.voter) {
            if let Some(t) = p.acked_sent_at {
                self.scratch.push(t.0);
            }
        }
        if self.scratch.len() < quorum {
            return None;
        }
        self.scratch.sort_unstable_by(|a, b| b.cmp(a));
        Some(Time(self.scratch[quorum - 1]))
    }

    /// Notes that entries up to `index` were appended at `now`.
    pub fn record_append(&mut self, index: LogIndex, now: Time) {
        match self.append_times.back_mut() {
            Some((last, at)) if *at == now => *last = index,
            _ => self.append_times.push_back((index, now)),
        }
    }

    /// Forgets the append times of entries now committed.
    pub fn record_commit(&mut self, commit_index: LogIndex) {
        while self
            .append_times
            .front()
            .is_some_and(|&(index, _)| index <= commit_index)
        {
            self.append_times.pop_front();
        }
    }

    /// When the oldest uncommitted entry was appended.
    pub fn oldest_uncommitted_at(&self) -> Option<Time> {
        self.append_times.front().map(|&(_, at)| at)
    }

    /// The highest index stored on a majority, this leader counting through `own` (its
    /// last index, or the part of its log known durable).
    pub fn quorum_match_index(&mut self, own: LogIndex, quorum: usize) -> LogIndex {
        self.scratch.clear();
        if self.leader_votes {
            self.scratch.push(own.0);
        }
        self.scratch.extend(
            self.progress
                .iter()
                .filter(|p| p.voter)
                .map(|p| p.match_index.0),
        );
        self.scratch.sort_unstable_by(|a, b| b.cmp(a));
        // Every voter is this leader or one of its followers, so a quorum is there.
        LogIndex(self.scratch.get(quorum - 1).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_with(acks: &[Option<u64>], matches: &[u64]) -> LeaderState {
        let progress = acks
            .iter()
            .zip(matches)
            .map(|(ack, m)| {
                let mut p = Progress::new(LogIndex(1), Time(0));
                p.acked_sent_at = ack.map(Time);
                p.match_index = LogIndex(*m);
                p
            })
            .collect();
        LeaderState::new(progress, LogIndex(1))
    }

    #[test]
    fn quorum_of_five_needs_two_followers() {
        let mut l = leader_with(&[Some(10), None, Some(30), Some(20)], &[5, 0, 9, 7]);
        // Self at 100, then 30, 20: the third latest is 20.
        assert_eq!(l.quorum_acked_sent_at(Time(100), 3), Some(Time(20)));
        assert_eq!(l.quorum_match_index(LogIndex(12), 3), LogIndex(7));
        let mut lonely = leader_with(&[Some(10), None, None, None], &[0, 0, 0, 0]);
        assert_eq!(lonely.quorum_acked_sent_at(Time(100), 3), None);
    }
}
