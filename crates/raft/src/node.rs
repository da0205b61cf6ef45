//! One replica's Raft state and the dispatch of every input to the rule that handles it.
//!
//! The rules themselves live beside this file: `election` (§5.2, pre-vote §9.6),
//! `replication` (§5.3, §5.4), `client` (§8: reads, puts, held requests).

use crate::NodeId;
use crate::config::Config;
use crate::effect::{Effect, Reply, ReplyKind, Timer};
use crate::inline_str::InlineStr;
use crate::kv_index::KvStore;
use crate::leader::LeaderState;
use crate::log::{Log, LogSlice};
use crate::membership::Membership;
use crate::message::{
    ClientRequest, EntrySpan, IncomingMessage, LogIndex, Message, OutgoingMessage, Term,
};
use crate::snapshot::IncomingSnapshot;
use crate::time::{Span, Time};
use crate::transfer::Transfer;
use crate::validate::{Dropped, check_message};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Follower,
    /// Asking whether an election could be won, without changing term (§9.6).
    PreCandidate,
    Candidate,
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// §5.1's persistent state besides the log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// What changed since a durable driver last persisted (`Node::take_unpersisted`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Unpersisted {
    pub hard_state: Option<HardState>,
    pub entries_from: Option<LogIndex>,
    /// The log was compacted, or a snapshot installed, through this index: the snapshot
    /// (`Node::snapshot`) must be made durable.
    pub snapshot: Option<LogIndex>,
    /// The snapshot was installed from a leader, not made by compacting this log: the
    /// log after it may have been replaced, and must be written again whole after the
    /// snapshot is durable. A compaction changes nothing of the log that remains.
    pub snapshot_installed: bool,
}

/// A client request kept while no leader is known, to be answered once one is.
#[derive(Debug)]
pub(super) struct HeldRequest {
    pub client: NodeId,
    pub mid: InlineStr,
    pub key: Box<str>,
    /// `None` for a get.
    pub value: Option<Box<str>>,
    pub expires_at: Time,
}

/// A Raft replica with no I/O. Feed it inputs (`handle_*`, then `flush`), carry out what
/// `take_effects` returns. The same inputs always give the same effects.
pub struct Node {
    pub(super) config: Config,
    pub(super) rng: SmallRng,

    // §5.1 persistent state: in memory only, or written by the driver when `durable`.
    pub(super) current_term: Term,
    pub(super) voted_for: Option<NodeId>,
    pub(super) log: Log,
    /// The term or the vote changed since the driver last took them to persist.
    pub(super) hard_state_changed: bool,
    /// The log is durable through this index (`Node::persisted`); a leader counts its own
    /// log toward a commit only this far. Invariant: at most the last index.
    pub(super) persisted_index: LogIndex,
    /// The snapshot changed (a compaction, or one installed) since the driver last took
    /// what to persist.
    pub(super) snapshot_changed: bool,
    /// The last snapshot change was an install (see `Unpersisted::snapshot_installed`).
    pub(super) snapshot_installed: bool,
    /// A snapshot being received from the leader, chunk by chunk (`snapshot`).
    pub(super) incoming_snapshot: Option<IncomingSnapshot>,
    /// Snapshots received from a leader and installed, for observers.
    pub(super) snapshots_installed: u64,

    /// Who is in the cluster: the last membership entry in the log, else the snapshot's,
    /// else the configured peers and this replica, all voters (`membership_change`).
    pub(super) membership: Membership,
    /// The index of the entry that set `membership`; the snapshot index (or 0) when it
    /// comes from the snapshot or the configuration.
    pub(super) membership_index: LogIndex,
    /// The membership as of the snapshot index, as text; `None` while it is the
    /// configured one (a cluster whose membership never changed writes none).
    pub(super) snapshot_membership: Option<Box<str>>,
    /// Every member but this replica, in id order: whom a leader replicates to, a
    /// candidate asks, and whose messages are taken. `Timer::Peer(i)` and a leader's
    /// `progress[i]` are `peers[i]`'s.
    pub(super) peers: Vec<NodeId>,

    // Volatile state. Invariant: last_applied <= commit_index, and fewer than
    // `config.apply_batch` committed entries wait to be applied between inputs (the state
    // machine is brought up to commit_index before it is read).
    pub(super) commit_index: LogIndex,
    pub(super) last_applied: LogIndex,
    pub(super) kv: KvStore,
    pub(super) role: Role,
    /// Best knowledge of the current term's leader; `NodeId::UNKNOWN` if none.
    pub(super) leader: NodeId,

    /// Follower and candidate: when to start an election. Leader: unused.
    pub(super) election_deadline: Time,
    /// The deadline the election timer is armed for. Timers are armed lazily: a deadline
    /// pushed later leaves the timer where it is, and the handler re-arms it on firing.
    pub(super) election_timer_armed_at: Option<Time>,
    /// When an append from the current leader last arrived. No vote is granted until
    /// `election_timeout_min` after it, which is what makes the leader's lease safe.
    pub(super) leader_contact_at: Option<Time>,
    /// A replica restarted from its disk grants no vote before this: before its crash it
    /// may have acknowledged a leader whose read lease counts on that promise, and a
    /// crash erases `leader_contact_at`, not the promise (see `Node::restore`).
    pub(super) no_vote_before: Time,
    /// This candidacy was started by the leader's `TimeoutNow` (`transfer`): its vote
    /// requests say so.
    pub(super) transfer_candidacy: bool,
    /// A leadership transfer this replica started and whose outcome is not known yet.
    pub(super) transfer: Option<Transfer>,
    /// Voters that granted this (pre-)candidacy, this replica included.
    pub(super) votes_granted: Vec<NodeId>,
    /// Peers that answered this (pre-)candidacy either way; the others are asked again.
    pub(super) votes_answered: Vec<NodeId>,
    /// When this (pre-)candidacy began: its requests carry it and only answers that echo
    /// it count (a late answer to an earlier round, pre-vote or real, is no answer now).
    pub(super) round_started_at: Time,
    /// How long until the silent peers of this candidacy are asked again: doubles with
    /// each retry, from `vote_retry_interval` up to `vote_retry_interval_max`.
    pub(super) vote_retry_backoff: Span,
    pub(super) became_leader_at: Time,
    pub(super) leader_state: Option<LeaderState>,
    pub(super) held: VecDeque<HeldRequest>,
    /// Clients this follower redirected lately, and when: one that comes back before the
    /// leader has spoken again is held, not redirected again (see `client`).
    pub(super) recent_redirects: Vec<(NodeId, Time)>,
    pub(super) outbox: Vec<Effect>,
}

impl Node {
    pub fn new(config: Config, now: Time) -> Node {
        assert!(
            !config.peers.contains(&config.id),
            "a replica is not its own peer"
        );
        assert!(config.election_timeout_min < config.election_timeout_max);
        assert!(config.lease_margin < config.election_timeout_min);
        assert!(
            config.peers.len() <= 64,
            "replication targets are chosen as a bit per peer"
        );
        let rng = SmallRng::seed_from_u64(config.seed);
        let membership = crate::membership_change::configured_membership(&config);
        let peers = membership.peers_of(config.id);
        let mut node = Node {
            membership,
            membership_index: LogIndex(0),
            snapshot_membership: None,
            peers,
            rng,
            current_term: Term(0),
            voted_for: None,
            log: Log::new(),
            hard_state_changed: false,
            persisted_index: LogIndex(0),
            snapshot_changed: false,
            snapshot_installed: false,
            incoming_snapshot: None,
            snapshots_installed: 0,
            commit_index: LogIndex(0),
            last_applied: LogIndex(0),
            kv: KvStore::new(config.seed),
            role: Role::Follower,
            leader: NodeId::UNKNOWN,
            election_deadline: now,
            election_timer_armed_at: None,
            leader_contact_at: None,
            no_vote_before: now,
            transfer_candidacy: false,
            transfer: None,
            votes_granted: Vec::new(),
            votes_answered: Vec::new(),
            round_started_at: now,
            vote_retry_backoff: config.vote_retry_interval,
            became_leader_at: now,
            leader_state: None,
            held: VecDeque::new(),
            recent_redirects: Vec::new(),
            outbox: Vec::new(),
            config,
        };
        let first = now + node.config.startup_delay + node.random_election_timeout();
        node.election_deadline = first;
        node.arm_election_timer(first);
        node
    }

    /// A replica restarted from what it persisted: its term, its vote, its snapshot (the
    /// pairs of every key as of the log's snapshot index, empty if it has none) and its
    /// log. It starts as a follower that knows no leader, with only its snapshot known to
    /// be committed (the leader will say the rest), and nothing left to persist.
    ///
    /// It grants no vote, pre-vote or real, for `election_timeout_min` after `now`: the
    /// last append it acknowledged before the crash promised the leader exactly that
    /// (§6.4's lease), and the leader may still be serving reads on it.
    pub fn restore(
        config: Config,
        now: Time,
        term: Term,
        voted_for: Option<NodeId>,
        snapshot: Log,
        log: Log,
    ) -> Node {
        let mut node = Node::new(config, now);
        node.current_term = term;
        node.voted_for = voted_for;
        node.no_vote_before = now + node.config.election_timeout_min;
        let (index, snapshot_term) = (log.snapshot_index(), log.snapshot_term());
        node.snapshot_membership = crate::membership_change::snapshot_membership_of(&snapshot);
        if index.0 > 0 {
            node.kv.install(snapshot, index, snapshot_term);
        }
        node.commit_index = index;
        node.last_applied = index;
        node.log = log;
        node.log.take_changed_from();
        node.persisted_index = node.log.last_index();
        node.reload_membership(now);
        node
    }

    // ----- inputs -------------------------------------------------------------------

    /// A message from peer `from`. One that no correct peer could send is dropped whole,
    /// and the error says why (`validate`), for the driver to log.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: NodeId,
        message: IncomingMessage<'_>,
    ) -> Result<(), Dropped> {
        // Every configured peer is heard, member or not yet (a candidate may know of a
        // membership change this replica has not seen), and so is the leader even once
        // the membership in this log leaves it out: a leader removing itself leads until
        // the removal commits (thesis §4.2.2). With `hear_unlisted_peers`, anyone.
        let known = self.peers.contains(&from)
            || self.config.peers.contains(&from)
            || (from == self.leader && !from.is_broadcast())
            || (self.config.hear_unlisted_peers && !from.is_broadcast());
        let senders = if known {
            std::slice::from_ref(&from)
        } else {
            &self.peers[..]
        };
        check_message(self.config.id, senders, from, &message)?;
        match message {
            Message::RequestVote(m) => self.handle_request_vote(now, from, m),
            Message::RequestVoteResponse(m) => self.handle_request_vote_response(now, from, m),
            Message::AppendEntries(m) => self.handle_append_entries(now, from, m),
            Message::AppendEntriesResponse(m) => self.handle_append_entries_response(now, from, m),
            Message::InstallSnapshot(m) => self.handle_install_snapshot(now, from, m),
            Message::InstallSnapshotResponse(m) => {
                self.handle_install_snapshot_response(now, from, m)
            }
            Message::TimeoutNow(m) => self.handle_timeout_now(now, from, m),
        }
        Ok(())
    }

    /// A client's get or put. Exactly one reply follows, now or later.
    pub fn handle_client_request(&mut self, now: Time, request: ClientRequest<'_>) {
        self.route_client_request(now, request);
    }

    /// A timer armed through `Effect::SetTimer` fired.
    pub fn handle_timer(&mut self, now: Time, timer: Timer) {
        match timer {
            Timer::Election => {
                self.election_timer_armed_at = None;
                self.handle_election_timer(now);
            }
            Timer::HeldRequests => self.expire_held_requests(now),
            Timer::Peer(i) => self.handle_peer_timer(now, i),
        }
    }

    /// Called after each batch of inputs: the log is compacted if it has grown past the
    /// threshold, and a leader sends what the batch appended, as few appends as the limits
    /// allow.
    pub fn flush(&mut self, now: Time) {
        self.maybe_compact();
        if self.role == Role::Leader {
            self.flush_leader(now);
        }
    }

    /// Moves the effects produced so far into `into`, which must be empty. Swapping keeps
    /// both vectors' capacity, so steady state allocates nothing.
    pub fn take_effects(&mut self, into: &mut Vec<Effect>) {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.outbox, into);
    }

    /// What a durable driver must write since it last asked, and forgets it: the hard
    /// state if it changed, and the first log index that changed (every entry from there
    /// to the end replaces what storage holds from there; entries past the end are gone).
    ///
    /// The contract (§5.1, "updated on stable storage before responding to RPCs"): the
    /// driver writes these, syncs, and only then sends the messages to peers that the
    /// inputs produced, except appends, which a leader may send before its own write lands
    /// (it counts its own log toward a commit only once told it is durable). Client
    /// replies may go at once: a put is answered only once committed, which needs a
    /// majority that persisted it.
    pub fn take_unpersisted(&mut self) -> Unpersisted {
        let hard_state = std::mem::take(&mut self.hard_state_changed).then_some(HardState {
            term: self.current_term,
            voted_for: self.voted_for,
        });
        let entries_from = self.log.take_changed_from();
        if let Some(from) = entries_from {
            // Cut or rewritten from `from` on: durable only before it until written.
            self.persisted_index = self.persisted_index.min(from.prev());
        }
        let snapshot =
            std::mem::take(&mut self.snapshot_changed).then(|| self.log.snapshot_index());
        let snapshot_installed = std::mem::take(&mut self.snapshot_installed);
        if snapshot_installed {
            // The whole log is written again after the snapshot.
            self.persisted_index = self.persisted_index.min(self.log.snapshot_index());
        }
        Unpersisted {
            hard_state,
            entries_from,
            snapshot,
            snapshot_installed,
        }
    }

    /// The driver has made durable everything `take_unpersisted` handed it, which covered
    /// the log through `through`. A leader may now count its own log that far.
    pub fn persisted(&mut self, now: Time, through: LogIndex) {
        // Entries changed since they were handed over are not what was written: a driver
        // whose sync completes after more input (the in-process simulation's does) must
        // not have them counted.
        let unchanged_through = self
            .log
            .changed_from()
            .map_or(LogIndex(u64::MAX), LogIndex::prev);
        let through = through.min(self.log.last_index()).min(unchanged_through);
        if through > self.persisted_index {
            self.persisted_index = through;
            self.maybe_commit(now);
        }
    }

    /// How far this replica's own log counts toward a commit: all of it in memory, its
    /// durable part when durable.
    pub(super) fn own_match_index(&self) -> LogIndex {
        if self.config.durable {
            self.persisted_index.min(self.log.last_index())
        } else {
            self.log.last_index()
        }
    }

    /// Changes the term and vote of §5.1, noting that they must be persisted.
    pub(super) fn set_hard_state(&mut self, term: Term, voted_for: Option<NodeId>) {
        debug_assert!(term >= self.current_term, "terms only grow");
        if (term, voted_for) != (self.current_term, self.voted_for) {
            self.current_term = term;
            self.voted_for = voted_for;
            self.hard_state_changed = true;
        }
    }

    // ----- observation --------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn peers(&self) -> &[NodeId] {
        &self.peers
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn leader(&self) -> NodeId {
        self.leader
    }
    pub fn term(&self) -> Term {
        self.current_term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    /// When the latest (pre-)candidacy began: the round its vote requests carry.
    pub fn round_started_at(&self) -> Time {
        self.round_started_at
    }
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }
    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }
    /// Snapshots received from a leader and installed since this replica started.
    pub fn snapshots_installed(&self) -> u64 {
        self.snapshots_installed
    }
    pub fn log(&self) -> &Log {
        &self.log
    }
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }
    /// The snapshot's pairs (every key's value as of `log().snapshot_index()`; empty
    /// before the first compaction), for a durable driver to write.
    pub fn snapshot(&self) -> &Log {
        self.kv.snapshot()
    }
    /// The same, shared, for a driver that writes it on another thread.
    pub fn shared_snapshot(&self) -> std::sync::Arc<Log> {
        self.kv.shared_snapshot()
    }
    /// The entries an `AppendEntries` effect names, for encoding without copying.
    pub fn log_entries(&self, span: EntrySpan) -> LogSlice<'_> {
        self.log.span(span)
    }
    /// Client requests this replica still owes an answer to.
    pub fn requests_owed(&self) -> usize {
        let leading = self
            .leader_state
            .as_ref()
            .map_or(0, |l| l.pending_puts.len() + l.pending_reads.len());
        leading + self.held.len()
    }

    // ----- shared helpers for the rule modules --------------------------------------

    pub(super) fn send(&mut self, to: NodeId, message: OutgoingMessage) {
        self.outbox.push(Effect::Send { to, message });
    }

    pub(super) fn reply(&mut self, client: NodeId, mid: InlineStr, kind: ReplyKind) {
        self.outbox.push(Effect::Reply(Reply { client, mid, kind }));
    }

    pub(super) fn set_timer(&mut self, timer: Timer, at: Time) {
        self.outbox.push(Effect::SetTimer { timer, at });
    }

    pub(super) fn random_election_timeout(&mut self) -> Span {
        let min = self.config.election_timeout_min.as_micros();
        let max = self.config.election_timeout_max.as_micros();
        Span(self.rng.random_range(min..max))
    }

    /// Pushes the election deadline to a fresh random timeout from `now`.
    pub(super) fn reset_election_deadline(&mut self, now: Time) {
        self.election_deadline = now + self.random_election_timeout();
        self.arm_election_timer(self.election_deadline);
    }

    /// Arms the election timer for `at` unless it already fires no later than that.
    pub(super) fn arm_election_timer(&mut self, at: Time) {
        if self.election_timer_armed_at.is_none_or(|armed| at < armed) {
            self.election_timer_armed_at = Some(at);
            self.set_timer(Timer::Election, at);
        }
    }

    /// Becomes a follower in `term` (§5.1: "if RPC request or response contains term T >
    /// currentTerm: set currentTerm = T, convert to follower"). A leader first answers
    /// every request it owes (redirects: the reply's `leader` field names the new leader
    /// when it is known).
    pub(super) fn become_follower(&mut self, now: Time, term: Term, leader: NodeId) {
        debug_assert!(term >= self.current_term);
        if term > self.current_term {
            self.set_hard_state(term, None);
        }
        self.leader = leader;
        if self.role == Role::Leader {
            self.step_down();
        }
        self.role = Role::Follower;
        self.votes_granted.clear();
        self.reset_election_deadline(now);
        if leader != NodeId::UNKNOWN {
            self.release_held_requests(now);
        }
    }

    /// Leaves leadership: answers what is owed, stops the per-follower timers.
    fn step_down(&mut self) {
        let Some(state) = self.leader_state.take() else {
            return;
        };
        if self.leader == self.config.id {
            self.leader = NodeId::UNKNOWN;
        }
        for put in state.pending_puts {
            self.reply(put.client, put.mid, ReplyKind::OutcomeUnknown);
        }
        for read in state.pending_reads {
            self.reply(read.client, read.mid, ReplyKind::Redirect);
        }
        if let Some((_, Some((client, mid)))) = state.membership_change {
            self.reply(client, mid, ReplyKind::OutcomeUnknown);
        }
        for i in 0..self.peers.len() {
            self.outbox.push(Effect::CancelTimer {
                timer: Timer::Peer(i),
            });
        }
    }

    /// After the commit index moved: applies the committed entries once a batch of them
    /// waits (`Config::apply_batch`), then answers what the commit settles.
    pub(super) fn apply_committed(&mut self, now: Time) {
        assert!(
            self.commit_index <= self.log.last_index(),
            "commit index past the log"
        );
        if self.commit_index.0 - self.last_applied.0 >= self.config.apply_batch as u64 {
            self.apply_all_committed();
        }
        if self.role == Role::Leader {
            self.answer_committed_puts();
            self.answer_confirmed_reads(now);
            self.membership_after_commit(now);
        }
    }

    /// Applies every committed entry not applied yet.
    pub(super) fn apply_all_committed(&mut self) {
        if self.last_applied < self.commit_index {
            self.kv
                .apply_range(&self.log, self.last_applied.next(), self.commit_index);
            self.last_applied = self.commit_index;
        }
    }

    /// The value of `key` as of the commit index: the only way the core reads the state
    /// machine to answer a client, so no answer can see it behind.
    pub(super) fn read_committed(&mut self, key: &str) -> InlineStr {
        self.apply_all_committed();
        InlineStr::from(self.kv.get(&self.log, key))
    }
}

impl Node {
    // ----- what every message between a leader and its followers goes through first ----

    /// What every message from a would-be leader (an append, a snapshot chunk) goes
    /// through first: a stale term is answered by the caller so the sender steps down; a
    /// current one makes this replica its follower, heard from now.
    pub(super) fn hear_from_leader(&mut self, now: Time, from: NodeId, term: Term) -> LeaderCheck {
        if term < self.current_term {
            return LeaderCheck::Stale;
        }
        if term == self.current_term && self.role == Role::Leader {
            // Two leaders in one term cannot happen between correct replicas; this is a
            // confused or hostile peer, and obeying it could lose committed entries.
            return LeaderCheck::Confused;
        }
        if term > self.current_term || self.role != Role::Follower {
            self.become_follower(now, term, from);
        } else {
            self.leader = from;
        }
        self.leader_contact_at = Some(now);
        self.transfer_saw_leader(from, term);
        if !self.held.is_empty() {
            self.release_held_requests(now);
        }
        self.election_deadline = now + self.random_election_timeout();
        self.arm_election_timer(self.election_deadline);
        LeaderCheck::Current
    }

    /// The checks every answer from a follower (to an append or a snapshot chunk) passes
    /// first: a higher term makes this replica step down; otherwise it counts only if this
    /// replica leads and it answers a message of this leadership. Only an answer to a
    /// message of this leadership passed the follower's term check for this term: each is
    /// echoed with the time it was sent, and everything sent since `became_leader_at` was
    /// sent in this term. An answer to an older one (this replica led an earlier term) or
    /// an echo from the future counts for nothing: not for the lease, check-quorum, round
    /// trips or replication. The follower's position and the echoed send time.
    pub(super) fn answer_of_this_leadership(
        &mut self,
        now: Time,
        from: NodeId,
        term: Term,
        sent_at_us: u64,
    ) -> Option<(usize, Time)> {
        if term > self.current_term {
            self.become_follower(now, term, NodeId::UNKNOWN);
            return None;
        }
        if term < self.current_term || self.role != Role::Leader {
            return None;
        }
        let i = self.peers.iter().position(|&p| p == from)?;
        let sent_at = Time(sent_at_us);
        (sent_at >= self.became_leader_at && sent_at <= now).then_some((i, sent_at))
    }
}

/// What a message from a would-be leader's term makes of it (`Node::hear_from_leader`).
pub(super) enum LeaderCheck {
    /// Its term is behind ours: answer, so that it steps down, and do nothing else.
    Stale,
    /// It claims to lead in our own term while we do: ignore it.
    Confused,
    /// It is our current leader.
    Current,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} {} leader={} last={}@{} commit={}",
            self.config.id,
            self.current_term.0,
            self.role,
            self.leader,
            self.log.last_index().0,
            self.log.last_term().0,
            self.commit_index.0
        )
    }
}
