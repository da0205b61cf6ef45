//! A client port: clients that reach the replica somewhere other than its peer socket.
//!
//! Under the simulator, clients' requests arrive on the UDP socket with the peers' traffic
//! and the loop answers them there. In cluster mode (the `server` crate) clients speak
//! RESP over TCP connections: the loop polls the port's sockets beside the peer socket,
//! in the same thread, and the port hands each command to the core as the codec hands it
//! a datagram, with a fresh reading of the clock (the lease argument in `clock` holds
//! for it too). The core's replies come back to the port; it writes them at the end of
//! the turn, after the sync that a durable turn ends with.

use crate::event_loop::clock::Clock;
use mio::event::Event;
use mio::{Registry, Token};
use raft::time::Time;
use raft::{Node, Reply};
use std::io;

/// The first token a client port may use; the loop keeps the ones below it.
pub const CLIENT_PORT_TOKENS_FROM: Token = Token(16);

/// What the loop needs of a client port. Every method runs on the loop's thread; none may
/// block.
pub trait ClientPort {
    /// Registers the port's sources, with tokens from [`CLIENT_PORT_TOKENS_FROM`] on.
    fn register(&mut self, registry: &Registry) -> io::Result<()>;

    /// One of the port's tokens is ready: read what came and hand it to `node`, reading
    /// `clock` afresh before each request.
    fn ready(&mut self, registry: &Registry, event: &Event, node: &mut Node, clock: &dyn Clock);

    /// Work no event announces: input left unread by a per-turn cap or while replies
    /// drained, requests held for a leader, timeouts. Called once a turn, after the
    /// events and the peer socket are handled.
    fn service(&mut self, registry: &Registry, node: &mut Node, clock: &dyn Clock);

    /// The core's answer to one of the port's requests. `node` is the core as it is now
    /// (its leader, for a redirect).
    fn reply(&mut self, reply: Reply, node: &Node);

    /// The end of a turn: write what is ready.
    fn flush(&mut self, registry: &Registry, now: Time);

    /// When the loop must call [`ClientPort::service`] next at the latest: `Some(t)` with
    /// `t <= now` if it has work at once.
    fn deadline(&self) -> Option<Time>;
}
