//! The messages replicas exchange (Raft §5, plus pre-vote from the thesis §9.6) and the
//! client requests they serve. Plain data: no JSON here (that is `codec`), no rules (that is
//! `node`).

use crate::NodeId;

/// A Raft term. Terms only grow.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Term(pub u64);

/// A position in the replicated log. Index 0 is the empty prefix; the first entry is 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct LogIndex(pub u64);

impl LogIndex {
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

/// The command carried by a log entry, borrowed (from a datagram or from the log).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommandRef<'a> {
    /// Appended by a new leader so that entries of earlier terms commit (§5.4.2, §8).
    Noop,
    Put {
        key: &'a str,
        value: &'a str,
    },
    /// The cluster's membership from this entry on, as text (`membership`): in effect
    /// on each replica once appended to its log.
    Membership(&'a str),
}

/// A log entry, borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EntryRef<'a> {
    pub term: Term,
    pub command: CommandRef<'a>,
}

/// A log entry, owned: for entries kept apart from any log or datagram (messages in flight
/// in the in-process simulation, tests, benchmarks). The log itself stores entries densely
/// and hands out [`EntryRef`]s.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    pub term: Term,
    pub command: Command,
}

/// The owned form of [`CommandRef`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    Noop,
    Put { key: Box<str>, value: Box<str> },
    Membership(Box<str>),
}

impl Entry {
    pub fn from_ref(entry: EntryRef<'_>) -> Entry {
        let command = match entry.command {
            CommandRef::Noop => Command::Noop,
            CommandRef::Put { key, value } => Command::Put {
                key: key.into(),
                value: value.into(),
            },
            CommandRef::Membership(text) => Command::Membership(text.into()),
        };
        Entry {
            term: entry.term,
            command,
        }
    }
}

/// Anything that reads as a borrowed entry, so the encoder writes an append from whatever
/// holds its entries: the leader's log (a `LogSlice`, yielding `EntryRef`s), decoded
/// entries (`&[EntryRef]`) or owned ones (`&[Entry]`).
pub trait AsEntryRef {
    fn as_entry_ref(&self) -> EntryRef<'_>;
}

impl AsEntryRef for Entry {
    fn as_entry_ref(&self) -> EntryRef<'_> {
        let command = match &self.command {
            Command::Noop => CommandRef::Noop,
            Command::Put { key, value } => CommandRef::Put { key, value },
            Command::Membership(text) => CommandRef::Membership(text),
        };
        EntryRef {
            term: self.term,
            command,
        }
    }
}

impl AsEntryRef for EntryRef<'_> {
    fn as_entry_ref(&self) -> EntryRef<'_> {
        *self
    }
}

impl<T: AsEntryRef + ?Sized> AsEntryRef for &T {
    fn as_entry_ref(&self) -> EntryRef<'_> {
        (**self).as_entry_ref()
    }
}

/// RequestVote (§5.2), or its pre-vote probe (§9.6) when `pre_vote` is set: a pre-vote asks
/// "would you vote for me in `term`?" without anyone changing term.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RequestVote {
    pub term: Term,
    pub last_log_index: LogIndex,
    pub last_log_term: Term,
    pub pre_vote: bool,
    /// When the candidate began this round of asking, by its clock: echoed in the answer,
    /// so that an answer counts only for the round it answers. Opaque to the voter.
    pub round_started_us: u64,
    /// The candidate stands because its leader handed leadership over (`TimeoutNow`):
    /// voters grant it even while they still hear from that leader, which gave up its
    /// read lease before asking (thesis §3.10).
    pub transfer: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RequestVoteResponse {
    pub term: Term,
    pub vote_granted: bool,
    pub pre_vote: bool,
    /// The `round_started_us` of the request answered.
    pub round_started_us: u64,
}

/// AppendEntries (§5.3). `E` is how the entries are held: a borrowed slice when decoded, an
/// [`EntrySpan`] into the leader's log when the core asks for one to be sent, a `LogSlice`
/// of that log when it is encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppendEntries<E> {
    pub term: Term,
    pub prev_log_index: LogIndex,
    pub prev_log_term: Term,
    pub leader_commit: LogIndex,
    /// The leader's clock when it sent this, echoed in the response: it tells the leader
    /// which of its sends a follower has seen, for leases, read rounds and check-quorum.
    /// Opaque to the follower.
    pub sent_at_us: u64,
    /// Whether the follower must answer even if `entries` is empty. An empty append that
    /// matches teaches the leader nothing unless it needs proof of leadership (for its
    /// lease, a read round or check-quorum), so it asks only then.
    pub ack_requested: bool,
    pub entries: E,
}

impl<E> AppendEntries<E> {
    /// The same append holding `entries` instead.
    pub fn with_entries<F>(&self, entries: F) -> AppendEntries<F> {
        AppendEntries {
            term: self.term,
            prev_log_index: self.prev_log_index,
            prev_log_term: self.prev_log_term,
            leader_commit: self.leader_commit,
            sent_at_us: self.sent_at_us,
            ack_requested: self.ack_requested,
            entries,
        }
    }
}

/// The reply to AppendEntries. On success `match_index` is the last index known to match
/// the leader's log. On a mismatch the follower gives a hint so the leader can skip a whole
/// term per round trip instead of one entry: `conflict_index` is the first index the leader
/// should try, `conflict_term` the term the follower holds there (if any).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppendEntriesResponse {
    pub term: Term,
    pub success: bool,
    pub match_index: LogIndex,
    pub conflict_index: LogIndex,
    pub conflict_term: Option<Term>,
    pub sent_at_us: u64,
}

/// InstallSnapshot (§7), one chunk of it: the leader's state machine as of `last_index`
/// (whose term is `last_term`), sent to a follower that needs entries the leader has
/// compacted away. The snapshot is a list of key-value pairs, sent in order in chunks
/// that each fit a datagram; `offset` is the position of this chunk's first pair, so a
/// follower takes a chunk only where it continues what it holds, and a lost chunk is sent
/// again from where the follower says it is (not §7's byte offsets, but the same idea).
/// `pairs` are held as entries (puts; their terms mean nothing), like an append's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InstallSnapshot<E> {
    pub term: Term,
    pub last_index: LogIndex,
    pub last_term: Term,
    pub offset: u64,
    /// This chunk ends the snapshot (§7's `done`).
    pub done: bool,
    /// As in an append: the leader's clock, echoed in the answer.
    pub sent_at_us: u64,
    pub pairs: E,
}

impl<E> InstallSnapshot<E> {
    /// The same chunk holding `pairs` instead.
    pub fn with_pairs<F>(&self, pairs: F) -> InstallSnapshot<F> {
        InstallSnapshot {
            term: self.term,
            last_index: self.last_index,
            last_term: self.last_term,
            offset: self.offset,
            done: self.done,
            sent_at_us: self.sent_at_us,
            pairs,
        }
    }
}

/// The answer to a chunk of InstallSnapshot: how many pairs of the snapshot of
/// `last_index` the follower holds (where the next chunk must start), or that it has
/// installed it (`installed`), after which its log matches the leader's through
/// `last_index`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InstallSnapshotResponse {
    pub term: Term,
    pub last_index: LogIndex,
    pub received: u64,
    pub installed: bool,
    pub sent_at_us: u64,
}

/// Leadership transfer (thesis §3.10): the leader of `term` tells a follower whose log
/// matches its own to start an election at once, without a pre-vote.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimeoutNow {
    pub term: Term,
}

/// Entries `first ..= first + count - 1` of the sender's log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EntrySpan {
    pub first: LogIndex,
    pub count: u32,
}

impl EntrySpan {
    /// No entries.
    pub const EMPTY: EntrySpan = EntrySpan {
        first: LogIndex(0),
        count: 0,
    };
}

/// A replica-to-replica message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Message<E> {
    RequestVote(RequestVote),
    RequestVoteResponse(RequestVoteResponse),
    AppendEntries(AppendEntries<E>),
    AppendEntriesResponse(AppendEntriesResponse),
    InstallSnapshot(InstallSnapshot<E>),
    InstallSnapshotResponse(InstallSnapshotResponse),
    TimeoutNow(TimeoutNow),
}

/// A message as decoded from a datagram: entries borrowed from the receive buffer.
pub type IncomingMessage<'a> = Message<&'a [EntryRef<'a>]>;
/// A message as the core asks for it to be sent: entries named by position in its log
/// (a snapshot's pairs by position, from 1, in its state machine's snapshot).
pub type OutgoingMessage = Message<EntrySpan>;

impl<E> Message<E> {
    /// The same message holding `entries` instead (ignored unless it is an append or a
    /// snapshot chunk, whose pairs they become): a
    /// span into the sender's log becomes a `LogSlice` of it for encoding, decoded entries
    /// become owned ones, and so on.
    pub fn with_entries<F>(&self, entries: F) -> Message<F> {
        match self {
            Message::RequestVote(m) => Message::RequestVote(*m),
            Message::RequestVoteResponse(m) => Message::RequestVoteResponse(*m),
            Message::AppendEntriesResponse(m) => Message::AppendEntriesResponse(*m),
            Message::AppendEntries(m) => Message::AppendEntries(m.with_entries(entries)),
            Message::InstallSnapshot(m) => Message::InstallSnapshot(m.with_pairs(entries)),
            Message::InstallSnapshotResponse(m) => Message::InstallSnapshotResponse(*m),
            Message::TimeoutNow(m) => Message::TimeoutNow(*m),
        }
    }
}

/// What a client asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Operation<'a> {
    Get { key: &'a str },
    Put { key: &'a str, value: &'a str },
}

/// A client request, borrowed from its datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClientRequest<'a> {
    pub client: NodeId,
    pub mid: &'a str,
    pub operation: Operation<'a>,
}
