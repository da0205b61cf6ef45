//! The client port: Redis clients over TCP, in the replica's own loop.
//!
//! The listener and every connection are registered with the loop's poll
//! (`replica::event_loop::client_port`). A readable connection is read (at most
//! [`READ_BYTES_PER_TURN`] a turn, so one client cannot starve the others or the peers),
//! and each whole command in its input is dispatched (`command`) with a fresh reading of
//! the clock. The core's replies come back through [`ClientPort::reply`], are put in their
//! command's place, and the places ready at the front are written at the end of the turn,
//! after a durable turn's sync.
//!
//! Every buffer is bounded (`connection`): a connection whose replies are not read stops
//! being read; one that sends more than a command's worth without completing it, or
//! anything that is not RESP, is told `-ERR Protocol error` and closed; past
//! `clients_max` a new connection is told so and closed; one idle for
//! `client_idle_timeout_s` is told so and closed.

pub mod connection;

use crate::cluster_file::ClusterFile;
use crate::command::{self, CLUSTERDOWN, Context, Dispatched, TIMEOUT};
use crate::info::Counters;
use crate::resp::{Limits, parse_command};
use crate::value;
use connection::{Awaited, Connection, Failure, READ_CHUNK_BYTES, ReadEnd};
use mio::event::Event;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use raft::NodeId;
use raft::time::{Span, Time};
use raft::{Node, Reply, ReplyKind, Role};
use replica::event_loop::client_port::{CLIENT_PORT_TOKENS_FROM, ClientPort};
use replica::event_loop::clock::Clock;
use smallvec::SmallVec;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;

/// The listening socket.
const LISTENER: Token = CLIENT_PORT_TOKENS_FROM;
/// Bytes read from one connection per turn, at most.
pub const READ_BYTES_PER_TURN: usize = 256 * 1024;
/// How often idle connections are looked for.
const IDLE_CHECK_INTERVAL: Span = Span::from_millis(1_000);
/// Unread input discarded before a close, at most, so the close is a FIN that lets the
/// client read our last reply rather than a reset that may drop it.
const DISCARD_BEFORE_CLOSE_BYTES: usize = 64 * 1024;

/// The request limits, from `command`'s.
pub const REQUEST_LIMITS: Limits = Limits {
    args_max: command::COMMAND_KEYS_MAX + 1,
    bulk_bytes_max: command::VALUE_BYTES_MAX,
    inline_bytes_max: 64 * 1024,
};

pub struct RespPort {
    me: NodeId,
    cluster: ClusterFile,
    durable: bool,
    listener: TcpListener,
    idle_timeout: Option<Span>,
    /// Indexed by token less the first connection token; `None` is a free place.
    connections: Vec<Option<Connection>>,
    /// Bumped at each close, so a reply to a request of a closed connection cannot reach
    /// the next one in its place.
    generations: Vec<u32>,
    free: Vec<usize>,
    /// Connections with output to write or a close to finish this turn, and whether
    /// each place is in the list.
    dirty: Vec<usize>,
    is_dirty: Vec<bool>,
    /// Connections that may have input to take without an event (held for a leader,
    /// capped, or paused by backpressure), and whether each place is in the list.
    attention: Vec<usize>,
    needs_attention: Vec<bool>,
    counters: Counters,
    next_client_id: u64,
    args: Vec<Range<usize>>,
    mid: String,
    started_at: Option<Time>,
    next_idle_check: Time,
    /// TEST ONLY (`kvstore serve --unsafe-local-reads`): see `command::Context`.
    unsafe_local_reads: bool,
    /// Where each read from a client lands first (see `Connection::read`).
    read_scratch: Box<[u8]>,
}

impl RespPort {
    /// Binds `address` (as given: any interface the cluster file names).
    pub fn bind(
        me: NodeId,
        address: SocketAddr,
        cluster: ClusterFile,
        durable: bool,
    ) -> io::Result<RespPort> {
        let listener = TcpListener::bind(address).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot bind client address {address}: {error}"),
            )
        })?;
        let limits = cluster.limits;
        Ok(RespPort {
            me,
            durable,
            listener,
            idle_timeout: (limits.client_idle_timeout_s > 0)
                .then(|| Span::from_millis(limits.client_idle_timeout_s * 1000)),
            connections: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            attention: Vec::new(),
            needs_attention: Vec::new(),
            counters: Counters {
                clients_max: limits.clients_max,
                ..Counters::default()
            },
            cluster,
            next_client_id: 1,
            args: Vec::with_capacity(8),
            mid: String::with_capacity(32),
            started_at: None,
            next_idle_check: Time(0),
            unsafe_local_reads: false,
            read_scratch: vec![0; READ_CHUNK_BYTES].into_boxed_slice(),
        })
    }

    /// TEST ONLY: breaks linearizability on purpose, for kvnemesis to catch (see
    /// `command::Context::unsafe_local_reads`).
    pub fn serve_local_reads_unsafely(&mut self) {
        self.unsafe_local_reads = true;
    }

    fn token_of(i: usize) -> Token {
        Token(LISTENER.0 + 1 + i)
    }

    fn accept(&mut self, registry: &Registry, now: Time) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // Out of file descriptors, most likely: the connection waits in the
                    // backlog until the next one arrives.
                    eprintln!("{}: accept failed: {error}", self.me);
                    return;
                }
            };
            self.counters.connections_received += 1;
            if self.counters.connected_clients >= self.counters.clients_max {
                self.counters.connections_rejected += 1;
                // Best effort: a fresh socket's buffer takes a line.
                let _ = stream.write(b"-ERR max number of clients reached\r\n");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let i = self.free.pop().unwrap_or_else(|| {
                self.connections.push(None);
                self.generations.push(0);
                self.is_dirty.push(false);
                self.needs_attention.push(false);
                self.connections.len() - 1
            });
            if let Err(error) = registry.register(
                &mut stream,
                Self::token_of(i),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                eprintln!("{}: cannot watch a connection: {error}", self.me);
                self.free.push(i);
                continue;
            }
            let authenticated = self.cluster.requirepass.is_none();
            self.connections[i] = Some(Connection::new(
                stream,
                self.next_client_id,
                now,
                authenticated,
            ));
            self.next_client_id += 1;
            self.counters.connected_clients += 1;
            // Data may have come with the connection, before it was registered.
            self.attend(i);
        }
    }

    fn attend(&mut self, i: usize) {
        if !std::mem::replace(&mut self.needs_attention[i], true) {
            self.attention.push(i);
        }
    }

    fn mark_dirty(&mut self, i: usize) {
        if !std::mem::replace(&mut self.is_dirty[i], true) {
            self.dirty.push(i);
        }
    }

    /// Reads connection `i` (within the turn's budget) and takes its commands.
    fn read_and_take(&mut self, i: usize, node: &mut Node, clock: &dyn Clock) {
        let Some(conn) = self.connections[i].as_mut() else {
            return;
        };
        let before = conn.pending_input().len();
        let end = conn.read(READ_BYTES_PER_TURN, &mut self.read_scratch);
        conn.unread = end == ReadEnd::Capped;
        if conn.pending_input().len() != before {
            conn.last_input_at = clock.now();
        }
        self.take_commands(i, node, clock);
    }

    /// Dispatches the whole commands in connection `i`'s input, while it takes them.
    fn take_commands(&mut self, i: usize, node: &mut Node, clock: &dyn Clock) {
        let RespPort {
            me,
            cluster,
            durable,
            connections,
            generations,
            counters,
            args,
            mid,
            started_at,
            unsafe_local_reads,
            ..
        } = self;
        let Some(conn) = connections[i].as_mut() else {
            return;
        };
        let input = std::mem::take(&mut conn.input);
        let snapshot = *counters;
        let mut cx = Context {
            me: *me,
            cluster,
            connection: i,
            generation: generations[i],
            info: &snapshot,
            durable: *durable,
            started_at: started_at.unwrap_or(Time(0)),
            mid,
            unsafe_local_reads: *unsafe_local_reads,
        };
        while conn.accepts_commands() {
            let start = conn.input_start;
            let pending = &input[start..];
            match parse_command(pending, &REQUEST_LIMITS, args) {
                Ok(None) => {
                    if conn.eof || pending.len() >= connection::INPUT_BYTES_MAX {
                        if !conn.eof {
                            counters.protocol_errors += 1;
                            conn.error("ERR Protocol error: command too large");
                            conn.closing = true;
                        }
                        conn.input_start = input.len();
                    }
                    break;
                }
                Err(error) => {
                    counters.protocol_errors += 1;
                    conn.error(&format!("ERR Protocol error: {}", error.0));
                    conn.closing = true;
                    conn.input_start = input.len();
                    break;
                }
                Ok(Some(n)) => {
                    let words: SmallVec<[&[u8]; 8]> =
                        args.iter().map(|r| &pending[r.start..r.end]).collect();
                    let now = clock.now();
                    match command::dispatch(conn, &words, node, now, &mut cx) {
                        Dispatched::Taken => {
                            conn.input_start += n;
                            counters.commands_processed += 1;
                        }
                        Dispatched::Held | Dispatched::Ordered => break,
                    }
                }
            }
        }
        conn.input = input;
        // Input left only because backpressure stopped the loop is taken when it lifts;
        // an incomplete command waits for its readable event.
        let needs_attention = conn.unread
            || conn.held_since.is_some()
            || (!conn.accepts_commands() && !conn.closing && !conn.pending_input().is_empty());
        self.mark_dirty(i);
        if needs_attention {
            self.attend(i);
        }
    }

    fn close(&mut self, i: usize, registry: &Registry) {
        let Some(mut conn) = self.connections[i].take() else {
            return;
        };
        let _ = registry.deregister(&mut conn.stream);
        let mut sink = [0u8; 4096];
        let mut discarded = 0;
        while discarded < DISCARD_BEFORE_CLOSE_BYTES {
            match conn.stream.read(&mut sink) {
                Ok(n) if n > 0 => discarded += n,
                _ => break,
            }
        }
        self.generations[i] = self.generations[i].wrapping_add(1);
        self.free.push(i);
        self.counters.connected_clients -= 1;
        if std::mem::take(&mut self.needs_attention[i]) {
            self.attention.retain(|&j| j != i);
        }
    }

    /// Tells connections idle past the timeout, with nothing owed, that they are closed.
    fn close_idle(&mut self, now: Time) {
        let Some(timeout) = self.idle_timeout else {
            return;
        };
        for i in 0..self.connections.len() {
            let Some(conn) = self.connections[i].as_mut() else {
                continue;
            };
            let idle = now.since(conn.last_input_at) >= timeout
                && conn.owed.is_empty()
                && conn.held_since.is_none()
                && !conn.closing;
            if idle {
                conn.error(&format!(
                    "ERR idle for {} s (the limit): closing the connection",
                    timeout.as_millis() / 1000
                ));
                conn.closing = true;
                self.counters.idle_closed += 1;
                self.mark_dirty(i);
            }
        }
    }

    /// Parses `index.generation.request`.
    fn parse_mid(mid: &str) -> Option<(usize, u32, u64)> {
        let mut parts = mid.split('.');
        let i = parts.next()?.parse().ok()?;
        let generation = parts.next()?.parse().ok()?;
        let request = parts.next()?.parse().ok()?;
        Some((i, generation, request))
    }
}

impl ClientPort for RespPort {
    fn register(&mut self, registry: &Registry) -> io::Result<()> {
        registry.register(&mut self.listener, LISTENER, Interest::READABLE)
    }

    fn ready(&mut self, registry: &Registry, event: &Event, node: &mut Node, clock: &dyn Clock) {
        let now = clock.now();
        self.started_at.get_or_insert(now);
        if event.token() == LISTENER {
            self.accept(registry, now);
            return;
        }
        let i = event.token().0 - LISTENER.0 - 1;
        if self.connections.get(i).is_none_or(Option::is_none) {
            return;
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read_and_take(i, node, clock);
        }
        if event.is_writable() || event.is_error() {
            self.mark_dirty(i);
        }
    }

    fn service(&mut self, _registry: &Registry, node: &mut Node, clock: &dyn Clock) {
        let now = clock.now();
        self.started_at.get_or_insert(now);
        let attention = std::mem::take(&mut self.attention);
        for &i in &attention {
            self.needs_attention[i] = false;
        }
        for &i in &attention {
            let Some(conn) = self.connections[i].as_mut() else {
                continue;
            };
            if !conn.accepts_commands() {
                // Paused by backpressure: `flush` brings it back once its output drains.
                self.attend(i);
            } else if conn.unread {
                self.read_and_take(i, node, clock);
            } else {
                // Held for a leader (dispatch decides again: serve, redirect, keep
                // holding or give up), or input left by backpressure.
                self.take_commands(i, node, clock);
            }
        }
        if now >= self.next_idle_check {
            self.next_idle_check = now + IDLE_CHECK_INTERVAL;
            self.close_idle(now);
        }
    }

    fn reply(&mut self, reply: Reply, node: &Node) {
        let Some((i, generation, request)) = Self::parse_mid(reply.mid.as_str()) else {
            return;
        };
        if self.generations.get(i) != Some(&generation) {
            return;
        }
        let Some(conn) = self.connections[i].as_mut() else {
            return;
        };
        let Some(owed) = conn.owed_for(request) else {
            return;
        };
        let k = usize::try_from(request - owed.first_request).unwrap_or(usize::MAX);
        let leader = node.leader();
        match reply.kind {
            ReplyKind::Ok { value } => {
                let stored = value.as_ref().map_or("", |v| v.as_str());
                match owed.what {
                    Awaited::Get | Awaited::Mget => {
                        if let Some(place) = owed.values.get_mut(k) {
                            *place = value::value_from_core(stored).map(|v| v.into_owned());
                        }
                    }
                    Awaited::Exists => {
                        if let Some(place) = owed.values.get_mut(k) {
                            *place = value::exists(stored).then(Vec::new);
                        }
                    }
                    Awaited::Dbsize => {
                        owed.count = node.kv().count_values(node.log(), value::exists) as u64;
                    }
                    Awaited::Set
                    | Awaited::Del { .. }
                    | Awaited::Transfer { .. }
                    | Awaited::Membership => {}
                }
            }
            ReplyKind::Redirect => {
                let error = if leader != NodeId::UNKNOWN && leader != self.me {
                    command::moved(&self.cluster, node, leader, owed.slot)
                } else {
                    CLUSTERDOWN.to_owned()
                };
                command::fail(owed, Failure::Redirected, error);
            }
            ReplyKind::OutcomeUnknown => {
                command::fail(owed, Failure::OutcomeUnknown, TIMEOUT.to_owned());
            }
            ReplyKind::Fail => {
                let error = if let Awaited::Transfer { target } = owed.what {
                    command::transfer_failed(target, leader)
                } else if node.role() == Role::Leader {
                    "ERR busy: too many requests in progress; not performed".to_owned()
                } else {
                    CLUSTERDOWN.to_owned()
                };
                command::fail(owed, Failure::Refused, error);
            }
        }
        owed.missing = owed.missing.saturating_sub(1);
        if owed.missing == 0 {
            let counter = if owed.what.is_write() {
                &mut conn.writes_in_flight
            } else {
                &mut conn.reads_in_flight
            };
            *counter -= 1;
            let resume = *counter == 0 && conn.waits_for_order;
            if resume {
                conn.waits_for_order = false;
            }
            conn.release_ready(command::encode_owed);
            if resume {
                self.attend(i);
            }
            self.mark_dirty(i);
        }
    }

    fn flush(&mut self, registry: &Registry, _now: Time) {
        let dirty = std::mem::take(&mut self.dirty);
        for &i in &dirty {
            self.is_dirty[i] = false;
        }
        for &i in &dirty {
            let Some(conn) = self.connections[i].as_mut() else {
                continue;
            };
            conn.write();
            if conn.is_finished() {
                self.close(i, registry);
            } else if conn.accepts_commands() && (conn.unread || !conn.pending_input().is_empty()) {
                // Backpressure released: take what waited.
                self.attend(i);
            }
        }
        let mut dirty = dirty;
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn deadline(&self) -> Option<Time> {
        let mut deadline = (self.idle_timeout.is_some() && self.counters.connected_clients > 0)
            .then_some(self.next_idle_check);
        for &i in &self.attention {
            let Some(conn) = self.connections[i].as_ref() else {
                continue;
            };
            let at = match conn.held_since {
                Some(since) => since + Span::from_millis(command::LEADER_WAIT_MS_MAX),
                None if conn.accepts_commands() => Time(0),
                None => continue,
            };
            deadline = Some(deadline.map_or(at, |d: Time| d.min(at)));
        }
        deadline
    }
}
