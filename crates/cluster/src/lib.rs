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

use datagram::NodeId;
use invariants::Invariants;
use network::{Links, NetworkConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replica::raft::{
    AsEntryRef, ClientRequest, Config, Effect, Entry, EntryRef, LogIndex, Message, Node, Operation,
    Reply, Role, Timer,
};
use replica::storage::{Identity, MemDisk, Storage};
use replica::time::{Span, Time};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// A run that needs more events than this is storming (a timer re-armed in the past, a
/// message loop); it fails instead of hanging.
pub const EVENTS_MAX: u64 = 5_000_000;
/// How long a simulated sync takes, in microseconds: a fast disk's fdatasync.
const SYNC_DELAY_US_MIN: u64 = 50;
const SYNC_DELAY_US_MAX: u64 = 400;
const SLOW_SYNC_DELAY_US_MAX: u64 = 5_000;
const SLOW_SYNC_FRACTION: f64 = 0.1;
/// Of the crashes of durable replicas, the share that are power losses (unsynced writes
/// torn or lost) rather than process kills (the page cache survives them).
const POWER_LOSS_FRACTION: f64 = 0.5;

/// A message in flight, owning its entries (the sender's log may change before delivery).
pub type OwnedMessage = Message<Vec<Entry>>;

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
    /// A kill planned to land while sync `generation` is in flight.
    Kill {
        node: usize,
        generation: u64,
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

/// The state of one replica slot.
struct Replica {
    node: Node,
    crashed: bool,
    paused_until: Option<Time>,
    /// Per timer slot: the generation of the armed deadline (bumped on every set and
    /// cancel, so stale timer events are recognised and skipped).
    timer_generation: Vec<u64>,
    timer_armed: Vec<bool>,
    /// Events that reached the replica while it was paused, in arrival order.
    parked: Vec<Event>,
    /// For a durable replica: its storage, on a simulated disk.
    storage: Option<Storage<MemDisk>>,
    /// Messages to peers waiting for the next sync to be issued, and those waiting for
    /// the sync in flight (with the log index it makes durable): the event loop's
    /// contract (`replica::event_loop::durable`), with the sync taking time.
    held: Vec<(usize, OwnedMessage)>,
    in_sync: Option<(LogIndex, Vec<(usize, OwnedMessage)>)>,
    sync_generation: u64,
    /// Restarts so far.
    incarnation: u64,
    /// A kill waiting for the replica's next write, to land in the middle of it: how
    /// long it stays down then.
    kill_when_writing: Option<Span>,
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
}

pub struct Cluster {
    now: Time,
    ids: Vec<NodeId>,
    replicas: Vec<Replica>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    rng: SmallRng,
    pub network: NetworkConfig,
    pub links: Links,
    /// Client messages take this long each way; they are never lost (as in the classic
    /// simulator).
    pub client_delay: Span,
    effects: Vec<Effect>,
    fates: Vec<Span>,
    replies: Vec<ReplyRecord>,
    pub stats: ClusterStats,
    invariants: Invariants,
    /// Check the invariants after every event (on by default; a benchmark turns it off).
    pub check_invariants: bool,
    /// Requests delivered and not yet answered: (client, MID) -> (replica, operation).
    /// A `BTreeMap`, like every map here, so that nothing in a run depends on a hash seed.
    outstanding: BTreeMap<(NodeId, String), (usize, ClientOp)>,
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
        let replicas = ids
            .iter()
            .map(|&id| {
                let peers = ids.iter().copied().filter(|&p| p != id).collect();
                let mut config = Config::new(id, peers, rng.random());
                configure(&mut config);
                let slots = Timer::count(config.peers.len());
                let storage = config
                    .durable
                    .then(|| open_disk(&config, MemDisk::default(), rng.random()))
                    .map(|opened| opened.expect("an empty disk opens").0);
                Replica {
                    node: Node::new(config, Time::ZERO),
                    crashed: false,
                    paused_until: None,
                    timer_generation: vec![0; slots],
                    timer_armed: vec![false; slots],
                    parked: Vec::new(),
                    storage,
                    held: Vec::new(),
                    in_sync: None,
                    sync_generation: 0,
                    incarnation: 0,
                    kill_when_writing: None,
                }
            })
            .collect();
        let mut cluster = Cluster {
            now: Time::ZERO,
            links: Links::new(n),
            ids,
            replicas,
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            network: NetworkConfig::reliable(),
            client_delay: Span::from_micros(50),
            effects: Vec::new(),
            fates: Vec::new(),
            replies: Vec::new(),
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
        &self.replicas[i].node
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
            if r.crashed || r.paused_until.is_some() || r.node.role() != Role::Leader {
                return false;
            }
            let term = r.node.term();
            let followers = self
                .replicas
                .iter()
                .filter(|o| !o.crashed && o.node.term() == term && o.node.leader() == self.ids[i])
                .count();
            followers > self.replicas.len() / 2
        })
    }

    // ----- faults -------------------------------------------------------------------

    /// Stops replica `i` for good (SIGTERM: its state and queued messages are gone).
    pub fn crash(&mut self, i: usize) {
        self.replicas[i].crashed = true;
        self.replicas[i].parked.clear();
        // What it owed is never answered, as with a real crash.
        self.outstanding.retain(|_, (to, _)| *to != i);
    }

    /// Requests delivered to a live replica and not yet answered.
    pub fn requests_unanswered(&self) -> usize {
        self.outstanding.len()
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
            Event::Synced { node, .. } | Event::Restart { node } | Event::Kill { node, .. } => {
                *node
            }
        };
        match event {
            Event::Restart { node } => return self.restart(node).map(|()| true),
            Event::Kill {
                node,
                generation,
                down,
            } => {
                let r = &self.replicas[node];
                if !r.crashed && r.in_sync.is_some() && r.sync_generation == generation {
                    self.crash_and_restart(node, down, false);
                } else if !r.crashed {
                    // The sync completed first: wait for the next write.
                    self.replicas[node].kill_when_writing = Some(down);
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
                let entries: Vec<EntryRef<'_>> = match &message {
                    Message::AppendEntries(m) => {
                        m.entries.iter().map(AsEntryRef::as_entry_ref).collect()
                    }
                    Message::InstallSnapshot(m) => {
                        m.pairs.iter().map(AsEntryRef::as_entry_ref).collect()
                    }
                    _ => Vec::new(),
                };
                let incoming = message.with_entries(&entries[..]);
                let from_id = self.ids[from];
                if let Err(dropped) = self.replicas[to]
                    .node
                    .handle_message(now, from_id, incoming)
                {
                    // Every replica here is correct: a refusal is a bug in the sender or
                    // in the check.
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
                let r = &mut self.replicas[node];
                if !r.timer_armed[slot] || r.timer_generation[slot] != generation {
                    return Ok(true);
                }
                r.timer_armed[slot] = false;
                r.node.handle_timer(now, Timer::from_slot(slot));
            }
            Event::Synced { node, generation } => {
                if generation != self.replicas[node].sync_generation {
                    return Ok(true);
                }
                self.complete_sync(node);
            }
            Event::Restart { .. } | Event::Kill { .. } => unreachable!("handled above"),
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
                    self.replicas[to].node.handle_client_request(
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
        self.replicas[target].node.flush(now);
        self.carry_out_effects(target);
        self.issue_sync(target);
        if let Some(violation) = self.violation.take() {
            return Err(violation);
        }
        if self.check_invariants {
            let nodes: Vec<&Node> = self.replicas.iter().map(|r| &r.node).collect();
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
        let mut effects = std::mem::take(&mut self.effects);
        self.replicas[i].node.take_effects(&mut effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, message } => {
                    let Some(j) = self.index_of(to) else { continue };
                    self.stats.messages_sent += 1;
                    let entries = match message {
                        Message::AppendEntries(m) => {
                            self.stats.appends_sent += 1;
                            self.stats.entries_sent += u64::from(m.entries.count);
                            self.replicas[i]
                                .node
                                .log_entries(m.entries)
                                .into_iter()
                                .map(Entry::from_ref)
                                .collect()
                        }
                        Message::InstallSnapshot(m) => {
                            self.stats.snapshot_chunks_sent += 1;
                            match self.replicas[i].node.snapshot_pairs(m.last_index, m.pairs) {
                                Some(pairs) => pairs.into_iter().map(Entry::from_ref).collect(),
                                // Cut from a snapshot since replaced: lost.
                                None => continue,
                            }
                        }
                        _ => Vec::new(),
                    };
                    let owned = message.with_entries(entries);
                    if self.replicas[i].storage.is_some()
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
                Effect::Reply(reply) => {
                    let record = ReplyRecord {
                        at: self.now,
                        from: i,
                        leader: self.replicas[i].node.leader(),
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
                                && let Err(e) = self.invariants.record_reply(
                                    &self.replicas[i].node,
                                    &record,
                                    &op,
                                )
                            {
                                self.violation.get_or_insert(e);
                            }
                        }
                    }
                    self.replies.push(record);
                }
                Effect::SetTimer { timer, at } => {
                    let slot = timer.slot();
                    let r = &mut self.replicas[i];
                    r.timer_generation[slot] += 1;
                    r.timer_armed[slot] = true;
                    let generation = r.timer_generation[slot];
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
                Effect::CancelTimer { timer } => {
                    let r = &mut self.replicas[i];
                    r.timer_generation[timer.slot()] += 1;
                    r.timer_armed[timer.slot()] = false;
                }
            }
        }
        self.effects = effects;
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
        let Some(storage) = r.storage.as_mut() else {
            return;
        };
        let changes = r.node.take_unpersisted();
        let last = r.node.log().last_index();
        replica::storage::save_changes(storage, &r.node, changes);
        if !storage.has_pending() && r.held.is_empty() {
            return;
        }
        // Into the disk's write in flight; durable when `Synced` comes.
        if let Err(e) = storage.sync() {
            self.violation
                .get_or_insert(format!("{}: simulated disk failed: {e}", self.ids[i]));
            return;
        }
        r.in_sync = Some((last, std::mem::take(&mut r.held)));
        r.sync_generation += 1;
        let generation = r.sync_generation;
        self.stats.syncs += 1;
        let kill = r.kill_when_writing.take();
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
        if let Some(down) = kill {
            // Anywhere inside the write: before it, while answers to what it holds come
            // in, or just before it completes.
            let at = self.now + Span(self.rng.random_range(0..delay.as_micros().max(1)));
            self.schedule(
                at,
                Event::Kill {
                    node: i,
                    generation,
                    down,
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
        let Some((through, held)) = r.in_sync.take() else {
            return;
        };
        if let Some(storage) = r.storage.as_mut() {
            storage.disk_mut().complete_syncs();
        }
        r.node.persisted(now, through);
        for (j, message) in held {
            self.transmit(i, j, message);
        }
    }

    /// Replica `i` crashes and comes back from its disk after `down`: a process kill (the
    /// page cache survives, the syncs it waited for may not have completed) or, in
    /// `POWER_LOSS_FRACTION` of them, a power loss (what was not synced is lost, the last
    /// unsynced write of each file torn in any of its pages). Its requests are never
    /// answered, as with any crash. Only a durable replica can come back.
    /// `while_writing`: the crash waits for the replica's next write and lands in it, so
    /// that torn writes happen, not only crashes between writes.
    pub fn crash_and_restart(&mut self, i: usize, down: Span, while_writing: bool) {
        assert!(
            self.replicas[i].storage.is_some(),
            "only a durable replica restarts"
        );
        if while_writing && self.replicas[i].in_sync.is_none() {
            self.replicas[i].kill_when_writing = Some(down);
            return;
        }
        self.crash(i);
        let power_loss = self.rng.random_bool(POWER_LOSS_FRACTION);
        let r = &mut self.replicas[i];
        if let Some(storage) = r.storage.as_mut() {
            if power_loss {
                storage.disk_mut().lose_power(&mut self.rng);
            } else {
                storage.disk_mut().kill();
            }
        }
        r.held.clear();
        r.in_sync = None;
        r.kill_when_writing = None;
        r.sync_generation += 1;
        self.schedule(self.now + down, Event::Restart { node: i });
    }

    /// Replica `i` starts again on its disk, through the same `Storage::open` as a real
    /// replica, and comes back as `Recovered::restore` makes it.
    fn restart(&mut self, i: usize) -> Result<(), String> {
        let now = self.now;
        let seed = self.rng.random();
        let id = self.ids[i];
        let r = &mut self.replicas[i];
        let Some(storage) = r.storage.take() else {
            return Ok(());
        };
        let mut config = r.node.config().clone();
        config.seed = seed;
        // No head start now: the cluster has been running.
        config.startup_delay = Span::ZERO;
        let (storage, recovered) = open_disk(&config, storage.into_disk(), 0)
            .map_err(|e| format!("{id}: its disk does not recover: {e}"))?;
        if recovered.torn_tail.is_some() {
            self.stats.torn_tails += 1;
        }
        r.node = recovered.restore(config, now);
        r.storage = Some(storage);
        r.crashed = false;
        r.paused_until = None;
        for slot in 0..r.timer_armed.len() {
            r.timer_armed[slot] = false;
            r.timer_generation[slot] += 1;
        }
        r.incarnation += 1;
        self.stats.restarts += 1;
        self.invariants.restarted(i);
        self.carry_out_effects(i);
        Ok(())
    }
}

/// Opens a replica's disk as its event loop would: open blocks on its syncs, so they
/// complete before it returns.
fn open_disk(
    config: &Config,
    disk: MemDisk,
    nonce: u64,
) -> Result<(Storage<MemDisk>, replica::storage::Recovered), replica::storage::StorageError> {
    let identity = Identity {
        id: config.id,
        peers: config.peers.clone(),
        cluster: "simulation".to_owned(),
    };
    let (mut storage, recovered) = Storage::open(disk, &identity, nonce)?;
    storage.disk_mut().complete_syncs();
    Ok((storage, recovered))
}
