//! What the core asks its driver to do. The core never performs I/O; it appends effects to
//! an outbox and the driver (the event loop, or a simulation) carries them out in order.

use crate::NodeId;
use crate::inline_str::InlineStr;
use crate::message::OutgoingMessage;
use crate::time::Time;

/// The deadlines a replica keeps. Each is armed at most once at a time: setting one again
/// replaces its earlier deadline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Timer {
    /// Follower and candidate: start an election when it fires. Leader: check that a
    /// majority was heard from lately (check-quorum), else step down.
    Election,
    /// The oldest held client request (held while no leader is known) expires.
    HeldRequests,
    /// Leader only: heartbeat or retransmit to the peer at this position in the sorted
    /// peer list.
    Peer(usize),
}

impl Timer {
    /// A dense number for this timer, `0 .. Timer::count(peers)`, for drivers that keep
    /// timers in an array.
    pub fn slot(self) -> usize {
        match self {
            Timer::Election => 0,
            Timer::HeldRequests => 1,
            Timer::Peer(i) => 2 + i,
        }
    }

    pub fn from_slot(slot: usize) -> Timer {
        match slot {
            0 => Timer::Election,
            1 => Timer::HeldRequests,
            n => Timer::Peer(n - 2),
        }
    }

    /// How many timer slots a replica with `peers` peers uses.
    pub fn count(peers: usize) -> usize {
        2 + peers
    }
}

/// How a client request is answered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ReplyKind {
    /// The put is committed and applied, or the get is answered with this value (the empty
    /// string for a key never written).
    Ok { value: Option<InlineStr> },
    /// "Ask the leader": the driver names the current leader in the reply's `leader` field.
    /// The request was never proposed: retrying it elsewhere cannot apply it twice.
    Redirect,
    /// A put this leader appended to its log and could not see committed before it lost
    /// leadership: it may still commit (a new leader may hold the entry), or never. A
    /// driver must say so to its client rather than report a failure: Jepsen found
    /// RedisRaft answering such writes as failed that later took effect. The classic
    /// protocol has no such answer, so there it is a redirect (its clients retry).
    OutcomeUnknown,
    /// The request cannot be served.
    Fail,
}

/// One answer to one client request. Exactly one is produced per request received.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reply {
    pub client: NodeId,
    pub mid: InlineStr,
    pub kind: ReplyKind,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Effect {
    /// Send a message to one peer.
    Send {
        to: NodeId,
        message: OutgoingMessage,
    },
    /// Answer a client. The reply's `leader` field is the core's leader at the time the
    /// driver sends it.
    Reply(Reply),
    /// Arm `timer` to fire at `at`, replacing its earlier deadline if any.
    SetTimer { timer: Timer, at: Time },
    /// Disarm `timer`.
    CancelTimer { timer: Timer },
}
