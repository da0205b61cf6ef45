//! What a message from a peer must satisfy before any rule sees it.
//!
//! Peers are trusted to follow Raft, but not to be well: a broken or hostile peer can send
//! any term or index the codec reads (up to 2^64 - 1), entries out of term order, or claim
//! to be someone else. The rules assume what correct replicas guarantee (terms and
//! indexes grow by one at a time, a log's terms never decrease), so a message that breaks
//! those assumptions is dropped here, whole, and the driver is told why. Nothing a peer
//! sends can then make the core's arithmetic overflow, decrease its term or commit index,
//! or change an entry it committed.

use crate::NodeId;
use crate::membership::Membership;
use crate::message::{AppendEntries, CommandRef, EntryRef, LogIndex, Message, Term};
use std::fmt;

/// The largest term a message may carry. Correct replicas raise the term by one per
/// election; a term this large can only come from a broken peer, and accepting it would
/// leave no room to count further elections.
pub const TERM_MAX: Term = Term(1 << 62);
/// The largest log index a message may carry, for the same reason: index arithmetic
/// (`prev + entries`, `index + 1`) must never overflow.
pub const LOG_INDEX_MAX: LogIndex = LogIndex(1 << 62);

/// Why a message from a peer was dropped without effect.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dropped {
    /// It claims to come from this replica.
    FromSelf,
    /// Its sender is not one of this replica's peers.
    NotAPeer(NodeId),
    /// A term above [`TERM_MAX`].
    TermTooLarge(Term),
    /// An index above [`LOG_INDEX_MAX`].
    IndexTooLarge(LogIndex),
    /// An append whose entries' terms decrease, fall below `prev_log_term`, or exceed the
    /// append's own term: no correct leader's log looks like that.
    EntryTermsOutOfOrder,
    /// A snapshot chunk holding a no-op (or a membership anywhere but first), whose last term exceeds its own term, or whose
    /// pair count would run past [`LOG_INDEX_MAX`]: no correct leader's snapshot does.
    MalformedSnapshot,
    /// A membership entry whose text does not read as one (`Membership::parse`).
    BadMembership,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::FromSelf => f.write_str("claims to come from this replica"),
            Dropped::NotAPeer(id) => write!(f, "{id} is not a peer"),
            Dropped::TermTooLarge(term) => write!(f, "term {} is past the limit", term.0),
            Dropped::IndexTooLarge(index) => write!(f, "index {} is past the limit", index.0),
            Dropped::EntryTermsOutOfOrder => f.write_str("entry terms out of order"),
            Dropped::MalformedSnapshot => f.write_str("malformed snapshot chunk"),
            Dropped::BadMembership => f.write_str("a membership entry that does not parse"),
        }
    }
}

impl std::error::Error for Dropped {}

/// Checks a message from `from` to replica `me`, whose peers are `peers`.
pub fn check_message(
    me: NodeId,
    peers: &[NodeId],
    from: NodeId,
    message: &Message<&[EntryRef<'_>]>,
) -> Result<(), Dropped> {
    if from == me {
        return Err(Dropped::FromSelf);
    }
    if !peers.contains(&from) {
        return Err(Dropped::NotAPeer(from));
    }
    match message {
        Message::RequestVote(m) => {
            check_term(m.term)?;
            check_term(m.last_log_term)?;
            check_index(m.last_log_index)
        }
        Message::RequestVoteResponse(m) => check_term(m.term),
        Message::AppendEntries(m) => check_append(m),
        Message::AppendEntriesResponse(m) => {
            check_term(m.term)?;
            if let Some(term) = m.conflict_term {
                check_term(term)?;
            }
            check_index(m.match_index)?;
            check_index(m.conflict_index)
        }
        Message::InstallSnapshot(m) => {
            check_term(m.term)?;
            check_term(m.last_term)?;
            check_index(m.last_index)?;
            // The pairs' count is bounded by the datagram, so the sum cannot overflow.
            let end = m.offset.checked_add(m.pairs.len() as u64);
            // Puts, after the membership a snapshot begins with (if it has one).
            let puts_only = m.pairs.iter().enumerate().all(|(i, p)| match p.command {
                CommandRef::Put { .. } => true,
                CommandRef::Membership(text) => {
                    m.offset == 0 && i == 0 && Membership::parse(text).is_ok()
                }
                CommandRef::Noop => false,
            });
            if m.last_term > m.term || end.is_none_or(|e| e > LOG_INDEX_MAX.0) || !puts_only {
                return Err(Dropped::MalformedSnapshot);
            }
            Ok(())
        }
        Message::InstallSnapshotResponse(m) => {
            check_term(m.term)?;
            check_index(m.last_index)?;
            check_index(LogIndex(m.received))
        }
        Message::TimeoutNow(m) => check_term(m.term),
    }
}

fn check_append(m: &AppendEntries<&[EntryRef<'_>]>) -> Result<(), Dropped> {
    check_term(m.term)?;
    check_term(m.prev_log_term)?;
    check_index(m.prev_log_index)?;
    check_index(m.leader_commit)?;
    // The entries' own count is bounded by the datagram, so `prev + count` cannot
    // overflow once `prev` is within the limit; its end must be within it too.
    check_index(LogIndex(m.prev_log_index.0 + m.entries.len() as u64))?;
    if m.prev_log_term > m.term {
        return Err(Dropped::EntryTermsOutOfOrder);
    }
    let mut previous = m.prev_log_term;
    for entry in m.entries {
        if entry.term < previous || entry.term > m.term {
            return Err(Dropped::EntryTermsOutOfOrder);
        }
        previous = entry.term;
        if let CommandRef::Membership(text) = entry.command
            && Membership::parse(text).is_err()
        {
            return Err(Dropped::BadMembership);
        }
    }
    Ok(())
}

fn check_term(term: Term) -> Result<(), Dropped> {
    if term > TERM_MAX {
        return Err(Dropped::TermTooLarge(term));
    }
    Ok(())
}

fn check_index(index: LogIndex) -> Result<(), Dropped> {
    if index > LOG_INDEX_MAX {
        return Err(Dropped::IndexTooLarge(index));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{AppendEntriesResponse, CommandRef, RequestVote, RequestVoteResponse};

    const ME: NodeId = NodeId(0);
    const PEERS: [NodeId; 2] = [NodeId(1), NodeId(2)];

    fn append(term: u64, prev: (u64, u64), entry_terms: &[u64]) -> Result<(), Dropped> {
        let entries: Vec<EntryRef<'_>> = entry_terms
            .iter()
            .map(|&t| EntryRef {
                term: Term(t),
                command: CommandRef::Noop,
            })
            .collect();
        let m = Message::AppendEntries(AppendEntries {
            term: Term(term),
            prev_log_index: LogIndex(prev.0),
            prev_log_term: Term(prev.1),
            leader_commit: LogIndex(0),
            sent_at_us: 0,
            ack_requested: false,
            entries: &entries[..],
        });
        check_message(ME, &PEERS, PEERS[0], &m)
    }

    #[test]
    fn senders_must_be_peers_other_than_self() {
        let m = Message::RequestVoteResponse(RequestVoteResponse {
            term: Term(1),
            vote_granted: true,
            pre_vote: false,
            round_started_us: 0,
        });
        assert_eq!(check_message(ME, &PEERS, ME, &m), Err(Dropped::FromSelf));
        assert_eq!(
            check_message(ME, &PEERS, NodeId(9), &m),
            Err(Dropped::NotAPeer(NodeId(9)))
        );
        assert_eq!(check_message(ME, &PEERS, PEERS[1], &m), Ok(()));
    }

    #[test]
    fn terms_and_indexes_past_the_limits_are_refused() {
        let vote = |term: u64, last: u64| {
            let m = Message::RequestVote(RequestVote {
                term: Term(term),
                last_log_index: LogIndex(last),
                last_log_term: Term(1),
                pre_vote: false,
                round_started_us: 0,
                transfer: false,
            });
            check_message(ME, &PEERS, PEERS[0], &m)
        };
        assert_eq!(vote(TERM_MAX.0, LOG_INDEX_MAX.0), Ok(()));
        assert_eq!(
            vote(u64::MAX, 1),
            Err(Dropped::TermTooLarge(Term(u64::MAX)))
        );
        assert_eq!(
            vote(1, u64::MAX),
            Err(Dropped::IndexTooLarge(LogIndex(u64::MAX)))
        );
        let response = Message::AppendEntriesResponse(AppendEntriesResponse {
            term: Term(1),
            success: false,
            match_index: LogIndex(0),
            conflict_index: LogIndex(u64::MAX),
            conflict_term: None,
            sent_at_us: u64::MAX,
        });
        assert!(check_message(ME, &PEERS, PEERS[0], &response).is_err());
        // An append whose last entry would land past the limit.
        assert_eq!(
            append(2, (LOG_INDEX_MAX.0, 1), &[2]),
            Err(Dropped::IndexTooLarge(LogIndex(LOG_INDEX_MAX.0 + 1)))
        );
    }

    #[test]
    fn entry_terms_must_rise_from_prev_to_the_append_term() {
        assert_eq!(append(3, (4, 1), &[1, 2, 2, 3]), Ok(()));
        assert_eq!(
            append(3, (4, 1), &[2, 1]),
            Err(Dropped::EntryTermsOutOfOrder)
        );
        assert_eq!(append(3, (4, 2), &[1]), Err(Dropped::EntryTermsOutOfOrder));
        assert_eq!(append(3, (4, 1), &[4]), Err(Dropped::EntryTermsOutOfOrder));
        assert_eq!(append(3, (4, 5), &[]), Err(Dropped::EntryTermsOutOfOrder));
    }
}
