//! A whole cluster of Raft cores in one process, in virtual time: the deterministic
//! simulation the core is proven by (`tests/raft_simulation.rs`).
//!
//! One seeded generator decides every delay, drop, duplicate and client choice, and the
//! cores draw their election timeouts from seeds derived from it, so a seed replays
//! exactly. Events (deliveries, timers, client requests) run in virtual-time order; after
//! each, [`invariants::Invariants`] checks the safety properties of Raft.

pub mod history;
pub mod invariants;
pub mod network;
pub mod workload;

use harness::message::{copy_out, hand_in};
use harness::{Core, Cores, Outbox, OwnedMessage, open_mem_disk, peers_of};
use invariants::Invariants;
use network::{Links, NetworkConfig};
use raft::time::{Span, Time};
use raft::{
    ClientRequest, Config, LogIndex, MembershipChange, Message, Node, NodeId, Operation,
    OutgoingMessage, Reply, ReplyKind, Role, Term, Timer,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use storage::mem::{Failing, PAGE_BYTES, Tear};
use storage::{
    META_FILE, MemDisk, RETIRED_SUFFIX, SNAPSHOT_FILE, SPARE_FILE, StorageError, TEMP_SUFFIX,
};

/// A run that needs more events than this is storming (a timer re-armed in the past, a
/// message loop); it fails instead of hanging.
pub const EVENTS_MAX: u64 = 5_000_000;
/// The client ID an operator's leadership transfers come from, apart from any workload's.
pub const OPERATOR: NodeId = NodeId(0xFFFD);
/// How long a simulated sync takes, in microseconds: a fast disk's fdatasync.
const SYNC_DELAY_US_MIN: u64 = 50;
const SYNC_DELAY_US_MAX: u64 = 400;
const SLOW_SYNC_DELAY_US_MAX: u64 = 5_000;
const SLOW_SYNC_FRACTION: f64 = 0.1;
/// Of the crashes of durable replicas, the share that are power losses (unsynced writes
/// torn or lost) rather than process kills (the page cache survives them).
const POWER_LOSS_FRACTION: f64 = 0.5;
/// A write larger than this spans at least two pages, wherever it starts.
const LARGE_WRITE_BYTES: usize = PAGE_BYTES;

/// When a crash of a durable replica lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashAt {
    Now,
    /// Inside its next write, while the sync is in flight: a torn write.
    InNextWrite,
    /// Inside its next write of a snapshot (several files, renamed one after the other,
    /// each with its syncs): between any two of them.
    InNextSnapshotWrite,
    /// Inside its next write of more than `LARGE_WRITE_BYTES` (a follower catching up,
    /// say): one a power loss can tear out of order.
    InNextLargeWrite,
}

/// How a durable replica goes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// The process dies (SIGKILL, an exit): the page cache outlives it.
    Kill,
    /// The machine loses power: what was not synced is lost or torn.
    PowerLoss,
}

/// A client operation in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    Get { key: String },
    Put { key: String, value: String },
}

/// A client reply as it left a replica.
#[derive(Clone, Debug)]
pub struct ReplyRecord {
    pub at: Time,
    /// The replica that answered.
    pub from: usize,
    /// The replica's leader when it answered (the reply's `leader` field).
    pub leader: NodeId,
    pub reply: Reply,
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        message: OwnedMessage,
    },
    Timer {
        node: usize,
        slot: usize,
        generation: u64,
    },
    /// Requests that reach a replica together (one drain of its socket): all are handed
    /// to the core before it flushes, as the event loop does.
    Requests {
        to: usize,
        requests: Vec<(NodeId, String, ClientOp)>,
    },
    /// A durable replica's sync completes (`generation` tells a sync lost to a crash).
    Synced { node: usize, generation: u64 },
    /// A crashed durable replica starts again from its disk.
    Restart { node: usize },
    /// A crash planned to land while sync `generation` is in flight (`how`: `None` for
    /// either kind, at random).
    Kill {
        node: usize,
        generation: u64,
        down: Span,
        how: Option<Crash>,
        at: CrashAt,
    },
    /// An operator asks the replica to hand its leadership to `target`.
    Transfer { node: usize, target: NodeId },
    /// An operator asks the replica to change the membership.
    Membership {
        node: usize,
        change: MembershipChange,
    },
    /// A power loss planned for the replica's `incarnation` (after a kill and a restart).
    PowerLoss {
        node: usize,
        incarnation: u64,
        down: Span,
    },
}

struct Scheduled {
    at: Time,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What the simulation keeps of one replica beyond its core, timers and storage (which
/// are in `Cluster::cores`): its faults and its syncs in flight.
struct Replica {
    crashed: bool,
    paused_until: Option<Time>,
    /// Events that reached the replica while it was paused, in arrival order.
    parked: Vec<Event>,
    /// Messages to peers waiting for the next sync to be issued, and those waiting for
    /// the sync in flight (with the log index it makes durable): the event loop's
    /// contract (`replica::event_loop::durable`), with the sync taking time.
    held: Vec<(usize, OwnedMessage)>,
    in_sync: Option<InSync>,
    sync_generation: u64,
    /// Restarts so far.
    incarnation: u64,
    /// A crash waiting for the replica's next write (or snapshot write), to land in the
    /// middle of it: how long it stays down then, and its kind (`None`: either).
    crash_when_writing: Option<(Span, Option<Crash>, CrashAt)>,
    /// After its next restart, a power loss this long after it, down for the second span.
    power_loss_after_restart: Option<(Span, Span)>,
    /// Its last crash was a kill that left bytes of its log in the page cache, unsynced.
    killed_with_unsynced: bool,
    /// What its last power loss left of its files' unsynced bytes.
    tears: Vec<(String, Tear)>,
    /// A bit of its synced bytes flipped while it was down: its next start must refuse
    /// (or, in `meta`, may read the same identity, such as a hex digit in another case).
    damaged: Option<Damage>,
    /// Its next write or sync fails, and it stays down this long when it does.
    disk_failure: Option<(Failing, Span)>,
}

/// A bit flipped in a stopped replica's synced bytes.
struct Damage {
    /// Which bit of which byte of which file, for the message.
    what: String,
    /// In `meta`, whose text may read the same with the bit flipped (`a` and `A` are the
    /// same hex digit): a start is then no fault, as long as it recovers everything.
    in_meta: bool,
}

/// A sync in flight: the log index it makes durable, the messages that wait for it, and
/// what it will have made durable, for the invariants.
struct InSync {
    through: LogIndex,
    held: Vec<(usize, OwnedMessage)>,
    persisted: invariants::Persisted,
}

/// Counters over a run.
#[derive(Clone, Debug, Default)]
pub struct ClusterStats {
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub appends_sent: u64,
    pub entries_sent: u64,
    /// Chunks of InstallSnapshot sent (to a follower behind the leader's compaction).
    pub snapshot_chunks_sent: u64,
    pub events: u64,
    pub syncs: u64,
    pub restarts: u64,
    /// Restarts that found a torn last write and cut it.
    pub torn_tails: u64,
    /// Of those, the ones after a power loss that left the log's unsynced bytes with
    /// holes, not as a prefix.
    pub torn_tails_non_prefix: u64,
    /// Restarts whose log ended before the end of its last segment's file: in the
    /// zeros of a preallocated segment.
    pub restarts_in_preallocated: u64,
    /// Crashes of durable replicas: process kills (the page cache outlives them) and
    /// power losses.
    pub kills: u64,
    pub power_losses: u64,
    /// Power losses that left some file's unsynced bytes with holes (`Tear::Holes`), and
    /// of those, with a page kept after a page lost.
    pub non_prefix_tears: u64,
    pub out_of_order_tears: u64,
    /// Crashes that landed between the syncs of one write: some completed, some not (a
    /// snapshot renamed into place durably, the new log not yet, say).
    pub crashes_between_syncs: u64,
    /// Power losses of a replica whose last crash was a kill that left unsynced bytes of
    /// its log in the page cache, and that was restarted in between.
    pub power_losses_after_kill: u64,
    /// Bits flipped in synced bytes of a replica that was down, and starts it refused
    /// for them (it then stays down for good).
    pub bit_flips: u64,
    pub refused_starts: u64,
    /// Bits flipped in `meta` that left it saying the same (a hex digit's case).
    pub flips_read_the_same: u64,
    /// Writes and syncs that failed: the replica stopped, to be started again later.
    pub write_failures: u64,
    pub sync_failures: u64,
    /// Leadership transfers asked for, and of those, the ones answered that the target
    /// leads now (the rest were answered that it did not win in time, or never reached a
    /// leader).
    pub transfers: u64,
    pub transfers_done: u64,
    /// Membership changes asked for, refused at once (nothing appended), and answered
    /// committed.
    pub membership_asked: u64,
    pub membership_refused: u64,
    pub membership_done: u64,
}

/// What an operator's outstanding request was.
#[derive(Debug)]
enum OperatorAsk {
    Transfer(NodeId),
    /// The index its membership entry was appended at.
    Membership(LogIndex),
}

impl ClusterStats {
    /// The disk faults a durable run reached, by class, named for a summary line.
    pub fn disk_faults(&self) -> [(&'static str, u64); 16] {
        [
            ("restarts", self.restarts),
            ("kills", self.kills),
            ("power losses", self.power_losses),
            ("non-prefix tears", self.non_prefix_tears),
            ("out-of-order tears", self.out_of_order_tears),
            ("torn tails cut", self.torn_tails),
            ("non-prefix tails cut", self.torn_tails_non_prefix),
            (
                "restarts in a preallocated segment",
                self.restarts_in_preallocated,
            ),
            ("crashes between syncs", self.crashes_between_syncs),
            ("power losses after a kill", self.power_losses_after_kill),
            ("bit flips", self.bit_flips),
            ("refused starts", self.refused_starts),
            ("flips read the same", self.flips_read_the_same),
            ("write failures", self.write_failures),
            ("sync failures", self.sync_failures),
            ("syncs", self.syncs),
        ]
    }
}

pub struct Cluster {
    now: Time,
    ids: Vec<NodeId>,
    /// Each replica's core, timers and (when durable) storage on a simulated disk.
    cores: Cores,
    replicas: Vec<Replica>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    rng: SmallRng,
    pub network: NetworkConfig,
    pub links: Links,
    /// Client messages take this long each way; they are never lost (as in the classic
    /// simulator).
    pub client_delay: Span,
    /// Reused for every core's effects.
    actions: Actions,
    fates: Vec<Span>,
    replies: Vec<ReplyRecord>,
    pub stats: ClusterStats,
    invariants: Invariants,
    /// Check the invariants after every event (on by default; a benchmark turns it off).
    pub check_invariants: bool,
    /// Requests delivered and not yet answered: (client, MID) -> (replica, operation).
    /// A `BTreeMap`, like every map here, so that nothing in a run depends on a hash seed.
    outstanding: BTreeMap<(NodeId, String), (usize, ClientOp)>,
    /// An operator's requests (leadership transfers, membership changes) not yet
    /// answered: MID -> (replica asked, what).
    transfers_outstanding: BTreeMap<String, (usize, OperatorAsk)>,
    violation: Option<String>,
    /// Print every event to stderr (off by default; a test turns it on to replay a seed).
    pub trace: bool,
}

impl Cluster {
    /// `n` replicas `0000..`, each configured by `configure` from the defaults.
    pub fn new(n: usize, seed: u64, mut configure: impl FnMut(&mut Config)) -> Cluster {
        assert!(n >= 1);
        let ids: Vec<NodeId> = (0..n).map(|i| NodeId(i as u16)).collect();
        let mut rng = SmallRng::seed_from_u64(seed);
        let cores = ids
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, peers_of(&ids, id), rng.random());
                configure(&mut config);
                let storage = config
                    .durable
                    .then(|| open_disk(&config, MemDisk::default(), rng.random()))
                    .map(|opened| opened.expect("an empty disk opens").0);
                Core::new(Node::new(config, Time::ZERO), storage)
            })
            .collect();
        let replicas = ids
            .iter()
            .map(|_| Replica {
                crashed: false,
                paused_until: None,
                parked: Vec::new(),
                held: Vec::new(),
                in_sync: None,
                sync_generation: 0,
                incarnation: 0,
                crash_when_writing: None,
                power_loss_after_restart: None,
                killed_with_unsynced: false,
                tears: Vec::new(),
                damaged: None,
                disk_failure: None,
            })
            .collect();
        let mut cluster = Cluster {
            now: Time::ZERO,
            links: Links::new(n),
            ids,
            cores: Cores::new(cores),
            replicas,
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            network: NetworkConfig::reliable(),
            client_delay: Span::from_micros(50),
            actions: Actions::default(),
            fates: Vec::new(),
            replies: Vec::new(),
            transfers_outstanding: BTreeMap::new(),
            stats: ClusterStats::default(),
            invariants: Invariants::new(n),
            check_invariants: true,
            outstanding: BTreeMap::new(),
            violation: None,
            trace: false,
        };
        for i in 0..n {
            cluster.carry_out_effects(i);
        }
        cluster
    }

    pub fn now(&self) -> Time {
        self.now
    }
    pub fn len(&self) -> usize {
        self.replicas.len()
    }
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }
    pub fn node(&self, i: usize) -> &Node {
        self.cores.node(i)
    }
    pub fn id(&self, i: usize) -> NodeId {
        self.ids[i]
    }
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.ids.iter().position(|&x| x == id)
    }
    pub fn is_crashed(&self, i: usize) -> bool {
        self.replicas[i].crashed
    }
    /// How many times replica `i` has restarted.
    pub fn incarnation(&self, i: usize) -> u64 {
        self.replicas[i].incarnation
    }
    pub fn is_paused(&self, i: usize) -> bool {
        self.replicas[i].paused_until.is_some()
    }
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }
    pub fn invariants(&self) -> &Invariants {
        &self.invariants
    }

    /// The replica a majority of live replicas follow as leader in its own term, if any.
    pub fn stable_leader(&self) -> Option<usize> {
        (0..self.len()).find(|&i| {
            let r = &self.replicas[i];
            let node = self.cores.node(i);
            if r.crashed || r.paused_until.is_some() || node.role() != Role::Leader {
                return false;
            }
            let term = node.term();
            let membership = node.membership();
            let followers = (0..self.len())
                .filter(|&j| {
                    let o = self.cores.node(j);
                    !self.replicas[j].crashed
                        && membership.is_voter(self.ids[j])
                        && o.term() == term
                        && o.leader() == self.ids[i]
                })
                .count();
            followers >= membership.quorum()
        })
    }

    // ----- faults -------------------------------------------------------------------

    /// Stops replica `i` for good (SIGTERM: its state and queued messages are gone).
    pub fn crash(&mut self, i: usize) {
        self.replicas[i].crashed = true;
        self.replicas[i].parked.clear();
        // What it owed is never answered, as with a real crash.
        self.outstanding.retain(|_, (to, _)| *to != i);
        self.transfers_outstanding
            .retain(|_, (asked, _)| *asked != i);
    }

    /// Requests delivered to a live replica and not yet answered.
    pub fn requests_unanswered(&self) -> usize {
        self.outstanding.len()
    }

    /// The replicas in the latest membership a live replica holds, by position: what a
    /// client asking the cluster who is in it would learn (Redis clients ask `CLUSTER
    /// NODES`). `None` if every replica is down.
    pub fn members_hint(&self) -> Option<Vec<usize>> {
        let latest = (0..self.len())
            .filter(|&i| !self.replicas[i].crashed)
            .max_by_key(|&i| {
                let node = self.cores.node(i);
                (node.membership_index(), node.term())
            })?;
        let membership = self.cores.node(latest).membership();
        Some(
            (0..self.len())
                .filter(|&i| membership.contains(self.ids[i]))
                .collect(),
        )
    }

    /// The same, each as `replica: client MID operation`, for a failure's message.
    pub fn describe_unanswered(&self) -> Vec<String> {
        self.outstanding
            .iter()
            .map(|((client, mid), (to, op))| format!("{}: {client} {mid} {op:?}", self.ids[*to]))
            .collect()
    }

    /// Freezes replica `i` (SIGSTOP): messages and timers wait for `resume`.
    pub fn pause(&mut self, i: usize) {
        if !self.replicas[i].crashed {
            self.replicas[i].paused_until = Some(Time(u64::MAX));
        }
    }

    /// Wakes replica `i` (SIGCONT): what waited is handled now, with the current time.
    pub fn resume(&mut self, i: usize) {
        self.replicas[i].paused_until = None;
        let parked = std::mem::take(&mut self.replicas[i].parked);
        for event in parked {
            self.schedule(self.now, event);
        }
    }

    // ----- clients ------------------------------------------------------------------

    /// A client request reaching replica `to` after the client delay.
    pub fn submit(&mut self, to: usize, client: NodeId, mid: String, op: ClientOp) {
        self.submit_batch(to, vec![(client, mid, op)]);
    }

    /// Requests that reach replica `to` in one batch (one socket drain).
    pub fn submit_batch(&mut self, to: usize, requests: Vec<(NodeId, String, ClientOp)>) {
        let at = self.now + self.client_delay;
        self.schedule(at, Event::Requests { to, requests });
    }

    /// Replies produced since the last call.
    pub fn take_replies(&mut self, into: &mut Vec<ReplyRecord>) {
        into.append(&mut self.replies);
    }

    // ----- running ------------------------------------------------------------------

    /// Runs events up to and including time `until`; time then stands at `until`.
    /// Stops early (returning the violation) if an invariant breaks.
    pub fn run_until(&mut self, until: Time) -> Result<(), String> {
        while self.queue.peek().is_some_and(|s| s.at <= until) {
            self.step()?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Runs one event. Returns `Ok(false)` when nothing is scheduled.
    pub fn step(&mut self) -> Result<bool, String> {
        let Some(Scheduled { at, event, .. }) = self.queue.pop() else {
            return Ok(false);
        };
        self.now = self.now.max(at);
        self.stats.events += 1;
        if self.stats.events > EVENTS_MAX {
            return Err(format!(
                "event storm: more than {EVENTS_MAX} events by {:?}",
                self.now
            ));
        }
        let target = match &event {
            Event::Deliver { to, .. } => *to,
            Event::Timer { node, .. } => *node,
            Event::Requests { to, .. } => *to,
            Event::Transfer { node, .. } | Event::Membership { node, .. } => *node,
            Event::Synced { node, .. }
            | Event::Restart { node }
            | Event::Kill { node, .. }
            | Event::PowerLoss { node, .. } => *node,
        };
        match event {
            Event::Restart { node } => return self.restart(node).map(|()| true),
            Event::Kill {
                node,
                generation,
                down,
                how,
                at,
            } => {
                let r = &self.replicas[node];
                if !r.crashed && r.in_sync.is_some() && r.sync_generation == generation {
                    self.crash_and_restart_as(node, down, CrashAt::Now, how);
                } else if !r.crashed {
                    // The sync completed first: wait for the next write.
                    self.replicas[node].crash_when_writing = Some((down, how, at));
                }
                return Ok(true);
            }
            Event::PowerLoss {
                node,
                incarnation,
                down,
            } => {
                let r = &self.replicas[node];
                if !r.crashed && r.incarnation == incarnation {
                    self.crash_and_restart_as(node, down, CrashAt::Now, Some(Crash::PowerLoss));
                }
                return Ok(true);
            }
            _ => {}
        }
        let replica = &self.replicas[target];
        if replica.crashed {
            return Ok(true);
        }
        if replica.paused_until.is_some() {
            // Frozen: the event waits in the socket buffer, so to speak, until `resume`.
            self.replicas[target].parked.push(event);
            return Ok(true);
        }
        let now = self.now;
        if self.trace {
            eprintln!("{now:?} -> {}: {event:?}", self.ids[target]);
        }
        match event {
            Event::Deliver { to, from, message } => {
                self.stats.messages_delivered += 1;
                let from_id = self.ids[from];
                if let Err(dropped) = hand_in(self.cores.node_mut(to), now, from_id, &message) {
                    // Every replica here is correct (a removed one, or one not added yet,
                    // is still a configured peer): a refusal is a bug in the sender or in
                    // the check.
                    self.violation.get_or_insert(format!(
                        "{} dropped a message from {from_id}: {dropped}",
                        self.ids[to]
                    ));
                }
            }
            Event::Timer {
                node,
                slot,
                generation,
            } => {
                let core = self.cores.core_mut(node);
                if !core.timers.take_if_current(slot, generation) {
                    return Ok(true);
                }
                core.node.handle_timer(now, Timer::from_slot(slot));
            }
            Event::Synced { node, generation } => {
                if generation != self.replicas[node].sync_generation {
                    return Ok(true);
                }
                self.complete_sync(node);
            }
            Event::Restart { .. } | Event::Kill { .. } | Event::PowerLoss { .. } => {
                unreachable!("handled above")
            }
            Event::Membership { node, change } => {
                self.stats.membership_asked += 1;
                let mid = format!("membership{}", self.stats.membership_asked);
                let asked = self
                    .cores
                    .node_mut(node)
                    .change_membership(now, change, OPERATOR, &mid);
                match asked {
                    Ok(()) => {
                        let index = self.cores.node(node).membership_index();
                        self.transfers_outstanding
                            .insert(mid, (node, OperatorAsk::Membership(index)));
                    }
                    Err(_) => self.stats.membership_refused += 1,
                }
            }
            Event::Transfer { node, target } => {
                self.stats.transfers += 1;
                let mid = format!("transfer{}", self.stats.transfers);
                self.transfers_outstanding
                    .insert(mid.clone(), (node, OperatorAsk::Transfer(target)));
                self.cores
                    .node_mut(node)
                    .transfer_leadership(now, target, OPERATOR, &mid);
            }
            Event::Requests { to, requests } => {
                for (client, mid, op) in requests {
                    if self
                        .outstanding
                        .insert((client, mid.clone()), (to, op.clone()))
                        .is_some()
                    {
                        return Err(format!("client {client} reused MID {mid}"));
                    }
                    let operation = match &op {
                        ClientOp::Get { key } => Operation::Get { key },
                        ClientOp::Put { key, value } => Operation::Put { key, value },
                    };
                    self.cores.node_mut(to).handle_client_request(
                        now,
                        ClientRequest {
                            client,
                            mid: &mid,
                            operation,
                        },
                    );
                }
            }
        }
        self.cores.input(target, now, |_| {});
        self.carry_out_effects(target);
        self.issue_sync(target);
        if let Some(violation) = self.violation.take() {
            return Err(violation);
        }
        if self.check_invariants {
            let nodes: Vec<&Node> = self.cores.nodes().collect();
            self.invariants.check_after_step(&nodes, target)?;
        }
        Ok(true)
    }

    fn schedule(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    fn carry_out_effects(&mut self, i: usize) {
        let mut actions = std::mem::take(&mut self.actions);
        self.cores.carry_out(i, &mut actions);
        for action in actions.0.drain(..) {
            match action {
                Action::Send { to, sent, owned } => {
                    let Some(j) = self.index_of(to) else { continue };
                    self.stats.messages_sent += 1;
                    match sent {
                        Message::AppendEntries(m) => {
                            self.stats.appends_sent += 1;
                            self.stats.entries_sent += u64::from(m.entries.count);
                        }
                        Message::InstallSnapshot(_) => self.stats.snapshot_chunks_sent += 1,
                        _ => {}
                    }
                    // `None`: a chunk cut from a snapshot since replaced: lost.
                    let Some(owned) = owned else { continue };
                    if self.cores.core(i).storage.is_some()
                        && !matches!(
                            owned,
                            Message::AppendEntries(_) | Message::InstallSnapshot(_)
                        )
                    {
                        self.replicas[i].held.push((j, owned));
                        continue;
                    }
                    self.transmit(i, j, owned);
                }
                Action::Reply(reply) if reply.client == OPERATOR => {
                    self.transfer_answered(i, reply);
                }
                Action::Reply(reply) => {
                    let record = ReplyRecord {
                        at: self.now,
                        from: i,
                        leader: self.cores.node(i).leader(),
                        reply,
                    };
                    let key = (record.reply.client, record.reply.mid.as_str().to_owned());
                    match self.outstanding.remove(&key) {
                        None => {
                            self.violation.get_or_insert(format!(
                                "{} replied to {} MID {} which it does not owe (a second reply?)",
                                self.ids[i], key.0, key.1
                            ));
                        }
                        Some((to, _)) if to != i => {
                            self.violation.get_or_insert(format!(
                                "{} replied to MID {} sent to {}",
                                self.ids[i], key.1, self.ids[to]
                            ));
                        }
                        Some((_, op)) => {
                            if self.check_invariants
                                && let Err(e) =
                                    self.invariants
                                        .record_reply(self.cores.node(i), &record, &op)
                            {
                                self.violation.get_or_insert(e);
                            }
                        }
                    }
                    self.replies.push(record);
                }
                Action::TimerSet {
                    slot,
                    at,
                    generation,
                } => {
                    let at = at.max(self.now);
                    self.schedule(
                        at,
                        Event::Timer {
                            node: i,
                            slot,
                            generation,
                        },
                    );
                }
            }
        }
        self.actions = actions;
    }

    /// An operator's request was answered by replica `i`: exactly once, by the replica
    /// asked; a transfer `ok` only once that replica hears the target lead, a membership
    /// change `ok` only once it is committed there.
    fn transfer_answered(&mut self, i: usize, reply: Reply) {
        let Some((asked, what)) = self.transfers_outstanding.remove(reply.mid.as_str()) else {
            self.violation.get_or_insert(format!(
                "{} answered transfer {} it does not owe",
                self.ids[i], reply.mid
            ));
            return;
        };
        let node = self.cores.node(i);
        let target = match what {
            OperatorAsk::Transfer(target) => target,
            OperatorAsk::Membership(index) => {
                let ok = matches!(reply.kind, ReplyKind::Ok { .. });
                if asked != i || (ok && index > node.commit_index()) {
                    self.violation.get_or_insert(format!(
                        "{} answered membership change {} (asked of {}, appended at {}) {:?} with its commit index at {}",
                        self.ids[i],
                        reply.mid,
                        self.ids[asked],
                        index.0,
                        reply.kind,
                        node.commit_index().0
                    ));
                }
                self.stats.membership_done += u64::from(ok);
                return;
            }
        };
        if asked != i {
            self.violation.get_or_insert(format!(
                "{} answered transfer {} asked of {}",
                self.ids[i], reply.mid, self.ids[asked]
            ));
        } else if matches!(reply.kind, ReplyKind::Ok { .. }) {
            if node.leader() != target {
                self.violation.get_or_insert(format!(
                    "{} answered transfer {} to {target} ok while its leader is {}",
                    self.ids[i],
                    reply.mid,
                    node.leader()
                ));
            }
            self.stats.transfers_done += 1;
        }
    }

    /// Asks replica `i`, after the client delay, to hand its leadership to `target`
    /// (`Node::transfer_leadership`), as an operator would.
    pub fn transfer_leadership(&mut self, i: usize, target: NodeId) {
        let at = self.now + self.client_delay;
        self.schedule(at, Event::Transfer { node: i, target });
    }

    /// Asks replica `i`, after the client delay, to change the membership
    /// (`Node::change_membership`), as an operator would.
    pub fn change_membership(&mut self, i: usize, change: MembershipChange) {
        let at = self.now + self.client_delay;
        self.schedule(at, Event::Membership { node: i, change });
    }

    /// Transfers and membership changes asked for and not yet answered.
    pub fn transfers_unanswered(&self) -> usize {
        self.transfers_outstanding.len()
    }

    /// Puts a message from `i` on the network to `j`, as it leaves the replica.
    fn transmit(&mut self, i: usize, j: usize, message: OwnedMessage) {
        if let Message::RequestVoteResponse(v) = &message
            && v.vote_granted
            && !v.pre_vote
            && self.check_invariants
            && let Err(e) = self.invariants.record_vote(i, v.term, self.ids[j])
        {
            self.violation.get_or_insert(e);
        }
        if self.links.is_blocked(i, j) {
            return;
        }
        let mut fates = std::mem::take(&mut self.fates);
        network::fate(&self.network, &mut self.rng, &mut fates);
        for &delay in &fates {
            let at = self.now + delay;
            self.schedule(
                at,
                Event::Deliver {
                    to: j,
                    from: i,
                    message: message.clone(),
                },
            );
        }
        self.fates = fates;
    }

    // ----- durable replicas ---------------------------------------------------------

    /// Writes what replica `i`'s core changed and issues a sync, unless one is in flight
    /// (then the next one takes it). The messages held so far wait for this sync.
    fn issue_sync(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        if r.in_sync.is_some() || r.crashed {
            return;
        }
        let Core { node, storage, .. } = self.cores.core_mut(i);
        let Some(storage) = storage.as_mut() else {
            return;
        };
        let changes = node.take_unpersisted();
        let snapshot_write = changes.snapshot.is_some();
        let last = node.log().last_index();
        storage::save_changes(storage, node, changes);
        if !storage.has_pending() && r.held.is_empty() {
            return;
        }
        if storage.has_pending()
            && let Some((what, _)) = r.disk_failure
        {
            // Only a write that reaches the disk can meet the failure.
            storage.disk_mut().fail_next(what);
        }
        let wants_large = matches!(
            r.crash_when_writing,
            Some((_, _, CrashAt::InNextLargeWrite))
        );
        let log_bytes = |disk: &MemDisk| -> usize {
            disk.names()
                .filter(|name| is_log_file(name))
                .filter_map(|name| disk.len(name))
                .sum()
        };
        let bytes_before = if wants_large {
            log_bytes(storage.disk())
        } else {
            0
        };
        // Into the disk's write in flight; durable when `Synced` comes.
        if storage.sync().is_err() {
            self.stop_on_storage_failure(i);
            return;
        }
        let large_write = wants_large
            && log_bytes(storage.disk()).saturating_sub(bytes_before) > LARGE_WRITE_BYTES;
        let persisted = invariants::Persisted {
            term: node.term(),
            voted_for: node.voted_for(),
            through: last,
            term_at_through: node.log().term_at(last).unwrap_or(Term(0)),
        };
        r.in_sync = Some(InSync {
            through: last,
            held: std::mem::take(&mut r.held),
            persisted,
        });
        r.sync_generation += 1;
        let generation = r.sync_generation;
        self.stats.syncs += 1;
        let crash = r.crash_when_writing.take_if(|(_, _, at)| match at {
            CrashAt::InNextSnapshotWrite => snapshot_write,
            CrashAt::InNextLargeWrite => large_write,
            _ => true,
        });
        // Mostly quick; now and then a slow one (a busy disk), so that a leader's own
        // write can lag its followers' answers.
        let slowest = if self.rng.random_bool(SLOW_SYNC_FRACTION) {
            SLOW_SYNC_DELAY_US_MAX
        } else {
            SYNC_DELAY_US_MAX
        };
        let delay = Span::from_micros(self.rng.random_range(SYNC_DELAY_US_MIN..=slowest));
        self.schedule(
            self.now + delay,
            Event::Synced {
                node: i,
                generation,
            },
        );
        if let Some((down, how, crash_at)) = crash {
            // Anywhere inside the write: before it, while answers to what it holds come
            // in, or just before it completes.
            let at = self.now + Span(self.rng.random_range(0..delay.as_micros().max(1)));
            self.schedule(
                at,
                Event::Kill {
                    node: i,
                    generation,
                    down,
                    how,
                    at: crash_at,
                },
            );
        }
    }

    /// Replica `i`'s sync completed: what it wrote is durable, the leader may count its
    /// own log that far, and the messages that waited leave. The core's new effects are
    /// carried out and the next sync issued by the caller (`step`).
    fn complete_sync(&mut self, i: usize) {
        let now = self.now;
        let r = &mut self.replicas[i];
        let Some(InSync {
            through,
            held,
            persisted,
        }) = r.in_sync.take()
        else {
            return;
        };
        let core = self.cores.core_mut(i);
        if let Some(storage) = core.storage.as_mut() {
            storage.disk_mut().complete_syncs();
        }
        core.node.persisted(now, through);
        if self.check_invariants {
            self.invariants.persisted(i, persisted);
        }
        for (j, message) in held {
            self.transmit(i, j, message);
        }
    }

    /// Replica `i`'s write or sync failed: it stops, as the real replica exits, and is
    /// started again later from what its disk kept (the page cache outlives the process).
    fn stop_on_storage_failure(&mut self, i: usize) {
        let Some((what, down)) = self.replicas[i].disk_failure.take() else {
            self.violation.get_or_insert(format!(
                "{}: its simulated disk failed unasked",
                self.ids[i]
            ));
            return;
        };
        match what {
            Failing::Write => self.stats.write_failures += 1,
            Failing::Sync => self.stats.sync_failures += 1,
        }
        self.crash_disk(i, Crash::Kill);
        self.schedule(self.now + down, Event::Restart { node: i });
    }

    /// Replica `i` crashes and comes back from its disk after `down`: a process kill (the
    /// page cache survives, the syncs it waited for may not have completed) or, in
    /// `POWER_LOSS_FRACTION` of them, a power loss (what was not synced is lost, the last
    /// unsynced write of each file torn in any of its pages). Its requests are never
    /// answered, as with any crash. Only a durable replica can come back.
    /// `at`: now, or inside the replica's next write (or snapshot write), so that torn
    /// writes happen, not only crashes between writes.
    pub fn crash_and_restart(&mut self, i: usize, down: Span, at: CrashAt) {
        self.crash_and_restart_as(i, down, at, None);
    }

    /// `crash_and_restart`, of the kind `how` (`None`: either, at random).
    pub fn crash_and_restart_as(&mut self, i: usize, down: Span, at: CrashAt, how: Option<Crash>) {
        assert!(
            self.cores.core(i).storage.is_some(),
            "only a durable replica restarts"
        );
        let in_flight = self.replicas[i].in_sync.is_some();
        if at != CrashAt::Now && (at != CrashAt::InNextWrite || !in_flight) {
            self.replicas[i].crash_when_writing = Some((down, how, at));
            return;
        }
        let how = how.unwrap_or_else(|| {
            if self.rng.random_bool(POWER_LOSS_FRACTION) {
                Crash::PowerLoss
            } else {
                Crash::Kill
            }
        });
        self.crash_disk(i, how);
        self.schedule(self.now + down, Event::Restart { node: i });
    }

    /// Replica `i` is killed in its next write, restarted after `down`, and `after` that
    /// loses power, down for `down_again`: what the killed process left in the page cache
    /// must have been made durable before the restarted one promised anything on it.
    pub fn kill_then_lose_power(&mut self, i: usize, down: Span, after: Span, down_again: Span) {
        self.replicas[i].power_loss_after_restart = Some((after, down_again));
        self.crash_and_restart_as(i, down, CrashAt::InNextWrite, Some(Crash::Kill));
    }

    /// The next write or sync of replica `i` that reaches its disk fails; it then stops,
    /// and starts again `down` later.
    pub fn fail_next_write(&mut self, i: usize, what: Failing, down: Span) {
        self.replicas[i].disk_failure = Some((what, down));
    }

    /// Replica `i` crashes (a kill or a power loss), and while it is down one bit of its
    /// synced bytes flips where the format promises to notice: anywhere in `meta` or the
    /// snapshot, or in a log file before its last whole batch or sync mark (damage to the
    /// last one cannot be told from a torn write once a power loss took its sync mark).
    /// Its next start must refuse (for `meta`, unless the identity reads the same); it
    /// then stays down for good. Returns where the bit flipped, or `None` if no synced
    /// byte qualified (then it restarts as from any crash).
    pub fn crash_and_damage(&mut self, i: usize, down: Span) -> Option<String> {
        self.crash_and_restart_as(i, down, CrashAt::Now, None);
        let disk = self.cores.core_mut(i).storage.as_mut()?.disk_mut();
        let mut targets: Vec<(String, usize)> = Vec::new();
        for name in disk.names().map(str::to_owned).collect::<Vec<_>>() {
            let synced = disk.synced_len(&name).unwrap_or(0);
            let damageable = if name == SNAPSHOT_FILE || name == META_FILE {
                synced
            } else if is_log_file(&name) {
                let bytes = storage::Disk::read(disk, &name)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                synced.min(wal_format::last_unit_start(&bytes))
            } else {
                0
            };
            if damageable > 0 {
                targets.push((name, damageable));
            }
        }
        if targets.is_empty() {
            return None;
        }
        let (name, len) = &targets[self.rng.random_range(0..targets.len())];
        let offset = self.rng.random_range(0..*len);
        let bit = self.rng.random_range(0..8u8);
        assert!(disk.flip_bit(name, offset, bit), "{name} has byte {offset}");
        let what = format!("bit {bit} of byte {offset} of {name} ({len} damageable)");
        self.replicas[i].damaged = Some(Damage {
            what: what.clone(),
            in_meta: name == META_FILE,
        });
        self.stats.bit_flips += 1;
        Some(what)
    }

    /// Replica `i` goes down as `how` says; its disk is left as that crash leaves it.
    fn crash_disk(&mut self, i: usize, how: Crash) {
        self.crash(i);
        let r = &mut self.replicas[i];
        let disk = (self.cores.core_mut(i).storage)
            .as_mut()
            .expect("only a durable replica restarts")
            .disk_mut();
        // The process waits on one sync at a time: the crash lands in one of them, the
        // ones before it done.
        let issued = disk.issued_syncs();
        if issued > 1 {
            let done = self.rng.random_range(0..issued);
            disk.complete_some(done);
            self.stats.crashes_between_syncs += u64::from(done > 0);
        }
        match how {
            Crash::Kill => {
                disk.kill();
                self.stats.kills += 1;
                r.killed_with_unsynced = disk
                    .names()
                    .filter(|name| is_log_file(name))
                    .any(|name| disk.synced_len(name) < disk.len(name));
                r.tears.clear();
            }
            Crash::PowerLoss => {
                if std::mem::take(&mut r.killed_with_unsynced) {
                    self.stats.power_losses_after_kill += 1;
                }
                r.tears = disk.lose_power(&mut self.rng);
                self.stats.power_losses += 1;
                let holes = |out_of_order_only: bool| {
                    r.tears.iter().any(|(_, tear)| match tear {
                        Tear::Holes { out_of_order } => *out_of_order || !out_of_order_only,
                        _ => false,
                    })
                };
                self.stats.non_prefix_tears += u64::from(holes(false));
                self.stats.out_of_order_tears += u64::from(holes(true));
            }
        }
        r.held.clear();
        r.in_sync = None;
        r.crash_when_writing = None;
        r.sync_generation += 1;
    }

    /// Replica `i` starts again on its disk, through the same `Storage::open` as a real
    /// replica, and comes back as `Recovered::restore` makes it; or, if a bit of its
    /// synced bytes flipped while it was down, refuses to start and stays down.
    fn restart(&mut self, i: usize) -> Result<(), String> {
        let now = self.now;
        let seed = self.rng.random();
        let id = self.ids[i];
        let r = &mut self.replicas[i];
        let core = self.cores.core_mut(i);
        let Some(storage) = core.storage.take() else {
            return Ok(());
        };
        let mut config = core.node.config().clone();
        config.seed = seed;
        // No head start now: the cluster has been running.
        config.startup_delay = Span::ZERO;
        let (storage, recovered) =
            match (open_disk(&config, storage.into_disk(), 0), r.damaged.take()) {
                (Ok(opened), None) => opened,
                (Ok(opened), Some(Damage { in_meta: true, .. })) => {
                    // The identity read the same: the invariants check that it recovered all
                    // it had made durable.
                    self.stats.flips_read_the_same += 1;
                    opened
                }
                (Ok(_), Some(damage)) => {
                    return Err(format!(
                        "{id} started though {} had flipped: damage to synced bytes went unnoticed",
                        damage.what
                    ));
                }
                (Err(e), Some(damage)) if refuses_damage(&e, damage.in_meta) => {
                    // As the real replica does: one line, and it never joins. Its disk is
                    // gone with it.
                    self.stats.refused_starts += 1;
                    return Ok(());
                }
                (Err(e), _) => return Err(format!("{id}: its disk does not recover: {e}")),
            };
        if recovered.unwritten_tail_bytes > 0 {
            self.stats.restarts_in_preallocated += 1;
        }
        if recovered.torn_tail.is_some() {
            self.stats.torn_tails += 1;
            if r.tears
                .iter()
                .any(|(name, tear)| is_log_file(name) && matches!(tear, Tear::Holes { .. }))
            {
                self.stats.torn_tails_non_prefix += 1;
            }
        }
        r.tears.clear();
        core.restart_as(storage, recovered, config, now);
        r.crashed = false;
        r.paused_until = None;
        r.incarnation += 1;
        if let Some((after, down)) = r.power_loss_after_restart.take() {
            let incarnation = r.incarnation;
            self.schedule(
                now + after,
                Event::PowerLoss {
                    node: i,
                    incarnation,
                    down,
                },
            );
        }
        self.stats.restarts += 1;
        if self.check_invariants {
            self.invariants
                .restarted(i, self.cores.node(i))
                .map_err(|e| format!("{id} restarted from its disk: {e}"))?;
        }
        self.carry_out_effects(i);
        Ok(())
    }
}

/// Whether `error` is the refusal a flipped bit must cause: damage named, or (for a bit
/// of `meta`) a directory that is no longer this replica's.
fn refuses_damage(error: &StorageError, in_meta: bool) -> bool {
    match error {
        StorageError::Corrupt { .. } => true,
        StorageError::UnknownFormat { .. }
        | StorageError::OtherReplica { .. }
        | StorageError::OtherCluster { .. } => in_meta,
        _ => false,
    }
}

/// Whether `name` is one of a data directory's log files (the write-ahead log, in one
/// file or in segments): not its `meta`, its snapshot, a file not yet renamed into place
/// (the next segment, preallocated, among them), or one retired on its way out.
fn is_log_file(name: &str) -> bool {
    name != META_FILE
        && name != SNAPSHOT_FILE
        && name != SPARE_FILE
        && !name.ends_with(TEMP_SUFFIX)
        && !name.ends_with(RETIRED_SUFFIX)
}

/// The write-ahead log's framing as the `storage` crate documents it, read here on its own
/// so that a flipped bit is placed by this model of the format and not by the code under
/// test: records are `[payload length u32][crc32 u32][kind u8][payload]`, little-endian,
/// the checksum over the kind and the payload; a batch head (kind 4) carries the nonce,
/// the sequence number, the length and the CRC-32 of the records that follow it; a sync
/// mark (kind 5) the nonce and sequence number.
mod wal_format {
    const HEADER_BYTES: usize = 9;
    const KIND_BATCH: u8 = 4;
    const KIND_SYNC_MARK: u8 = 5;

    /// Where the last whole batch or sync mark of `bytes` starts, reading from the first
    /// and stopping at the first damage (0 if there is none, or only one).
    pub fn last_unit_start(bytes: &[u8]) -> usize {
        let (mut at, mut last) = (0, 0);
        while let Some(end) = unit_end(bytes, at) {
            last = at;
            at = end;
        }
        last
    }

    fn unit_end(bytes: &[u8], at: usize) -> Option<usize> {
        let u32_at = |i: usize| Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?));
        let len = u32_at(at)? as usize;
        let crc = u32_at(at + 4)?;
        let kind = *bytes.get(at + 8)?;
        let end = (at + HEADER_BYTES).checked_add(len)?;
        if crc32(bytes.get(at + 8..end)?) != crc {
            return None;
        }
        match kind {
            KIND_SYNC_MARK => Some(end),
            KIND_BATCH => {
                let payload = &bytes[at + HEADER_BYTES..end];
                let body_len = u64::from_le_bytes(payload.get(16..24)?.try_into().ok()?);
                let body_crc = u32::from_le_bytes(payload.get(24..28)?.try_into().ok()?);
                let body_end = end.checked_add(usize::try_from(body_len).ok()?)?;
                (crc32(bytes.get(end..body_end)?) == body_crc).then_some(body_end)
            }
            _ => None,
        }
    }

    /// CRC-32 (IEEE 802.3, reflected), bit by bit: slow, and only read at a bit flip.
    fn crc32(bytes: &[u8]) -> u32 {
        !bytes.iter().fold(!0u32, |crc, &b| {
            (0..8).fold(crc ^ u32::from(b), |c, _| {
                if c & 1 == 1 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                }
            })
        })
    }
}

/// Opens a replica's disk as its event loop would: open blocks on its syncs, so they
/// complete before it returns.
fn open_disk(
    config: &Config,
    disk: MemDisk,
    nonce: u64,
) -> Result<(storage::Storage<MemDisk>, storage::Recovered), StorageError> {
    open_mem_disk(config, disk, nonce, "simulation")
}

/// What a core's effects ask of the simulation, in the order the core produced them (the
/// order events are scheduled in, which a seed's replay depends on). Timers are already
/// kept in the core's `Timers`.
#[derive(Default)]
struct Actions(Vec<Action>);

enum Action {
    /// A message as the core sent it (for the counters), and its entries copied out of
    /// the sender's log (`None`: a chunk of a snapshot replaced since).
    Send {
        to: NodeId,
        sent: OutgoingMessage,
        owned: Option<OwnedMessage>,
    },
    Reply(Reply),
    TimerSet {
        slot: usize,
        at: Time,
        generation: u64,
    },
}

impl Outbox for Actions {
    fn send(&mut self, _: usize, sender: &Node, to: NodeId, message: OutgoingMessage) {
        let owned = copy_out(sender, message);
        self.0.push(Action::Send {
            to,
            sent: message,
            owned,
        });
    }

    fn reply(&mut self, _: usize, _: &Node, reply: Reply) {
        self.0.push(Action::Reply(reply));
    }

    fn timer_set(&mut self, _: usize, slot: usize, at: Time, generation: u64) {
        self.0.push(Action::TimerSet {
            slot,
            at,
            generation,
        });
    }
}
