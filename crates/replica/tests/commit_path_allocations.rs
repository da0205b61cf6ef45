//! The commit path allocates nothing per request: three cores in memory, a leader taking
//! puts and gets in drains (as the event loop hands it a socket's worth), every message
//! delivered in order. Once warm, the allocations made inside the cores over thousands of
//! requests are only the rare doublings of growing structures (the log's arena, the state
//! machine's table), never one per put, per get, per append or per answer.

use raft::NodeId;
use raft::time::{Span, Time};
use raft::{
    ClientRequest, CommandRef, Config, Effect, EntryRef, Message, Node, Operation, OutgoingMessage,
    Role, Term, Timer,
};
use std::collections::VecDeque;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

const REPLICAS: usize = 3;
const REQUESTS_PER_DRAIN: usize = 16;

struct Cluster {
    nodes: Vec<Node>,
    queue: VecDeque<(usize, usize, OutgoingMessage)>,
    effects: Vec<Effect>,
    replies: usize,
    now: Time,
    /// Allocations made inside the cores' own calls (the harness's are not counted).
    in_cores: u64,
}

impl Cluster {
    fn new() -> Cluster {
        let ids: Vec<NodeId> = (0..REPLICAS as u16).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let peers = ids.iter().copied().filter(|&p| p != id).collect();
                Node::new(Config::new(id, peers, u64::from(id.0) + 1), Time::ZERO)
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            queue: VecDeque::with_capacity(1024),
            effects: Vec::with_capacity(1024),
            replies: 0,
            now: Time::ZERO,
            in_cores: 0,
        };
        for i in 0..REPLICAS {
            cluster.collect(i);
        }
        cluster.queue.clear();
        cluster.now = Time::from_millis(5_000);
        cluster.nodes[0].handle_timer(cluster.now, Timer::Election);
        cluster.collect(0);
        cluster.deliver_all();
        assert_eq!(cluster.nodes[0].role(), Role::Leader);
        cluster
    }

    /// Runs `f` on the cores, counting what it allocates.
    fn in_core<T>(&mut self, f: impl FnOnce(&mut Vec<Node>) -> T) -> T {
        let before = allocations();
        let out = f(&mut self.nodes);
        self.in_cores += allocations() - before;
        out
    }

    fn collect(&mut self, i: usize) {
        let now = self.now;
        let mut effects = std::mem::take(&mut self.effects);
        self.in_core(|nodes| {
            nodes[i].flush(now);
            nodes[i].take_effects(&mut effects);
        });
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, message } => {
                    self.queue.push_back((i, usize::from(to.0), message));
                }
                Effect::Reply(_) => self.replies += 1,
                Effect::SetTimer { .. } | Effect::CancelTimer { .. } => {}
            }
        }
        self.effects = effects;
    }

    fn deliver_all(&mut self) {
        while let Some((from, to, message)) = self.queue.pop_front() {
            self.now = self.now + Span::from_micros(1);
            let now = self.now;
            let from_id = self.nodes[from].id();
            // Decoded entries are borrowed views in the replica too; collecting them here
            // is the harness's allocation, outside the count.
            let entries: Vec<(u64, Option<(String, String)>)> = match message {
                Message::AppendEntries(m) => self.nodes[from]
                    .log_entries(m.entries)
                    .into_iter()
                    .map(|e| {
                        let command = match e.command {
                            CommandRef::Put { key, value } => {
                                Some((key.to_string(), value.to_string()))
                            }
                            CommandRef::Noop => None,
                        };
                        (e.term.0, command)
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let refs: Vec<EntryRef<'_>> = entries
                .iter()
                .map(|(term, command)| EntryRef {
                    term: Term(*term),
                    command: match command {
                        Some((key, value)) => CommandRef::Put { key, value },
                        None => CommandRef::Noop,
                    },
                })
                .collect();
            let incoming = message.with_entries(&refs[..]);
            self.in_core(|nodes| nodes[to].handle_message(now, from_id, incoming))
                .expect("a valid message");
            self.collect(to);
        }
    }

    /// `count` requests from request number `first` on: three puts to one get, on keys
    /// that repeat, in drains.
    fn run(&mut self, first: usize, count: usize) {
        let client = NodeId(0x20);
        let requests: Vec<(String, String, String, bool)> = (first..first + count)
            .map(|n| {
                let key = format!("key-{:028}", n % 997);
                let value = format!("{:032x}", n as u128 * 0x9E37_79B9);
                (format!("{n:016}"), key, value, n % 4 == 3)
            })
            .collect();
        for drain in requests.chunks(REQUESTS_PER_DRAIN) {
            let now = self.now;
            self.in_core(|nodes| {
                for (mid, key, value, get) in drain {
                    let operation = if *get {
                        Operation::Get { key }
                    } else {
                        Operation::Put { key, value }
                    };
                    nodes[0].handle_client_request(
                        now,
                        ClientRequest {
                            client,
                            mid,
                            operation,
                        },
                    );
                }
            });
            self.collect(0);
            self.deliver_all();
        }
    }
}

#[test]
fn a_warm_commit_path_allocates_nothing_per_request() {
    const WARM: usize = 4_000;
    const MEASURED: usize = 4_000;
    let mut cluster = Cluster::new();
    cluster.run(0, WARM);
    assert_eq!(cluster.replies, WARM, "every request answered");
    cluster.in_cores = 0;
    cluster.run(WARM, MEASURED);
    assert_eq!(cluster.replies, WARM + MEASURED, "every request answered");
    // MEASURED requests make about 3 * MEASURED appends and answers across the cores; one
    // allocation per request, message or entry would be thousands. What remains are the
    // doublings of structures still growing with the log (arena, slots, table): a handful
    // per core.
    println!(
        "allocations inside the cores for {MEASURED} requests: {}",
        cluster.in_cores
    );
    assert!(
        cluster.in_cores < 60,
        "{} allocations for {MEASURED} requests",
        cluster.in_cores
    );
}
