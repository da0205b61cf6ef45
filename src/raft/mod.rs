//! The Raft core: a deterministic state machine with no I/O.
//!
//! (This module doc grows into the guided tour as the core lands.)

pub mod effect;
pub mod message;

pub use effect::{Effect, Reply, ReplyKind, Timer};
pub use message::{
    AppendEntries, AppendEntriesResponse, AsEntryRef, ClientRequest, Command, CommandRef, Entry,
    EntryRef, EntrySpan, IncomingMessage, LogIndex, Message, Operation, OutgoingMessage,
    RequestVote, RequestVoteResponse, Term,
};
