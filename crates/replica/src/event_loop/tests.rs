//! The loop on a real loopback socket with a clock the test controls.

use super::clock::Clock;
use super::{PeerRoute, Replica};
use crate::codec::{Body, Datagram, Decoder, encode, encode_raft};
use crate::debug_log::DebugLog;
use raft::NodeId;
use raft::time::{Span, Time};
use raft::{
    AppendEntriesResponse, Config, Effect, LogIndex, Message, Node, RequestVoteResponse, Role,
    Term, Timer,
};
use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const ME: NodeId = NodeId(0);
const PEER: NodeId = NodeId(1);
const CLIENT: NodeId = NodeId(0x15);

/// A clock that moves on by `step` every time it is read: a turn that reads it often runs
/// long, as a turn does on a loaded machine.
struct SteppingClock {
    now: Cell<Time>,
    step: Span,
}

impl Clock for SteppingClock {
    fn now(&self) -> Time {
        let now = self.now.get();
        self.now.set(now + self.step);
        now
    }
}

/// A leader of three replicas whose no-op a majority acknowledged at `at`: its lease runs
/// until `at + election_timeout_min - lease_margin`.
fn leader_with_lease(at: Time) -> Node {
    let node = leader_of(Config::new(ME, vec![PEER, NodeId(2)], 1), at);
    assert_eq!(node.commit_index(), LogIndex(1), "the no-op is committed");
    node
}

/// A leader of three made at `at` under `config`, its no-op acknowledged by a follower
/// (committed once this leader's own log counts: at once unless `config.durable`).
fn leader_of(config: Config, at: Time) -> Node {
    let mut node = Node::new(config, Time::ZERO);
    node.handle_timer(at, Timer::Election);
    let pre_vote = RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
        pre_vote: true,
        round_started_us: at.as_micros(),
    };
    node.handle_message(at, PEER, Message::RequestVoteResponse(pre_vote))
        .expect("a valid message");
    let vote = RequestVoteResponse {
        pre_vote: false,
        ..pre_vote
    };
    node.handle_message(at, PEER, Message::RequestVoteResponse(vote))
        .expect("a valid message");
    node.flush(at);
    assert_eq!(node.role(), Role::Leader);
    let ack = AppendEntriesResponse {
        term: Term(1),
        success: true,
        match_index: LogIndex(1),
        conflict_index: LogIndex(0),
        conflict_term: None,
        sent_at_us: at.as_micros(),
    };
    node.handle_message(at, PEER, Message::AppendEntriesResponse(ack))
        .expect("a valid message");
    node.flush(at);
    let mut effects: Vec<Effect> = Vec::new();
    node.take_effects(&mut effects);
    node
}

/// A replica driving `node` on a loopback socket, everything it sends going to
/// `simulator`.
struct Loopback {
    replica: Replica<SteppingClock>,
    simulator: UdpSocket,
    replica_addr: SocketAddr,
    /// The other end of the replica's signal pipe, open while the test runs: a closed
    /// one reads as a signal to stop.
    _signals: mio::net::UnixStream,
}

fn on_loopback(
    node: Node,
    clock: SteppingClock,
    durable: Option<super::durable::Durable>,
) -> Loopback {
    let simulator = UdpSocket::bind("127.0.0.1:0").unwrap();
    simulator.set_nonblocking(true).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let replica_addr = socket.local_addr().unwrap();
    let (signals, signal_writer) = mio::net::UnixStream::pair().unwrap();
    let replica = Replica::new(
        node,
        clock,
        mio::net::UdpSocket::from_std(socket),
        signals,
        PeerRoute::Simulator(simulator.local_addr().unwrap()),
        None,
        DebugLog::disabled(),
        durable,
    )
    .unwrap();
    Loopback {
        replica,
        simulator,
        replica_addr,
        _signals: signal_writer,
    }
}

/// A client's datagram to this replica.
fn from_client(body: Body<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(
        &mut buf,
        &Datagram {
            src: CLIENT,
            dst: ME,
            leader: NodeId::UNKNOWN,
            body,
        },
    );
    buf
}

fn get(mid: &str) -> Vec<u8> {
    from_client(Body::Get { mid, key: "k" })
}

fn put(mid: &str) -> Vec<u8> {
    from_client(Body::Put {
        mid,
        key: "k",
        value: mid,
    })
}

/// The MIDs of the `ok` replies waiting on `socket`.
fn ok_replies(socket: &UdpSocket) -> Vec<String> {
    let mut decoder = Decoder::new();
    let mut oks = Vec::new();
    let mut buf = vec![0; 65_536];
    loop {
        match socket.recv(&mut buf) {
            Ok(len) => {
                if let Ok(Datagram {
                    body: Body::Ok { mid, .. },
                    ..
                }) = decoder.decode(&mut buf[..len])
                {
                    oks.push(mid.to_owned());
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return oks,
            Err(error) => panic!("{error}"),
        }
    }
}

#[test]
fn a_long_turn_does_not_stretch_the_lease() {
    let acked_at = Time::from_millis(10_000);
    let node = leader_with_lease(acked_at);
    let lease =
        node.config().election_timeout_min.as_micros() - node.config().lease_margin.as_micros();
    let step = Span::from_millis(50);
    let clock = SteppingClock {
        now: Cell::new(acked_at),
        step,
    };
    let Loopback {
        mut replica,
        simulator,
        replica_addr,
        _signals,
    } = on_loopback(node, clock, None);
    let _ = ok_replies(&simulator);

    // Twenty gets arrive together and are handled in one turn that reads the clock at
    // least once per datagram, 50 ms apart: the turn lasts a second, past the lease.
    let gets = 20;
    for i in 0..gets {
        simulator
            .send_to(&get(&format!("g{i}")), replica_addr)
            .unwrap();
    }
    replica.turn(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        replica.stats.received, gets as u64,
        "one turn took them all"
    );

    let answered = ok_replies(&simulator);
    // Read once per turn, the time would stay near the turn's start, inside the lease,
    // and every get would be answered from it. Read per datagram, only those handled
    // before the lease ran out are: the rest wait for a round of appends to prove that
    // this replica still leads.
    let within_lease = (lease / step.as_micros()) as usize;
    assert!(
        !answered.is_empty() && answered.len() < within_lease,
        "{} of {gets} gets answered from a {} ms lease in a turn of {} ms steps: {answered:?}",
        answered.len(),
        lease / 1000,
        step.as_millis()
    );
    let expected: Vec<String> = (0..answered.len()).map(|i| format!("g{i}")).collect();
    assert_eq!(answered, expected, "the first gets, in order");
}

/// A durable leader of `peers` and itself on a real data directory, the clock standing
/// still, and the simulator's socket it sends everything to.
fn durable_leader(dir: &std::path::Path, peers: &[NodeId]) -> Loopback {
    let at = Time::from_millis(10_000);
    let mut config = Config::new(ME, peers.to_vec(), 1);
    config.durable = true;
    let node = if peers.is_empty() {
        let mut node = Node::new(config, Time::ZERO);
        node.handle_timer(at, Timer::Election);
        node.flush(at);
        node
    } else {
        leader_of(config, at)
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let identity = storage::Identity {
        id: ME,
        peers: peers.to_vec(),
        cluster: String::new(),
    };
    let (storage, _) = storage::Storage::open(storage::DataDir::new(dir).unwrap(), &identity, 7)
        .expect("a new data directory");
    let clock = SteppingClock {
        now: Cell::new(at),
        step: Span::ZERO,
    };
    on_loopback(node, clock, Some(super::durable::Durable::new(storage)))
}

/// Fifty turns of up to 20 ms each: time for a sync in flight to return and its results
/// to be taken.
fn settle_syncs(replica: &mut Replica<SteppingClock>) {
    for _ in 0..50 {
        replica.turn(Some(Duration::from_millis(20))).unwrap();
    }
}

#[test]
fn a_leader_writes_its_new_entries_with_the_append_that_carries_them() {
    let dir = std::env::temp_dir().join(format!("kv-loop-{}-leader-write", std::process::id()));
    let Loopback {
        mut replica,
        simulator,
        replica_addr,
        _signals,
    } = durable_leader(&dir, &[PEER, NodeId(2)]);
    settle_syncs(&mut replica);
    let synced_at_start = replica.stats.syncs;
    assert!(synced_at_start > 0, "the term, vote and no-op were written");

    // No round out: the put's append leaves at once, and the write with it.
    simulator.send_to(&put("p1"), replica_addr).unwrap();
    settle_syncs(&mut replica);
    assert_eq!(replica.stats.syncs, synced_at_start + 1);
    let round = replica.node.log().last_index();

    // The round is unanswered, so the next put waits for it (`coalesce_appends`), and
    // so does its write: nothing would wait for the leader's sync alone.
    simulator.send_to(&put("p2"), replica_addr).unwrap();
    settle_syncs(&mut replica);
    assert_eq!(replica.node.log().last_index(), round.next());
    assert_eq!(replica.stats.syncs, synced_at_start + 1, "p2 waits");
    assert!(replica.durable.as_ref().unwrap().storage.has_pending());

    // The follower answers: p1 commits, p2 leaves in the next round, and is written.
    let answer = AppendEntriesResponse {
        term: Term(1),
        success: true,
        match_index: round,
        conflict_index: LogIndex(0),
        conflict_term: None,
        sent_at_us: Time::from_millis(10_000).as_micros(),
    };
    let mut datagram = Vec::new();
    encode_raft(
        &mut datagram,
        PEER,
        ME,
        ME,
        &Message::<&[raft::Entry]>::AppendEntriesResponse(answer),
    );
    simulator.send_to(&datagram, replica_addr).unwrap();
    settle_syncs(&mut replica);
    assert_eq!(replica.stats.syncs, synced_at_start + 2);
    assert!(!replica.durable.as_ref().unwrap().storage.has_pending());
    assert_eq!(replica.node.commit_index(), round);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_leader_that_is_the_only_voter_writes_at_once() {
    // It sends no appends, so it must not wait for one: it would never commit.
    let dir = std::env::temp_dir().join(format!("kv-loop-{}-lone-leader", std::process::id()));
    let Loopback {
        mut replica,
        simulator,
        replica_addr,
        _signals,
    } = durable_leader(&dir, &[]);
    settle_syncs(&mut replica);
    assert_eq!(replica.node.role(), Role::Leader);
    let _ = ok_replies(&simulator);
    simulator.send_to(&put("p1"), replica_addr).unwrap();
    settle_syncs(&mut replica);
    assert_eq!(ok_replies(&simulator), ["p1"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cluster_mode_route_learns_unknown_senders_but_never_lets_one_take_a_known_address() {
    let at = |port: u16| Some(SocketAddr::from(([127, 0, 0, 1], port)));
    let (me, one, two, nine) = (NodeId(3), NodeId(1), NodeId(2), NodeId(9));
    let mut route = PeerRoute::Direct(vec![(one, at(1).unwrap()), (two, at(2).unwrap())]);
    assert!(route.admit(me, one, at(1)));
    // A known peer from another address, an address known as another peer's, this
    // replica itself, no address at all: refused, and nothing learned.
    assert!(!route.admit(me, one, at(5)));
    assert!(!route.admit(me, nine, at(2)));
    assert!(!route.admit(me, me, at(7)));
    assert!(!route.admit(me, nine, None));
    assert_eq!(route.address_of(nine), None);
    // A node added after this replica's log ends: heard, and answered at its address.
    assert!(route.admit(me, nine, at(9)));
    assert_eq!(route.address_of(nine), at(9));
    assert!(!route.admit(me, nine, at(10)));
    // The membership's word overrides what a datagram taught.
    let membership = raft::Membership::parse("1 v;2 v;9 l 127.0.0.1:19 127.0.0.1:20").unwrap();
    route.learn(&membership);
    assert_eq!(route.address_of(nine), at(19));
    assert_eq!(route.address_of(one), at(1));
}
