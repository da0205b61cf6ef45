//! The loop on a real loopback socket with a clock the test controls.

use super::clock::Clock;
use super::{PeerRoute, Replica};
use crate::codec::{Body, Datagram, Decoder, encode};
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
    let config = Config::new(ME, vec![PEER, NodeId(2)], 1);
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
    assert_eq!(node.commit_index(), LogIndex(1), "the no-op is committed");
    let mut effects: Vec<Effect> = Vec::new();
    node.take_effects(&mut effects);
    node
}

fn get(mid: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(
        &mut buf,
        &Datagram {
            src: CLIENT,
            dst: ME,
            leader: NodeId::UNKNOWN,
            body: Body::Get { mid, key: "k" },
        },
    );
    buf
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
    let simulator = UdpSocket::bind("127.0.0.1:0").unwrap();
    simulator.set_nonblocking(true).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let replica_addr = socket.local_addr().unwrap();
    let (signals, _signal_writer) = mio::net::UnixStream::pair().unwrap();
    let mut replica = Replica::new(
        node,
        clock,
        mio::net::UdpSocket::from_std(socket),
        signals,
        PeerRoute::Simulator(simulator.local_addr().unwrap()),
        None,
        DebugLog::disabled(),
        None,
    )
    .unwrap();
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
