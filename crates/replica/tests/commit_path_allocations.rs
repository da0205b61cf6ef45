//! The commit path allocates nothing per request: three cores in memory (the harness's
//! `InOrder` network), a leader taking puts and gets in drains (as the event loop hands it
//! a socket's worth), every message delivered in order. Once warm, the allocations made
//! inside the cores over thousands of requests are only the rare doublings of growing
//! structures (the log's arena, the state machine's table), never one per put, per get,
//! per append or per answer.

use harness::{Core, Cores, InOrder, Meter, peers_of};
use raft::time::Time;
use raft::{ClientRequest, Config, Node, NodeId, Operation};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

const REPLICAS: usize = 3;
const REQUESTS_PER_DRAIN: usize = 16;

/// Counts the allocations made inside the cores' own calls (the network's are not).
#[derive(Default)]
struct InCores(u64);

impl Meter for InCores {
    fn measure<T>(&mut self, call: impl FnOnce() -> T) -> T {
        let before = allocations();
        let out = call();
        self.0 += allocations() - before;
        out
    }
}

fn network() -> InOrder<storage::MemDisk, InCores> {
    let ids: Vec<NodeId> = (0..REPLICAS as u16).map(NodeId).collect();
    let cores = ids
        .iter()
        .map(|&id| {
            let config = Config::new(id, peers_of(&ids, id), u64::from(id.0) + 1);
            Core::new(Node::new(config, Time::ZERO), None)
        })
        .collect();
    InOrder::new(Cores::new(cores), InCores::default())
}

/// `count` requests from request number `first` on: three puts to one get, on keys that
/// repeat, in drains.
fn run(network: &mut InOrder<storage::MemDisk, InCores>, first: usize, count: usize) {
    let client = NodeId(0x20);
    let requests: Vec<(String, String, String, bool)> = (first..first + count)
        .map(|n| {
            let key = format!("key-{:028}", n % 997);
            let value = format!("{:032x}", n as u128 * 0x9E37_79B9);
            (format!("{n:016}"), key, value, n % 4 == 3)
        })
        .collect();
    let requests: Vec<ClientRequest<'_>> = requests
        .iter()
        .map(|(mid, key, value, get)| ClientRequest {
            client,
            mid,
            operation: if *get {
                Operation::Get { key }
            } else {
                Operation::Put { key, value }
            },
        })
        .collect();
    for drain in requests.chunks(REQUESTS_PER_DRAIN) {
        network.drain(drain);
    }
}

#[test]
fn a_warm_commit_path_allocates_nothing_per_request() {
    const WARM: usize = 4_000;
    const MEASURED: usize = 4_000;
    let mut network = network();
    run(&mut network, 0, WARM);
    assert_eq!(network.answered().0, WARM, "every request answered");
    network.meter.0 = 0;
    run(&mut network, WARM, MEASURED);
    assert_eq!(
        network.answered().0,
        WARM + MEASURED,
        "every request answered"
    );
    // MEASURED requests make about 3 * MEASURED appends and answers across the cores; one
    // allocation per request, message or entry would be thousands. What remains are the
    // doublings of structures still growing with the log (arena, slots, table): a handful
    // per core.
    let in_cores = network.meter.0;
    println!("allocations inside the cores for {MEASURED} requests: {in_cores}");
    assert!(
        in_cores < 60,
        "{in_cores} allocations for {MEASURED} requests"
    );
}
