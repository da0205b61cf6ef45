//! The simplest network of cores: every message delivered in the order it was sent, at
//! once, and no timer after the first election, with core 0 the leader. What the commit
//! benchmark times and the allocation test counts: the commit path and nothing else.

use crate::cores::{Cores, Outbox};
use raft::time::{Span, Time};
use raft::{ClientRequest, EntryRef, Message, Node, NodeId, OutgoingMessage, Reply, ReplyKind};
use raft::{Role, Timer};
use std::collections::VecDeque;
use storage::{Disk, MemDisk};

/// Every message takes this long: time moves, so leases and round trips mean something.
const DELIVERY: Span = Span::from_micros(1);
/// When core 0's election timer is made to fire: well past every startup delay.
const ELECTION_AT_MS: u64 = 5_000;

/// Runs around every call into a core: a test that counts what the cores allocate counts
/// there, and the network's own work stays out of the count.
pub trait Meter {
    fn measure<T>(&mut self, call: impl FnOnce() -> T) -> T {
        call()
    }
}

/// No measuring.
pub struct Unmetered;
impl Meter for Unmetered {}

/// Messages in send order: sender, receiver, and the message, whose entries are read
/// from the sender's log at delivery (in this network it only grows meanwhile).
#[derive(Default)]
struct Fifo {
    queue: VecDeque<(usize, usize, OutgoingMessage)>,
    sent: u64,
    answered: usize,
    answered_ok: usize,
}

impl Outbox for Fifo {
    fn send(&mut self, from: usize, _: &Node, to: NodeId, message: OutgoingMessage) {
        self.sent += 1;
        self.queue.push_back((from, usize::from(to.0), message));
    }

    fn reply(&mut self, _: usize, _: &Node, reply: Reply) {
        self.answered += 1;
        self.answered_ok += usize::from(matches!(reply.kind, ReplyKind::Ok { .. }));
    }
}

/// Cores `0000..` whose ids are their indexes, core 0 elected leader at start.
pub struct InOrder<D: Disk = MemDisk, M: Meter = Unmetered> {
    cores: Cores<D>,
    fifo: Fifo,
    now: Time,
    pub meter: M,
}

impl<D: Disk, M: Meter> InOrder<D, M> {
    /// Starts `cores` (core `i` must be `NodeId(i)`) and elects core 0: its election timer
    /// fires first, and everything it causes is delivered.
    pub fn new(cores: Cores<D>, meter: M) -> InOrder<D, M> {
        for i in 0..cores.len() {
            assert_eq!(cores.node(i).id(), NodeId(i as u16), "core i is NodeId(i)");
        }
        let mut network = InOrder {
            cores,
            fifo: Fifo {
                queue: VecDeque::with_capacity(1024),
                ..Fifo::default()
            },
            now: Time::ZERO,
            meter,
        };
        for i in 0..network.cores.len() {
            network.collect(i);
        }
        network.fifo.queue.clear();
        network.now = Time::from_millis(ELECTION_AT_MS);
        let now = network.now;
        network
            .meter
            .measure(|| network.cores.node_mut(0).handle_timer(now, Timer::Election));
        network.collect(0);
        network.deliver_all();
        assert_eq!(network.cores.node(0).role(), Role::Leader);
        network.fifo.sent = 0;
        network
    }

    /// Messages sent since the election.
    pub fn sent(&self) -> u64 {
        self.fifo.sent
    }

    /// Client requests answered, and of those answered `ok`.
    pub fn answered(&self) -> (usize, usize) {
        (self.fifo.answered, self.fifo.answered_ok)
    }

    /// `requests` reach the leader in one drain of its socket, then everything they cause
    /// is delivered.
    pub fn drain(&mut self, requests: &[ClientRequest<'_>]) {
        let now = self.now;
        let leader = self.cores.node_mut(0);
        self.meter.measure(|| {
            for &request in requests {
                leader.handle_client_request(now, request);
            }
        });
        self.collect(0);
        self.deliver_all();
    }

    /// Ends core `i`'s batch of input: flush, persist if durable, effects out.
    fn collect(&mut self, i: usize) {
        let now = self.now;
        let node = self.cores.node_mut(i);
        self.meter.measure(|| node.flush(now));
        if self.cores.core(i).storage.is_some() {
            self.cores.persist(i, now);
        }
        self.cores.carry_out(i, &mut self.fifo);
    }

    fn deliver_all(&mut self) {
        while let Some((from, to, message)) = self.fifo.queue.pop_front() {
            self.now = self.now + DELIVERY;
            let now = self.now;
            let (receiver, sender) = self.cores.pair_mut(to, from);
            let from_id = sender.id();
            let entries: Vec<EntryRef<'_>> = match message {
                Message::AppendEntries(m) => sender.log_entries(m.entries).into_iter().collect(),
                _ => Vec::new(),
            };
            let incoming = message.with_entries(&entries[..]);
            self.meter
                .measure(|| receiver.handle_message(now, from_id, incoming))
                .expect("a valid message");
            self.collect(to);
        }
    }
}
