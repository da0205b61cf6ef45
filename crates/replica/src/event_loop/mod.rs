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
//! Start-up sends the hello before anything else (`docs/PROTOCOL.md`: anything delivered to a
//! replica before its hello arrives gets it declared dead), then creates the Raft core.
//!
//! Each turn: poll with a timeout from the timer wheel's next deadline; read the clock
//! once; drain the socket until `WouldBlock` (decode each datagram in place, hand it to
//! the core); `flush` the core and carry out its effects; then fire every timer that is
//! due, carrying out effects after each (a timer's handler may cancel another that is
//! also due). Buffers are reused, so a turn allocates nothing in steady state.
//!
//! Bad datagrams are input, not bugs: they are counted, noted in the debug log (and on
//! stderr, at most once a second) and dropped. A full send buffer never ends the loop: a
//! message to a peer is lost, which Raft tolerates, and a client reply waits for the
//! socket to be writable (see `network`).

use crate::args::ReplicaArgs;
use crate::codec::{
    APPEND_HEADER_BYTES_MAX, Body, DATAGRAM_BYTES_MAX, Datagram, Decoder, encode, encode_raft,
    entry_wire_bytes,
};
use crate::debug_log;
use crate::debug_log::DebugLog;
use crate::raft::{
    ClientRequest, Config, Effect, EntrySpan, LogIndex, Message, Node, Operation, Reply, ReplyKind,
    Role, Term, Timer,
};
use crate::time::{Span, Time};
use crate::timer_wheel::{TimerHandle, TimerWheel};
use datagram::NodeId;
use datagram::udp_batch::{RecvBatch, SendBatch};

mod network;
mod startup;

use mio::net::{UdpSocket, UnixStream};
use mio::{Events, Interest, Poll, Token};
use network::{Network, StderrLimiter};
use startup::{Clock, bind_and_say_hello, signal_pipe};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

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
/// A turn at least this long is noted in the debug log, with its datagram count.
const SLOW_TURN: Span = Span::from_millis(1);

/// Runs a replica until SIGTERM or SIGINT. `seed` feeds the core's random election
/// timeouts; replicas need different seeds. Errors are start-up failures (socket, signals)
/// or a poll failure; nothing a peer or client sends can end the loop.
pub fn run(args: &ReplicaArgs, seed: u64) -> io::Result<()> {
    let clock = Clock::start();
    // Signals first, so a SIGTERM right after the hello ends us cleanly rather than by
    // the default action.
    let signals = signal_pipe()?;
    let simulator = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, args.port));
    let socket = bind_and_say_hello(args.id, simulator)?;
    let log = match &args.debug_log_dir {
        Some(dir) => DebugLog::open(dir, args.id).unwrap_or_else(|error| {
            eprintln!("{}: debug log in {dir:?} disabled: {error}", args.id);
            DebugLog::disabled()
        }),
        None => DebugLog::disabled(),
    };
    let mut replica = Replica::new(args, seed, clock, socket, signals, simulator, log)?;
    let result = replica.run();
    replica.finish();
    result
}

/// Counters reported in the debug log at exit.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Stats {
    pub(super) received: u64,
    /// Not decodable: not JSON, wrong fields, bad IDs, too large.
    pub(super) dropped_bad: u64,
    /// Decodable but not for us (`dst`), from a non-peer, or a type a replica ignores.
    pub(super) ignored: u64,
    pub(super) sent: u64,
    /// `sendmmsg` and `recvmmsg` calls: datagrams per call is what batching buys.
    pub(super) send_calls: u64,
    pub(super) receive_calls: u64,
    /// Send failed (buffer full or any other error): the datagram is lost.
    pub(super) lost: u64,
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

struct Replica {
    id: NodeId,
    clock: Clock,
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
    stop: bool,
}

impl Replica {
    fn new(
        args: &ReplicaArgs,
        seed: u64,
        clock: Clock,
        mut socket: UdpSocket,
        mut signals: UnixStream,
        simulator: SocketAddr,
        mut log: DebugLog,
    ) -> io::Result<Replica> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
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
        debug_assert!(config.append_bytes_max + APPEND_HEADER_BYTES_MAX <= DATAGRAM_BYTES_MAX);
        let node = Node::new(config, now);
        let mut replica = Replica {
            id: args.id,
            clock,
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            signals,
            net: Network {
                socket,
                simulator,
                outbox: SendBatch::new(SEND_BATCH_DATAGRAMS_MAX),
            },
            node,
            wheel: TimerWheel::new(),
            timer_handles: vec![None; Timer::count(args.peers.len())],
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
            stop: false,
        };
        // The core may already have effects: the first election timer.
        replica.carry_out_effects(now);
        Ok(replica)
    }

    fn run(&mut self) -> io::Result<()> {
        let mut now = self.clock.now();
        while !self.stop {
            self.log.flush_if_due(now);
            let timeout = self.poll_timeout(now);
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                // A signal interrupted the wait; its byte is in the pipe for the next poll.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            now = self.clock.now();
            let mut readable = self.socket_pending;
            for event in self.events.iter() {
                match event.token() {
                    // Writable alone: the flush at the end of the turn is all it needs.
                    SOCKET if event.is_writable() && !event.is_readable() => {}
                    SOCKET => readable = true,
                    SIGNALS => self.stop = true,
                    _ => {}
                }
            }
            if self.stop {
                self.drain_signals();
                debug_log!(self.log, now, "signal received: stopping");
                break;
            }
            let received_before = self.stats.received;
            if readable {
                self.drain_socket(now);
                self.node.flush(now);
                self.carry_out_effects(now);
            }
            self.fire_timers(now);
            self.net.flush(
                now,
                &mut self.stats,
                &mut self.log,
                &mut self.stderr,
                self.id,
            );
            self.watch_writable()?;
            if self.log.is_enabled() {
                let took = self.clock.now().since(now);
                if took >= SLOW_TURN {
                    debug_log!(
                        self.log,
                        now,
                        "slow turn: {} datagrams in {} us",
                        self.stats.received - received_before,
                        took.as_micros()
                    );
                }
            }
        }
        Ok(())
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
        // Buffered log lines wait at most about one flush interval for an idle loop.
        let cap_ms = if self.log.has_buffered() {
            debug_log::FLUSH_INTERVAL_MS
        } else {
            POLL_TIMEOUT_MS_MAX
        };
        let cap = Duration::from_millis(cap_ms);
        match self.wheel.next_deadline() {
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

    /// Receives until `WouldBlock` (or the per-turn cap), a batch per system call, and hands
    /// each datagram to the core.
    fn drain_socket(&mut self, now: Time) {
        self.socket_pending = false;
        let mut handled = 0;
        loop {
            if handled >= RECEIVES_PER_TURN_MAX {
                self.socket_pending = true;
                return;
            }
            match self.inbox.recv(self.net.socket.as_raw_fd()) {
                Ok(received) => {
                    handled += received;
                    self.stats.received += received as u64;
                    self.stats.receive_calls += 1;
                    for i in 0..received {
                        self.handle_datagram(now, i);
                    }
                    if received < self.inbox.capacity() {
                        // A short batch means the socket was drained when the kernel
                        // looked; an edge-triggered poll tells us of anything newer.
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    // Not expected on an unconnected UDP socket; note it and poll again
                    // rather than spin on a persistent error.
                    debug_log!(self.log, now, "receive failed: {error}");
                    self.stderr
                        .report(now, self.id, format_args!("receive failed: {error}"));
                    return;
                }
            }
        }
    }

    /// Decodes datagram `i` of the inbox in place and hands it to the core.
    fn handle_datagram(&mut self, now: Time, i: usize) {
        let before = self.log.is_enabled().then(|| Observed::of(&self.node));
        let (bytes, from) = self.inbox.datagram_mut(i);
        let len = bytes.len();
        let datagram = match self.decoder.decode(bytes) {
            Ok(datagram) => datagram,
            Err(error) => {
                self.stats.dropped_bad += 1;
                debug_log!(
                    self.log,
                    now,
                    "dropped a bad datagram of {len} bytes from {from:?}: {error}"
                );
                self.stderr.report(
                    now,
                    self.id,
                    format_args!("dropped a bad datagram of {len} bytes: {error}"),
                );
                return;
            }
        };
        if datagram.dst != self.id && !datagram.dst.is_broadcast() {
            self.stats.ignored += 1;
            debug_log!(self.log, now, "ignored a datagram for {}", datagram.dst);
            return;
        }
        match datagram.body {
            Body::Get { mid, key } => self.node.handle_client_request(
                now,
                ClientRequest {
                    client: datagram.src,
                    mid,
                    operation: Operation::Get { key },
                },
            ),
            Body::Put { mid, key, value } => self.node.handle_client_request(
                now,
                ClientRequest {
                    client: datagram.src,
                    mid,
                    operation: Operation::Put { key, value },
                },
            ),
            // The core indexes its peers; a message from anyone else is noise.
            Body::Raft(message) if self.node.peers().binary_search(&datagram.src).is_ok() => {
                self.node.handle_message(now, datagram.src, message)
            }
            body => {
                self.stats.ignored += 1;
                debug_log!(
                    self.log,
                    now,
                    "ignored a {} from {}",
                    body.type_name(),
                    datagram.src
                );
                return;
            }
        }
        if let Some(before) = before {
            self.note_changes(now, before);
        }
    }

    /// Fires every due timer, carrying out effects after each, then flushes the core.
    fn fire_timers(&mut self, now: Time) {
        let mut fired = 0;
        while fired < TIMERS_PER_TURN_MAX {
            let Some(timer) = self.wheel.pop_expired(now) else {
                break;
            };
            fired += 1;
            self.stats.timers_fired += 1;
            if let Some(handle) = self.timer_handles.get_mut(timer.slot()) {
                *handle = None;
            }
            let before = self.log.is_enabled().then(|| Observed::of(&self.node));
            self.node.handle_timer(now, timer);
            if let Some(before) = before {
                self.note_changes(now, before);
            }
            self.carry_out_effects(now);
        }
        if fired > 0 {
            self.node.flush(now);
            self.carry_out_effects(now);
        }
    }

    /// Takes the core's outbox and carries out each effect in order.
    fn carry_out_effects(&mut self, now: Time) {
        debug_assert!(self.effects.is_empty());
        self.node.take_effects(&mut self.effects);
        let Replica {
            id,
            node,
            net,
            wheel,
            timer_handles,
            effects,
            log,
            stats,
            stderr,
            ..
        } = self;
        let id = *id;
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, message } => {
                    // Read at send time: the leader field is our knowledge now.
                    let leader = node.leader();
                    // Read in place from the log: nothing is copied per entry.
                    let entries = match message {
                        Message::AppendEntries(m) => node.log_entries(m.entries),
                        _ => node.log_entries(EntrySpan::EMPTY),
                    };
                    let message = message.with_entries(entries);
                    let buf = net.next_buffer(now, stats, log, stderr, id);
                    encode_raft(buf, id, to, leader, &message);
                    debug_assert!(
                        buf.len() <= DATAGRAM_BYTES_MAX,
                        "the core capped this append at {DATAGRAM_BYTES_MAX} bytes, not {}",
                        buf.len()
                    );
                    net.queue();
                }
                Effect::Reply(Reply { client, mid, kind }) => {
                    let mid = mid.as_str();
                    let body = match &kind {
                        ReplyKind::Ok { value } => Body::Ok {
                            mid,
                            value: value.as_ref().map(|v| v.as_str()),
                        },
                        ReplyKind::Redirect => Body::Redirect { mid },
                        ReplyKind::Fail => Body::Fail { mid },
                    };
                    let datagram = Datagram {
                        src: id,
                        dst: client,
                        leader: node.leader(),
                        body,
                    };
                    encode(net.next_buffer(now, stats, log, stderr, id), &datagram);
                    net.queue_reply();
                }
                Effect::SetTimer { timer, at } => {
                    let slot = timer.slot();
                    if slot >= timer_handles.len() {
                        timer_handles.resize(slot + 1, None);
                    }
                    if let Some(old) = timer_handles[slot].take() {
                        wheel.cancel(old);
                    }
                    timer_handles[slot] = Some(wheel.insert(at, timer));
                }
                Effect::CancelTimer { timer } => {
                    if let Some(old) = timer_handles.get_mut(timer.slot()).and_then(Option::take) {
                        wheel.cancel(old);
                    }
                }
            }
        }
    }

    /// Notes role, term, leader and commit-index changes in the debug log.
    fn note_changes(&mut self, now: Time, before: Observed) {
        let after = Observed::of(&self.node);
        if after == before {
            return;
        }
        if (after.role, after.term, after.leader) != (before.role, before.term, before.leader) {
            debug_log!(
                self.log,
                now,
                "{} term {} leader {} (was {} term {} leader {})",
                after.role,
                after.term.0,
                after.leader,
                before.role,
                before.term.0,
                before.leader
            );
        }
        if after.commit_index != before.commit_index {
            debug_log!(
                self.log,
                now,
                "commit index {} -> {}",
                before.commit_index.0,
                after.commit_index.0
            );
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
