//! The Raft core and its state machine: deterministic, with no I/O at all (no clock, no
//! socket, no file), as quinn-proto keeps its protocol apart from quinn.
//!
//! A [`Node`] is one replica. Its driver feeds it inputs — a message from a peer
//! ([`Node::handle_message`]), a client request ([`Node::handle_client_request`]), a timer
//! that fired ([`Node::handle_timer`]) — each with the current time, then calls
//! [`Node::flush`] once the batch of inputs is done, and carries out the [`Effect`]s that
//! [`Node::take_effects`] hands back: messages to send, client replies, timers to arm.
//! The core never reads a clock, never touches a socket, and draws randomness only from
//! the seeded generator its [`Config`] names, so a run replays exactly from its inputs.
//!
//! Where each rule lives:
//! - `node`: the state of §5.1, dispatch, role changes, applying committed entries;
//! - `election`: pre-vote, votes, becoming leader, check-quorum (§5.2, §9.6);
//! - `replication`: appends, batching, pipelining, fast backtracking, commit (§5.3, §5.4);
//! - `floor`: the classic floor on messages, kept by batching less when short of it;
//! - `client`: puts, reads by lease or read round, held requests (§8);
//! - `snapshot`: log compaction and InstallSnapshot (§7);
//! - `transfer`: handing leadership to a chosen follower (thesis §3.10);
//! - `membership_change`: adding and removing servers one at a time (thesis §4);
//! - `leader`, `progress`: the bookkeeping only a leader keeps;
//! - `validate`: what a peer's message must satisfy before any rule sees it;
//! - `log`, `message`, `effect`, `config`: data;
//! - [`kv_index`]: the state machine, an index from each key into the log (it holds no
//!   keys or values of its own);
//! - [`id`], [`time`], [`inline_str`]: the ids replicas and clients are named by, time as
//!   a number the driver passes in, and the short strings replies carry.
//!
//! Message economy, because the classic scenarios score every replica-to-replica message:
//! the commit index rides on appends; a follower gets a heartbeat only after a quiet
//! `heartbeat_interval`; everything appended during one batch of input leaves in as few
//! appends as the limits allow; a leader serves reads from a lease instead of a round per
//! read; pre-vote and leader stickiness keep elections from storming; requests that arrive
//! while no leader is known are held instead of bounced between replicas.

mod client;
pub mod config;
pub mod effect;
mod election;
pub mod floor;
pub mod id;
pub mod inline_str;
pub mod kv_index;
pub mod leader;
pub mod log;
pub mod membership;
mod membership_change;
pub mod message;
pub mod node;
mod prefetch;
pub mod progress;
mod replication;
mod snapshot;
pub mod time;
mod transfer;
pub mod validate;

pub use config::Config;
pub use effect::{Effect, Reply, ReplyKind, Timer};
pub use id::NodeId;
pub use log::{Log, LogIter, LogSlice};
pub use membership::{Member, Membership};
pub use membership_change::{MembershipChange, MembershipRefused};
pub use message::{
    AppendEntries, AppendEntriesResponse, AsEntryRef, ClientRequest, Command, CommandRef, Entry,
    EntryRef, EntrySpan, IncomingMessage, InstallSnapshot, InstallSnapshotResponse, LogIndex,
    Message, Operation, OutgoingMessage, RequestVote, RequestVoteResponse, Term, TimeoutNow,
};
pub use node::{HardState, Node, Role, Unpersisted};
pub use validate::Dropped;
