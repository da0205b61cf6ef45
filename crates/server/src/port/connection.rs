//! One client's connection: what it sent and has not been handled yet, the replies it is
//! owed in the order of its commands, and what is ready to write.
//!
//! Replies leave in command order (RESP has no request ids), while the core may answer a
//! later command first (a read from the lease before an earlier write's commit). So each
//! command takes a place in `owed`; a place is filled when its last answer comes, and
//! the filled places at the front move to `output`.

use crate::resp::reply;
use mio::net::TcpStream;
use raft::time::Time;
use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// Bytes asked of the kernel per read.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Unhandled input a connection may hold: one whole command must fit (a command longer
/// than this is a protocol error).
pub const INPUT_BYTES_MAX: usize = 1 << 20;
/// Replies ready but unwritten past which the connection is not read (backpressure): a
/// client that does not read its replies stops being served, not the node's memory.
pub const OUTPUT_BYTES_MAX: usize = 1 << 20;
/// Commands waiting for the core, per connection, past which it is not read.
pub const COMMANDS_OWED_MAX: usize = 1024;

/// What a command waits for from the core: one answer per key.
#[derive(Debug)]
pub struct Owed {
    /// The request id of its first key's request; its keys' requests are consecutive.
    pub first_request: u64,
    pub what: Awaited,
    /// The answers still missing.
    pub missing: usize,
    /// The first key's hash slot, for a redirect.
    pub slot: u16,
    /// The error that is the whole reply, once an answer says the command failed (an
    /// unknown outcome wins over the others: it is the one a client must not miss).
    pub failure: Option<(Failure, String)>,
    /// `DBSIZE`'s count.
    pub count: u64,
    /// Per key: the value read (`Get`, `Mget`, `Exists`).
    pub values: Vec<Option<Vec<u8>>>,
}

/// What a command does with its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaited {
    Get,
    Mget,
    /// How many keys exist.
    Exists,
    Set,
    /// `DEL`: how many of its keys existed just before its own entry (known when it was
    /// proposed; see `command::existed_before_proposal`).
    Del {
        existed: u32,
    },
    /// `DBSIZE`: a read that proves leadership, then a count.
    Dbsize,
    /// `CLUSTER TRANSFER`: leadership handed to `target`, answered once it leads (or
    /// did not win in time). Ordered as a write: it changes who serves what follows.
    Transfer {
        target: raft::NodeId,
    },
    /// `CLUSTER ADDNODE` or `DELNODE`: answered once the change is committed.
    Membership,
}

impl Awaited {
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Awaited::Set | Awaited::Del { .. } | Awaited::Transfer { .. } | Awaited::Membership
        )
    }
}

/// Why a command was not served, as its reply will say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Never performed; the leader is elsewhere, or unknown.
    Redirected,
    /// A write proposed whose fate is unknown: it may still commit.
    OutcomeUnknown,
    /// Never performed: the core refused it (too many in progress, or no leader).
    Refused,
}

/// A place in the reply order.
#[derive(Debug)]
pub enum Place {
    /// Encoded, waiting for the places before it.
    Ready(Vec<u8>),
    Waiting(Owed),
}

pub struct Connection {
    pub stream: TcpStream,
    /// `CLIENT ID`.
    pub client_id: u64,
    /// Bytes read and not yet handled, from `input_start`.
    pub input: Vec<u8>,
    pub input_start: usize,
    /// Replies ready to write, from `output_start`.
    pub output: Vec<u8>,
    pub output_start: usize,
    pub owed: VecDeque<Place>,
    /// Request ids are handed out in order, so `owed` is sorted by them.
    pub next_request: u64,
    /// The socket may hold input not read yet (a cap stopped the read, or backpressure).
    pub unread: bool,
    /// The first command in `input` waits for a leader to be known, since this time.
    pub held_since: Option<Time>,
    /// Commands handed to the core and not yet answered, reads and writes. A connection
    /// has one or the other in flight, never both (see `command::keep_order`).
    pub reads_in_flight: usize,
    pub writes_in_flight: usize,
    /// The first command in `input` waits for the other kind in flight to be answered.
    pub waits_for_order: bool,
    pub authenticated: bool,
    pub name: Option<Vec<u8>>,
    pub last_input_at: Time,
    /// Closed once its output is written: after `QUIT`'s `+OK`, a protocol error, an
    /// idle timeout.
    pub closing: bool,
    /// The peer closed its side or the socket failed: close once output is written (or
    /// at once, for a failure).
    pub eof: bool,
    pub failed: bool,
}

/// What a read found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The socket has nothing more now.
    Drained,
    /// A limit stopped the read: more may be waiting.
    Capped,
    /// The client closed its side, or the socket failed.
    Closed,
}

impl Connection {
    pub fn new(stream: TcpStream, client_id: u64, now: Time, authenticated: bool) -> Connection {
        Connection {
            stream,
            client_id,
            input: Vec::new(),
            input_start: 0,
            output: Vec::new(),
            output_start: 0,
            owed: VecDeque::new(),
            next_request: 0,
            unread: false,
            held_since: None,
            reads_in_flight: 0,
            writes_in_flight: 0,
            waits_for_order: false,
            authenticated,
            name: None,
            last_input_at: now,
            closing: false,
            eof: false,
            failed: false,
        }
    }

    /// Whether new commands may be taken from this connection now.
    pub fn accepts_commands(&self) -> bool {
        !self.closing
            && !self.failed
            && !self.waits_for_order
            && self.owed.len() < COMMANDS_OWED_MAX
            && self.output.len() - self.output_start < OUTPUT_BYTES_MAX
    }

    /// Reads at most `budget` bytes, never past [`INPUT_BYTES_MAX`] of unhandled input.
    /// `scratch` (at least [`READ_CHUNK_BYTES`], shared by the port's connections) takes
    /// each read, and only the bytes read are copied to the input: growing the input by a
    /// chunk before each read zeroed 16 KiB for commands of some 30 bytes, 5% of a busy
    /// leader's time.
    pub fn read(&mut self, budget: usize, scratch: &mut [u8]) -> ReadEnd {
        if self.input_start > 0 && self.input_start == self.input.len() {
            self.input.clear();
            self.input_start = 0;
        }
        let mut read = 0;
        loop {
            let room = INPUT_BYTES_MAX.saturating_sub(self.input.len() - self.input_start);
            if room == 0 || read >= budget {
                return ReadEnd::Capped;
            }
            if self.input_start > 0 && self.input.len() + READ_CHUNK_BYTES > self.input.capacity() {
                self.input.drain(..self.input_start);
                self.input_start = 0;
            }
            let chunk = READ_CHUNK_BYTES.min(room).min(scratch.len());
            let result = self.stream.read(&mut scratch[..chunk]);
            if let Ok(n) = result {
                self.input.extend_from_slice(&scratch[..n]);
            }
            match result {
                Ok(0) => {
                    self.eof = true;
                    return ReadEnd::Closed;
                }
                Ok(n) => read += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return ReadEnd::Drained;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.failed = true;
                    return ReadEnd::Closed;
                }
            }
        }
    }

    /// The unhandled input.
    pub fn pending_input(&self) -> &[u8] {
        &self.input[self.input_start..]
    }

    /// A reply that needs nothing from the core: written after the replies owed before it.
    pub fn answer(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.owed.is_empty() {
            encode(&mut self.output);
        } else {
            let mut bytes = Vec::new();
            encode(&mut bytes);
            self.owed.push_back(Place::Ready(bytes));
        }
    }

    pub fn error(&mut self, message: &str) {
        self.answer(|out| reply::error(out, message));
    }

    /// Moves the filled places at the front of `owed` to the output, encoding a waiting
    /// command's reply with `encode`.
    pub fn release_ready(&mut self, mut encode: impl FnMut(&Owed, &mut Vec<u8>)) {
        while let Some(front) = self.owed.front() {
            match front {
                Place::Ready(bytes) => self.output.extend_from_slice(bytes),
                Place::Waiting(owed) if owed.missing == 0 => encode(owed, &mut self.output),
                Place::Waiting(_) => return,
            }
            self.owed.pop_front();
        }
    }

    /// The waiting command that request `request` belongs to.
    pub fn owed_for(&mut self, request: u64) -> Option<&mut Owed> {
        // Sorted by first request; a command's requests run up to the next one's.
        let i = self.owed.partition_point(|place| match place {
            Place::Waiting(owed) => owed.first_request <= request,
            Place::Ready(_) => true,
        });
        self.owed
            .range_mut(..i)
            .rev()
            .find_map(|place| match place {
                Place::Waiting(owed) => Some(owed),
                Place::Ready(_) => None,
            })
    }

    pub fn has_output(&self) -> bool {
        self.output.len() > self.output_start
    }

    /// Writes what is ready until the socket is full.
    pub fn write(&mut self) {
        while self.has_output() {
            match self.stream.write(&self.output[self.output_start..]) {
                Ok(0) => {
                    self.failed = true;
                    return;
                }
                Ok(n) => self.output_start += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.failed = true;
                    return;
                }
            }
        }
        self.output.clear();
        self.output_start = 0;
        // A burst's buffer is not kept by an idle connection.
        if self.output.capacity() > OUTPUT_BYTES_MAX {
            self.output.shrink_to(READ_CHUNK_BYTES);
        }
    }

    /// Whether the connection is done: failed, or closing (or closed by the client) with
    /// everything written that it will get.
    pub fn is_finished(&self) -> bool {
        // Replies owed before a QUIT or an error are written first.
        let said_all =
            self.owed.is_empty() && (self.closing || (self.eof && self.pending_input().is_empty()));
        self.failed || (said_all && !self.has_output())
    }
}
