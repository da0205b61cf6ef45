//! The `node` target: bytes read as a script of inputs to one replica, and the replica's
//! own invariants checked after each.

use arbitrary::{Arbitrary, Unstructured};
use harness::OwnedMessage;
use harness::message::hand_in;
use raft::time::{Span, Time};
use raft::{
    AppendEntries, AppendEntriesResponse, ClientRequest, CommandRef, Config, Effect, Entry,
    EntryRef, InstallSnapshot, InstallSnapshotResponse, LogIndex, Message, Node, NodeId, Operation,
    RequestVote, RequestVoteResponse, Role, Term, TimeoutNow, Timer,
};

/// The replica under test is `0000`; its peers are `0001` to `0004`.
const PEERS: u16 = 4;
/// Inputs in one script, at most: enough to elect, replicate and lose leadership many
/// times, few enough that a run stays fast.
const STEPS_MAX: usize = 256;
/// Entries in one fuzzed append, at most.
const ENTRIES_MAX: usize = 16;
/// A message whose `from` byte is this or more is sent as its InstallSnapshot form (see
/// `as_snapshot`), from peer `from % PEERS + 1`. The snapshot messages came after the
/// corpus: a new variant of `PeerMessage` would have changed how every input decodes,
/// while these few `from` values change few.
const SNAPSHOT_FROM_MIN: u8 = 250;
/// A message whose `from` byte is in `TRANSFER_FROM_MIN..SNAPSHOT_FROM_MIN` is sent as
/// its leadership-transfer form (see `as_transfer`), from peer `from % PEERS + 1`, for
/// the same reason.
const TRANSFER_FROM_MIN: u8 = 244;

/// A number as a hostile peer might send it: near what the replica has (so that it means
/// something), small, at the extremes, or anything at all.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Near(i8),
    Small(u8),
    Max,
    Any(u64),
}

impl Num {
    fn resolve(self, near: u64) -> u64 {
        match self {
            Num::Near(d) => near.saturating_add_signed(i64::from(d)),
            Num::Small(n) => u64::from(n),
            Num::Max => u64::MAX,
            Num::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PeerMessage {
    Vote {
        term: Num,
        last_index: Num,
        last_term: Num,
        pre_vote: bool,
        round: Num,
    },
    VoteResponse {
        term: Num,
        granted: bool,
        pre_vote: bool,
        /// `None`: the replica's own round, so the answer counts.
        round: Option<Num>,
    },
    Append {
        term: Num,
        prev_index: Num,
        prev_term: Num,
        commit: Num,
        sent_at: Num,
        ack: bool,
        entries: Vec<(Num, Option<(u8, u8)>)>,
    },
    AppendResponse {
        term: Num,
        success: bool,
        match_index: Num,
        conflict_index: Num,
        conflict_term: Option<Num>,
        sent_at: Num,
    },
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// From `from % 6`: 1 to 4 are peers, 0 is the replica itself, 5 is no one it knows.
    Message {
        from: u8,
        message: PeerMessage,
    },
    Client {
        client: u8,
        key: u8,
        put: Option<u8>,
    },
    Timer(u8),
    Flush,
    Advance {
        ms: u16,
    },
}

/// How far a script took its replica: the corpus test checks that the committed inputs,
/// together, reach every part of the core worth fuzzing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reached {
    pub leader: bool,
    pub committed: bool,
    pub refused: bool,
    /// The log was compacted (by the replica itself or a snapshot installed).
    pub compacted: bool,
    /// A snapshot from a peer was installed.
    pub installed: bool,
}

/// Runs `data` as a script against a fresh replica; panics on a broken invariant.
pub fn node(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let mut u = Unstructured::new(data);
    let peers = (1..=PEERS).map(NodeId).collect();
    let mut config = Config::new(NodeId(0), peers, 7);
    // Batches of 3: applying lags the commit index, and reads must catch it up.
    config.apply_batch = 3;
    // Compaction every few entries, so that scripts reach it (and send snapshots back).
    config.compaction_log_bytes = 64;
    let mut now = Time::ZERO;
    let mut node = Node::new(config, now);
    let mut checker = Checker::new(&node);
    let mut effects = Vec::new();
    for _ in 0..STEPS_MAX {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else {
            break;
        };
        match step {
            Step::Message { from, message } => {
                // Refusals are the point: the replica must come out of them unchanged.
                let (from, message) = if from >= SNAPSHOT_FROM_MIN {
                    let from = NodeId(u16::from(from) % PEERS + 1);
                    (from, as_snapshot(&node, now, message))
                } else if from >= TRANSFER_FROM_MIN {
                    let from = NodeId(u16::from(from) % PEERS + 1);
                    (from, as_transfer(&node, now, message))
                } else {
                    let from = NodeId(u16::from(from) % (PEERS + 2));
                    (from, peer_message(&node, now, message))
                };
                reached.refused |= hand_in(&mut node, now, from, &message).is_err();
            }
            Step::Client { client, key, put } => {
                let key = format!("k{}", key % 8);
                let value = put.map(|v| format!("v{v}"));
                let operation = match &value {
                    Some(value) => Operation::Put { key: &key, value },
                    None => Operation::Get { key: &key },
                };
                let request = ClientRequest {
                    client: NodeId(0x100 + u16::from(client % 4)),
                    mid: "m",
                    operation,
                };
                node.handle_client_request(now, request);
            }
            Step::Timer(slot) => {
                let slot = usize::from(slot) % Timer::count(PEERS as usize);
                node.handle_timer(now, Timer::from_slot(slot));
            }
            Step::Flush => node.flush(now),
            Step::Advance { ms } => now = now + Span::from_micros(u64::from(ms) * 100),
        }
        node.take_effects(&mut effects);
        checker.check(&node, &effects);
        effects.clear();
        reached.leader |= node.role() == Role::Leader;
        reached.committed |= node.commit_index() > LogIndex(0);
        reached.compacted |= node.log().snapshot_index() > LogIndex(0);
        reached.installed |= node.snapshots_installed() > 0;
    }
    reached
}

/// `message` as a peer would send it to `node`, its numbers resolved near `node`'s own.
fn peer_message(node: &Node, now: Time, message: PeerMessage) -> OwnedMessage {
    let term = node.term().0;
    let last = node.log().last_index().0;
    match message {
        PeerMessage::Vote {
            term: t,
            last_index,
            last_term,
            pre_vote,
            round,
        } => Message::RequestVote(RequestVote {
            term: Term(t.resolve(term)),
            last_log_index: LogIndex(last_index.resolve(last)),
            last_log_term: Term(last_term.resolve(term)),
            pre_vote,
            round_started_us: round.resolve(now.as_micros()),
            transfer: false,
        }),
        PeerMessage::VoteResponse {
            term: t,
            granted,
            pre_vote,
            round,
        } => {
            let own = node.round_started_at().as_micros();
            Message::RequestVoteResponse(RequestVoteResponse {
                term: Term(t.resolve(term)),
                vote_granted: granted,
                pre_vote,
                round_started_us: round.map_or(own, |r| r.resolve(own)),
            })
        }
        PeerMessage::Append {
            term: t,
            prev_index,
            prev_term,
            commit,
            sent_at,
            ack,
            entries,
        } => Message::AppendEntries(AppendEntries {
            term: Term(t.resolve(term)),
            prev_log_index: LogIndex(prev_index.resolve(last)),
            prev_log_term: Term(prev_term.resolve(term)),
            leader_commit: LogIndex(commit.resolve(last)),
            sent_at_us: sent_at.resolve(now.as_micros()),
            ack_requested: ack,
            entries: fuzzed_entries(&entries, |t| Term(t.resolve(term))),
        }),
        PeerMessage::AppendResponse {
            term: t,
            success,
            match_index,
            conflict_index,
            conflict_term,
            sent_at,
        } => Message::AppendEntriesResponse(AppendEntriesResponse {
            term: Term(t.resolve(term)),
            success,
            match_index: LogIndex(match_index.resolve(last)),
            conflict_index: LogIndex(conflict_index.resolve(last)),
            conflict_term: conflict_term.map(|c| Term(c.resolve(term))),
            sent_at_us: sent_at.resolve(now.as_micros()),
        }),
    }
}

/// `message` as InstallSnapshot: an append becomes a chunk (`prev` its snapshot's last
/// entry, `commit` its offset, `ack` whether it is the last, its entries the pairs, no-ops
/// and all, which `validate` must refuse), an append's answer a chunk's answer (`match`
/// the snapshot's index, `conflict` the pairs received, `success` installed); votes stay
/// votes.
fn as_snapshot(node: &Node, now: Time, message: PeerMessage) -> OwnedMessage {
    let term = node.term().0;
    let last = node.log().last_index().0;
    match message {
        PeerMessage::Append {
            term: t,
            prev_index,
            prev_term,
            commit,
            sent_at,
            ack,
            entries,
        } => Message::InstallSnapshot(InstallSnapshot {
            term: Term(t.resolve(term)),
            last_index: LogIndex(prev_index.resolve(last)),
            last_term: Term(prev_term.resolve(term)),
            offset: commit.resolve(0),
            done: ack,
            sent_at_us: sent_at.resolve(now.as_micros()),
            pairs: fuzzed_entries(&entries, |_| Term(0)),
        }),
        PeerMessage::AppendResponse {
            term: t,
            success,
            match_index,
            conflict_index,
            sent_at,
            ..
        } => {
            let snapshot = node.log().snapshot_index().0;
            Message::InstallSnapshotResponse(InstallSnapshotResponse {
                term: Term(t.resolve(term)),
                last_index: LogIndex(match_index.resolve(snapshot)),
                received: conflict_index.resolve(0),
                installed: success,
                sent_at_us: sent_at.resolve(now.as_micros()),
            })
        }
        vote => peer_message(node, now, vote),
    }
}

/// `message` as leadership transfer sends it: a vote request from a candidate a leader
/// handed over to (which voters grant despite their lease), an answer to a vote as
/// `TimeoutNow` in its term; the rest as they are.
fn as_transfer(node: &Node, now: Time, message: PeerMessage) -> OwnedMessage {
    match message {
        PeerMessage::VoteResponse { term, .. } => Message::TimeoutNow(TimeoutNow {
            term: Term(term.resolve(node.term().0)),
        }),
        other => match peer_message(node, now, other) {
            Message::RequestVote(vote) => Message::RequestVote(RequestVote {
                transfer: true,
                ..vote
            }),
            other => other,
        },
    }
}

/// The entries a fuzzed append carries, at most `ENTRIES_MAX`: each a no-op or a put to one
/// of 8 keys, its term given by `term`.
fn fuzzed_entries(entries: &[(Num, Option<(u8, u8)>)], term: impl Fn(Num) -> Term) -> Vec<Entry> {
    entries
        .iter()
        .take(ENTRIES_MAX)
        .map(|&(entry_term, put)| {
            let put = put.map(|(k, v)| (format!("k{}", k % 8), format!("v{v}")));
            Entry::from_ref(EntryRef {
                term: term(entry_term),
                command: match &put {
                    Some((key, value)) => CommandRef::Put { key, value },
                    None => CommandRef::Noop,
                },
            })
        })
        .collect()
}

/// What one replica must keep true of itself, whatever its peers send.
pub struct Checker {
    term: Term,
    commit_index: LogIndex,
    /// Every entry committed so far, as it was when committed (`None`: committed by an
    /// installed snapshot, so never seen).
    committed: Vec<Option<Entry>>,
    /// The vote given in `term`, once given.
    voted_for: Option<NodeId>,
}

impl Checker {
    pub fn new(node: &Node) -> Checker {
        Checker {
            term: node.term(),
            commit_index: node.commit_index(),
            committed: Vec::new(),
            voted_for: node.voted_for(),
        }
    }

    /// Checks `node` after an input that produced `effects`; panics on a violation.
    pub fn check(&mut self, node: &Node, effects: &[Effect]) {
        let term = node.term();
        assert!(
            term >= self.term,
            "term went down: {:?} -> {term:?}",
            self.term
        );
        assert!(
            term <= raft::validate::TERM_MAX,
            "term {term:?} past the limit"
        );
        if term == self.term
            && let Some(vote) = self.voted_for
        {
            assert_eq!(node.voted_for(), Some(vote), "a second vote in {term:?}");
        }
        self.term = term;
        self.voted_for = node.voted_for();

        let commit = node.commit_index();
        let log = node.log();
        assert!(
            commit >= self.commit_index,
            "commit index went down to {commit:?}"
        );
        assert!(
            commit <= log.last_index(),
            "commit index {commit:?} past the log"
        );
        assert!(
            node.last_applied() <= commit,
            "applied past the commit index"
        );
        // Compacted entries are gone from the log, into the snapshot: only those the log
        // still holds can be compared.
        let held_from = log.snapshot_index().0 as usize;
        for (k, entry) in self.committed.iter().enumerate().skip(held_from) {
            let index = LogIndex(k as u64 + 1);
            if let Some(entry) = entry {
                let now = log.get(index).map(Entry::from_ref);
                assert_eq!(
                    now.as_ref(),
                    Some(entry),
                    "committed entry {index:?} changed"
                );
            }
        }
        for index in self.committed.len() as u64 + 1..=commit.0 {
            let entry = log.get(LogIndex(index));
            assert!(
                entry.is_some() || LogIndex(index) <= log.snapshot_index(),
                "committed entry {index} neither in the log nor in the snapshot"
            );
            self.committed.push(entry.map(Entry::from_ref));
        }
        self.commit_index = commit;

        for effect in effects {
            if let Effect::Send { to, .. } = effect {
                assert!(node.peers().contains(to), "sent to {to}, not a peer");
            }
        }
    }
}
