//! The run's timeline, recorded as it goes for the HTML report (`html`): replica-to-replica
//! messages per 100 ms by type, each replica's vote requests per 100 ms, every change of the
//! `leader` field in what a replica sends, the simulator's own idea of the leader, and the
//! faults as spans.
//!
//! Recording sits on the path of every routed datagram, so it is counters only: a message
//! adds to a slot of a per-type array that was sized for the whole run when the type was
//! first seen, and a leader claim is stored only when it changes. What clients did is not
//! recorded here: the history (`history`) already holds every attempt.

use crate::scenario::config::OneWay;
use raft::NodeId;

/// The width of one bucket of message counts.
pub const BUCKET_US: u64 = 100_000;
/// Distinct message types counted apart; any beyond are counted together as [`OTHER`], so
/// a replica that invents a type per message costs a bounded scan.
pub const TYPES_MAX: usize = 32;
pub const OTHER: &str = "(other types)";

/// Replica-to-replica messages of one `type`, per bucket.
#[derive(Debug, Clone)]
pub struct TypeCounts {
    pub name: String,
    /// Counted as a vote request in the replica lanes (see [`is_vote_request`]).
    pub vote_request: bool,
    pub per_bucket: Vec<u32>,
}

/// A replica's `leader` field changed: from `at_us` on, `replica` names `leader`
/// (`NodeId::UNKNOWN`: it knows none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub at_us: u64,
    pub replica: usize,
    pub leader: NodeId,
}

/// What a fault did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Killed by the scenario; it never comes back.
    Kill {
        replica: usize,
    },
    /// Ended on its own (or was marked dead for a message before its hello).
    Died {
        replica: usize,
    },
    Pause {
        replica: usize,
    },
    /// Killed to be restarted on its data dir: down until its new process says hello.
    Restart {
        replica: usize,
    },
    /// Replicas in `majority` can talk among themselves, the others among themselves.
    Partition {
        majority: Vec<usize>,
    },
    /// `replica` (the leader when it started) cut off in one direction.
    OneWay {
        replica: usize,
        from_leader: bool,
    },
}

/// A fault from `from_us` to `to_us` (`None`: to the end of the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub from_us: u64,
    pub to_us: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub bucket_us: u64,
    pub types: Vec<TypeCounts>,
    /// Per replica, vote requests sent per bucket (a broadcast counts once per recipient,
    /// as in `total_msgs`).
    pub votes: Vec<Vec<u32>>,
    pub claims: Vec<Claim>,
    /// The simulator's leader (what `kill_leader` would kill) as it changed.
    pub sim_leader: Vec<(u64, Option<usize>)>,
    pub faults: Vec<Fault>,
    last_claim: Vec<Option<NodeId>>,
    buckets: usize,
}

/// Is a message of this `type` a vote request? kvsim knows nothing of a replica's messages,
/// so it goes by the name: `rv` (ours, pre-votes included), or any name with `vote` in it
/// that does not look like an answer.
pub fn is_vote_request(kind: &str) -> bool {
    let k = kind.to_ascii_lowercase();
    if k == "rv" {
        return true;
    }
    let answer = ["repl", "resp", "ack", "grant", "result", "rvr"];
    k.contains("vote") && !answer.iter().any(|a| k.contains(a))
}

impl Timeline {
    /// A timeline for `replicas` over a run of `total_us` (a run that lasts longer grows it).
    pub fn new(replicas: usize, total_us: u64) -> Timeline {
        let buckets = (total_us / BUCKET_US + 1) as usize;
        Timeline {
            bucket_us: BUCKET_US,
            types: Vec::new(),
            votes: vec![vec![0; buckets]; replicas],
            claims: Vec::new(),
            sim_leader: Vec::new(),
            faults: Vec::new(),
            last_claim: vec![None; replicas],
            buckets,
        }
    }

    fn bucket(&mut self, at_us: u64) -> usize {
        let b = (at_us / BUCKET_US) as usize;
        if b >= self.buckets {
            // Past the planned end (a slow last turn): grow every array once, with room.
            self.buckets = b + 10;
            for t in &mut self.types {
                t.per_bucket.resize(self.buckets, 0);
            }
            for v in &mut self.votes {
                v.resize(self.buckets, 0);
            }
        }
        b
    }

    /// `copies` replica-to-replica messages of type `kind` sent by `src` at `at_us`.
    pub fn message(&mut self, at_us: u64, src: Option<usize>, kind: &str, copies: u64) {
        let b = self.bucket(at_us);
        let copies = u32::try_from(copies).unwrap_or(u32::MAX);
        let t = match self.types.iter().position(|t| t.name == kind) {
            Some(t) => t,
            None => self.add_type(kind),
        };
        let slot = &mut self.types[t].per_bucket[b];
        *slot = slot.saturating_add(copies);
        if self.types[t].vote_request
            && let Some(r) = src.filter(|&r| r < self.votes.len())
        {
            let v = &mut self.votes[r][b];
            *v = v.saturating_add(copies);
        }
    }

    fn add_type(&mut self, kind: &str) -> usize {
        let (name, vote_request) = if self.types.len() + 1 < TYPES_MAX {
            (kind, is_vote_request(kind))
        } else {
            (OTHER, false)
        };
        if let Some(t) = self.types.iter().position(|t| t.name == name) {
            return t;
        }
        self.types.push(TypeCounts {
            name: name.to_string(),
            vote_request,
            per_bucket: vec![0; self.buckets],
        });
        self.types.len() - 1
    }

    /// Replica `replica` sent a datagram naming `leader` as the leader.
    pub fn claim(&mut self, at_us: u64, replica: usize, leader: NodeId) {
        if let Some(last) = self.last_claim.get_mut(replica)
            && *last != Some(leader)
        {
            *last = Some(leader);
            self.claims.push(Claim {
                at_us,
                replica,
                leader,
            });
        }
    }

    pub fn sim_leader(&mut self, at_us: u64, leader: Option<usize>) {
        self.sim_leader.push((at_us, leader));
    }

    pub fn start(&mut self, at_us: u64, kind: FaultKind) {
        self.faults.push(Fault {
            kind,
            from_us: at_us,
            to_us: None,
        });
    }

    /// Ends the open faults that `matches` picks.
    fn end(&mut self, at_us: u64, matches: impl Fn(&FaultKind) -> bool) {
        for f in &mut self.faults {
            if f.to_us.is_none() && matches(&f.kind) {
                f.to_us = Some(at_us);
            }
        }
    }

    pub fn resume(&mut self, at_us: u64, replica: usize) {
        self.end(at_us, |k| *k == FaultKind::Pause { replica });
    }

    /// `replica` was killed to be restarted. Its new process's first claim is kept even if
    /// it repeats the old one's, so the report can draw each process's claims apart.
    pub fn down(&mut self, at_us: u64, replica: usize) {
        if let Some(last) = self.last_claim.get_mut(replica) {
            *last = None;
        }
        self.start(at_us, FaultKind::Restart { replica });
    }

    /// A restarted replica said hello again.
    pub fn back(&mut self, at_us: u64, replica: usize) {
        self.end(at_us, |k| *k == FaultKind::Restart { replica });
    }

    /// A new partition replaces the one in effect.
    pub fn partition(&mut self, at_us: u64, majority: &[usize]) {
        self.end(at_us, |k| matches!(k, FaultKind::Partition { .. }));
        self.start(
            at_us,
            FaultKind::Partition {
                majority: majority.to_vec(),
            },
        );
    }

    pub fn one_way(&mut self, at_us: u64, replica: usize, direction: OneWay) {
        self.end(at_us, |k| matches!(k, FaultKind::OneWay { .. }));
        self.start(
            at_us,
            FaultKind::OneWay {
                replica,
                from_leader: direction == OneWay::FromLeader,
            },
        );
    }

    /// `part_end`: every partition and one-way cut ends.
    pub fn heal(&mut self, at_us: u64) {
        self.end(at_us, |k| {
            matches!(k, FaultKind::Partition { .. } | FaultKind::OneWay { .. })
        });
    }

    /// The number of buckets that hold the run.
    pub fn buckets(&self) -> usize {
        self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_requests_are_told_by_name() {
        for kind in ["rv", "RV", "RequestVote", "request_vote", "prevote", "vote"] {
            assert!(is_vote_request(kind), "{kind}");
        }
        for kind in [
            "rvr",
            "ae",
            "vote_reply",
            "RequestVoteResponse",
            "vote_granted",
            "voteAck",
        ] {
            assert!(!is_vote_request(kind), "{kind}");
        }
    }

    #[test]
    fn messages_are_counted_per_bucket_and_type_and_votes_per_sender() {
        let mut t = Timeline::new(3, 1_000_000);
        assert_eq!(t.buckets(), 11);
        t.message(50_000, Some(0), "ae", 1);
        t.message(99_999, Some(1), "ae", 2);
        t.message(100_000, Some(2), "rv", 2);
        t.message(250_000, Some(2), "rv", 2);
        t.message(250_000, Some(1), "rvr", 1);
        let names: Vec<&str> = t.types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ae", "rv", "rvr"]);
        assert_eq!(t.types[0].per_bucket[..3], [3, 0, 0]);
        assert_eq!(t.types[1].per_bucket[..3], [0, 2, 2]);
        assert_eq!(t.votes[2][..3], [0, 2, 2]);
        assert_eq!(t.votes[1].iter().sum::<u32>(), 0, "answers are no requests");
        // A datagram past the planned end grows the arrays instead of being lost.
        t.message(5_000_000, Some(0), "ae", 1);
        assert!(t.buckets() > 50);
        assert_eq!(t.types[0].per_bucket[50], 1);
        assert_eq!(t.types[1].per_bucket.len(), t.buckets());
    }

    #[test]
    fn types_beyond_the_cap_are_counted_together() {
        let mut t = Timeline::new(1, 100_000);
        for k in 0..100 {
            t.message(0, Some(0), &format!("t{k}"), 1);
        }
        assert_eq!(t.types.len(), TYPES_MAX);
        let other = t.types.iter().find(|t| t.name == OTHER).unwrap();
        assert_eq!(other.per_bucket[0], 100 - (TYPES_MAX as u32 - 1));
    }

    #[test]
    fn claims_are_kept_only_when_they_change() {
        let mut t = Timeline::new(2, 100_000);
        t.claim(1, 0, NodeId::UNKNOWN);
        t.claim(2, 0, NodeId::UNKNOWN);
        t.claim(3, 0, NodeId(0));
        t.claim(4, 1, NodeId(0));
        t.claim(5, 0, NodeId(0));
        t.claim(6, 9, NodeId(0));
        // A restarted replica's first claim is kept, whatever its old process claimed.
        t.down(7, 1);
        t.claim(8, 1, NodeId(0));
        t.claim(9, 1, NodeId(0));
        let kept: Vec<(u64, usize)> = t.claims.iter().map(|c| (c.at_us, c.replica)).collect();
        assert_eq!(kept, [(1, 0), (3, 0), (4, 1), (8, 1)]);
    }

    #[test]
    fn faults_are_spans_closed_by_what_ends_them() {
        let mut t = Timeline::new(5, 10_000_000);
        t.start(1_000, FaultKind::Kill { replica: 4 });
        t.start(2_000, FaultKind::Pause { replica: 1 });
        t.partition(3_000, &[0, 1, 2]);
        t.partition(4_000, &[2, 3, 4]);
        t.one_way(4_500, 2, OneWay::ToLeader);
        t.resume(5_000, 1);
        t.heal(6_000);
        t.down(7_000, 3);
        t.back(7_500, 4);
        t.back(8_000, 3);
        let spans: Vec<(u64, Option<u64>)> =
            t.faults.iter().map(|f| (f.from_us, f.to_us)).collect();
        assert_eq!(
            spans,
            [
                (1_000, None),
                (2_000, Some(5_000)),
                (3_000, Some(4_000)),
                (4_000, Some(6_000)),
                (4_500, Some(6_000)),
                (7_000, Some(8_000)),
            ]
        );
    }
}
