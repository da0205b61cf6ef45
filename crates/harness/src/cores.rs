//! The replicas of an in-memory network: each core with its timers and its storage, and
//! the one place their effects are carried out.

use crate::timers::Timers;
use raft::time::Time;
use raft::{Effect, Node, NodeId, OutgoingMessage, Reply};
use storage::{Disk, MemDisk, Recovered, Storage, save_changes};

/// One replica: its core, the timers its driver keeps for it, and its storage when
/// durable.
pub struct Core<D: Disk = MemDisk> {
    pub node: Node,
    pub timers: Timers,
    pub storage: Option<Storage<D>>,
}

impl<D: Disk> Core<D> {
    pub fn new(node: Node, storage: Option<Storage<D>>) -> Core<D> {
        let timers = Timers::new(node.peers().len());
        Core {
            node,
            timers,
            storage,
        }
    }

    /// The replica started again on `storage` as `recovered` finds it, through the one
    /// restore the event loop uses too: its timers start over.
    pub fn restart(&mut self, storage: Storage<D>, recovered: Recovered, now: Time) {
        let config = self.node.config().clone();
        self.restart_as(storage, recovered, config, now);
    }

    /// `restart`, with a configuration of the driver's (a new seed, say).
    pub fn restart_as(
        &mut self,
        storage: Storage<D>,
        recovered: Recovered,
        config: raft::Config,
        now: Time,
    ) {
        self.node = recovered.restore(config, now);
        self.storage = Some(storage);
        self.timers.reset();
    }
}

/// Where a driver takes the effects of a core: it decides when, and whether, messages
/// arrive and what a reply means to it. Timers are kept in [`Core::timers`] before the
/// outbox hears of them.
pub trait Outbox {
    /// `message` leaves core `from` (whose node is `sender`) for `to`. Its entries are
    /// still positions in `sender`'s log: `message::copy_out` copies them, unless the
    /// network delivers before that log can change.
    fn send(&mut self, from: usize, sender: &Node, to: NodeId, message: OutgoingMessage);

    /// Core `from` answers a client.
    fn reply(&mut self, from: usize, sender: &Node, reply: Reply);

    /// Core `core` armed the timer in `slot` for `at`; a driver that schedules firings
    /// names `generation` in it (see `Timers::take_if_current`).
    fn timer_set(&mut self, core: usize, slot: usize, at: Time, generation: u64) {
        let _ = (core, slot, at, generation);
    }
}

/// The replicas, by position; a driver names a core by its index.
pub struct Cores<D: Disk = MemDisk> {
    cores: Vec<Core<D>>,
    /// Reused for every `take_effects`, so carrying effects out allocates nothing.
    effects: Vec<Effect>,
}

impl<D: Disk> Cores<D> {
    pub fn new(cores: Vec<Core<D>>) -> Cores<D> {
        Cores {
            cores,
            effects: Vec::with_capacity(1024),
        }
    }

    pub fn len(&self) -> usize {
        self.cores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cores.is_empty()
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.cores[i].node
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.cores[i].node
    }

    pub fn core(&self, i: usize) -> &Core<D> {
        &self.cores[i]
    }

    pub fn core_mut(&mut self, i: usize) -> &mut Core<D> {
        &mut self.cores[i]
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.cores.iter().map(|c| &c.node)
    }

    /// Core `i` and core `j` (`i != j`): the receiver of a message and its sender.
    pub fn pair_mut(&mut self, i: usize, j: usize) -> (&mut Node, &Node) {
        assert_ne!(i, j, "a core is not its own peer");
        if i < j {
            let (a, b) = self.cores.split_at_mut(j);
            (&mut a[i].node, &b[0].node)
        } else {
            let (a, b) = self.cores.split_at_mut(i);
            (&mut b[0].node, &a[j].node)
        }
    }

    /// One batch of input to core `i`: `feed`, then `flush`, as the event loop ends a
    /// turn's input. Its effects wait for `carry_out`.
    pub fn input(&mut self, i: usize, now: Time, feed: impl FnOnce(&mut Node)) {
        let node = &mut self.cores[i].node;
        feed(node);
        node.flush(now);
    }

    /// Core `i`'s durable driver: writes and syncs what the core changed, then tells it
    /// so (a core without storage counts its log as durable at once). Whether that
    /// included a snapshot. Before `carry_out`, as the event loop syncs before a turn's
    /// messages leave.
    pub fn persist(&mut self, i: usize, now: Time) -> bool {
        let core = &mut self.cores[i];
        let node = &mut core.node;
        let changes = node.take_unpersisted();
        let snapshot = changes.snapshot.is_some();
        if let Some(storage) = core.storage.as_mut() {
            save_changes(storage, node, changes);
            storage.sync().expect("the disk takes the write");
        }
        node.persisted(now, node.log().last_index());
        snapshot
    }

    /// Carries out what core `i` asked for since the last call: its timers kept here,
    /// everything else through `outbox`, in the order the core produced it.
    pub fn carry_out(&mut self, i: usize, outbox: &mut impl Outbox) {
        let Core { node, timers, .. } = &mut self.cores[i];
        node.take_effects(&mut self.effects);
        for effect in self.effects.drain(..) {
            match effect {
                Effect::Send { to, message } => outbox.send(i, node, to, message),
                Effect::Reply(reply) => outbox.reply(i, node, reply),
                Effect::SetTimer { timer, at } => {
                    let generation = timers.set(timer, at);
                    outbox.timer_set(i, timer.slot(), at, generation);
                }
                Effect::CancelTimer { timer } => timers.cancel(timer),
            }
        }
    }
}

/// Every id of `ids` but `me`, in order: a replica's peers.
pub fn peers_of(ids: &[NodeId], me: NodeId) -> Vec<NodeId> {
    ids.iter().copied().filter(|&p| p != me).collect()
}
