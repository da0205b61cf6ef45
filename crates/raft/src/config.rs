//! The knobs of a replica, each a named limit with its unit last.

use crate::NodeId;
use crate::message::{CommandRef, EntryRef};
use crate::time::Span;

/// How one replica behaves. `Config::new` gives the defaults tuned for the classic
/// simulator (loopback, sub-millisecond delivery, up to 30% drops).
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// The other replicas, sorted ascending so that every iteration order is fixed.
    pub peers: Vec<NodeId>,
    /// Seeds the core's only source of randomness (election timeouts).
    pub seed: u64,

    /// A follower that hears nothing from a leader for a random span in
    /// `[election_timeout_min, election_timeout_max)` starts an election (§5.2).
    pub election_timeout_min: Span,
    pub election_timeout_max: Span,
    /// Added to the very first election timeout: the simulator starts replicas one after
    /// another and marks dead any replica sent something before its hello.
    pub startup_delay: Span,
    /// A (pre-)candidate asks peers that have not answered again after this long, then
    /// after twice as long, and so on up to `vote_retry_interval_max`: a lost request is
    /// retried quickly, while a peer across a partition is not asked 20 times a second
    /// (each ask is a message the classic scenarios count, delivered or not).
    pub vote_retry_interval: Span,
    pub vote_retry_interval_max: Span,
    /// A leader sends an empty append to a follower it has sent nothing for this long.
    pub heartbeat_interval: Span,
    /// Unacknowledged appends older than this are sent again; the timeout doubles with
    /// each timeout in a row to the same follower, up to `retransmit_timeout_max`.
    /// `retransmit_timeout_uncommitted` applies while the unanswered appends carry
    /// entries not yet committed, `retransmit_timeout` otherwise: a follower that only
    /// lags gets its entries with the next append it is sent anyway, at the latest its
    /// heartbeat, so its own retransmission is set past `heartbeat_interval` and fires
    /// only for a follower that answers nothing (under loss, an earlier one only adds
    /// messages: the lost entries were on their way again anyway).
    pub retransmit_timeout: Span,
    pub retransmit_timeout_uncommitted: Span,
    pub retransmit_timeout_max: Span,
    /// Send new entries at once only to as many followers as a commit needs (rotating,
    /// responsive ones first); the others get them in batches with their next heartbeat.
    /// Halves the messages per put in a cluster of five.
    pub replicate_to_quorum_only: bool,
    /// Entries still uncommitted after the stall timeout go to as many more followers as
    /// the quorum lacks (a message was lost, or a chosen follower is dead). The timeout is
    /// `stall_timeout_rtts` smoothed round trips, within
    /// `[replication_stall_timeout_min, replication_stall_timeout]`; the most until a
    /// round trip is measured.
    pub replication_stall_timeout: Span,
    pub replication_stall_timeout_min: Span,
    pub stall_timeout_rtts: u64,
    /// An append unanswered this long is taken as lost when the next message to its
    /// follower goes out: that message carries the entries again.
    pub append_presumed_lost_after: Span,
    /// A leader that has had no majority acknowledgement for this long asks for answers to
    /// its heartbeats (otherwise empty appends go unanswered).
    pub ack_refresh_interval: Span,
    /// How long after a majority acknowledged an append sent at time `t` the leader may
    /// still answer reads alone: from `t`, at most `election_timeout_min` minus this margin
    /// (followers grant no vote before `election_timeout_min` after hearing from the
    /// leader, so no other leader can exist before then; the margin covers clock drift).
    pub lease_margin: Span,

    /// New entries wait while a quorum of followers is answering a recent round
    /// (`Node::round_in_flight`); off, every batch of input goes out at once.
    pub coalesce_appends: bool,
    /// Keep the classic floor on messages (`raft::floor`): per put appended, at least
    /// `cluster size` messages to and from followers, batching less when short of it.
    pub message_floor: bool,
    /// Puts per second, and in one burst, that add to the floor: past this rate batching
    /// runs free (the classic relays a few hundred requests a second at most).
    pub floor_puts_per_s_max: u64,
    pub floor_burst_puts: u64,
    /// Appends in flight to one follower before the leader waits for an answer.
    pub inflight_appends_max: usize,
    /// Entries in one append (1 turns batching off, for measurements).
    pub append_entries_max: usize,
    /// Bytes of entries in one append, as counted by `entry_wire_bytes`, so that the
    /// encoded datagram always fits.
    pub append_bytes_max: usize,
    /// An upper bound on the bytes one entry adds to an encoded append. The core knows
    /// nothing of the wire format, so the driver passes the codec's bound in.
    pub entry_wire_bytes: fn(EntryRef<'_>) -> usize,
    /// Committed entries are applied once this many are waiting, or at once when the
    /// state machine is read (a get, or a read-index round answered). Nothing but a read
    /// looks at the state machine, and a put is answered once committed, so applying
    /// later changes no answer; in batches, the state machine's prefetching hides its
    /// cache misses (`KvStore::apply_range`), which in the few entries of one round it
    /// cannot. 1 applies every entry as soon as it commits.
    pub apply_batch: usize,

    /// Once the committed entries the log holds take this many bytes (keys, values and
    /// slots), and at least as many as the state machine's snapshot, the state machine is
    /// snapshotted at the commit index and the log through it dropped (§7), in memory and
    /// on disk. The second condition keeps compaction's cost (copying every key's value)
    /// no more than the bytes appended since the last one. Memory then stays within
    /// about twice the state machine plus this, whatever the run's length. Each replica
    /// waits for up to half as much again, by its `seed`, so that replicas sharing a
    /// machine do not all compact at once.
    pub compaction_log_bytes: usize,

    /// Keys a compaction copies per batch of input, at least (whole shards of the state
    /// machine at a time, a few hundred keys each at half a million). Copying a key takes
    /// about 0.12 µs alone and 0.3 µs or more on a CPU busy with other replicas, so the
    /// default holds a batch up by 0.1 to 0.2 ms; `usize::MAX` copies everything in the
    /// batch that starts it.
    pub compaction_keys_per_flush: usize,

    /// Whether the driver persists the log and the hard state (term and vote) before it
    /// sends what depends on them (`Node::take_unpersisted`, `Node::persisted`). Off, the
    /// replica keeps everything in memory and counts its own log as durable at once.
    pub durable: bool,

    /// This replica starts outside the cluster, to be added by its leader
    /// (`MembershipChange::AddLearner`): `peers` are the members, and it is none of them
    /// (so it never stands for election) until a membership entry says otherwise.
    pub joining: bool,
    /// Peers that start outside the cluster, to be added later (each with `joining` on
    /// its side): heard from like any peer (an election may need a replica that knows of
    /// a membership change this one has not seen yet), but no members until a membership
    /// entry makes them so.
    pub joining_peers: Vec<NodeId>,
    /// Hear a peer that is in no membership this replica holds and not configured (as
    /// thesis §4.1 has every server take requests without consulting its configuration):
    /// a leader or candidate added after this replica's log ends (cluster mode, where
    /// the driver vouches for a sender by its address). Off in the classic setting,
    /// where every replica is configured and anything else is a hostile sender.
    pub hear_unlisted_peers: bool,

    /// Client requests held while no leader is known.
    pub held_requests_max: usize,
    /// A held request is answered `fail` after this long without a leader.
    pub held_request_timeout: Span,
    /// Puts appended but not yet committed, at the leader; more are refused with `fail`.
    pub pending_puts_max: usize,
    /// Reads waiting for a confirmation round, at the leader.
    pub pending_reads_max: usize,
    pub key_bytes_max: usize,
    pub value_bytes_max: usize,
}

/// A bound that holds for any sane JSON encoding: every byte escaped as `\u00XX` plus a
/// generous allowance for the term and punctuation.
fn conservative_entry_wire_bytes(entry: EntryRef<'_>) -> usize {
    let payload = match entry.command {
        CommandRef::Noop => 0,
        CommandRef::Put { key, value } => key.len() + value.len(),
        CommandRef::Membership(text) => text.len(),
    };
    6 * payload + 32
}

impl Config {
    pub fn new(id: NodeId, mut peers: Vec<NodeId>, seed: u64) -> Config {
        peers.sort_unstable();
        peers.dedup();
        Config {
            id,
            peers,
            seed,
            election_timeout_min: Span::from_millis(800),
            election_timeout_max: Span::from_millis(1400),
            startup_delay: Span::from_millis(300),
            vote_retry_interval: Span::from_millis(50),
            vote_retry_interval_max: Span::from_millis(400),
            heartbeat_interval: Span::from_millis(300),
            retransmit_timeout: Span::from_millis(600),
            retransmit_timeout_uncommitted: Span::from_millis(40),
            retransmit_timeout_max: Span::from_millis(640),
            replicate_to_quorum_only: true,
            replication_stall_timeout: Span::from_millis(3),
            replication_stall_timeout_min: Span::from_millis(1),
            stall_timeout_rtts: 4,
            append_presumed_lost_after: Span::from_millis(10),
            ack_refresh_interval: Span::from_millis(400),
            lease_margin: Span::from_millis(100),
            coalesce_appends: true,
            message_floor: true,
            floor_puts_per_s_max: 1000,
            floor_burst_puts: 128,
            inflight_appends_max: 8,
            append_entries_max: 512,
            append_bytes_max: 60_000,
            entry_wire_bytes: conservative_entry_wire_bytes,
            apply_batch: 256,
            compaction_log_bytes: 32 << 20,
            compaction_keys_per_flush: 256,
            durable: false,
            joining: false,
            joining_peers: Vec::new(),
            hear_unlisted_peers: false,
            held_requests_max: 4096,
            held_request_timeout: Span::from_millis(4000),
            pending_puts_max: 65_536,
            pending_reads_max: 65_536,
            key_bytes_max: 1024,
            value_bytes_max: 4096,
        }
    }

    /// The replicas in the cluster, this one included.
    pub fn cluster_size(&self) -> usize {
        self.peers.len() + 1
    }

    /// Votes (or acknowledgements) that make a majority, this replica's own included.
    pub fn quorum(&self) -> usize {
        self.cluster_size() / 2 + 1
    }
}
