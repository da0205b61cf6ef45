//! The network between the replicas and kvsim: every datagram a replica sends comes to
//! kvsim's socket for it, and kvsim passes it on (or not).
//!
//! - `wire`: reading a replica's datagram, only the fields routing needs;
//! - `verdicts`: what the virtual network does to a replica-to-replica datagram
//!   (partitions, drops, duplication, delay), as decisions drawn from its own random
//!   stream;
//! - `outbox`: datagrams to replicas, queued during a turn and sent in batches.
//!
//! The sockets and the clock belong to the run's event loop (`run`); these parts read,
//! decide and queue, so that the same seed makes the same decisions.

pub mod outbox;
pub mod verdicts;
pub mod wire;
