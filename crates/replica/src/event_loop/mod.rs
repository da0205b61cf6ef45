//! The replica's event loop: the one place that reads the clock and touches the network.
//!
//! # Shape
//!
//! One thread, one `mio::Poll`, two sources:
//!
//! - [`SOCKET`]: a UDP socket bound to `127.0.0.1:0`; every datagram goes to the
//!   simulator at `127.0.0.1:<port>` and everything arrives on this socket.
//! - [`SIGNALS`]: the read end of a Unix socket pair; SIGTERM and SIGINT write a byte to
//!   the other end (`signal_hook::low_level::pipe`), so a signal wakes the poll and the
//!   loop ends cleanly (debug log flushed, exit status 0).
//!
//! In cluster mode ([`run_cluster`]) the socket is bound to the node's own peer address
//! and sends to each peer's ([`PeerRoute::Direct`]), and a [`ClientPort`] adds its
//! listener and connections to the same poll (tokens from [`CLIENT_PORT_TOKENS_FROM`]):
//! clients are served in this thread, between the peers' datagrams.
//!
//! Start-up sends the hello before anything else (the simulator declares dead a replica
//! it must deliver to before its hello; see `docs/PROTOCOL.md`), then creates the Raft
//! core.
//!
//! Each turn: poll with a timeout from the timer wheel's next deadline; drain the socket
//! until `WouldBlock`, decoding each datagram in place and handing it to the core
//! (`inbound`); `flush` the core and carry out its effects (`effects`); fire every timer
//! that is due, carrying out effects after each (a timer's handler may cancel another that
//! is also due); send the turn's datagrams together (`network`). The clock is read afresh
//! for every datagram and every timer, never once per turn: `clock` says why a lease
//! depends on it. Buffers are reused, so a turn allocates nothing in steady state.
//!
//! Bad datagrams are input, not bugs: they are counted, noted in the debug log (and on
//! stderr, at most once a second) and dropped. A full send buffer never ends the loop: a
//! message to a peer is lost, which Raft tolerates, and a client reply waits for the
//! socket to be writable (see `network`).

use crate::args::ReplicaArgs;
use crate::codec::{
    APPEND_HEADER_BYTES_MAX, DATAGRAM_BYTES_MAX, Decoder, SNAPSHOT_HEADER_BYTES_MAX,
    entry_wire_bytes,
};
use crate::debug_log;
use crate::debug_log::DebugLog;
use crate::timer_wheel::{TimerHandle, TimerWheel};
use datagram::udp_batch::{RecvBatch, SendBatch};
use raft::NodeId;
use raft::time::{Span, Time};
use raft::{Config, Effect, LogIndex, Node, Role, Term, Timer};
use storage::{DataDir, Identity, Recovered, Storage};

pub mod client_port;
pub mod clock;
mod durable;
mod effects;
mod inbound;
mod network;
mod startup;
#[cfg(test)]
mod tests;
mod thread_usage;

use client_port::{CLIENT_PORT_TOKENS_FROM, ClientPort};
use clock::{Clock, MonotonicClock};
use durable::Durable;
use mio::net::{UdpSocket, UnixStream};
use mio::{Events, Interest, Poll, Token};
use network::{Network, StderrLimiter};
use startup::{bind_and_say_hello, bind_peer_socket, signal_pipe, survive_file_size_limit};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thread_usage::ThreadUsage;

/// The UDP socket.
pub const SOCKET: Token = Token(0);
/// The self-pipe SIGTERM and SIGINT write to.
pub const SIGNALS: Token = Token(1);

/// Datagrams received per system call. Each slot holds any datagram (64 KiB), but only
/// the pages the kernel writes into become resident.
pub const RECEIVE_BATCH_DATAGRAMS_MAX: usize = 64;
/// Datagrams sent per system call; a turn that produces more sends in several calls.
pub const SEND_BATCH_DATAGRAMS_MAX: usize = 256;
/// Datagrams handled before the loop gives timers a turn and sends what the turn produced
/// (replies wait for the end of their turn, so a long turn is latency). The socket is
/// edge-triggered, so when this stops a drain early the next poll does not wait.
pub const RECEIVES_PER_TURN_MAX: usize = 1_024;
/// Timers fired before the loop looks at the socket again, in case the core keeps arming
/// timers that are already due.
pub const TIMERS_PER_TURN_MAX: usize = 1_024;
/// The longest poll, so an idle loop still flushes its debug log now and then.
pub const POLL_TIMEOUT_MS_MAX: u64 = 1_000;
/// The least time between two stderr lines about dropped or lost datagrams.
pub const STDERR_REPORT_INTERVAL_MS: u64 = 1_000;
/// Readiness events handled per poll.
const EVENTS_CAPACITY: usize = 64;
/// A turn at least this long is noted in the debug log, with its datagram count and what the
/// thread used in it (`ThreadUsage`).
const SLOW_TURN: Span = Span::from_millis(1);

/// Runs a replica until SIGTERM or SIGINT. `seed` feeds the core's random election
/// timeouts; replicas need different seeds. Errors are start-up failures (socket, signals)
/// or a poll failure; nothing a peer or client sends can end the loop.
pub fn run(args: &ReplicaArgs, seed: u64) -> io::Result<()> {
    let clock = MonotonicClock::start();
    // A data directory is recovered before the hello: a replica that cannot use its
    // directory says why and exits, without joining the cluster.
    let identity = Identity {
        id: args.id,
        peers: args.peers.clone(),
        cluster: args.cluster.clone(),
    };
    // Before `recover`, which starts storage's threads: the one that preallocates the
    // next log segment writes megabytes at once, and under a file size limit it was
    // killed (SIGXFSZ, the whole process, before its hello) when it wrote before this.
    survive_file_size_limit();
    let recovered = recover(args.data_dir.as_deref(), &identity, seed)?;
    // Signals first, so a SIGTERM right after the hello ends us cleanly rather than by
    // the default action.
    let signals = signal_pipe()?;
    let simulator = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, args.port));
    let socket = bind_and_say_hello(args.id, simulator)?;
    let mut log = open_debug_log(args.debug_log_dir.as_deref(), args.id);
    let now = clock.now();
    debug_log!(
        log,
        now,
        "start: id {} peers {:?} simulator {simulator} local {} seed {seed:#x}",
        args.id,
        args.peers,
        socket
            .local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string())
    );
    let mut config = Config::new(args.id, args.peers.clone(), seed);
    // The core knows nothing of JSON: the codec's bound sizes its append batches.
    config.entry_wire_bytes = entry_wire_bytes;
    args.tuning.apply(&mut config);
    for (knob, value) in args.tuning.set_knobs() {
        debug_log!(log, now, "knob {knob}={value}");
    }
    let (node, durable) = start_core(config, now, recovered, &mut log);
    let route = PeerRoute::Simulator(simulator);
    let mut replica = Replica::new(node, clock, socket, signals, route, None, log, durable)?;
    let result = replica.run();
    replica.finish();
    result
}

/// Where a cluster-mode node is and whom it talks to (the `server` crate's cluster file).
#[derive(Clone, Debug)]
pub struct ClusterSetup {
    /// The core's knobs; `entry_wire_bytes` is set to the codec's bound here.
    pub config: Config,
    /// The UDP address this node's peers send to, bound as given.
    pub peer_address: SocketAddr,
    /// Every peer's UDP address; datagrams from any other address are dropped.
    pub peers: Vec<(NodeId, SocketAddr)>,
    pub data_dir: Option<PathBuf>,
    pub debug_log_dir: Option<PathBuf>,
    /// The cluster's identity, written into a new data directory and checked at every
    /// later start (`storage::Identity::cluster`).
    pub cluster: String,
}

/// Runs a cluster-mode node until SIGTERM or SIGINT: Raft traffic straight to and from
/// the peers' addresses, clients through `port`, all in this thread's one loop. Errors are
/// start-up failures (data dir, sockets, signals) or a poll failure.
pub fn run_cluster(setup: ClusterSetup, port: Box<dyn ClientPort>) -> io::Result<()> {
    let clock = MonotonicClock::start();
    let ClusterSetup {
        mut config,
        peer_address,
        peers,
        data_dir,
        debug_log_dir,
        cluster,
    } = setup;
    let id = config.id;
    let identity = Identity {
        id,
        peers: config.peers.clone(),
        cluster,
    };
    // Before `recover`, which starts storage's threads (see `survive_file_size_limit`).
    survive_file_size_limit();
    let recovered = recover(data_dir.as_deref(), &identity, config.seed)?;
    let signals = signal_pipe()?;
    let socket = bind_peer_socket(peer_address)?;
    let mut log = open_debug_log(debug_log_dir.as_deref(), id);
    let now = clock.now();
    debug_log!(
        log,
        now,
        "start (cluster mode): id {id} peers {peers:?} bound {peer_address} seed {:#x}",
        config.seed
    );
    config.entry_wire_bytes = entry_wire_bytes;
    let (node, durable) = start_core(config, now, recovered, &mut log);
    let route = PeerRoute::Direct(peers);
    let mut replica = Replica::new(
        node,
        clock,
        socket,
        signals,
        route,
        Some(port),
        log,
        durable,
    )?;
    let result = replica.run();
    replica.finish();
    result
}

/// A seed for the core's election timeouts that differs between replicas and runs: the
/// id (distinct within a cluster), the pid and the wall clock (distinct across runs),
/// through SplitMix64's finalizer so that nearby inputs give unrelated seeds.
pub fn fresh_seed(id: NodeId) -> u64 {
    let clock_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = u64::from(id.0) ^ (u64::from(std::process::id()) << 16) ^ clock_ns;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Opens and recovers the data directory `dir`, if any, with compactions written off this
/// thread; any failure is one line of error. `seed` gives a new directory its nonce.
fn recover(
    data_dir: Option<&Path>,
    identity: &Identity,
    seed: u64,
) -> io::Result<Option<(Storage, Recovered)>> {
    let Some(dir) = data_dir else {
        return Ok(None);
    };
    let disk = DataDir::new(dir)
        .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", dir.display())))?;
    // The seed mixes the clock and the pid: a nonce no other directory shares.
    let (storage, recovered) = Storage::open(disk, identity, seed ^ 0x6E6F_6E63_6521_0000)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
    let storage = storage
        .with_snapshot_writer()?
        .with_segment_preparer(storage::SEGMENT_BYTES)?;
    Ok(Some((storage, recovered)))
}

fn open_debug_log(dir: Option<&Path>, id: NodeId) -> DebugLog {
    match dir {
        Some(dir) => DebugLog::open(dir, id).unwrap_or_else(|error| {
            eprintln!("{id}: debug log in {dir:?} disabled: {error}");
            DebugLog::disabled()
        }),
        None => DebugLog::disabled(),
    }
}

/// The core, new or restored from what storage recovered.
fn start_core(
    mut config: Config,
    now: Time,
    recovered: Option<(Storage, Recovered)>,
    log: &mut DebugLog,
) -> (Node, Option<Durable>) {
    debug_assert!(
        config.append_bytes_max + APPEND_HEADER_BYTES_MAX.max(SNAPSHOT_HEADER_BYTES_MAX)
            <= DATAGRAM_BYTES_MAX
    );
    let Some((storage, recovered)) = recovered else {
        return (Node::new(config, now), None);
    };
    let id = config.id;
    config.durable = true;
    let state = recovered.hard_state;
    debug_log!(
        log,
        now,
        "recovered term {} vote {:?} and {} entries",
        state.term.0,
        state.voted_for,
        recovered.log.last_index().0
    );
    if let Some(torn) = recovered.torn_tail {
        debug_log!(
            log,
            now,
            "cut a torn last write: {} bytes at byte {}",
            torn.bytes,
            torn.offset
        );
        eprintln!(
            "{id}: cut a torn last write from its log: {} bytes at byte {}",
            torn.bytes, torn.offset
        );
    }
    (recovered.restore(config, now), Some(Durable::new(storage)))
}

/// Where messages to peers go, and whom the loop takes them from.
#[derive(Clone, Debug)]
pub enum PeerRoute {
    /// The classic setting: everything goes to the simulator, which routes by `dst`, and
    /// clients' requests come in on the same socket.
    Simulator(SocketAddr),
    /// Cluster mode: each peer at its own address, sorted by id. A datagram from any other
    /// address, or claiming another sender than the one at its address, is dropped, and
    /// so is a client request (clients use the client port).
    Direct(Vec<(NodeId, SocketAddr)>),
}

impl PeerRoute {
    /// Where a message to `to` goes; `None` for a peer this route does not know.
    pub fn address_of(&self, to: NodeId) -> Option<SocketAddr> {
        match self {
            PeerRoute::Simulator(simulator) => Some(*simulator),
            PeerRoute::Direct(peers) => peers
                .binary_search_by_key(&to, |&(id, _)| id)
                .ok()
                .map(|i| peers[i].1),
        }
    }

    /// Takes the peer address of every member of `membership` that has one (cluster
    /// mode): a member's address is `PEER CLIENT`, its peer address first. The membership
    /// is the cluster's word, so it overrides an address learned from a datagram. A route
    /// is never removed: a removed member's messages are still taken in (the core makes
    /// them harmless), and a membership cut from the log may come back.
    pub fn learn(&mut self, membership: &raft::Membership) {
        let PeerRoute::Direct(peers) = self else {
            return;
        };
        for member in membership.members() {
            let Some(address) = member_peer_address(&member.address) else {
                continue;
            };
            match peers.binary_search_by_key(&member.id, |&(id, _)| id) {
                Ok(at) => peers[at].1 = address,
                Err(at) => peers.insert(at, (member.id, address)),
            }
        }
    }

    /// Whether a datagram from `from` claiming to come from `src` is taken in by replica
    /// `me`. In cluster mode, a sender this route knows must use its own address; one it
    /// does not know (a node added after this one's log ends: no membership here has its
    /// address yet) is taken in from an address no known peer uses, and that address is
    /// learned.
    pub fn admit(&mut self, me: NodeId, src: NodeId, from: Option<SocketAddr>) -> bool {
        let PeerRoute::Direct(peers) = self else {
            return true;
        };
        let Some(from) = from else { return false };
        if src == me {
            return false;
        }
        match peers.binary_search_by_key(&src, |&(id, _)| id) {
            Ok(at) => peers[at].1 == from,
            Err(at) => {
                if src.is_broadcast() || peers.iter().any(|&(_, a)| a == from) {
                    return false;
                }
                peers.insert(at, (src, from));
                true
            }
        }
    }
}

/// The peer (UDP) address in a member's address, `PEER CLIENT` in cluster mode.
pub fn member_peer_address(address: &str) -> Option<SocketAddr> {
    address.split_whitespace().next()?.parse().ok()
}

/// Counters reported in the debug log at exit.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Stats {
    pub(super) received: u64,
    /// Not decodable: not JSON, wrong fields, bad IDs, too large.
    pub(super) dropped_bad: u64,
    /// Decodable but not for us (`dst`), or a type a replica ignores.
    pub(super) ignored: u64,
    /// Peer messages the core refused (`raft::Dropped`): from a non-peer, or breaking
    /// what correct replicas guarantee.
    pub(super) dropped_peer: u64,
    pub(super) sent: u64,
    /// `sendmmsg` and `recvmmsg` calls: datagrams per call is what batching buys.
    pub(super) send_calls: u64,
    pub(super) receive_calls: u64,
    /// Send failed (buffer full or any other error): the datagram is lost.
    pub(super) lost: u64,
    /// Messages to peers never sent because storage failed to persist what they say.
    pub(super) unpersisted_sends: u64,
    /// Syncs of the data directory returned (each turn's batch, or a turn's inline write),
    /// those of `durable::SLOW_SYNC` or more, and the longest, in microseconds.
    pub(super) syncs: u64,
    pub(super) slow_syncs: u64,
    pub(super) sync_us_max: u64,
    /// The most client replies kept at once for a writable socket.
    pub(super) replies_retained_max: u64,
    pub(super) timers_fired: u64,
}

/// What the debug log tracks across inputs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Observed {
    role: Role,
    term: Term,
    leader: NodeId,
    commit_index: LogIndex,
}

impl Observed {
    fn of(node: &Node) -> Observed {
        Observed {
            role: node.role(),
            term: node.term(),
            leader: node.leader(),
            commit_index: node.commit_index(),
        }
    }
}

struct Replica<C: Clock> {
    id: NodeId,
    clock: C,
    poll: Poll,
    events: Events,
    signals: UnixStream,
    net: Network,
    node: Node,
    wheel: TimerWheel<Timer>,
    /// The wheel handle of each armed timer, indexed by `Timer::slot()`.
    timer_handles: Vec<Option<TimerHandle>>,
    decoder: Decoder,
    inbox: RecvBatch,
    /// Swapped with the core's outbox; empty between uses.
    effects: Vec<Effect>,
    log: DebugLog,
    stats: Stats,
    stderr: StderrLimiter,
    /// The last drain stopped at its cap before `WouldBlock`: more may be waiting.
    socket_pending: bool,
    /// The socket is registered for writability too: replies wait for room.
    socket_writable_interest: bool,
    /// Storage and what waits for its sync, when the replica has a data directory.
    durable: Option<Durable>,
    /// Clients on a port of their own (cluster mode); `None`: they use the UDP socket.
    port: Option<Box<dyn ClientPort>>,
    /// This node has been a member (a founding one from the start; a joining one once
    /// added).
    was_member: bool,
    /// The membership (its index and size) the route last learned from
    /// (`PeerRoute::learn`).
    membership_seen: Option<(raft::LogIndex, usize)>,
    stop: bool,
}

impl<C: Clock> Replica<C> {
    /// Drives `node` over `socket`, sending to peers by `route`, serving clients on
    /// `port` if given.
    #[allow(clippy::too_many_arguments)]
    fn new(
        node: Node,
        clock: C,
        mut socket: UdpSocket,
        mut signals: UnixStream,
        route: PeerRoute,
        mut port: Option<Box<dyn ClientPort>>,
        mut log: DebugLog,
        durable: Option<Durable>,
    ) -> io::Result<Replica<C>> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        if let Some(port) = port.as_mut() {
            port.register(poll.registry())?;
        }
        let mut durable = durable;
        if let Some(durable) = durable.as_mut() {
            match durable.sync_off_the_loop(poll.registry())? {
                Ok(()) => debug_log!(log, clock.now(), "sync thread at real-time priority"),
                Err(error) => debug_log!(
                    log,
                    clock.now(),
                    "sync thread at ordinary priority (real-time refused: {error})"
                ),
            }
        }
        let now = clock.now();
        let node_joining = node.config().joining;
        let mut replica = Replica {
            id: node.id(),
            clock,
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            signals,
            net: Network {
                socket,
                route,
                outbox: SendBatch::new(SEND_BATCH_DATAGRAMS_MAX).segmenting(),
            },
            timer_handles: vec![None; Timer::count(node.peers().len())],
            node,
            wheel: TimerWheel::new(),
            decoder: Decoder::new(),
            inbox: RecvBatch::new(RECEIVE_BATCH_DATAGRAMS_MAX),
            effects: Vec::with_capacity(64),
            log,
            stats: Stats::default(),
            stderr: StderrLimiter {
                last: None,
                suppressed: 0,
            },
            socket_pending: false,
            socket_writable_interest: false,
            durable,
            port,
            membership_seen: None,
            was_member: !node_joining,
            stop: false,
        };
        // The core may already have effects: the first election timer.
        replica.carry_out_effects(now);
        Ok(replica)
    }

    fn run(&mut self) -> io::Result<()> {
        while !self.stop {
            self.turn(None)?;
        }
        // A storage failure stops the loop; the replica exits with it.
        match self.durable.as_mut().and_then(|d| d.failed.take()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// One turn: wait for input or the next deadline (at most `wait_max`), then handle
    /// all of it and send what it produced.
    fn turn(&mut self, wait_max: Option<Duration>) -> io::Result<()> {
        let started = self.clock.now();
        self.log.flush_if_due(started);
        let mut timeout = self.poll_timeout(started);
        if let Some(max) = wait_max {
            timeout = timeout.min(max);
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            // A signal interrupted the wait; its byte is in the pipe for the next poll.
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        let woke = self.clock.now();
        let usage_at_wake = self.log.is_enabled().then(ThreadUsage::now);
        let mut readable = self.socket_pending;
        for event in self.events.iter() {
            match event.token() {
                // Writable alone: the flush at the end of the turn is all it needs.
                SOCKET if event.is_writable() && !event.is_readable() => {}
                SOCKET => readable = true,
                SIGNALS => self.stop = true,
                // A sync returned: `persist`, at the end of the turn, takes its result.
                durable::SYNCED => {}
                token if token.0 >= CLIENT_PORT_TOKENS_FROM.0 => {
                    if let Some(port) = self.port.as_mut() {
                        port.ready(self.poll.registry(), event, &mut self.node, &self.clock);
                    }
                }
                _ => {}
            }
        }
        if self.stop {
            self.drain_signals();
            debug_log!(self.log, woke, "signal received: stopping");
            return Ok(());
        }
        let received_before = self.stats.received;
        let mut handed = None;
        if readable {
            handed = Some(self.drain_socket());
        }
        if let Some(port) = self.port.as_mut() {
            port.service(self.poll.registry(), &mut self.node, &self.clock);
            handed = Some(self.clock.now());
        }
        // What the socket and the port handed the core goes out in one flush.
        if let Some(now) = handed {
            self.node.flush(now);
            self.carry_out_effects(now);
        }
        let now = self.fire_timers();
        self.persist(now);
        self.send_queued(now);
        if let Some(port) = self.port.as_mut() {
            port.flush(self.poll.registry(), now);
        }
        if self.port.is_some() && self.removed_for_good() {
            eprintln!(
                "{}: removed from the cluster (the membership committed at index {} leaves it out): stopping",
                self.id,
                self.node.membership_index().0
            );
            debug_log!(self.log, now, "removed from the cluster: stopping");
            self.stop = true;
            return Ok(());
        }
        self.watch_writable()?;
        if self.log.is_enabled() {
            let took = self.clock.now().since(woke);
            if took >= SLOW_TURN {
                debug_log!(
                    self.log,
                    woke,
                    "slow turn: {} datagrams in {} us ({})",
                    self.stats.received - received_before,
                    took.as_micros(),
                    ThreadUsage::now().describe_since(&usage_at_wake.unwrap_or_default())
                );
            }
        }
        Ok(())
    }

    /// Whether a committed membership leaves this node out (cluster mode): no leader
    /// will speak to it again, so it stops, as a removed etcd member does, rather than
    /// hold its clients' commands for a leader it cannot know. Only a node that has been
    /// a member: one joining meets memberships without it while it catches up.
    fn removed_for_good(&mut self) -> bool {
        let member = self.node.membership().contains(self.id);
        self.was_member |= member;
        let index = self.node.membership_index();
        self.was_member && !member && index.0 > 0 && index <= self.node.commit_index()
    }

    /// Sends every datagram queued so far.
    fn send_queued(&mut self, now: Time) {
        self.net.flush(
            now,
            &mut self.stats,
            &mut self.log,
            &mut self.stderr,
            self.id,
        );
    }

    /// Asks the poll to wake the loop when the socket is writable while replies wait for
    /// room, and stops asking once they are sent (an edge-triggered writable event on an
    /// idle socket would only wake the loop for nothing). A writable event needs no
    /// handling of its own: every turn ends by flushing.
    fn watch_writable(&mut self) -> io::Result<()> {
        let wanted = self.net.waits_for_writable();
        if wanted == self.socket_writable_interest {
            return Ok(());
        }
        let interest = if wanted {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.poll
            .registry()
            .reregister(&mut self.net.socket, SOCKET, interest)?;
        self.socket_writable_interest = wanted;
        Ok(())
    }

    /// Until the next deadline (rounded up by mio to whole milliseconds, so never early),
    /// zero if something is already due or datagrams are waiting, capped so an idle loop
    /// still flushes its debug log.
    fn poll_timeout(&mut self, now: Time) -> Duration {
        if self.socket_pending {
            return Duration::ZERO;
        }
        let port_deadline = self.port.as_ref().and_then(|port| port.deadline());
        // Buffered log lines wait at most about one flush interval for an idle loop.
        let cap_ms = if self.log.has_buffered() {
            debug_log::FLUSH_INTERVAL_MS
        } else {
            POLL_TIMEOUT_MS_MAX
        };
        let cap = Duration::from_millis(cap_ms);
        let deadline = match (self.wheel.next_deadline(), port_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match deadline {
            Some(deadline) => Duration::from_micros(deadline.since(now).as_micros()).min(cap),
            None => cap,
        }
    }

    fn drain_signals(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            match self.signals.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Final words in the debug log, then flush it.
    fn finish(&mut self) {
        let now = self.clock.now();
        debug_log!(
            self.log,
            now,
            "exit: {:?}; {} term {} leader {} commit index {}",
            self.stats,
            self.node.role(),
            self.node.term().0,
            self.node.leader(),
            self.node.commit_index().0
        );
        self.log.flush();
    }
}
